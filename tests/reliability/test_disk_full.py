"""A full disk is a 507 ``DISK_FULL`` on every path that writes, with nothing partial kept.

A real small tmpfs is mounted over the data directory (scratch ``data/tmp`` and media ``data/mv``
alike) and filled; then an upload, a download, a character reference and a video are each asked
for.  Before, these answered 500 (the generate_video one with libx264's statistics).  Needs root
and ``mount``; without them the test is skipped (the fsync-patched variant of
``test_faults.test_disk_full_while_storing_a_video`` still runs).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

from . import make_settings


def wav_bytes(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(22050)
        out.writeframes(b"\x10\x20" * int(22050 * seconds))
    return buffer.getvalue()


def _mount(target: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)]
    return subprocess.run(cmd, capture_output=True, timeout=10, check=False).returncode == 0


def _umount(target: Path) -> None:
    for args in (["umount", str(target)], ["umount", "-l", str(target)]):
        if subprocess.run(args, capture_output=True, timeout=10, check=False).returncode == 0:
            return


def _fill(directory: Path) -> Path:
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as out:
        try:
            for _ in range(100_000):
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and p.name != "filler.bin"}


@pytest.fixture
def full_disk(tmp_path: Path, make_listener: Any) -> Iterator[tuple[TestClient, Path, str]]:
    """(client, data dir on a 4 MiB tmpfs, URL of a song the server may download)."""
    data = tmp_path / "data"
    if not _mount(data, "4m"):
        pytest.skip("needs root and mount -t tmpfs")
    song = make_listener(body=wav_bytes(2.0))
    host = f"127.0.0.1:{song.port}"
    settings = make_settings(
        tmp_path, fetch_allow_hosts=[host], fetch_dangerously_allow_private=[host], media_timeout_s=60.0
    )
    try:
        store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
        with TestClient(
            create_app(settings, store=store), raise_server_exceptions=False, timeout=60
        ) as client:
            yield client, data, f"http://{host}/song.wav"
    finally:
        _umount(data)


def test_every_write_path_answers_507_disk_full_and_keeps_nothing(
    full_disk: tuple[TestClient, Path, str],
) -> None:
    client, data, song_url = full_disk
    before = client.post("/api/audio/upload", files={"data": ("a.wav", wav_bytes(1.0), "audio/wav")})
    assert before.status_code == 200, before.text
    filler = _fill(data)
    kept = files_under(data)

    attempts = {
        "upload": lambda: client.post(
            "/api/audio/upload", files={"data": ("b.wav", wav_bytes(2.0), "audio/wav")}
        ),
        "download": lambda: client.post("/api/audio/download", json={"url": song_url}),
        "character reference": lambda: client.post(
            "/api/mv/generate_character_reference", json={"character_description": "a fox", "num_images": 2}
        ),
        "generate_video": lambda: client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 2}),
    }
    for what, attempt in attempts.items():
        response = attempt()
        assert response.status_code == 507, (what, response.status_code, response.text)
        detail = response.json()["detail"]
        assert detail["error"] == "DISK_FULL", (what, detail)
        assert "disk full" in detail["message"] and detail["details"]["hint"], (what, detail)
        assert "libx264" not in response.text and "/tmp" not in response.text, (what, response.text)
        assert files_under(data) == kept, (what, files_under(data) ^ kept)

    filler.unlink()
    after = client.post("/api/audio/upload", files={"data": ("c.wav", wav_bytes(1.0), "audio/wav")})
    assert after.status_code == 200, after.text
    assert client.get(f"/api/audio/get/{before.json()['audio_id']}").status_code == 200
