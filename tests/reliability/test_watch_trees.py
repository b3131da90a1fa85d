"""Deep and wide trees inside a flavor directory: reload keeps working, the log stays small, the
server stays responsive and stops on SIGTERM within 2 s.

Flavors are flat, so a directory inside a flavor is ignored (reported once in status) and never
walked: ``mkdir`` 1,000 levels deep or 5,000 files in it cost the watcher one event.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

from . import REPO, LiveServer, make_settings, settle

DEPTH = 1000
FILES = 5000


def build_deep(base: Path, depth: int = DEPTH) -> Path:
    """``base/d/d/.../d``, one level at a time (os.makedirs recurses; this does not)."""
    path = base
    for _ in range(depth):
        path = path / "d"
        path.mkdir()
    return path


def remove_deep(base: Path, depth: int = DEPTH) -> None:
    """The chain removed from the bottom up (shutil.rmtree recurses past the recursion limit)."""
    for level in range(depth, 0, -1):
        target = base.joinpath(*(["d"] * level))
        for child in target.iterdir() if target.is_dir() else ():
            child.unlink()
        if target.is_dir():
            target.rmdir()


def build_wide(directory: Path, count: int = FILES) -> None:
    directory.mkdir()
    for i in range(count):
        (directory / f"file{i}.yaml").write_text(f"n: {i}\n")


@pytest.fixture
def trees(tmp_path: Path) -> Iterator[Path]:
    flavor = tmp_path / "flavors"
    yield flavor
    remove_deep(flavor / "example")


class _Bytes(logging.Handler):
    """Counts what would be written to the log, every logger and level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.size = 0
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.size += len(line.encode()) + 1
        if len(self.lines) < 1000:
            self.lines.append(line)


@pytest.fixture
def log_size() -> Iterator[_Bytes]:
    handler = _Bytes()
    loggers = [logging.getLogger(), logging.getLogger("mvcore"), logging.getLogger("watchdog")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_deep_and_wide_trees_inside_a_flavor(trees: Path, tmp_path: Path, log_size: _Bytes) -> None:
    settings = make_settings(tmp_path, watch="inotify")
    example = settings.flavors_dirs[0] / "example"
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with LiveServer(create_app(settings, store=store)) as live:
        with httpx.Client(base_url=live.url, timeout=1.0) as client:  # health must answer in < 1 s
            build_deep(example)
            assert client.get("/health").status_code == 200
            build_wide(example / "wide")
            (example / "wide-flat.txt").write_text("a file that is not a config")
            assert client.get("/health").status_code == 200
            (example / "parameters.yaml").write_text('camera_angle: "after the trees"\n')
            assert settle(
                lambda: store.current.get("parameters", "camera_angle", "example") == "after the trees",
                timeout=10,
            )
            assert client.get("/health").status_code == 200
            watch = client.get("/api/mv/flavors/status").json()["watch"]
            # the deep chain built again, level by level, inside the nested dir: still nothing walks it
            build_deep(example / "wide", 200)
            (example / "parameters.yaml").write_text('camera_angle: "still reloading"\n')
            assert settle(
                lambda: store.current.get("parameters", "camera_angle", "example") == "still reloading",
                timeout=10,
            )
            assert client.get("/health").status_code == 200
        remove_deep(example / "wide", 200)
    assert watch["mode"] == "inotify" and watch["healthy"] is True and watch["last_error"] is None
    nested = [w for w in watch["warnings"] if "directory inside a flavor" in w]
    assert sorted(w.split(":")[0] for w in nested) == [str(example / "d"), str(example / "wide")]
    assert log_size.size < 1 << 20, f"{log_size.size} bytes of log"
    assert sum("flavor_nested_dir_ignored" in line for line in log_size.lines) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_stops_the_server_within_two_seconds_with_deep_trees(trees: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    root = settings.flavors_dirs[0]
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MVCORE_WATCH": "inotify",
        "MVCORE_DATA_DIR": str(tmp_path / "data"),
        "MVCORE_PROVIDER": "offline",
    }
    command = [sys.executable, "-m", "mvcore.cli", "serve", "--port", str(port), "--flavors-dir", str(root)]
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as server:
        try:
            url = f"http://127.0.0.1:{port}"
            # generous: on a loaded CI machine the interpreter and its imports alone can take long
            assert settle(lambda: _healthy(url) or server.poll() is not None, timeout=120)
            assert server.poll() is None, "the server exited at start"
            build_deep(root / "example")
            build_wide(root / "example" / "wide", 1000)
            (root / "example" / "parameters.yaml").write_text('camera_angle: "edited"\n')
            assert _healthy(url)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail("the server ignored SIGTERM for 10 s")
            took = time.monotonic() - started
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(5)
        stderr = server.stderr.read().decode(errors="replace") if server.stderr else ""
    # uvicorn finishes its shutdown, then re-raises the signal: -SIGTERM is the graceful exit
    assert server.returncode in (0, -signal.SIGTERM), (server.returncode, stderr[-2000:])
    assert "Application shutdown complete" in stderr, stderr[-2000:]
    assert took < 2.0, f"SIGTERM took {took:.2f} s"
    assert len(stderr.encode()) < 1 << 20


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
