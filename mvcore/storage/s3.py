"""Storage in an S3 bucket (AWS or any S3-compatible store via ``endpoint_url``).

* One boto3 client per instance, built from an explicit session (credentials passed in are used
  as given; when none are passed boto3's usual chain applies), with a botocore ``Config`` carrying
  the connect/read timeouts and ``standard`` retries limited to ``max_attempts``.
* Every call runs in :func:`asyncio.to_thread` (boto3 clients are thread-safe).
* ``NoSuchKey``/404 -> :class:`~mvcore.errors.NotFound`; everything else ->
  :class:`~mvcore.errors.StorageError` whose message names the operation, the key and a short
  reason (an S3 error code, "unreachable", "timed out", ...).  Messages are built here, never copied
  from botocore (whose texts can carry local file paths), and are scrubbed of the credentials.
* A custom ``endpoint_url`` switches to path-style addressing, which every S3-compatible store
  (MinIO, moto, R2, ...) understands.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from mvcore.errors import MvcoreError, NotFound, StorageError
from mvcore.storage.keys import check_key

__all__ = ["S3Storage"]

T = TypeVar("T")

_CHUNK = 1 << 20
_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
}
_CODE_IN_TEXT = re.compile(r"An error occurred \(([A-Za-z0-9.]+)\)")
_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.Lock()


def _where(endpoint_url: str | None) -> str:
    """How messages name the store: ``scheme://host:port`` only (no userinfo, no path)."""
    if not endpoint_url:
        return "S3"
    try:
        parts = urlsplit(endpoint_url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "the configured endpoint"


class S3Storage:
    """A :class:`~mvcore.storage.base.Storage` on one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        region: str | None = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        multipart_threshold: int = 64 * 1024 * 1024,
    ) -> None:
        if not bucket:
            raise StorageError("S3 storage needs a bucket name", hint="Set STORAGE_BUCKET.")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self._secrets = tuple(s for s in (secret_access_key, access_key_id) if s)
        self._where = _where(endpoint_url)
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": max(1, max_attempts), "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        try:
            with _SESSION_LOCK:  # boto3 sessions are not thread-safe; sharing one caches the service model
                global _SESSION
                if _SESSION is None:
                    _SESSION = boto3.session.Session()
                self._client: Any = _SESSION.client(
                    "s3",
                    region_name=region or None,
                    endpoint_url=endpoint_url or None,
                    aws_access_key_id=access_key_id or None,
                    aws_secret_access_key=secret_access_key or None,
                    config=config,
                )
        except Exception as exc:  # a malformed endpoint/region must not surface as a botocore traceback
            raise StorageError(
                self.scrub(f"could not configure the S3 client: {type(exc).__name__}"),
                hint="Check AWS_ENDPOINT_URL and AWS_REGION.",
                details={"bucket": bucket},
            ) from exc
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold, max_concurrency=4)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self._where!r})"

    @property
    def client(self) -> Any:
        """The underlying boto3 S3 client (for callers that need an operation not wrapped here)."""
        return self._client

    # --- error mapping -------------------------------------------------------
    def scrub(self, text: str) -> str:
        """``text`` with this store's credentials replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, op: str, key: str | None, exc: BaseException) -> MvcoreError:
        what = f"{op} of {key!r}" if key else op
        details: dict[str, Any] = {"bucket": self.bucket}
        if key:
            details["key"] = key
        hint: str | None = None
        code: str | None = None
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(
                exc.response.get("Error", {}).get("Code")
                or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                or "ClientError"
            )
        elif isinstance(exc, boto3.exceptions.S3UploadFailedError):
            match = _CODE_IN_TEXT.search(str(exc))
            code = match.group(1) if match else "UploadFailed"
        if code is not None:
            if code in _MISSING and key:
                return NotFound(f"Stored file {key!r} not found", details=details)
            if code == "NoSuchBucket" or code in _MISSING:
                reason = f"bucket {self.bucket!r} does not exist"
                hint = "Create the bucket or fix STORAGE_BUCKET."
            elif code in _DENIED:
                reason = f"refused by the object store ({code})"
                hint = "Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's permissions."
            else:
                reason = code
        elif isinstance(
            exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
        ):
            reason = "no AWS credentials configured"
            hint = "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        elif isinstance(
            exc,
            botocore.exceptions.EndpointConnectionError
            | botocore.exceptions.ConnectTimeoutError
            | botocore.exceptions.ConnectionClosedError,
        ):
            reason = f"object store unreachable at {self._where}"
            hint = "Check AWS_ENDPOINT_URL / network access to the object store."
        elif isinstance(exc, botocore.exceptions.ReadTimeoutError):
            reason = f"object store at {self._where} timed out"
        elif isinstance(exc, OSError):
            reason = f"local I/O failed ({exc.strerror or type(exc).__name__})"
        else:
            reason = type(exc).__name__
        details["reason"] = reason
        return StorageError(self.scrub(f"{what} failed: {reason}"), hint=hint, details=details)

    async def _call(self, op: str, key: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except MvcoreError:
            raise
        except Exception as exc:  # every boto/transfer failure becomes a clean StorageError
            raise self._error(op, key, exc) from exc

    # --- the Storage interface -----------------------------------------------
    async def put_file(self, local: Path, key: str, content_type: str | None = None) -> None:
        check_key(key)
        extra = {"ContentType": content_type} if content_type else None
        await self._call(
            "upload",
            key,
            self._client.upload_file,
            str(local),
            self.bucket,
            key,
            ExtraArgs=extra,
            Config=self._transfer,
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        check_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        await self._call(
            "upload", key, self._client.put_object, Bucket=self.bucket, Key=key, Body=data, **extra
        )

    def _download_sync(self, key: str, dest: Path) -> Path:
        response = self._client.get_object(Bucket=self.bucket, Key=key)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                for chunk in response["Body"].iter_chunks(_CHUNK):
                    out.write(chunk)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            response["Body"].close()
        return dest

    async def get_to_path(self, key: str, dest: Path) -> Path:
        check_key(key)
        return await self._call("download", key, self._download_sync, key, Path(dest))

    def _get_bytes_sync(self, key: str) -> bytes:
        response = self._client.get_object(Bucket=self.bucket, Key=key)
        with response["Body"] as body:
            data: bytes = body.read()
        return data

    async def get_bytes(self, key: str) -> bytes:
        check_key(key)
        return await self._call("download", key, self._get_bytes_sync, key)

    def _exists_sync(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return False
            raise
        return True

    async def exists(self, key: str) -> bool:
        check_key(key)
        return await self._call("lookup", key, self._exists_sync, key)

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._call("delete", key, self._client.delete_object, Bucket=self.bucket, Key=key)

    def _list_sync(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", ()))
        return sorted(keys)

    async def list(self, prefix: str = "") -> list[str]:
        return await self._call("listing", prefix or None, self._list_sync, prefix)

    async def presigned_url(self, key: str, expires: int) -> str | None:
        check_key(key)
        url: str = await self._call(
            "presigning",
            key,
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=int(expires),
        )
        return url

    def local_path(self, key: str) -> Path | None:
        return None

    # --- extras ----------------------------------------------------------------
    async def check(self) -> None:
        """Raise :class:`StorageError` unless the bucket is reachable with these credentials."""
        await self._call("bucket check", None, self._client.head_bucket, Bucket=self.bucket)

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()
