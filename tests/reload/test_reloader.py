"""Reloader behaviour: flavors coming and going, last-known-good, errors, debounce, fallbacks."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mvcore.config.hookspecs import hookimpl
from mvcore.config.reload import Reloader, filesystem_type, watch_events
from mvcore.config.store import FlavorStore

from . import DEADLINE, DEBOUNCE_MS, MODES, POLL_INTERVAL, angle, make_tree, params, status, write


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "flavors", {"default": params("front", 4), "test": params("before", 2)})


@pytest.fixture
def store(root: Path, make_store: Callable[..., FlavorStore]) -> FlavorStore:
    return make_store(root)


def _reloader(store: FlavorStore, mode: str, **kwargs: Any) -> Reloader:
    kwargs.setdefault("debounce_ms", DEBOUNCE_MS)
    kwargs.setdefault("poll_interval", POLL_INTERVAL)
    return Reloader(store, mode=mode, **kwargs)


@pytest.fixture
def reloader(store: FlavorStore, mode: str) -> Iterator[Reloader]:
    with _reloader(store, mode) as r:
        assert r.wait_for_rebuilds(1, DEADLINE)
        yield r


# ---- flavors come and go ---------------------------------------------------------------------
def test_new_flavor_directory_is_added(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    write(root / "brand-new" / "parameters.yaml", params("new-flavor"))
    assert reloader.wait_until(lambda: angle(store, "brand-new") == "new-flavor", DEADLINE)
    # an empty directory is a flavor too (everything from default)
    (root / "empty").mkdir()
    assert reloader.wait_until(lambda: store.current.has("empty"), DEADLINE)
    assert angle(store, "empty") == "front"


def test_deleted_flavor_directory_is_removed(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    shutil.rmtree(root / "test")
    assert reloader.wait_until(lambda: not store.current.has("test"), DEADLINE)
    assert "test" not in store.current.statuses
    assert store.current.resolve("test").fallback  # unknown now: falls back to default


def test_broken_default_keeps_last_good(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    (root / "default" / "parameters.yaml").write_text("camera_angle: [unclosed\n")
    assert reloader.wait_until(lambda: status(store, "default") == "error", DEADLINE)
    assert angle(store, "default") == "front"
    assert store.current.get("parameters", "number_of_scenes", "other-unknown") == 4
    errors = [str(e) for e in store.current.errors()]
    assert any("default/parameters.yaml:" in e for e in errors), errors


def test_deleted_default_keeps_last_good(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    generation = store.current.generation
    shutil.rmtree(root / "default")
    assert reloader.wait_until(lambda: store.current.generation > generation, DEADLINE)
    assert angle(store, "default") == "front"
    assert store.current.statuses["default"].serving
    write(root / "default" / "parameters.yaml", params("default-is-back", 4))
    assert reloader.wait_until(lambda: angle(store, "default") == "default-is-back", DEADLINE)
    assert status(store, "default") == "ok"


# ---- validation errors, and what does not change ----------------------------------------------
def test_invalid_edit_keeps_old_value_then_fix_clears_error(
    reloader: Reloader, store: FlavorStore, root: Path
) -> None:
    target = root / "test" / "parameters.yaml"
    target.write_text('camera_angle: "broken-edit"\nnumber_of_scenes: 999\n')  # schema: 1..32
    assert reloader.wait_until(lambda: status(store) == "error", DEADLINE)
    assert angle(store) == "before"  # last good keeps serving
    issues = [i for i in store.current.statuses["test"].issues if i.severity == "error"]
    assert issues and all(i.file.endswith("test/parameters.yaml") for i in issues)
    assert any(i.line == 2 and "number_of_scenes" in i.path for i in issues), [str(i) for i in issues]
    assert "test/parameters.yaml:2:" in str(issues[0])
    wire = store.current.status_wire()
    assert wire["flavors"]["test"]["errors"][0]["line"] == 2

    broken_generation = store.current.generation
    target.write_text(params("fixed", 8))
    assert reloader.wait_until(lambda: status(store) == "ok", DEADLINE)
    assert angle(store) == "fixed"
    assert store.current.generation > broken_generation
    assert not store.current.errors()


def test_touch_or_identical_rewrite_does_not_bump_generation(
    reloader: Reloader, store: FlavorStore, root: Path
) -> None:
    target = root / "test" / "parameters.yaml"
    generation = store.current.generation
    attempts = reloader.stats.rebuilds
    os.utime(target)
    assert reloader.wait_for_rebuilds(attempts + 1, DEADLINE), "the touch was not noticed"
    target.write_text(target.read_text())  # same bytes, new mtime
    write(root / "test" / "flavor.yaml", "description: same\n")
    assert reloader.wait_until(
        lambda: status(store) == "ok" and store.current.statuses["test"].description == "same", DEADLINE
    )
    generation = store.current.generation
    attempts = reloader.stats.rebuilds
    (root / "test" / "flavor.yaml").write_text("description: same\n")
    assert reloader.wait_for_rebuilds(attempts + 1, DEADLINE)
    assert reloader.wait_idle(DEADLINE)
    assert store.current.generation == generation


def test_irrelevant_files_are_ignored(store: FlavorStore, root: Path) -> None:
    with _reloader(store, "inotify") as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        attempts = reloader.stats.rebuilds
        write(root / "test" / "notes.txt", "not a config")
        write(root / "test" / ".parameters.yaml.swp", "swap")
        write(root / "test" / "parameters.yaml~", "backup")
        write(root / ".git" / "objects" / "ab" / "cdef", "git object")
        write(root / "test" / "parameters.yaml", params("after-the-noise"))  # the barrier
        assert reloader.wait_until(lambda: angle(store) == "after-the-noise", DEADLINE)
        stats = reloader.stats
    assert stats.ignored_events >= 4
    assert stats.rebuilds - attempts <= 2  # only the YAML write (maybe split in two batches) rebuilt


# ---- debounce --------------------------------------------------------------------------------
def test_a_burst_of_writes_is_debounced(store: FlavorStore, root: Path, mode: str) -> None:
    with _reloader(store, mode, debounce_ms=50) as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        attempts = reloader.stats.rebuilds
        target = root / "test" / "parameters.yaml"
        for i in range(20):
            target.write_text(params(f"burst-{i}", 1 + i % 30))
        assert reloader.wait_until(lambda: angle(store) == "burst-19", DEADLINE)
        assert reloader.wait_idle(DEADLINE)
        rebuilds = reloader.stats.rebuilds - attempts
    assert 1 <= rebuilds <= 5, rebuilds


def test_continuous_writes_still_reload_within_max_wait(store: FlavorStore, root: Path) -> None:
    stop = threading.Event()
    target = root / "test" / "parameters.yaml"

    def keep_writing() -> None:
        i = 0
        while not stop.wait(0.01):  # never quiet for the 300 ms debounce window
            i += 1
            target.write_text(params(f"stream-{i}"))

    with _reloader(store, "inotify", debounce_ms=300, max_wait_ms=400) as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        attempts = reloader.stats.rebuilds
        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            reloaded = reloader.wait_until(
                lambda: reloader.stats.rebuilds > attempts and str(angle(store)).startswith("stream-"),
                DEADLINE,
            )
            still_writing = writer.is_alive()
        finally:
            stop.set()
            writer.join()
    assert reloaded and still_writing


# ---- roots that appear, disappear, or come from plugins ----------------------------------------
def test_missing_root_is_watched_until_it_appears(
    tmp_path: Path, make_store: Callable[..., FlavorStore], mode: str
) -> None:
    root = tmp_path / "not" / "yet" / "flavors"
    store = make_store(root)
    assert store.current.names() == ["default"]
    with _reloader(store, mode) as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        assert reloader.watched_paths() == [str(tmp_path)]
        write(root / "late" / "parameters.yaml", params("late-arrival"))
        assert reloader.wait_until(lambda: angle(store, "late") == "late-arrival", DEADLINE)
        # the root itself now, and the new flavor directory in it (flat: no deeper watch)
        assert reloader.wait_until(
            lambda: reloader.watched_paths() == [str(root), str(root / "late")], DEADLINE
        )
        (root / "late" / "parameters.yaml").write_text(params("edited-after-arrival"))
        assert reloader.wait_until(lambda: angle(store, "late") == "edited-after-arrival", DEADLINE)


def test_root_deleted_and_recreated(root: Path, store: FlavorStore, reloader: Reloader) -> None:
    shutil.rmtree(root)
    assert reloader.wait_until(lambda: not store.current.has("test"), DEADLINE)
    assert angle(store, "default") == "front"  # the last good default stays
    make_tree(root, {"test": params("second-life")})
    assert reloader.wait_until(lambda: angle(store, "test") == "second-life", DEADLINE)
    (root / "test" / "parameters.yaml").write_text(params("edited-in-second-life"))
    assert reloader.wait_until(lambda: angle(store, "test") == "edited-in-second-life", DEADLINE)


class _DirPlugin:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @hookimpl
    def mvcore_flavor_dirs(self) -> list[Path]:
        return [self.directory]


def test_plugin_flavor_dirs_are_watched(
    tmp_path: Path, root: Path, make_store: Callable[..., FlavorStore], mode: str
) -> None:
    plugin_dir = make_tree(tmp_path / "plugin_flavors", {"neon": params("neon-v1")})
    store = make_store(root, ("dirplugin", _DirPlugin(plugin_dir)))
    assert angle(store, "neon") == "neon-v1"
    with _reloader(store, mode) as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        assert str(plugin_dir) in reloader.watched_paths()
        (plugin_dir / "neon" / "parameters.yaml").write_text(params("neon-v2-edited"))
        assert reloader.wait_until(lambda: angle(store, "neon") == "neon-v2-edited", DEADLINE)
        write(plugin_dir / "glow" / "parameters.yaml", params("glow"))
        assert reloader.wait_until(lambda: angle(store, "glow") == "glow", DEADLINE)
    assert store.current.statuses["glow"].origin == "plugin:dirplugin"


def test_symlinked_root_is_watched_through_its_target(
    tmp_path: Path, root: Path, make_store: Callable[..., FlavorStore]
) -> None:
    link = tmp_path / "linked-flavors"
    os.symlink(root, link)
    store = make_store(link)
    with _reloader(store, "inotify") as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        write(root / "via-link" / "parameters.yaml", params("seen-through-link"))
        assert reloader.wait_until(lambda: angle(store, "via-link") == "seen-through-link", DEADLINE)
        (root / "test" / "parameters.yaml").write_text(params("edited-behind-link"))
        assert reloader.wait_until(lambda: angle(store) == "edited-behind-link", DEADLINE)


# ---- inotify trouble -------------------------------------------------------------------------
def _fail_inotify_add_watch(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make inotify_add_watch fail the way the kernel does when a limit is reached."""
    from watchdog.observers import inotify_c

    def add_watch(fd: int, path: bytes, mask: int) -> int:
        ctypes.set_errno(code)
        return -1

    monkeypatch.setattr(inotify_c, "inotify_add_watch", add_watch)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EMFILE])
