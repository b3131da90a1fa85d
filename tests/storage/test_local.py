"""LocalStorage: keys stay under the root, writes are atomic, a full disk leaves no partial file."""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from mvcore.errors import BadInput, NotFound, StorageError
from mvcore.storage.base import Storage
from mvcore.storage.local import LocalStorage

VALID = "177adfe0-88fa-41d5-b18f-ba9a4455862f"


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root")


async def test_round_trip(store: LocalStorage, tmp_path: Path) -> None:
    assert isinstance(store, Storage)
    key = f"mv/jobs/{VALID}/video.mp4"
    source = tmp_path / "src.bin"
    source.write_bytes(b"v" * 3_000_000)
    await store.put_file(source, key, "video/mp4")
    assert await store.exists(key)
    assert store.local_path(key) == store.root / key
    assert await store.get_bytes(key) == source.read_bytes()
    copy = await store.get_to_path(key, tmp_path / "out" / "copy.mp4")
    assert copy.read_bytes() == source.read_bytes()
    await store.put_bytes(f"mv/jobs/{VALID}/metadata.json", b"{}")
    await store.put_bytes("audio/a.mp3", b"a")
    assert await store.list("mv/jobs/") == [f"mv/jobs/{VALID}/metadata.json", key]
    assert await store.list("aud") == ["audio/a.mp3"]
    assert await store.list("nothing/") == []
    assert await store.presigned_url(key, 60) is None
    await store.delete(key)
    await store.delete(key)  # missing is fine
    assert not await store.exists(key) and store.local_path(key) is None
    with pytest.raises(NotFound):
        await store.get_bytes(key)
    with pytest.raises(NotFound):
        await store.get_to_path(key, tmp_path / "x")


async def test_put_file_onto_itself_and_missing_source(store: LocalStorage, tmp_path: Path) -> None:
    await store.put_bytes("a/b.txt", b"same")
    await store.put_file(store.root / "a/b.txt", "a/b.txt")
    assert await store.get_bytes("a/b.txt") == b"same"
    with pytest.raises(StorageError, match="could not read the file") as caught:
        await store.put_file(tmp_path / "missing.bin", "a/c.txt")
    assert str(tmp_path) not in caught.value.message
    assert not await store.exists("a/c.txt")


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "/etc/passwd", "a/../../outside.txt", "a\x00b", "x" * 2000, "a\\..\\..\\b", ""],
    ids=repr,
)
async def test_refuses_keys_escaping_the_root(store: LocalStorage, tmp_path: Path, key: str) -> None:
    with pytest.raises(BadInput) as caught:
        await store.put_bytes(key, b"evil")
    assert caught.value.code == "INVALID_KEY"
    for call in (store.get_bytes(key), store.exists(key), store.delete(key)):
        with pytest.raises(BadInput):
            await call
    assert not (tmp_path / "outside.txt").exists()
    assert not store.root.exists() or not any(store.root.rglob("*"))


async def test_refuses_symlinks_out_of_the_root(store: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir()
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BadInput, match="outside the storage root"):
        await store.put_bytes("link/x.txt", b"evil")
    assert not any(outside.iterdir())


class _FullDisk:
    """A writable file that accepts a few bytes and then fails like a full disk."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        self._handle.write(bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on every write to an in-progress ``.part`` file fails with ENOSPC after 10 bytes."""
    real_open = builtins.open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).endswith(".part"):
            return _FullDisk(handle)
        return handle

    monkeypatch.setattr(builtins, "open", fake_open)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    fill_disk(monkeypatch)


@pytest.mark.usefixtures("full_disk")
async def test_disk_full_leaves_no_file_under_the_final_name(store: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(b"x" * 100_000)
    key = f"mv/jobs/{VALID}/video.mp4"
    for attempt in (store.put_file(source, key), store.put_bytes(key, b"y" * 1000)):
        with pytest.raises(
            StorageError, match=r"^disk full while writing 'mv/jobs/.*/video\.mp4'$"
        ) as caught:
            await attempt
        assert caught.value.code == "DISK_FULL" and caught.value.status_code == 507
        assert str(tmp_path) not in caught.value.message
    final = store.root / key
    assert not final.exists()
    assert os.listdir(final.parent) == []  # the temp file is gone too


async def test_disk_full_keeps_the_previous_version(
    store: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put_bytes("audio/a.json", b'{"v": 1}')
    fill_disk(monkeypatch)
    with pytest.raises(StorageError, match="disk full"):
        await store.put_bytes("audio/a.json", b'{"v": 2}')
    monkeypatch.undo()
    assert await store.get_bytes("audio/a.json") == b'{"v": 1}'
    assert await store.list("audio/") == ["audio/a.json"]
