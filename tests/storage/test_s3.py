"""S3Storage with the real boto3 client against moto's server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mvcore.errors import BadInput, MvcoreError, NotFound, StorageError
from mvcore.storage.base import Storage
from mvcore.storage.s3 import S3Storage
from mvcore.testing.s3 import MotoS3Server

VALID = "177adfe0-88fa-41d5-b18f-ba9a4455862f"
SECRET = "s3cr3t-never-shown-anywhere"
KEY_ID = "AKIDNEVERSHOWN"


@pytest.fixture(scope="module")
def server() -> Iterator[MotoS3Server]:
    with MotoS3Server(access_key_id=KEY_ID, secret_access_key=SECRET) as moto:
        yield moto


@pytest.fixture
def s3(server: MotoS3Server) -> S3Storage:
    return server.storage()


def assert_clean(err: MvcoreError) -> None:
    """No credential anywhere in what an error would put on the wire."""
    wire = repr(err.to_detail()) + str(err)
    assert SECRET not in wire and KEY_ID not in wire


async def test_round_trip_and_presigned_url(s3: S3Storage, server: MotoS3Server, tmp_path: Path) -> None:
    assert isinstance(s3, Storage)
    key = f"mv/jobs/{VALID}/video.mp4"
    payload = bytes(range(256)) * 4000
    source = tmp_path / "video.mp4"
    source.write_bytes(payload)
    await s3.put_file(source, key, "video/mp4")
    assert server.get(key) == payload
    assert await s3.exists(key)
    assert s3.local_path(key) is None
    url = await s3.presigned_url(key, 300)
    assert url is not None and url.startswith(server.endpoint_url) and "X-Amz-Expires=300" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["content-type"] == "video/mp4"
    dest = await s3.get_to_path(key, tmp_path / "down" / "v.mp4")
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["v.mp4"]


async def test_bytes_list_delete(s3: S3Storage) -> None:
    await s3.put_bytes("audio/x.json", b'{"a": 1}', "application/json")
    await s3.put_bytes("audio/y.json", b"{}")
    assert await s3.get_bytes("audio/x.json") == b'{"a": 1}'
    assert await s3.list("audio/") == ["audio/x.json", "audio/y.json"]
    await s3.delete("audio/x.json")
    await s3.delete("audio/x.json")
    assert not await s3.exists("audio/x.json")
    assert await s3.list("audio/") == ["audio/y.json"]


async def test_missing_objects_are_not_found(s3: S3Storage, tmp_path: Path) -> None:
    assert not await s3.exists("nothing/here.mp4")
    with pytest.raises(NotFound, match=r"'nothing/here\.mp4' not found"):
        await s3.get_bytes("nothing/here.mp4")
    with pytest.raises(NotFound):
        await s3.get_to_path("nothing/here.mp4", tmp_path / "x.mp4")
    assert not list(tmp_path.iterdir())


async def test_bad_keys_never_reach_the_bucket(s3: S3Storage) -> None:
    for key in ("../x", "/abs", "a\x00b"):
        with pytest.raises(BadInput):
            await s3.put_bytes(key, b"x")


async def test_missing_bucket_is_a_clear_storage_error(server: MotoS3Server) -> None:
    s3 = server.storage(bucket="no-such-bucket-here")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist") as caught:
        await s3.put_bytes("a/b", b"x")
    assert caught.value.hint and "STORAGE_BUCKET" in caught.value.hint
    assert_clean(caught.value)
    with pytest.raises(StorageError, match="does not exist"):
        await s3.check()


async def test_unreachable_store_fails_fast_without_secrets(tmp_path: Path) -> None:
    with MotoS3Server(access_key_id=KEY_ID, secret_access_key=SECRET) as moto:
        s3 = moto.storage()
        await s3.check()
        moto.stop()
        source = tmp_path / "v.mp4"
        source.write_bytes(b"v" * 1000)
        started = time.perf_counter()
        for call in (
            s3.put_file(source, "a/v.mp4"),
            s3.put_bytes("a/b", b"x"),
            s3.get_bytes("a/b"),
            s3.exists("a/b"),
            s3.list("a/"),
        ):
            with pytest.raises(
                StorageError, match=r"object store unreachable at http://127\.0\.0\.1:"
            ) as caught:
                await call
            assert_clean(caught.value)
            assert str(tmp_path) not in caught.value.message
        assert time.perf_counter() - started < 5
        # presigning needs no network
        assert (await s3.presigned_url("a/b", 60) or "").startswith(moto.endpoint_url)


@pytest.mark.parametrize("endpoint", ["not a url", "http://user:s3cr3t-never-shown-anywhere@host:99999"])
def test_bad_endpoint_is_a_storage_error(endpoint: str) -> None:
    try:
        s3 = S3Storage("b", endpoint_url=endpoint, access_key_id=KEY_ID, secret_access_key=SECRET)
    except StorageError as err:
        assert "AWS_ENDPOINT_URL" in (err.hint or "")
        assert_clean(err)
    else:
        assert SECRET not in repr(s3) and SECRET not in s3._where
