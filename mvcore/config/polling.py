"""The polling observer: one thread lists every watched directory (flat) each interval.

Used for ``MVCORE_WATCH=poll``, network filesystems (where inotify misses remote changes) and when
inotify cannot start.  Polling cannot see a close, so a changed file is published only after a
second, identical observation ``confirm_s`` later (the settle rule's "two identical observations").
"""

from __future__ import annotations

import functools
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mvcore.config.watching import (
    CONFIG_SUFFIXES,
    CONFIGMAP_LINK,
    Change,
    Role,
    Sink,
    WatchSpec,
    classify,
    describe_error,
)

Signature = tuple[int, ...]


@dataclass
class _Pending:
    signature: Signature | None
    due: float


@dataclass
class PollingWatcher:
    """Lists every watched directory each ``interval``; a changed file is published when a second
    observation ``confirm_s`` later is identical (polling cannot see a close)."""

    sink: Sink
    interval: float
    confirm_s: float
    on_death: Callable[[], None]
    mode: str = "poll"
    error: str | None = None
    _specs: dict[str, WatchSpec] = field(default_factory=dict)
    _listings: dict[str, dict[str, Signature]] = field(default_factory=dict)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stopping: bool = False
    _last_cycle: float = field(default_factory=time.monotonic)
    _thread: threading.Thread | None = None

    def start(self) -> PollingWatcher:
        self._thread = threading.Thread(target=self._main, name="mvcore-poll", daemon=True)
        self._thread.start()
        return self

    def set_dirs(self, specs: Mapping[str, WatchSpec]) -> bool:
        with self._lock:
            if dict(specs) == self._specs:
                return False
            for path in list(self._listings):
                if specs.get(path) != self._specs.get(path):
                    del self._listings[path]
            self._specs = dict(specs)
            for path, spec in self._specs.items():  # the baseline: later listings are compared to it
                self._listings.setdefault(path, _listing(path, spec))
        return True

    def watched(self) -> dict[str, WatchSpec]:
        with self._lock:
            return dict(self._specs)

    def problem(self) -> str | None:
        if self._thread is None or not self._thread.is_alive():
            return self.error or "the polling thread is not running"
        late = time.monotonic() - self._last_cycle
        if late > max(10 * self.interval, 5.0):
            return f"the polling thread has not completed a cycle for {late:.1f} s"
        return None

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            next_scan = time.monotonic()
            while not self._stopping:
                now = time.monotonic()
                if now >= next_scan:
                    self._scan()
                    next_scan = now + self.interval
                self._confirm(time.monotonic())
                self._last_cycle = time.monotonic()
                due = min([next_scan, *(p.due for p in self._pending.values())])
                self._wake.wait(max(0.0, due - time.monotonic()))
        except BaseException as exc:
            self.error = describe_error(exc)
        finally:
            if not self._stopping:
                self.error = self.error or "the polling thread ended"
                self.on_death()

    def _scan(self) -> None:
        with self._lock:
            specs = dict(self._specs)
        for path, spec in specs.items():
            new = _listing(path, spec)
            with self._lock:
                if self._specs.get(path) != spec:
                    continue
                old = self._listings.get(path, {})
                self._listings[path] = new
            if new != old:
                self._diff(path, spec, old, new)

    def _diff(
        self, directory: str, spec: WatchSpec, old: dict[str, Signature], new: dict[str, Signature]
    ) -> None:
        for name in sorted(set(old) | set(new)):
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            op = "created" if before is None else "deleted" if after is None else "modified"
            sig = after or before
            assert sig is not None
            path = os.path.join(directory, name)
            change = classify(spec, name, op, is_dir=bool(sig[0]), is_link=functools.partial(bool, sig[1]))
            if change is Change.WRITING or (change is Change.DONE and op == "modified"):
                self._pending[path] = _Pending(after, time.monotonic() + self.confirm_s)
                change = Change.WRITING
            self.sink(change, path)

    def _confirm(self, now: float) -> None:
        for path, pending in list(self._pending.items()):
            if pending.due > now:
                continue
            current = _signature(path)
            if current == pending.signature:
                del self._pending[path]
                self.sink(Change.DONE, path)
            else:
                pending.signature, pending.due = current, now + self.confirm_s
                self.sink(Change.WRITING, path)


def _signature(path: str) -> Signature | None:
    """(is_dir, is_link, inode, size, mtime_ns) of the entry, following a symlink to its target."""
    try:
        link = os.lstat(path)
        st = os.stat(path) if stat_module.S_ISLNK(link.st_mode) else link
    except OSError:
        return None
    is_link = stat_module.S_ISLNK(link.st_mode)
    return (stat_module.S_ISDIR(st.st_mode), is_link, link.st_ino, st.st_ino, st.st_size, st.st_mtime_ns)


def _listing(directory: str, spec: WatchSpec) -> dict[str, Signature]:
    """What polling compares: the entries of ``directory`` that can matter for its role."""
    try:
        with os.scandir(directory) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    except OSError:
        return {}
    out: dict[str, Signature] = {}
    for name, is_dir in names:
        if spec.role is Role.PARENT and name not in spec.leads_to:
            continue
        if spec.role is Role.FLAVOR and not (
            is_dir or name == CONFIGMAP_LINK or name.endswith(CONFIG_SUFFIXES)
        ):
            continue
        if spec.role is Role.FLAVOR and is_dir and name.startswith(".."):
            continue
        if spec.role is not Role.FLAVOR or is_dir:
            sig: Signature | None = (1, 0, 0) if is_dir else (0, 0, 0)  # presence is what counts
        else:
            sig = _signature(os.path.join(directory, name))
        if sig is not None:
            out[name] = sig
    return out
