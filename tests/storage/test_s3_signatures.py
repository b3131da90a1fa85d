"""Presigned URLs checked by an independent SigV4 verifier, and stores that really refuse.

moto accepts a zeroed ``X-Amz-Signature``, a date in 2000 and wrong credentials, so a GET through
moto proves nothing about our URLs.  Here the signature is recomputed from the AWS SigV4 spec with
hashlib/hmac (no boto code), and refusals come from a moto process that enforces IAM.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from mvcore.errors import MvcoreError, StorageError
from mvcore.storage.local import LocalStorage
from mvcore.storage.media_store import MediaStore
from mvcore.testing.moto_iam import MotoIamServer
from mvcore.testing.s3 import MotoS3Server
from mvcore.testing.settings import offline_settings

KEY_ID = "AKIDSIGV4TEST"
SECRET = "sigv4-test-secret-never-logged"
OBJECT = "mv/jobs/177adfe0-88fa-41d5-b18f-ba9a4455862f/video.mp4"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_query_signature(url: str, secret: str) -> str:
    """The X-Amz-Signature a presigned GET ``url`` must carry, per the SigV4 spec (query auth)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query))
    params = dict(query)
    assert params["X-Amz-SignedHeaders"] == "host"
    canonical = "\n".join(
        [
            "GET",
            quote(parts.path, safe="/-_.~"),
            canonical_query,
            f"host:{parts.netloc}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    _, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), terminator)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3Server]:
    with MotoS3Server(access_key_id=KEY_ID, secret_access_key=SECRET) as server:
        yield server


def _media_store(tmp_path: Path, moto: MotoS3Server, expiry: int) -> MediaStore:
    settings = offline_settings(tmp_path, presigned_url_expiry=expiry, **moto.settings_overrides())
    return MediaStore.from_settings(settings, max_attempts=1)


async def test_a_presigned_url_carries_a_valid_sigv4_signature_for_our_credentials(
    tmp_path: Path, moto: MotoS3Server
) -> None:
    store = _media_store(tmp_path, moto, expiry=3600)
    result = await store.save(b"\x00" * 1024, OBJECT, "video/mp4")
    assert result.cloud_url is not None and result.warning is None
    params = _query(result.cloud_url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Signature"] == sigv4_query_signature(result.cloud_url, SECRET)
    assert params["X-Amz-Signature"] != sigv4_query_signature(result.cloud_url, SECRET + "x")
    assert (
        params["X-Amz-Credential"].startswith(f"{KEY_ID}/")
        and "/us-east-1/s3/aws4_request" in params["X-Amz-Credential"]
    )
    signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - signed_at).total_seconds()) < 120
    assert SECRET not in result.cloud_url


@pytest.mark.parametrize("expiry", [60, 777, 3600, 604800])
async def test_the_url_expires_after_exactly_the_configured_presigned_url_expiry(
    tmp_path: Path, moto: MotoS3Server, expiry: int
) -> None:
    store = _media_store(tmp_path, moto, expiry=expiry)
    await store.save(b"x", OBJECT, "video/mp4")
    url = await store.url_for(OBJECT)
    assert url is not None and _query(url)["X-Amz-Expires"] == str(expiry)
    assert _query(url)["X-Amz-Signature"] == sigv4_query_signature(url, SECRET)


TAMPERINGS: dict[str, Callable[[str], str]] = {
    "zeroed-signature": lambda u: re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=" + "0" * 64, u),
    "longer-expiry": lambda u: u.replace("X-Amz-Expires=3600", "X-Amz-Expires=999999"),
    "date-in-2000": lambda u: re.sub(r"X-Amz-Date=\d{8}", "X-Amz-Date=20000101", u),
    "other-object": lambda u: u.replace("video.mp4", "other.mp4"),
}


@pytest.mark.parametrize("tamper", list(TAMPERINGS.values()), ids=list(TAMPERINGS))
async def test_the_verifier_rejects_what_moto_would_accept(
    tmp_path: Path, moto: MotoS3Server, tamper: Callable[[str], str]
) -> None:
    store = _media_store(tmp_path, moto, expiry=3600)
    await store.save(b"x", OBJECT, "video/mp4")
    original = await store.url_for(OBJECT)
    assert original is not None
    url = tamper(original)
    assert url != original
    assert _query(url)["X-Amz-Signature"] != sigv4_query_signature(url, SECRET)


# ------------------------------------------------------------------ a store that really refuses


@pytest.fixture(scope="module")
def write_only() -> Iterator[MotoIamServer]:
    with MotoIamServer(allow=["s3:PutObject"]) as server:
        yield server


def _clean(err: MvcoreError, *secrets: str) -> None:
    wire = repr(err.to_detail()) + str(err)
    assert all(s not in wire for s in secrets)


async def test_a_refused_read_is_a_storage_error_naming_access_denied(
    write_only: MotoIamServer, tmp_path: Path
) -> None:
    s3 = write_only.storage()
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    await s3.put_file(source, OBJECT, "video/mp4")  # the policy allows writes
    with pytest.raises(StorageError) as info:
        await s3.get_to_path(OBJECT, tmp_path / "back.mp4")
    assert "refused by the object store (AccessDenied)" in info.value.message
    assert "AWS_ACCESS_KEY_ID" in (info.value.hint or "")
    _clean(info.value, write_only.secret_access_key)
    assert not (tmp_path / "back.mp4").exists()


async def test_wrong_credentials_are_refused_and_never_echoed(
    write_only: MotoIamServer, tmp_path: Path
) -> None:
    s3 = write_only.storage(secret_access_key="not-the-secret-at-all")
    with pytest.raises(StorageError) as info:
        await s3.put_bytes(OBJECT, b"x", "video/mp4")
    assert "refused by the object store (SignatureDoesNotMatch)" in info.value.message
    _clean(info.value, "not-the-secret-at-all", write_only.access_key_id)


async def test_a_refused_upload_keeps_the_result_local_with_a_storage_warning(tmp_path: Path) -> None:
    with MotoIamServer(allow=["s3:GetObject"]) as read_only:
        store = MediaStore(LocalStorage(tmp_path / "data"), read_only.storage(), presign_expiry=60)
        result = await store.save(b"the only copy", OBJECT, "video/mp4")
    assert result.cloud_url is None and result.local_path is not None
    assert result.local_path.read_bytes() == b"the only copy"
    assert result.warning and "AccessDenied" in result.warning and "kept on local storage" in result.warning
