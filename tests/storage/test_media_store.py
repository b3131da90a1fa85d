"""MediaStore: the local copy always, the cloud copy when it can, never a lost result."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mvcore.errors import NotFound, StorageError
from mvcore.settings import Settings
from mvcore.storage import keys
from mvcore.storage.local import LocalStorage
from mvcore.storage.media_store import MediaStore, SaveResult
from mvcore.testing.s3 import MotoS3Server

from .test_local import fill_disk

VIDEO_ID = "177adfe0-88fa-41d5-b18f-ba9a4455862f"
VIDEO_KEY = keys.video_key(VIDEO_ID)
SECRET = "s3cr3t-never-shown-anywhere"
KEY_ID = "AKIDNEVERSHOWN"


@pytest.fixture(scope="module")
def server() -> Iterator[MotoS3Server]:
    with MotoS3Server(access_key_id=KEY_ID, secret_access_key=SECRET) as moto:
        yield moto


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "scratch" / "video.mp4"
    path.parent.mkdir()
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 500)
    return path


def cloud_store(root: Path, server: MotoS3Server, **s3: object) -> MediaStore:
    return MediaStore(LocalStorage(root), server.storage(**s3), serve_from_cloud=True, presign_expiry=120)


async def http_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def test_save_uploads_and_the_presigned_url_serves_the_same_bytes(
    tmp_path: Path, server: MotoS3Server, video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = cloud_store(tmp_path / "data", server)
    with caplog.at_level(logging.INFO, logger="mvcore"):
        saved = await store.save(video, VIDEO_KEY, "video/mp4")
    assert isinstance(saved, SaveResult) and saved.uploaded and saved.warning is None
    assert saved.local_path == tmp_path / "data" / VIDEO_KEY
    assert saved.local_path.read_bytes() == video.read_bytes()
    assert video.exists()  # the scratch file is copied, not moved
    assert server.get(VIDEO_KEY) == video.read_bytes()
    assert saved.cloud_url is not None and "X-Amz-Expires=120" in saved.cloud_url
    response = await http_get(saved.cloud_url)
    assert response.status_code == 200 and response.content == video.read_bytes()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    url = await store.url_for(VIDEO_KEY)
    assert url is not None and (await http_get(url)).content == video.read_bytes()


async def test_without_cloud_everything_is_local(tmp_path: Path, video: Path) -> None:
    store = MediaStore(LocalStorage(tmp_path / "data"))
    saved = await store.save(video, VIDEO_KEY, "video/mp4")
    assert saved == SaveResult(VIDEO_KEY, tmp_path / "data" / VIDEO_KEY, None, None)
    assert await store.url_for(VIDEO_KEY) is None
    assert await store.exists(VIDEO_KEY)
    assert await store.fetch(VIDEO_KEY, tmp_path / "elsewhere") == saved.local_path
    with pytest.raises(NotFound):
        await store.fetch(keys.audio_key(VIDEO_ID))
    assert not await store.exists(keys.audio_key(VIDEO_ID))


async def test_fetch_from_cloud_when_the_local_copy_is_gone(
    tmp_path: Path, server: MotoS3Server, video: Path
) -> None:
    store = cloud_store(tmp_path / "data", server)
    saved = await store.save(video, VIDEO_KEY, "video/mp4")
    assert saved.local_path is not None
    saved.local_path.unlink()
    assert await store.exists(VIDEO_KEY)
    scratch = await store.fetch(VIDEO_KEY, tmp_path / "work")
    assert scratch == tmp_path / "work" / "video.mp4" and scratch.read_bytes() == video.read_bytes()
    assert not saved.local_path.exists()
    cached = await store.fetch(VIDEO_KEY)
    assert cached == saved.local_path and cached.read_bytes() == video.read_bytes()
    # another instance with an empty disk finds it too
    other = cloud_store(tmp_path / "other", server)
    assert (await other.fetch(VIDEO_KEY)).read_bytes() == video.read_bytes()
    missing = keys.video_key("00000000-0000-4000-8000-000000000000")
    assert not await other.exists(missing)
    with pytest.raises(NotFound):
        await other.fetch(missing)


async def test_upload_failure_is_a_warning_and_the_result_stays_local(
    tmp_path: Path, video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with MotoS3Server(access_key_id=KEY_ID, secret_access_key=SECRET) as moto:
        store = cloud_store(tmp_path / "data", moto)
        moto.stop()
        with caplog.at_level(logging.INFO, logger="mvcore"):
            saved = await store.save(video, VIDEO_KEY, "video/mp4")
            meta = await store.save_json(keys.video_metadata_key(VIDEO_ID), {"video_id": VIDEO_ID})
            url = await store.url_for(VIDEO_KEY)
    assert saved.cloud_url is None and url is None
    assert saved.local_path is not None and saved.local_path.read_bytes() == video.read_bytes()
    assert saved.warning is not None
    assert VIDEO_KEY in saved.warning and "unreachable" in saved.warning and "local" in saved.warning
    assert (
        meta.warning and meta.local_path and json.loads(meta.local_path.read_text()) == {"video_id": VIDEO_ID}
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and VIDEO_KEY in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno > logging.WARNING]
    for text in [saved.warning, meta.warning, caplog.text]:
        assert SECRET not in text and KEY_ID not in text and str(tmp_path) not in text


async def test_missing_bucket_is_a_warning_too(tmp_path: Path, server: MotoS3Server, video: Path) -> None:
    store = cloud_store(tmp_path / "data", server, bucket="nobody-made-this-bucket")
    saved = await store.save(video, VIDEO_KEY, "video/mp4")
    assert saved.cloud_url is None and saved.local_path is not None and saved.local_path.exists()
    assert saved.warning and "does not exist" in saved.warning


async def test_url_for_is_none_when_only_the_local_copy_exists(
    tmp_path: Path, server: MotoS3Server, video: Path
) -> None:
    await MediaStore(LocalStorage(tmp_path / "data")).save(video, VIDEO_KEY)
    store = cloud_store(tmp_path / "data", server)
    key = keys.video_key("11111111-1111-4111-8111-111111111111")
    await store.local.put_file(video, key)
    assert await store.url_for(key) is None
    assert (await store.url_for(key, check=False) or "").startswith(server.endpoint_url)


async def test_json_metadata_round_trip_local_and_cloud(tmp_path: Path, server: MotoS3Server) -> None:
    store = cloud_store(tmp_path / "data", server)
    key = keys.audio_metadata_key(VIDEO_ID)
    saved = await store.save_json(key, {"title": "Ünïcode", "path": Path("x"), "n": 1})
    assert saved.uploaded
    assert await store.load_json(key) == {"title": "Ünïcode", "path": "x", "n": 1}
    assert saved.local_path is not None
    saved.local_path.unlink()
    assert await store.load_json(key) == {"title": "Ünïcode", "path": "x", "n": 1}
    text = await store.save_text("mv/scenes/p/scenes.md", "# Idea\n")
    assert text.local_path is not None and text.local_path.read_text() == "# Idea\n"
    with pytest.raises(NotFound):
        await MediaStore(LocalStorage(tmp_path / "empty")).load_json(key)
    await store.local.put_bytes("broken/meta.json", b"{nope")
    with pytest.raises(StorageError, match="not valid JSON"):
        await store.load_json("broken/meta.json")
    await store.local.put_bytes("broken/list.json", b"[1]")
    with pytest.raises(StorageError, match="JSON object"):
        await store.load_json("broken/list.json")


async def test_disk_full_with_cloud_keeps_the_cloud_copy(
    tmp_path: Path, server: MotoS3Server, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = cloud_store(tmp_path / "data", server)
    key = keys.video_key("22222222-2222-4222-8222-222222222222")
    fill_disk(monkeypatch)
    saved = await store.save(video, key, "video/mp4")
    monkeypatch.undo()
    assert saved.local_path is None and not (tmp_path / "data" / key).exists()
    assert saved.cloud_url and (await http_get(saved.cloud_url)).content == video.read_bytes()
    assert saved.warning and saved.warning.startswith("disk full while writing")


async def test_disk_full_without_cloud_is_an_error(
    tmp_path: Path, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MediaStore(LocalStorage(tmp_path / "data"))
    fill_disk(monkeypatch)
    with pytest.raises(StorageError, match="disk full while writing"):
        await store.save(video, VIDEO_KEY, "video/mp4")
    monkeypatch.undo()
    assert not (tmp_path / "data" / VIDEO_KEY).exists()


async def test_from_settings(tmp_path: Path, server: MotoS3Server, video: Path) -> None:
    local_only = MediaStore.from_settings(Settings(data_dir=tmp_path / "a"))
    assert local_only.cloud is None and local_only.local.root == tmp_path / "a"
    settings = Settings(
        data_dir=tmp_path / "b",
        serve_from_cloud=True,
        presigned_url_expiry=77,
        **server.settings_overrides(),
    )
    store = MediaStore.from_settings(settings, max_attempts=1)
    assert store.cloud is not None and store.serve_from_cloud and store.presign_expiry == 77
    saved = await store.save(video, VIDEO_KEY, "video/mp4")
    assert saved.cloud_url and "X-Amz-Expires=77" in saved.cloud_url
    assert SECRET not in repr(store)
