"""Where generators put results and the API finds them: the local disk, plus a bucket when configured.

The rules (DESIGN.md section 9, seed v3.1):

* :meth:`MediaStore.save` always writes the local copy first (atomically).  With a bucket configured
  it then uploads the object and returns a presigned GET URL in ``cloud_url``.  An upload that fails
  -- unreachable store, wrong credentials, missing bucket, timeout -- is *never* an error: the result
  comes back with ``cloud_url=None`` and a ``warning`` (also logged at WARNING), and the local copy is
  served.  Warnings name the key and a short reason; never a credential or a server path.
* If the local write fails (disk full...) but the upload succeeds, the result is still not lost:
  ``local_path`` is None, ``cloud_url`` is set, ``warning`` says so.  Only when both fail does
  ``save`` raise (:class:`~mvcore.errors.StorageError`).
* Reads (:meth:`exists`, :meth:`fetch`, :meth:`load_json`) look at the local disk first, then the
  bucket, so an instance whose disk lost a file (or never had it) still finds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mvcore import logs
from mvcore.errors import MvcoreError, NotFound, StorageError
from mvcore.storage.keys import check_key
from mvcore.storage.local import LocalStorage
from mvcore.storage.s3 import S3Storage

if TYPE_CHECKING:
    from mvcore.settings import Settings

__all__ = ["MediaStore", "SaveResult"]


@dataclass(frozen=True)
class SaveResult:
    """What :meth:`MediaStore.save` did.

    ``local_path`` is the stored local file (None only when the disk write failed and the object
    store has the only copy); ``cloud_url`` a presigned GET URL when the upload worked; ``warning`` a
    human sentence when something degraded (safe to put into a response).
    """

    key: str
    local_path: Path | None
    cloud_url: str | None = None
    warning: str | None = None

    @property
    def uploaded(self) -> bool:
        return self.cloud_url is not None


class MediaStore:
    """Local storage plus an optional object store, with the fallback rules above."""

    def __init__(
        self,
        local: LocalStorage,
        cloud: S3Storage | None = None,
        *,
        serve_from_cloud: bool = False,
        presign_expiry: int = 3600,
        upload_timeout: float = 300.0,
    ) -> None:
        self.local = local
        self.cloud = cloud
        self.serve_from_cloud = serve_from_cloud
        self.presign_expiry = presign_expiry
        self.upload_timeout = upload_timeout

    def __repr__(self) -> str:
        return (
            f"MediaStore(local={self.local!r}, cloud={self.cloud!r}, "
            f"serve_from_cloud={self.serve_from_cloud})"
        )

    @classmethod
    def from_settings(cls, settings: Settings, **cloud_options: Any) -> MediaStore:
        """Local storage under ``settings.data_dir``; S3 when ``STORAGE_BUCKET`` is set.

        ``cloud_options`` go to :class:`S3Storage` (``connect_timeout``, ``read_timeout``,
        ``max_attempts``, ...), e.g. to make tests against a stopped server fail fast.
        """
        cloud = None
        if settings.storage_bucket:
            key_id, secret = (
                value.get_secret_value() if value is not None else None
                for value in (settings.aws_access_key_id, settings.aws_secret_access_key)
            )
            cloud = S3Storage(
                settings.storage_bucket,
                region=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
                access_key_id=key_id,
                secret_access_key=secret,
                **cloud_options,
            )
        return cls(
            LocalStorage(settings.data_dir),
            cloud,
            serve_from_cloud=settings.serve_from_cloud,
            presign_expiry=settings.presigned_url_expiry,
        )

    # --- writing ---------------------------------------------------------------
    async def save(self, source: Path | bytes, key: str, content_type: str | None = None) -> SaveResult:
        """Store a file (or bytes) under ``key``: local copy always, upload + presigned URL when cloud."""
        check_key(key)
        data: bytes | None = None
        path_source: Path | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        else:
            path_source = Path(source)
        local_path: Path | None = None
        local_error: StorageError | None = None
        try:
            if path_source is not None:
                await self.local.put_file(path_source, key, content_type)
            else:
                await self.local.put_bytes(key, data or b"", content_type)
            local_path = self.local.path_for(key)
        except StorageError as exc:
            if self.cloud is None:
                raise
            local_error = exc

        cloud_url: str | None = None
        warning: str | None = None
        if self.cloud is not None:
            upload_from = local_path or path_source or data or b""
            try:
                cloud_url = await self._upload(upload_from, key, content_type)
            except Exception as exc:  # an upload failure must never lose the result
                warning = self._upload_warning(key, exc)
                if local_error is not None:
                    raise local_error from exc
                logs.event("cloud_upload_failed", logging.WARNING, key=key, warning=warning)
            else:
                logs.event("cloud_upload_done", key=key, bucket=self.cloud.bucket)
        if local_error is not None:
            warning = f"{local_error.message}; the only copy is in the object store"
            logs.event("local_store_failed", logging.WARNING, key=key, warning=warning)
        return SaveResult(key, local_path, cloud_url, warning)

    async def _upload(self, source: Path | bytes, key: str, content_type: str | None) -> str | None:
        assert self.cloud is not None
        cloud = self.cloud

        async def upload() -> str | None:
            if isinstance(source, bytes):
                await cloud.put_bytes(key, source, content_type)
            else:
                await cloud.put_file(source, key, content_type)
            return await cloud.presigned_url(key, self.presign_expiry)

        async with asyncio.timeout(self.upload_timeout):
            return await upload()

    def _upload_warning(self, key: str, exc: BaseException) -> str:
        if isinstance(exc, MvcoreError):
            reason = exc.message
        elif isinstance(exc, TimeoutError):
            reason = f"upload of {key!r} failed: no answer within {self.upload_timeout:g}s"
        else:
            reason = f"upload of {key!r} failed: {type(exc).__name__}"
        text = f"Cloud {reason}; the result is kept on local storage and served from there"
        if self.cloud is not None:
            text = self.cloud.scrub(text)
        return logs.scrub(text)

    async def save_json(self, key: str, obj: Any) -> SaveResult:
        """Store ``obj`` as pretty UTF-8 JSON (non-JSON values such as paths/datetimes become strings)."""
        text = json.dumps(obj, indent=2, ensure_ascii=False, default=str)
        return await self.save(text.encode("utf-8"), key, "application/json")

    async def save_text(self, key: str, text: str, content_type: str | None = None) -> SaveResult:
        """Store ``text`` as UTF-8 (content type guessed from the key: markdown, plain text...)."""
        if content_type is None:
            suffix = PurePosixPath(key).suffix.lower()
            content_type = {".md": "text/markdown", ".json": "application/json"}.get(suffix, "text/plain")
            content_type += "; charset=utf-8"
        return await self.save(text.encode("utf-8"), key, content_type)

    async def delete(self, key: str) -> None:
        """Remove ``key`` from both stores (missing is fine)."""
        await self.local.delete(key)
        if self.cloud is not None:
            await self.cloud.delete(key)

    # --- reading ---------------------------------------------------------------
    async def exists(self, key: str) -> bool:
        """In the local store, or else in the bucket.  An unreachable bucket raises StorageError."""
        if await self.local.exists(key):
            return True
        return self.cloud is not None and await self.cloud.exists(key)

    async def fetch(self, key: str, dest_dir: Path | None = None) -> Path:
        """A local file with the object's bytes.

        The local copy is returned as is when there is one (treat it as read-only).  Otherwise the
        object is downloaded from the bucket: into ``dest_dir / <key's file name>`` when
        ``dest_dir`` is given (scratch space the caller cleans up), else into the local store at
        the key's own place, so later reads are local.  Raises NotFound when neither store has it.
        """
        check_key(key)
        if await self.local.exists(key):
            return self.local.path_for(key)
        if self.cloud is None:
            raise NotFound(f"Stored file {key!r} not found", details={"key": key})
        if dest_dir is not None:
            target = Path(dest_dir) / PurePosixPath(key).name
        else:
            target = self.local.path_for(key)
        return await self.cloud.get_to_path(key, target)

    async def load_bytes(self, key: str) -> bytes:
        try:
            return await self.local.get_bytes(key)
        except NotFound:
            if self.cloud is None:
                raise
        return await self.cloud.get_bytes(key)

    async def load_json(self, key: str) -> dict[str, Any]:
        """A JSON object saved with :meth:`save_json`.  NotFound when missing, StorageError when corrupt."""
        raw = await self.load_bytes(key)
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise StorageError(f"Stored file {key!r} is not valid JSON", details={"key": key}) from None
        if not isinstance(value, dict):
            raise StorageError(f"Stored file {key!r} does not hold a JSON object", details={"key": key})
        return value

    async def url_for(self, key: str, *, check: bool = True) -> str | None:
        """A presigned GET URL for ``key``, or None.

        None when no bucket is configured, when (``check=True``) the bucket does not hold the key
        -- e.g. its upload failed, so the caller should serve the local copy -- or when the bucket
        cannot be reached (logged at WARNING).
        """
        check_key(key)
        if self.cloud is None:
            return None
        try:
            if check and not await self.cloud.exists(key):
                return None
            return await self.cloud.presigned_url(key, self.presign_expiry)
        except StorageError as exc:
            warning = logs.scrub(self.cloud.scrub(exc.message))
            logs.event("cloud_url_failed", logging.WARNING, key=key, warning=warning)
            return None