def test_falls_back_to_polling_when_inotify_cannot_start(
    store: FlavorStore,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    code: int,
) -> None:
    _fail_inotify_add_watch(monkeypatch, code)
    with caplog.at_level(logging.WARNING, logger="mvcore"), _reloader(store, "auto") as reloader:
        assert reloader.mode == "poll"
        assert reloader.stats.fallback_reason is not None
        assert "limit reached" in reloader.stats.fallback_reason
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        (root / "test" / "parameters.yaml").write_text(params("picked-up-by-polling"))
        assert reloader.wait_until(lambda: angle(store) == "picked-up-by-polling", DEADLINE)
    warnings = [r for r in caplog.records if r.getMessage().startswith("flavor_watch_fallback")]
    assert warnings and warnings[0].levelno == logging.WARNING


def test_falls_back_to_polling_when_a_new_root_cannot_be_watched(
    tmp_path: Path, make_store: Callable[..., FlavorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "later"
    store = make_store(root)
    with _reloader(store, "inotify") as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        assert reloader.mode == "inotify"
        _fail_inotify_add_watch(monkeypatch, errno.ENOSPC)  # the limit is reached meanwhile
        write(root / "arrived" / "parameters.yaml", params("arrived-while-full"))
        assert reloader.wait_until(lambda: reloader.mode == "poll", DEADLINE)
        assert reloader.wait_until(lambda: angle(store, "arrived") == "arrived-while-full", DEADLINE)
        (root / "arrived" / "parameters.yaml").write_text(params("edited-under-polling"))
        assert reloader.wait_until(lambda: angle(store, "arrived") == "edited-under-polling", DEADLINE)


def test_inotify_queue_overflow_triggers_full_rescan(store: FlavorStore, root: Path, tmp_path: Path) -> None:
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

    # A hard link outside the watched tree: writes through it raise no event in the flavors dir,
    # like the events the kernel dropped when its queue overflowed.
    outside = tmp_path / "outside.yaml"
    os.link(root / "test" / "parameters.yaml", outside)
    with _reloader(store, "inotify") as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        with open(outside, "r+") as handle:
            handle.truncate(0)
            handle.write(params("changed-while-events-were-lost"))
        attempts = reloader.stats.rebuilds
        fd = reloader._watcher.fd  # type: ignore[union-attr]
        fd.handle_event(InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b""))
        assert reloader.wait_until(lambda: angle(store) == "changed-while-events-were-lost", DEADLINE)
        stats = reloader.stats
    assert stats.overflows == 1
    assert stats.rebuilds > attempts
    assert stats.last_reason == "inotify queue overflow"


def test_a_watch_that_cannot_start_leaves_the_store_serving(
    store: FlavorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mvcore.config.polling import PollingWatcher

    def unreadable(self: PollingWatcher) -> PollingWatcher:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(PollingWatcher, "start", unreadable)
    with Reloader(store, mode="poll") as reloader:
        assert reloader.mode == "off" and not reloader.running
        assert reloader.last_error is not None and "Permission denied" in reloader.last_error
    assert angle(store) == "before"


# ---- API surface -------------------------------------------------------------------------------
def test_watch_events_yields_reload_events(store: FlavorStore, root: Path) -> None:
    target = root / "test" / "parameters.yaml"
    target.write_text(params("before-watching"))  # seen by the start-up rescan
    events = watch_events(store, mode="inotify", debounce_ms=DEBOUNCE_MS, idle_timeout=DEADLINE)
    try:
        first = next(events)
        assert first.changed == ["test"] and first.generation == 2
        target.write_text(params("while-watching"))
        second = next(events)
        assert second.changed == ["test"] and second.generation == 3
        assert second.to_dict()["previous_generation"] == 2
    finally:
        events.close()
    assert angle(store) == "while-watching"


def test_mode_off_and_bad_modes(store: FlavorStore) -> None:
    with Reloader(store, mode="off") as reloader:
        assert reloader.mode == "off" and not reloader.running
        assert reloader.watched_paths() == []
    with pytest.raises(ValueError, match="watch mode"):
        Reloader(store, mode="fsevents")


def test_status_and_settings(store: FlavorStore) -> None:
    from mvcore.settings import Settings

    settings = Settings(watch="poll", debounce_ms=30)
    reloader = Reloader.from_settings(store, settings, poll_interval=POLL_INTERVAL)
    with reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        info = reloader.status()
    assert info["mode"] == "poll" and info["requested_mode"] == "poll"
    assert info["debounce_ms"] == 30 and info["max_wait_ms"] >= 300
    assert info["rebuilds"] >= 1 and info["last_duration_s"] is not None and info["last_error"] is None
    assert info["watched"] == [{"path": str(store.roots[0]), "role": "root"}]
    assert info["flavor_dirs_watched"] == 2  # default/ and test/
    assert info["watch"]["healthy"] is True and info["watch"]["mode"] == "poll"
    assert not reloader.running


def test_filesystem_type_from_mounts() -> None:
    mounts = (
        "/dev/vda / ext4 rw 0 0\nserver:/export /mnt/shared nfs4 rw 0 0\ndrvfs /mnt/my\\040docs 9p rw 0 0\n"
    )
    assert filesystem_type("/srv/flavors", mounts) == "ext4"
    assert filesystem_type("/mnt/shared/flavors", mounts) == "nfs4"
    assert filesystem_type("/mnt/shared", mounts) == "nfs4"
    assert filesystem_type("/mnt/sharedother", mounts) == "ext4"
    assert filesystem_type("/mnt/my docs/flavors", mounts) == "9p"
