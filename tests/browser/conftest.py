"""Browser tests: the real server on a free 127.0.0.1 port, driven by Debian's chromium through Playwright.

* ``server``  -- one live server per session (uvicorn in a background thread) over a tmp copy of
  ``./flavors`` (safe to edit; watch mode ``auto``), data in tmp, the offline provider and small media.
* ``browser`` -- chromium from ``/usr/bin/chromium`` (no browser download); skipped only when it is
  missing *and* ``CI`` is unset -- under ``CI=true`` a missing chromium fails the run.
* ``page``    -- a fresh context whose every request to anything but 127.0.0.1/localhost is blocked
  and recorded; console errors and page errors are collected.  ``guard.assert_clean()`` (called
  by the tests and again at teardown) fails on any blocked request, console error or page error.
* ``song``    -- a 20 s sine-tone mp3 made with the ffmpeg of imageio-ffmpeg.
* ``screenshots`` -- where the tests save their screenshots: ``docs/screenshots/`` when
  ``MVCORE_UPDATE_SCREENSHOTS=1`` (how the README's images are made), else a tmp directory, so a
  test run never rewrites tracked files.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MVCORE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
SONG_SECONDS = 20.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} -- browser tests must run under CI=true", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


# --------------------------------------------------------------------------- the server


@dataclass
class LiveServer:
    base_url: str
    flavors_dir: Path
    data_dir: Path
    app: Any

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    def wait_generation_above(self, generation: int, timeout: float = 10.0) -> int:
        """Wait until the server's flavor snapshot is newer than ``generation``."""
        store = self.app.state["services"].store
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = store.current.generation
            if current > generation:
                return int(current)
            time.sleep(0.05)
        raise AssertionError(f"the server did not reload within {timeout} s (still generation {generation})")

    @property
    def generation(self) -> int:
        return int(self.app.state["services"].store.current.generation)


@contextmanager
def live_server(root: Path, **overrides: Any) -> Iterator[LiveServer]:
    """Run ``create_app`` under uvicorn in a background thread on a free 127.0.0.1 port."""
    import uvicorn

    from mvcore.api.app import create_app
    from mvcore.settings import Settings

    flavors = root / "flavors"
    shutil.copytree(SHIPPED_FLAVORS, flavors)
    values: dict[str, Any] = {
        "flavors_dirs": [flavors],
        "data_dir": root / "data",
        "provider": "offline",
        "watch": "auto",
        "debounce_ms": 50,
        "offline_long_side": 320,  # small clips keep the browser tests fast
        "offline_fps": 12,
        "api_key": None,
    }
    values.update(overrides)
    settings = Settings(**values)
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    uv = uvicorn.Server(config)
    thread = threading.Thread(
        target=uv.run, kwargs={"sockets": [sock]}, name=f"browser-test-server-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start (see the log above)")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", flavors, settings.data_dir, app)
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser-server")) as live:
        yield live


KEY = "browser-test-key-123"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second server with ``API_KEY`` set to ``KEY``."""
    with live_server(tmp_path_factory.mktemp("keyed-server"), api_key=KEY) as live:
        yield live


@pytest.fixture
def api_key() -> str:
    return KEY


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a test dependency
        _unavailable("the playwright Python package is not installed")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:  # report why chromium would not start
        playwright.stop()
        pytest.fail(f"chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class PageGuard:
    """What a page did that it must not: leave the machine, log errors, throw."""

    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # substrings of console errors a test expects

    def allow(self, fragment: str) -> None:
        self.allowed.append(fragment)

    def problems(self) -> list[str]:
        out = [f"blocked non-local request: {u}" for u in self.blocked]
        out += [f"console error: {m}" for m in self.console_errors if not any(a in m for a in self.allowed)]
        out += [f"page error: {m}" for m in self.page_errors]
        return out

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "\n".join(problems)


@pytest.fixture
def guard() -> PageGuard:
    return PageGuard()


@pytest.fixture
def context(browser: Any, guard: PageGuard) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=False)

    def block(route: Any) -> None:
        guard.blocked.append(route.request.url)
        route.abort("blockedbyclient")

    ctx.route(lambda url: not _is_local(url), block)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any, guard: PageGuard) -> Iterator[Any]:
    page = context.new_page()

    def on_console(message: Any) -> None:
        if message.type == "error":
            location = message.location or {}
            where = f"{location.get('url', '')}:{location.get('lineNumber', '')}"
            guard.console_errors.append(f"{message.text} ({where})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: guard.page_errors.append(str(exc)))
    yield page
    guard.assert_clean()


# --------------------------------------------------------------------------- media


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("MVCORE_UPDATE_SCREENSHOTS", "").strip() in ("1", "true", "yes"):
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 s, 440 Hz sine tone as mp3."""
    import imageio_ffmpeg

    target = tmp_path_factory.mktemp("song") / "sine-song.mp3"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={SONG_SECONDS:g}",
            "-ac",
            "2",
            "-b:a",
            "128k",
            str(target),
        ],
        check=True,
        timeout=60,
    )
    return target
