"""The settle rule: when a changed flavor file may be published (no threads, no observers).

``SettleTracker`` holds the pending changes the observer reported and answers which flavors may be
rebuilt now (see ``reload.py`` for the rule in words).  The functions below look at the disk for
the reloader: whether a completed save left a file empty (a truncating writer), and whether a
build raced a writer (``unsettled_files``, ``changed_flavor_dirs``) so its swap must be refused.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from mvcore.config.snapshot import Snapshot
from mvcore.config.store import FlavorStore
from mvcore.config.watching import CONFIG_SUFFIXES, Change

GONE_GRACE_S = 0.1  # a deleted config file is published this long after (unless recreated)


@dataclass
class _PathState:
    first: float  # first change since the last publish
    ready_at: float  # when it may be published
    writing: bool  # a write is in progress (not a completed save)
    reason: str


@dataclass
class Batch:
    """What one rebuild covers: changed paths, or everything (``paths is None``)."""

    paths: set[str] | None
    reason: str
    first: float  # the oldest change it covers (monotonic): past max_wait nothing holds it back
    structure: bool = False  # the watched directories may have changed: re-sync before rescanning


@dataclass
class SettleTracker:
    """Pending changes and when each may be published (no I/O; guarded by the reloader's lock)."""

    settle_s: float
    max_wait_s: float
    grace_s: float = GONE_GRACE_S
    batch_s: float = 0.0
    paths: dict[str, _PathState] = field(default_factory=dict)
    full_since: float | None = None
    structure: bool = False
    full_reason: str = ""
    full_immediate: bool = False  # a requested rescan (start, overflow): not held back by writes

    def note(self, change: Change, path: str, now: float, *, emptied: bool = False) -> None:
        """Record one observation; ``emptied``: a completed save left a formerly non-empty file empty."""
        if change is Change.STRUCTURE:
            self.request_full(now, f"changed {os.path.basename(path) or path}", structure=True)
            return
        state = self.paths.get(path)
        if change is Change.TOUCHED and state is not None and state.writing:
            return  # chmod/touch in the middle of a write: the close is what counts
        writing = change is Change.WRITING or (change is Change.DONE and emptied)
        delay = self.settle_s if writing else self.grace_s if change is Change.GONE else self.batch_s
        first = state.first if state is not None else now
        ready_at = min(now + delay, first + self.max_wait_s)
        self.paths[path] = _PathState(first, ready_at, writing, f"{change} {os.path.basename(path)}")

    def request_full(
        self, now: float, reason: str, *, structure: bool = False, immediate: bool = False
    ) -> None:
        if self.full_since is None:
            self.full_since, self.full_reason = now, reason
        self.structure = self.structure or structure
        self.full_immediate = self.full_immediate or immediate

    @property
    def empty(self) -> bool:
        return not self.paths and self.full_since is None

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for path in self.paths:
            groups.setdefault(os.path.dirname(path), []).append(path)
        return groups

    def _full_due(self) -> float | None:
        if self.full_since is None:
            return None
        if self.full_immediate:
            return self.full_since
        writes = [s.ready_at for s in self.paths.values() if s.writing]
        return min(max([self.full_since + self.batch_s, *writes]), self.full_since + self.max_wait_s)

    def due(self) -> float | None:
        """The earliest moment something may be published (None when nothing is pending)."""
        times = [max(self.paths[p].ready_at for p in group) for group in self._groups().values()]
        full = self._full_due()
        if full is not None:
            times.append(full)
        return min(times) if times else None

    def take(self, now: float) -> Batch | None:
        """Remove and return what may be published now: every ready flavor, or everything."""
        full = self._full_due()
        if full is not None and full <= now:
            oldest = min([self.full_since or now, *(s.first for s in self.paths.values())])
            batch = Batch(None, self.full_reason, oldest, self.structure)
            # a deletion still in its grace stays pending: a rescan racing ``rm -r`` may have seen the
            # directory without its files, and the pending change makes the race check refuse that
            self.paths = {p: st for p, st in self.paths.items() if not st.writing and st.ready_at > now}
            self.full_since, self.structure, self.full_reason = None, False, ""
            self.full_immediate = False
            return batch
        ready: set[str] = set()
        reasons: list[str] = []
        for group in self._groups().values():
            if max(self.paths[p].ready_at for p in group) <= now:
                ready.update(group)
                reasons.extend(self.paths[p].reason for p in group)
        if not ready:
            return None
        oldest = min(self.paths[p].first for p in ready)
        for path in ready:
            del self.paths[path]
        shown = sorted(set(reasons))
        reason = ", ".join(shown[:3]) + (f" (+{len(shown) - 3})" if len(shown) > 3 else "")
        return Batch(ready, reason, first=oldest)

    def hold(self, path: str, now: float, *, first: float, until: float) -> None:
        """Put back a path whose rebuild was refused: it is retried at ``until`` (or when it changes)."""
        if path not in self.paths:
            ready_at = min(max(until, now), first + self.max_wait_s)
            self.paths[path] = _PathState(first, ready_at, True, f"held {os.path.basename(path)}")


def changed_flavor_dirs(old: Snapshot, new: Snapshot) -> list[tuple[str, str]]:
    """(name, absolute directory) of each directory flavor whose data or status differs."""
    out = []
    old_flavors, old_statuses, new_flavors = old.flavors, old.statuses, new.flavors
    for name, status in new.statuses.items():
        data = new_flavors.get(name)
        if old_flavors.get(name) is data:
            before = old_statuses.get(name)
            if before is status or before == status:  # identity first: carried-over flavors
                continue
        source = data.source if data is not None else None
        if source is None or source.directory is None:
            continue
        out.append((name, os.path.abspath(source.directory)))
    return out


def unsettled_files(
    store: FlavorStore, old: Snapshot, name: str, directory: str, settle_s: float, read_since_ns: int
) -> list[tuple[str, float]]:
    """Config files of a flavor that changed since they were read, or were emptied only just now,
    each with the monotonic time from which it may be retried."""
    found: list[tuple[str, float]] = []
    kept = old.flavors.get(name)
    had_values = {c.file for c in kept.configs.values() if c.file and c.data} if kept is not None else set()
    try:
        with os.scandir(directory) as listing:
            names = [e.name for e in listing if e.name.endswith(CONFIG_SUFFIXES)]
    except OSError:
        return found
    for entry_name in names:
        path = os.path.join(directory, entry_name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        cached = _cache_entry(store, path)
        if (
            cached is not None
            and cached.checked_ns >= read_since_ns  # read by this build ...
            and cached.signature != (st.st_mtime_ns, st.st_size, st.st_ino)  # ... and changed since
        ):
            found.append((path, 0.0))  # written again after the read: retry (its events follow)
        elif st.st_size == 0 and any(os.path.abspath(f) == path for f in had_values):
            age = time.time() - st.st_mtime_ns / 1e9
            if age < settle_s:
                found.append((path, time.monotonic() + settle_s - age))
    return found


def _cache_entry(store: FlavorStore, path: str) -> Any:
    """The store's parse-cache entry of an absolute ``path`` (keys are spelled under the configured root)."""
    entries = store.cache.entries
    for root in store.watch_roots():
        absolute = os.path.abspath(root)
        if path.startswith(absolute + os.sep):
            entry = entries.get(str(root) + path[len(absolute) :])
            if entry is not None:
                return entry
    return entries.get(path)


def emptied(store: FlavorStore, path: str) -> bool:
    """True when ``path`` is empty now but the store last read it non-empty (a truncating writer)."""
    try:
        if os.stat(path).st_size != 0:
            return False
    except OSError:
        return False
    entry = _cache_entry(store, path)
    return entry is not None and entry.signature[1] > 0
