"""Hot reload: watch every flavor root, debounce, rebuild on one thread, swap atomically.

A ``Reloader`` wraps a ``FlavorStore``.  A watchdog observer watches every
root of ``store.watch_roots()`` (the flavor directories and the directories
plugins contribute) recursively; a root that does not exist yet is covered
by a watch on its nearest existing parent, so creating it later is seen.
Relevant events (YAML files, directories, symlinks, and the ``..data``
entries of a Kubernetes ConfigMap volume) are debounced on the trailing
edge -- one rebuild once the events have been quiet for ``debounce_ms``,
but never later than ``max_wait_ms`` after the first one, so a file that is
rewritten continuously still reloads -- and the rebuild runs on one
background thread through ``store.rebuild(reason, changed_paths)``: only the
flavors the events touched are re-read, validated and re-resolved, and the
new snapshot is published with one reference assignment.  A flavor whose
new files are invalid keeps serving its last good version (``snapshot.py``);
``mvcore_on_reload`` and the store's listeners are notified by the store.

Observers: inotify on Linux (the platform's native observer elsewhere);
``PollingObserver`` when the mode is ``poll``, when a root lives on a
network filesystem whose remote changes inotify never reports (mode
``auto``), or when inotify cannot start (watch or instance limit reached):
the fallback is logged as a warning and ``Reloader.mode`` says what is used.
An inotify queue overflow (events were lost) triggers a full rescan.

The CLI and tests use ``watch_events()`` or ``Reloader`` with
``wait_until`` / ``wait_for_generation``, which wait on a condition that is
signalled after every rebuild attempt: nothing sleeps hoping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from watchdog.events import (
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from mvcore import logs
from mvcore.config.discovery import is_ignored
from mvcore.config.store import FlavorStore, ReloadEvent
from mvcore.config.watching import (
    EVENT_FILTER,
    NETWORK_FILESYSTEMS,
    ReloadStats,
    Watch,
    close_observer,
    describe_error,
    filesystem_type,
    inotify_observer_class,
    nearest_existing_dir,
    path_identity,
)

MODES = ("auto", "inotify", "poll", "off")
DEFAULT_DEBOUNCE_MS = 50
DEFAULT_POLL_INTERVAL_S = 0.25
HEALTH_CHECK_S = 2.0
_CONFIG_SUFFIXES = (".yaml", ".yml")


class _Handler(FileSystemEventHandler):
    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader

    def dispatch(self, event: FileSystemEvent) -> None:
        self._reloader._on_fs_event(event)


class Reloader:
    """Watch ``store``'s roots and rebuild it when flavor files change.

    ``with Reloader(store, mode="auto", debounce_ms=50) as reloader: ...`` or
    ``start()`` / ``stop()``.  ``mode``: ``auto`` (inotify, else polling),
    ``inotify``, ``poll`` or ``off`` (start does nothing).
    """

    def __init__(
        self,
        store: FlavorStore,
        *,
        mode: str = "auto",
        debounce_ms: float | None = None,
        max_wait_ms: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        health_check_s: float = HEALTH_CHECK_S,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"watch mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.store = store
        self.requested_mode = mode
        self.debounce_s = max(0.0, (DEFAULT_DEBOUNCE_MS if debounce_ms is None else debounce_ms) / 1000)
        default_max_wait = max(0.5, 10 * self.debounce_s)
        max_wait_s = default_max_wait if max_wait_ms is None else max_wait_ms / 1000
        self.max_wait_s = max(self.debounce_s, max_wait_s)
        self.poll_interval = poll_interval
        self.health_check_s = health_check_s
        self._cond = threading.Condition(threading.RLock())
        self._lifecycle = threading.Lock()
        self._handler = _Handler(self)
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None
        self._watches: dict[str, Watch] = {}
        self._roots: tuple[str, ...] = ()
        self._stats = ReloadStats(requested_mode=mode)
        # the pending batch (guarded by _cond)
        self._paths: set[str] = set()
        self._full = False
        self._resync = False
        self._immediate = False
        self._reason = ""
        self._first_at: float | None = None
        self._last_at = 0.0
        self._busy = False
        self._stopping = False

    @classmethod
    def from_settings(cls, store: FlavorStore, settings: Any, **kwargs: Any) -> Reloader:
        """``MVCORE_WATCH`` and ``MVCORE_DEBOUNCE_MS``."""
        return cls(store, mode=settings.watch, debounce_ms=settings.debounce_ms, **kwargs)

    # ---- state -------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """The observer actually in use: ``inotify``, ``poll`` or ``off`` (a native name off Linux)."""
        return self._stats.mode

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def stats(self) -> ReloadStats:
        with self._cond:
            return dataclasses.replace(self._stats)

    @property
    def last_error(self) -> str | None:
        """The exception raised by the last rebuild attempt (validation errors are in the snapshot)."""
        return self._stats.last_error

    def watched_paths(self) -> list[str]:
        return sorted(self._watches)

    def status(self) -> dict[str, Any]:
        """For a status endpoint: the stats plus the watched paths and the timing settings."""
        return {
            **self.stats.to_dict(),
            "running": self.running,
            "watched": [
                {"path": w.alias, "watching": target, "recursive": w.recursive}
                for target, w in sorted(self._watches.items())
            ],
            "debounce_ms": round(self.debounce_s * 1000, 3),
            "max_wait_ms": round(self.max_wait_s * 1000, 3),
        }

    # ---- lifecycle ---------------------------------------------------------------
    def start(self) -> Reloader:
        with self._lifecycle:
            if self._worker is not None:
                return self
            with self._cond:
                self._stopping = False
            if self.requested_mode == "off":
                self._stats.mode = "off"
                logs.event("flavor_watch_off", logging.INFO)
                return self
            try:
                self._open_observer()
            except Exception as exc:  # a server must still start: it serves what it loaded
                error = describe_error(exc)
                self._observer, self._watches = None, {}
                self._stats.mode, self._stats.last_error = "off", error
                logs.event("flavor_watch_failed", logging.ERROR, error=error, action="not watching")
                return self
            self._worker = threading.Thread(target=self._run, name="mvcore-reload", daemon=True)
            self._worker.start()
        # whatever changed between the store's first load and the watch being in place
        self._enqueue(None, reason="watch started")
        logs.event(
            "flavor_watch_started",
            logging.INFO,
            mode=self.mode,
            roots=list(self._roots),
            debounce_ms=round(self.debounce_s * 1000, 3),
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with self._lifecycle:
            worker, self._worker = self._worker, None
            observer, self._observer = self._observer, None
            self._watches = {}
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if worker is not None:
            worker.join(timeout)
        if observer is not None:
            close_observer(observer, timeout)
            logs.event("flavor_watch_stopped", logging.INFO, mode=self.mode)

    def __enter__(self) -> Reloader:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- waiting (tests, CLI) -------------------------------------------------------
    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """True once ``predicate()`` holds (re-checked after each rebuild attempt); False at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # also re-check now and then: the predicate may depend on a rebuild made by someone else
                self._cond.wait(min(remaining, 0.05))

    def wait_for_generation(self, generation: int, timeout: float = 5.0) -> bool:
        return self.wait_until(lambda: self.store.current.generation >= generation, timeout)

    def wait_for_rebuilds(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``stats.rebuilds >= count`` (attempts, whether or not they changed anything)."""
        return self.wait_until(lambda: self._stats.rebuilds >= count, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no event is pending and no rebuild is running (events not yet delivered excepted)."""
        return self.wait_until(lambda: self._first_at is None and not self._busy, timeout)

    def request_rebuild(self, reason: str = "requested", *, immediate: bool = False) -> None:
        """Schedule a full rescan through the debouncer (or at once with ``immediate``)."""
        self._enqueue(None, reason=reason, immediate=immediate)

    # ---- observers -------------------------------------------------------------------
    def _open_observer(self) -> None:
        wanted = self.requested_mode
        if wanted == "auto":
            reason = self._network_roots()
            if reason is not None:
                self._fall_back(reason)
                wanted = "poll"
        if wanted != "poll":
            observer: BaseObserver | None = None
            try:
                observer, name = self._native_observer(wanted)
                self._observer = observer
                self._sync_watches()
                observer.start()
                self._stats.mode = name
                return
            except (OSError, ImportError, RuntimeError) as exc:
                if observer is not None:
                    close_observer(observer, 5.0)
                self._observer, self._watches = None, {}
                self._fall_back(f"{wanted} observer could not start: {describe_error(exc)}")
        self._start_polling()

    def _native_observer(self, wanted: str) -> tuple[BaseObserver, str]:
        inotify = inotify_observer_class()
        if inotify is not None:
            return inotify(self._on_overflow), "inotify"
        if wanted == "inotify":
            raise ImportError("inotify is not available on this platform")
        from watchdog.observers import Observer

        observer = Observer()
        if isinstance(observer, PollingObserver):
            close_observer(observer, 1.0)
            raise ImportError("no native observer on this platform")
        return observer, type(observer).__name__.replace("Observer", "").lower() or "native"

    def _start_polling(self) -> None:
        observer = PollingObserver(timeout=self.poll_interval)
        self._observer = observer
        self._watches = {}
        self._sync_watches()
        observer.start()
        self._stats.mode = "poll"

    def _fall_back(self, reason: str) -> None:
        self._stats.fallback_reason = reason
        logs.event(
            "flavor_watch_fallback",
            logging.WARNING,
            requested=self.requested_mode,
            using="poll",
            reason=reason,
            poll_interval_s=self.poll_interval,
        )

    def _network_roots(self) -> str | None:
        for root in _abs_roots(self.store):
            fstype = filesystem_type(root)
            if fstype in NETWORK_FILESYSTEMS:
                return f"{root} is on a {fstype} filesystem, where inotify misses remote changes"
        return None

    def _sync_watches(self) -> bool:
        """Make the scheduled watches match the roots as they are now; True when something changed.

        An existing root is watched recursively (through its real path, since inotify does
        not follow a symlinked root); a missing one through its nearest existing parent,
        non-recursively.  A watch whose directory was replaced, or whose emitter stopped
        (the directory was deleted), is scheduled again.  Runs under ``_lifecycle``.
        """
        observer = self._observer
        if observer is None:
            return False
        roots = tuple(_abs_roots(self.store))
        desired: dict[str, tuple[bool, str]] = {}
        for root in roots:
            if os.path.isdir(root):
                target, recursive, alias = os.path.realpath(root), True, root
            else:
                alias = nearest_existing_dir(root)
                target, recursive = os.path.realpath(alias), False
            known = desired.get(target)
            if known is None or (recursive and not known[0]):
                desired[target] = (recursive, alias)
        live = {e.watch for e in observer.emitters if e.is_alive()} if observer.is_alive() else None
        watches = dict(self._watches)
        changed = roots != self._roots
        for target, current in list(watches.items()):
            want = desired.get(target)
            if (
                want is None
                or want != (current.recursive, current.alias)
                or path_identity(target) != current.ident
                or (live is not None and current.watch not in live)
            ):
                with contextlib.suppress(KeyError, RuntimeError, OSError):
                    observer.unschedule(current.watch)
                del watches[target]
                changed = True
        try:
            for target, (recursive, alias) in desired.items():
                if target in watches:
                    continue
                ident = path_identity(target)
                watch = observer.schedule(
                    self._handler, target, recursive=recursive, event_filter=EVENT_FILTER
                )
                watches[target] = Watch(watch, alias, recursive, ident)
                changed = True
        finally:
            self._watches = watches
            self._roots = roots
        return changed

    def _maintain(self) -> bool:
        """Re-sync the watches; on a failure to add one under inotify, switch to polling."""
        with self._lifecycle:
            if self._observer is None:
                return False
            try:
                return self._sync_watches()
            except OSError as exc:
                if isinstance(self._observer, PollingObserver):
                    raise
                old = self._observer
                self._fall_back(f"inotify could not add a watch: {describe_error(exc)}")
                self._start_polling()
        close_observer(old, 5.0)
        return True

    def _on_overflow(self) -> None:
        with self._cond:
            self._stats.overflows += 1
        logs.event("flavor_watch_overflow", logging.WARNING, action="full rescan")
        self._enqueue(None, reason="inotify queue overflow", resync=True, immediate=True)

    # ---- events ----------------------------------------------------------------------
    def _on_fs_event(self, event: FileSystemEvent) -> None:
        raw = [event.src_path]
        if event.event_type == "moved" and event.dest_path:
            raw.append(event.dest_path)
        paths: list[str] = []
        at_root = False
        for item in raw:
            path = self._translate(os.fsdecode(item))
            kind = self._classify(path, event.is_directory)
            if kind is None:
                continue
            paths.append(path)
            at_root = at_root or kind == "root"
        if not paths:
            with self._cond:
                self._stats.ignored_events += 1
            return
        name = os.path.basename(paths[-1]) or paths[-1]
        reason = f"{event.event_type} {name}"
        if at_root:
            self._enqueue(None, reason=reason, resync=True, counted=True)
        else:
            self._enqueue(paths, reason=reason, counted=True)

    def _translate(self, path: str) -> str:
        """A path under a watched real directory, spelled under the configured root it stands for."""
        for target, watch in self._watches.items():
            if target != watch.alias and (path == target or path.startswith(target + os.sep)):
                return watch.alias + path[len(target) :]
        return path

    def _classify(self, path: str, is_directory: bool) -> str | None:
        """``root`` (a root, or a directory on the way to one), ``file`` (inside a root) or None."""
        parts: list[str] | None = None
        for root in self._roots:
            if path == root or root.startswith(path + os.sep):
                return "root"
            if path.startswith(root + os.sep):
                parts = path[len(root) + 1 :].split(os.sep)
                break
        if not parts:
            return None
        for part in parts[:-1]:
            if part.startswith(".") and not part.startswith(".."):
                return None  # .git/, .cache/ ...: never read
        base = parts[-1]
        if base.startswith(".."):
            return "file"  # Kubernetes' atomic writer: ..data, ..data_tmp, ..2024_01_01_...
        if is_ignored(base):
            return None  # editor swap/backup files, hidden files
        if len(parts) == 1 or is_directory or base.endswith(_CONFIG_SUFFIXES):
            return "file"
        return "file" if os.path.islink(path) else None  # a swapped symlink a YAML file points through

    def _enqueue(
        self,
        paths: list[str] | None,
        *,
        reason: str,
        resync: bool = False,
        immediate: bool = False,
        counted: bool = False,
    ) -> None:
        with self._cond:
            now = time.monotonic()
            if self._first_at is None:
                self._first_at = now
                self._reason = reason
            self._last_at = now
            if paths is None:
                self._full = True
            else:
                self._paths.update(paths)
            self._resync = self._resync or resync
            self._immediate = self._immediate or immediate
            if counted:
                self._stats.events += 1
            self._cond.notify_all()

    # ---- the rebuild thread ------------------------------------------------------------
    def _run(self) -> None:
        next_check = time.monotonic() + self.health_check_s
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if self._first_at is not None:
                        due = (
                            now
                            if self._immediate
                            else min(self._last_at + self.debounce_s, self._first_at + self.max_wait_s)
                        )
                        if now >= due:
                            break
                        wait = due - now
                    else:
                        wait = self.health_check_s
                    if self.health_check_s > 0:
                        if now >= next_check:
                            break
                        wait = min(wait, next_check - now)
                    self._cond.wait(wait)
                pending = self._first_at is not None
                paths, full, resync, reason = self._paths, self._full, self._resync, self._reason
                self._paths, self._full, self._resync, self._immediate = set(), False, False, False
                self._first_at = None
                self._busy = True
                retry = self._stats.last_error is not None
            try:
                if self.health_check_s > 0 and time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.health_check_s
                    resync = True
                    if retry and not pending:
                        pending, full, reason = True, True, "retry after a failed reload"
                if resync and self._maintain():
                    pending, full = True, True
                    reason = reason or "watched directories changed"
                if pending:
                    self._rebuild(reason, None if full else paths)
            except Exception as exc:  # the reload thread must survive anything
                logs.event("flavor_watch_failed", logging.ERROR, error=describe_error(exc))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _rebuild(self, reason: str, paths: set[str] | None) -> None:
        started = time.perf_counter()
        event: ReloadEvent | None = None
        error: str | None = None
        try:
            event = self.store.rebuild(reason=reason, changed_paths=None if paths is None else sorted(paths))
        except Exception as exc:  # a broken rebuild keeps the last snapshot
            error = describe_error(exc)
            logs.event("flavor_reload_failed", logging.ERROR, reason=reason, error=error)
        duration = time.perf_counter() - started
        with self._cond:
            stats = self._stats
            stats.rebuilds += 1
            stats.swaps += event is not None
            stats.failures += error is not None
            stats.last_reason = reason
            stats.last_duration_s = duration
            stats.last_rebuild_at = time.time()
            stats.last_error = error
            self._cond.notify_all()


# ---- for `mvcore flavors watch` ------------------------------------------------------------
def watch_events(
    store: FlavorStore,
    mode: str = "auto",
    debounce_ms: float | None = None,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    idle_timeout: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[ReloadEvent]:
    """Yield each ``ReloadEvent`` as flavor files change, until closed (or ``stop`` is set, or
    ``idle_timeout`` seconds pass without one).  Watching starts on the first ``next()``::

        for event in watch_events(store, mode=settings.watch, debounce_ms=settings.debounce_ms):
            click.echo(json.dumps(event.to_dict()))
    """
    events: queue.Queue[ReloadEvent] = queue.Queue()
    unsubscribe = store.subscribe(events.put)
    try:
        with Reloader(store, mode=mode, debounce_ms=debounce_ms, poll_interval=poll_interval):
            last = time.monotonic()
            while stop is None or not stop.is_set():
                try:
                    event = events.get(timeout=0.1)
                except queue.Empty:
                    if idle_timeout is not None and time.monotonic() - last >= idle_timeout:
                        return
                    continue
                last = time.monotonic()
                yield event
    finally:
        unsubscribe()


# ---- helpers ---------------------------------------------------------------------------------
def _abs_roots(store: FlavorStore) -> list[str]:
    seen: dict[str, None] = {}
    for root in store.watch_roots():
        seen.setdefault(os.path.abspath(root), None)
    return list(seen)
