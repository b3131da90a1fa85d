"""The music-video pipeline through the HTTP API: fixtures and helpers.

* ``make_settings(tmp_path, **overrides)`` (fixture returning the factory): offline provider, local
  storage under ``tmp_path/data``, small clips (160 px long side, 12 fps) so every test stays fast.
* ``open_client(settings)``: a context manager yielding a Litestar ``TestClient`` on a fresh app.
* ``client``: one such client on ``settings`` (override ``settings`` in a module to change them).
* ``kit``: :class:`MediaKit` -- test audio made with the ffmpeg binary of imageio-ffmpeg, and
  measurements of results (audio stream length, loudness of a window).
* ``pipe``: :class:`Pipeline` -- upload / generate / lipsync / stitch / fetch through ``client``
  (``make_pipeline(client, root)`` builds one for module-scoped fixtures).
* ``http_files``: a tiny HTTP server on 127.0.0.1 serving a tmp directory (for direct URLs);
  ``local_fetch_pipe``: a pipeline whose server is allowed to fetch from it (the fetch policy
  refuses local addresses otherwise).
* ``s3``: a real S3 endpoint (moto's ThreadedMotoServer on 127.0.0.1) shared by a module.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.media.ffmpeg import MediaInfo, probe_sync
from mvcore.settings import Settings
from mvcore.testing.s3 import MotoS3Server
from mvcore.testing.settings import offline_settings
from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[2]
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
#: Loudness (dB) below which a window counts as silence; a full-scale/8 sine is about -21 dB.
SILENT_DB = -60.0

_ENCODERS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "3"],
    ".flac": ["-c:a", "flac"],
}


def build_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return offline_settings(tmp_path, flavors_from=SHIPPED_FLAVORS, **{"media_timeout_s": 120.0, **overrides})


@contextlib.contextmanager
def client_for(settings: Settings) -> Iterator[TestClient[Any]]:
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    app = create_app(settings, store=store)
    with TestClient(app, raise_server_exceptions=False, timeout=120) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    return build_settings


@pytest.fixture(scope="session")
def open_client() -> Callable[[Settings], contextlib.AbstractContextManager[TestClient[Any]]]:
    return client_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return build_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Any]]:
    with client_for(settings) as test_client:
        yield test_client


# --------------------------------------------------------------------------- media helpers


def _run(args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


class MediaKit:
    """Makes test audio with ffmpeg and measures what the pipeline produced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def tone(
        self,
        name: str,
        seconds: float,
        *,
        freq: int = 440,
        silent_until: float | None = None,
        sample_rate: int = 44100,
        channels: int = 1,
    ) -> Path:
        """A sine of ``seconds`` in the format of ``name``'s suffix (silent before ``silent_until``)."""
        path = self.root / name
        filters = [f"aformat=channel_layouts={'mono' if channels == 1 else 'stereo'}"]
        if silent_until is not None:
            filters.append(f"volume=0:enable='lt(t,{silent_until})'")
        result = _run(
            [
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency={freq}:sample_rate={sample_rate}:duration={seconds}",
                "-af",
                ",".join(filters),
                *_ENCODERS[path.suffix.lower()],
                str(path),
            ]
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return path

    def audio_seconds(self, path: Path) -> float:
        """Length of the first audio stream, measured by decoding it (not the container's claim)."""
        result = _run(["-i", str(path), "-map", "0:a:0", "-f", "null", "-progress", "pipe:1", "-"])
        assert result.returncode == 0, result.stderr[-2000:]
        times = [int(v) for v in re.findall(r"^out_time_us=(\d+)$", result.stdout, re.MULTILINE)]
        assert times, result.stdout[-1000:]
        return max(times) / 1e6

    def loudness(self, path: Path, start: float, length: float) -> tuple[float, float]:
        """(mean dB, max dB) of the first audio stream over ``[start, start + length)``."""
        result = _run(
            [
                "-i",
                str(path),
                "-map",
                "0:a:0",
                "-af",
                f"atrim=start={start}:end={start + length},volumedetect",
                "-f",
                "null",
                "-",
            ]
        )
        assert result.returncode == 0, result.stderr[-2000:]

        def value(label: str) -> float:
            match = re.search(rf"{label}:\s*(-?[\d.]+|-inf) dB", result.stderr)
            assert match, f"no {label} in ffmpeg output: {result.stderr[-1500:]}"
            return float("-inf") if match.group(1) == "-inf" else float(match.group(1))

        return value("mean_volume"), value("max_volume")

    def assert_sound(self, path: Path, start: float, length: float = 0.5) -> None:
        mean, _ = self.loudness(path, start, length)
        assert mean > SILENT_DB, f"silence at {start:.2f}s+{length}s (mean {mean} dB)"

    def assert_silence(self, path: Path, start: float, length: float = 0.5) -> None:
        _, peak = self.loudness(path, start, length)
        assert peak <= SILENT_DB, f"sound at {start:.2f}s+{length}s (peak {peak} dB)"


@pytest.fixture
def kit(tmp_path: Path) -> MediaKit:
    return MediaKit(tmp_path / "kit")


# --------------------------------------------------------------------------- the pipeline


class Pipeline:
    """The music-video flow through the HTTP API, asserting success unless told otherwise."""

    def __init__(self, client: TestClient[Any], kit: MediaKit, downloads: Path) -> None:
        self.client = client
        self.kit = kit
        self.downloads = downloads
        downloads.mkdir(parents=True, exist_ok=True)

    # requests ---------------------------------------------------------------
    def upload(self, path: Path, filename: str | None = None, *, status: int = 200) -> dict[str, Any]:
        response = self.client.post(
            "/api/audio/upload",
            files={"data": (filename or path.name, path.read_bytes(), "application/octet-stream")},
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    def song(self, seconds: float = 12.0, name: str = "song.mp3", **tone: Any) -> dict[str, Any]:
        """Make a tone file with ``kit`` and upload it; returns the upload response."""
        return self.upload(self.kit.tone(name, seconds, **tone))

    def video(
        self, duration: int = 2, aspect: str = "16:9", audio: bool = True, prompt: str | None = None
    ) -> dict[str, Any]:
        response = self.client.post(
            "/api/mv/generate_video",
            json={
                "prompt": prompt or f"a fox on a rooftop {uuid.uuid4().hex[:6]}",
                "duration": duration,
                "aspect_ratio": aspect,
                "generate_audio": audio,
            },
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def lipsync(self, status: int = 200, **payload: Any) -> dict[str, Any]:
        response = self.client.post("/api/mv/lipsync", json=payload)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    def stitch(self, video_ids: list[str], status: int = 200, **payload: Any) -> dict[str, Any]:
        response = self.client.post("/api/mv/stitch-videos", json={"video_ids": video_ids, **payload})
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    # results ----------------------------------------------------------------
    def fetch(self, url: str, suffix: str = ".mp4") -> Path:
        """GET one of our media URLs and keep the bytes in a file."""
        response = self.client.get(url)
        assert response.status_code == 200, response.text[:500]
        path = self.downloads / f"{uuid.uuid4().hex}{suffix}"
        path.write_bytes(response.content)
        return path

    def probe(self, url: str) -> tuple[Path, MediaInfo]:
        path = self.fetch(url)
        return path, probe_sync(path)

    @staticmethod
    def detail(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
        """The error body of ``response``: exactly ``{"detail": {"error", "message", "details"}}``."""
        allowed = (status,) if isinstance(status, int) else status
        assert response.status_code in allowed, (response.status_code, response.text)
        body = response.json()
        assert set(body) == {"detail"}, body
        assert set(body["detail"]) == {"error", "message", "details"}, body
        assert body["detail"]["message"]
        assert "Traceback" not in response.text and "/tmp/" not in response.text
        detail: dict[str, Any] = body["detail"]
        return detail


@pytest.fixture
def pipe(client: TestClient[Any], kit: MediaKit, tmp_path: Path) -> Pipeline:
    return Pipeline(client, kit, tmp_path / "downloads")


@pytest.fixture(scope="session")
def make_pipeline() -> Callable[[TestClient[Any], Path], Pipeline]:
    """For module-scoped pipelines: ``make_pipeline(client, root)``."""
    return lambda client, root: Pipeline(client, MediaKit(root / "kit"), root / "downloads")


# --------------------------------------------------------------------------- servers


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, directory): files put in the directory are served at ``base URL/<name>``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http-files", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def local_fetch_pipe(tmp_path: Path, http_files: tuple[str, Path]) -> Iterator[Pipeline]:
    """A pipeline whose server may fetch from ``http_files`` -- and from no other local address.

    The fetch policy refuses 127.0.0.1 unless MVCORE_FETCH_DANGEROUSLY_ALLOW_PRIVATE names it; this
    names exactly the test server's ``host:port``.
    """
    base, _ = http_files
    root = tmp_path / "local-fetch"
    settings = build_settings(root, fetch_dangerously_allow_private=[base.split("//", 1)[1]])
    with client_for(settings) as test_client:
        yield Pipeline(test_client, MediaKit(root / "kit"), root / "downloads")


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server
