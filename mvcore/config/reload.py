"""Hot reload: publish completed saves at once, never a half-written file, and never die silently.

A ``Reloader`` wraps a ``FlavorStore``.  An observer (``watching.py``: inotify, or polling)
watches every root of ``store.watch_roots()`` and each flavor directory in them -- flat, never
recursive -- and reports each observation as a ``Change``.  The settle policy
(:class:`SettleTracker`) decides when the flavor a change belongs to may be rebuilt:

* a completed save -- close after write, rename into place, a ``..data`` symlink swap -- at once
  (after ``debounce_ms``, 0 by default, to batch a burst of saves);
* a file modified and not yet closed only once it is closed, or unchanged for ``settle_ms``, and
  at most ``max_wait_ms`` after its first change (a writer that never closes still reloads);
* a non-empty file that turns empty is a write in progress (``open(..., "w")`` truncates first)
  until it settles, even when it was closed;
* a deleted file after a short grace (editors rename the old file away, then write the new);
* flavors appearing or going (a change in a root) re-sync the watches and rescan everything,
  once no write is in progress anywhere.

A flavor with a write in progress is held back whole: the rebuild reads every file of a flavor,
so publishing it early would publish the unfinished file too.  Rebuilds run on one background
thread through ``store.rebuild(reason, changed_paths)`` (only the flavors involved are re-read);
an invalid flavor keeps serving its last good version (``snapshot.py``).

The same thread supervises the observer: a dead reader thread (it reports its death at once),
one stuck behind unread events, or a watch that cannot be added (the inotify limit) is replaced
-- by a new one, or by polling after repeated failures -- and the watch is re-synced with the
directories on disk every ``health_check_s``.  ``status()["watch"]`` says which observer is
used, whether it is healthy and its last error; ``stop()`` is bounded (SIGTERM exits fast).

Tests and the CLI wait with ``wait_until`` / ``wait_for_generation`` on a condition signalled
after every rebuild attempt: nothing sleeps hoping.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from mvcore import logs
from mvcore.config.polling import PollingWatcher
from mvcore.config.settle import Batch, SettleTracker, changed_flavor_dirs, emptied, unsettled_files
from mvcore.config.snapshot import Snapshot
from mvcore.config.store import FlavorStore, ReloadEvent
from mvcore.config.watching import (
    NETWORK_FILESYSTEMS,
    Change,
    InotifyWatcher,
    ReloadStats,
    Role,
    Watcher,
    describe_error,
    desired_watches,
    filesystem_type,
)

__all__ = ["MODES", "Reloader", "SettleTracker", "filesystem_type", "watch_events", "watch_status"]

MODES = ("auto", "inotify", "poll", "off")
DEFAULT_DEBOUNCE_MS = 0  # completed saves are rebuilt at once
DEFAULT_SETTLE_MS = 1000  # an unclosed write is published after this long unchanged ...
DEFAULT_MAX_WAIT_MS = 10_000  # ... and at the latest this long after its first change
DEFAULT_POLL_INTERVAL_S = 0.25
HEALTH_CHECK_S = 2.0
STUCK_S = 5.0  # an observer that makes no progress this long is replaced
RESTART_WINDOW_S = 60.0
MAX_RESTARTS = 3  # per window, before inotify gives way to polling
STOP_TIMEOUT_S = 1.0
MAX_WARNINGS = 20


@dataclass
class _Job:
    batch: Batch | None
    supervise: bool


class Reloader:
    """Watch ``store``'s roots and rebuild it when flavor files change.

    ``with Reloader(store, mode="auto") as reloader: ...`` or ``start()`` / ``stop()``.  ``mode``:
    ``auto`` (inotify, else polling), ``inotify``, ``poll`` or ``off`` (start does nothing).
    """

    def __init__(
        self,
        store: FlavorStore,
        *,
        mode: str = "auto",
        debounce_ms: float | None = None,
        settle_ms: float | None = None,
        max_wait_ms: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        health_check_s: float = HEALTH_CHECK_S,
        stuck_s: float = STUCK_S,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"watch mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.store = store
        self.requested_mode = mode
        self.debounce_s = max(0.0, (DEFAULT_DEBOUNCE_MS if debounce_ms is None else debounce_ms) / 1000)
        self.settle_s = max(0.0, (DEFAULT_SETTLE_MS if settle_ms is None else settle_ms) / 1000)
        max_wait = (DEFAULT_MAX_WAIT_MS if max_wait_ms is None else max_wait_ms) / 1000
        self.max_wait_s = max(self.settle_s, self.debounce_s, max_wait)
        self.poll_interval = poll_interval
        self.health_check_s = health_check_s
        self.stuck_s = stuck_s
        self._cond = threading.Condition(threading.RLock())
        self._lifecycle = threading.Lock()
        self._watcher: Watcher | None = None
        self._worker: threading.Thread | None = None
        self._stats = ReloadStats(requested_mode=mode)
        self._tracker = SettleTracker(self.settle_s, self.max_wait_s, batch_s=self.debounce_s)
        self._healthy = mode == "off"
        self._restarts_at: list[float] = []
        self._nested: dict[str, None] = {}
        self._check_now = False
        self._next_check = 0.0
        self._busy = False
        self._stopping = False
        self._build_started_ns = 0

    @classmethod
    def from_settings(cls, store: FlavorStore, settings: Any, **kwargs: Any) -> Reloader:
        """``MVCORE_WATCH``, ``MVCORE_DEBOUNCE_MS``, ``MVCORE_RELOAD_SETTLE_MS``,
        ``MVCORE_RELOAD_MAX_WAIT_MS`` and ``MVCORE_WATCH_POLL_MS``."""
        poll_ms = getattr(settings, "watch_poll_interval_ms", None)
        if poll_ms is not None:
            kwargs.setdefault("poll_interval", poll_ms / 1000)
        kwargs.setdefault("settle_ms", getattr(settings, "reload_settle_ms", None))
        kwargs.setdefault("max_wait_ms", getattr(settings, "reload_max_wait_ms", None))
        return cls(store, mode=settings.watch, debounce_ms=settings.debounce_ms, **kwargs)

    # ---- state -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """The observer actually in use: ``inotify``, ``poll`` or ``off``."""
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
        """The last rebuild exception, else the last observer failure (flavor errors are in the snapshot)."""
        return self._stats.last_error or self._stats.watch_error

    def watched_paths(self) -> list[str]:
        watcher = self._watcher
        return sorted(watcher.watched()) if watcher is not None else []

    def watch_health(self) -> dict[str, Any]:
        """``{"mode", "healthy", "last_error", ...}`` for ``GET /api/mv/flavors/status``."""
        with self._cond:
            stats = self._stats
            warnings = [
                f"{path}: directory inside a flavor ignored (flavors are flat)" for path in self._nested
            ]
            return {
                "mode": stats.mode,
                "requested": stats.requested_mode,
                "healthy": self._healthy,
                "last_error": stats.watch_error,
                "restarts": stats.restarts,
                "fallback_reason": stats.fallback_reason,
                "warnings": warnings[:MAX_WARNINGS]
                + ([f"... and {len(warnings) - MAX_WARNINGS} more"] if len(warnings) > MAX_WARNINGS else []),
            }

    def status(self) -> dict[str, Any]:
        """For a status endpoint: the stats, the observer's health, what is watched, the timing settings."""
        watcher = self._watcher
        watched = watcher.watched() if watcher is not None else {}
        return {
            **self.stats.to_dict(),
            "running": self.running,
            "watch": self.watch_health(),
            "watched": [
                {"path": path, "role": str(spec.role)}
                for path, spec in sorted(watched.items())
                if spec.role is not Role.FLAVOR
            ],
            "flavor_dirs_watched": sum(spec.role is Role.FLAVOR for spec in watched.values()),
            "debounce_ms": round(self.debounce_s * 1000, 3),
            "settle_ms": round(self.settle_s * 1000, 3),
            "max_wait_ms": round(self.max_wait_s * 1000, 3),
            "poll_interval_ms": round(self.poll_interval * 1000, 3),
        }

    # ---- lifecycle ---------------------------------------------------------------------------
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
            if not self._open_watcher(self._first_mode()):
                return self
            self._next_check = time.monotonic() + self.health_check_s
            self._worker = threading.Thread(target=self._run, name="mvcore-reload", daemon=True)
            self._worker.start()
        # whatever changed between the store's first load and the watch being in place
        self.request_rebuild("watch started", immediate=True)
        logs.event(
            "flavor_watch_started",
            logging.INFO,
            mode=self.mode,
            roots=_abs_roots(self.store),
            flavor_dirs=len(self.watched_paths()),
            settle_ms=round(self.settle_s * 1000, 3),
        )
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop watching; bounded by ``timeout`` (a rebuild still running is left to finish on its own)."""
        deadline = time.monotonic() + timeout
        with self._lifecycle:
            worker, self._worker = self._worker, None
            watcher, self._watcher = self._watcher, None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
        if watcher is not None:
            watcher.stop(max(0.05, deadline - time.monotonic()))
            logs.event("flavor_watch_stopped", logging.INFO, mode=self.mode)

    def __enter__(self) -> Reloader:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- waiting (tests, CLI) ----------------------------------------------------------------
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
        """Wait until no change is pending and no rebuild is running (events not yet delivered excepted)."""
        return self.wait_until(lambda: self._tracker.empty and not self._busy, timeout)

    def request_rebuild(self, reason: str = "requested", *, immediate: bool = False) -> None:
        """Schedule a full rescan (as soon as no write is in progress; ``immediate``: at once)."""
        with self._cond:
            now = time.monotonic()
            self._tracker.request_full(now, reason, immediate=immediate)
            self._cond.notify_all()

    # ---- observers and their supervision -------------------------------------------------------
    def _first_mode(self) -> str:
        if self.requested_mode == "auto":
            for root in _abs_roots(self.store):
                fstype = filesystem_type(root)
                if fstype in NETWORK_FILESYSTEMS:
                    self._fall_back(
                        f"{root} is on a {fstype} filesystem, where inotify misses remote changes"
                    )
                    return "poll"
        return "poll" if self.requested_mode == "poll" else "inotify"

    def _open_watcher(self, mode: str) -> bool:
        """Start an observer of ``mode`` (inotify falls back to polling); False when none could start."""
        if mode == "inotify":
            try:
                self._install(self._new_watcher("inotify"))
                return True
            except (OSError, ImportError, RuntimeError) as exc:
                self._fall_back(f"inotify could not start: {describe_error(exc)}")
        try:
            self._install(self._new_watcher("poll"))
            return True
        except Exception as exc:  # a server must still start: it serves what it loaded
            error = describe_error(exc)
            self._watcher, self._healthy = None, False
            self._stats.mode, self._stats.watch_error = "off", error
            logs.event("flavor_watch_failed", logging.ERROR, error=error, action="not watching")
            return False

    def _new_watcher(self, mode: str) -> Watcher:
        if mode == "inotify":
            return InotifyWatcher(
                self._on_change, on_overflow=self._on_overflow, on_death=self._on_death, stuck_s=self.stuck_s
            )
        confirm = min(max(0.005, self.poll_interval / 4), max(0.005, self.settle_s))
        return PollingWatcher(self._on_change, self.poll_interval, confirm, self._on_death).start()

    def _install(self, watcher: Watcher) -> None:
        try:
            watcher.set_dirs(desired_watches(_abs_roots(self.store)))
        except BaseException:
            watcher.stop(0.5)
            raise
        self._watcher, self._healthy = watcher, True
        self._stats.mode = watcher.mode

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

    def _supervise(self) -> bool:
        """Check the observer and re-sync its watches; True when events may have been missed."""
        watcher = self._watcher
        if watcher is None:
            return False
        for path in [p for p in self._nested if not os.path.isdir(p)]:
            del self._nested[path]
        problem = watcher.problem()
        if problem is not None:
            return self._replace(watcher, problem, to_poll=False)
        try:
            return watcher.set_dirs(desired_watches(_abs_roots(self.store)))
        except OSError as exc:  # the inotify watch limit reached meanwhile
            return self._replace(
                watcher, f"inotify could not add a watch: {describe_error(exc)}", to_poll=True
            )

    def _replace(self, old: Watcher, problem: str, *, to_poll: bool) -> bool:
        now = time.monotonic()
        self._restarts_at = [t for t in self._restarts_at if now - t < RESTART_WINDOW_S] + [now]
        with self._cond:
            self._healthy = False
            self._stats.watch_error = problem
            self._stats.restarts += 1
        logs.event(
            "flavor_watch_unhealthy", logging.ERROR, mode=old.mode, problem=problem, action="replacing"
        )
        old.stop(0.5)  # a stuck thread is abandoned (daemon); its events are ignored from now on
        mode = old.mode
        if mode == "inotify" and (to_poll or len(self._restarts_at) > MAX_RESTARTS):
            self._fall_back(problem)
            mode = "poll"
        with self._lifecycle:
            if self._stopping or self._watcher is not old:
                return False
            self._open_watcher(mode)
        return True

    def _on_death(self) -> None:
        with self._cond:
            self._healthy = False
            self._check_now = True
            self._cond.notify_all()

    def _on_overflow(self) -> None:
        with self._cond:
            self._stats.overflows += 1
            self._tracker.request_full(time.monotonic(), "inotify queue overflow", immediate=True)
            self._cond.notify_all()
        logs.event("flavor_watch_overflow", logging.WARNING, action="full rescan")

    # ---- observations ---------------------------------------------------------------------------
    def _on_change(self, change: Change, path: str) -> None:
        """Called on the observer's thread for every observation."""
        if change is Change.NESTED:
            self._note_nested(path)
        if change in (Change.IGNORED, Change.NESTED):
            with self._cond:
                self._stats.ignored_events += 1
            return
        is_emptied = change is Change.DONE and emptied(self.store, path)
        with self._cond:
            self._tracker.note(change, path, time.monotonic(), emptied=is_emptied)
            self._stats.events += 1
            self._cond.notify_all()

    def _note_nested(self, path: str) -> None:
        with self._cond:
            if path in self._nested or len(self._nested) >= 10 * MAX_WARNINGS:
                return
            self._nested[path] = None
            count = len(self._nested)
        if count <= MAX_WARNINGS:
            logs.event("flavor_nested_dir_ignored", logging.WARNING, path=path, why="flavors are flat")

    # ---- the rebuild thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            self._work(job)

    def _next_job(self) -> _Job | None:
        """Wait until something may be published or the observer is due a check; None on stop."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                supervise = self._check_now or (self.health_check_s > 0 and now >= self._next_check)
                batch = self._tracker.take(now)
                if supervise or batch is not None:
                    if supervise:
                        self._check_now, self._next_check = False, now + self.health_check_s
                        if batch is None and self._stats.last_error is not None:
                            batch = Batch(None, "retry after a failed reload", first=now)
                    self._busy = True
                    return _Job(batch, supervise)
                due = self._tracker.due()
                waits = [due - now if due is not None else 3600.0]
                if self.health_check_s > 0:
                    waits.append(self._next_check - now)
                self._cond.wait(max(0.0, min(waits)))
            return None

    def _work(self, job: _Job) -> None:
        try:
            missed = self._supervise() if job.supervise else False
            batch = job.batch
            if batch is not None and batch.structure and not job.supervise:
                missed = self._supervise() or missed  # watch new flavor dirs before reading them
            if missed:
                if batch is None:
                    batch = Batch(None, "watched directories changed", first=time.monotonic())
                batch = Batch(None, batch.reason, first=batch.first)
            if batch is not None:
                self._rebuild(batch)
        except Exception as exc:  # the reload thread must survive anything
            logs.event("flavor_watch_failed", logging.ERROR, error=describe_error(exc))
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _rebuild(self, batch: Batch) -> None:
        started = time.perf_counter()
        event: ReloadEvent | None = None
        error: str | None = None
        reason, paths = batch.reason, batch.paths
        self._build_started_ns = time.time_ns()
        try:
            event = self.store.rebuild(
                reason=reason,
                changed_paths=None if paths is None else sorted(paths),
                accept=lambda old, new: self._accept(batch, old, new),
            )
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

    def _accept(self, batch: Batch, old: Snapshot, new: Snapshot) -> bool:
        """Refuse a build that may hold a file caught mid-write (the store then keeps ``old``).

        Between the event that triggered a rebuild and the read, a writer may have started again
        (``open(..., "w")`` truncates first).  Refused when, for a flavor whose content changed:
        an event for it arrived meanwhile, a file changed after it was read, or a file that held
        values is empty and younger than the settle window.  Past ``max_wait`` a build is taken.
        """
        now = time.monotonic()
        if now - batch.first >= self.max_wait_s:
            return True
        changed = changed_flavor_dirs(old, new)
        if not changed:
            return True
        if self._newer_change(changed):
            return False  # cheap first: a newer change is already queued (no need to drain)
        watcher = self._watcher
        if isinstance(watcher, InotifyWatcher):
            watcher.drain(0.05)  # let events already queued in the kernel reach the tracker
            if self._newer_change(changed):
                return False
        held: dict[str, float] = {}
        for name, directory in changed:
            unsettled = unsettled_files(
                self.store, old, name, directory, self.settle_s, self._build_started_ns
            )
            for path, until in unsettled:
                held[path] = until
        if not held:
            return True
        with self._cond:
            for path, until in held.items():
                self._tracker.hold(path, time.monotonic(), first=batch.first, until=until)
            self._cond.notify_all()
        return False

    def _newer_change(self, changed: list[tuple[str, str]]) -> bool:
        """True when a change for one of these flavor directories is queued: it rebuilds them at once."""
        with self._cond:
            pending = {os.path.dirname(p) for p in self._tracker.paths}
        return any(directory in pending for _, directory in changed)


def watch_status(reloader: Reloader | None) -> dict[str, Any]:
    """The ``watch`` object of the status endpoint, also when nothing watches."""
    if reloader is None:
        return {"mode": "off", "requested": "off", "healthy": True, "last_error": None, "restarts": 0,
                "fallback_reason": None, "warnings": []}  # fmt: skip
    return reloader.watch_health()


# ---- for `mvcore flavors watch` ------------------------------------------------------------------
def watch_events(
    store: FlavorStore,
    mode: str = "auto",
    debounce_ms: float | None = None,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    idle_timeout: float | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> Iterator[ReloadEvent]:
    """Yield each ``ReloadEvent`` as flavor files change, until closed (or ``stop`` is set, or
    ``idle_timeout`` seconds pass without one).  Watching starts on the first ``next()``::

        for event in watch_events(store, mode=settings.watch):
            click.echo(json.dumps(event.to_dict()))
    """
    events: queue.Queue[ReloadEvent] = queue.Queue()
    unsubscribe = store.subscribe(events.put)
    try:
        with Reloader(store, mode=mode, debounce_ms=debounce_ms, poll_interval=poll_interval, **kwargs):
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


# ---- helpers -------------------------------------------------------------------------------------
def _abs_roots(store: FlavorStore) -> list[str]:
    seen: dict[str, None] = {}
    for root in store.watch_roots():
        seen.setdefault(os.path.abspath(root), None)
    return list(seen)
