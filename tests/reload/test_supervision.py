"""The observer is supervised: a dead or stuck reader is noticed, replaced, and reported in status."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.polling import PollingWatcher
from mvcore.config.reload import Reloader, watch_status
from mvcore.config.store import FlavorStore
from mvcore.config.watching import InotifyWatcher
from mvcore.testing.settings import offline_settings

from . import DEADLINE, POLL_INTERVAL, angle, make_tree, params


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "flavors", {"default": params("front", 4), "test": params("before", 2)})


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom: the observer thread died")


def _kill(reloader: Reloader) -> Any:
    """Make the observer thread raise on its next turn; returns the watcher that will die."""
    watcher = reloader._watcher
    if isinstance(watcher, InotifyWatcher):
        watcher.fd.read_events = _boom  # the reader's loop calls it again after the current read
    else:
        assert isinstance(watcher, PollingWatcher)
        watcher._scan = _boom  # type: ignore[method-assign]
    return watcher


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_a_killed_observer_thread_is_replaced_and_reported(
    root: Path, make_store: Callable[..., FlavorStore], mode: str
) -> None:
    store = make_store(root)
    target = root / "test" / "parameters.yaml"
    with Reloader(store, mode=mode, poll_interval=POLL_INTERVAL, health_check_s=0.2) as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        dead = _kill(reloader)
        target.write_text(params("wakes-the-reader-which-then-dies"))
        assert reloader.wait_until(
            lambda: reloader._watcher is not dead and reloader.stats.restarts > 0, DEADLINE
        )
        health = watch_status(reloader)
        assert health["mode"] == mode and health["healthy"] is True
        assert health["restarts"] == 1 and "boom: the observer thread died" in health["last_error"]
        # nothing was lost: the replacement rescans, and later edits reload as before
        assert reloader.wait_until(lambda: angle(store) == "wakes-the-reader-which-then-dies", DEADLINE)
        target.write_text(params("after-the-replacement"))
        assert reloader.wait_until(lambda: angle(store) == "after-the-replacement", DEADLINE)


def test_a_stuck_inotify_reader_is_replaced(root: Path, make_store: Callable[..., FlavorStore]) -> None:
    store = make_store(root)
    target = root / "test" / "parameters.yaml"
    release = threading.Event()
    blocked = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> list[Any]:
        blocked.set()
        release.wait(30)  # bounded: released at the end of the test
        return []

    reloader = Reloader(store, mode="inotify", health_check_s=0.1, stuck_s=0.3)
    try:
        with reloader:
            assert reloader.wait_for_rebuilds(1, DEADLINE)
            watcher = reloader._watcher
            assert isinstance(watcher, InotifyWatcher)
            watcher.fd.read_events = stuck
            target.write_text(params("wakes-the-reader"))  # its next read blocks
            assert blocked.wait(DEADLINE)
            target.write_text(params("waits-unread-in-the-kernel"))
            assert reloader.wait_until(lambda: reloader._watcher is not watcher, DEADLINE)
            health = reloader.watch_health()
            assert health["healthy"] and health["mode"] == "inotify"
            assert "waiting unread" in health["last_error"] or "stuck" in health["last_error"]
            assert reloader.wait_until(lambda: angle(store) == "waits-unread-in-the-kernel", DEADLINE)
    finally:
        release.set()


def test_status_endpoint_reports_the_watch(tmp_path: Path, root: Path) -> None:
    settings = offline_settings(tmp_path, watch="inotify")
    settings = settings.model_copy(update={"flavors_dirs": [root]})
    before = set(threading.enumerate())
    with TestClient(create_app(settings)) as client:
        watch = client.get("/api/mv/flavors/status").json()["watch"]
        assert watch["mode"] == "inotify" and watch["healthy"] is True and watch["last_error"] is None
        readers = [t for t in threading.enumerate() if t.name == "mvcore-inotify" and t not in before]
        assert len(readers) == 1
        readers[0].read_events = _boom  # type: ignore[attr-defined]
        (root / "test" / "parameters.yaml").write_text(params("after-a-crash"))

        def replaced() -> bool:
            body = client.get("/api/mv/flavors/status").json()
            return body["watch"]["restarts"] == 1 and body["watch"]["healthy"] is True

        assert _eventually(replaced)
        body = client.get("/api/mv/flavors/status").json()
        assert "boom" in body["watch"]["last_error"]
        assert _eventually(
            lambda: (
                client.get("/api/mv/flavors/test", params={"type": "parameters"}).json()["configs"][
                    "parameters"
                ]["values"]["camera_angle"]
                == "after-a-crash"
            )
        )


def _eventually(check: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if check():
                return True
            done.wait(0.05)
        return check()
    finally:
        deadline.cancel()
