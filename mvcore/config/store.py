"""The live flavor state: one current snapshot, rebuilt and swapped atomically.

``FlavorStore`` owns the parse cache and the plugin contributions, and is the
only writer of ``current``: a rebuild builds a whole new snapshot aside and
publishes it with one reference assignment, so readers never see half of
one generation and half of the next.  A request *pins* the snapshot it
started with (``pin()``), and keeps using it to the end.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mvcore import logs
from mvcore.config.discovery import Discovery, discover
from mvcore.config.loading import ParseCache
from mvcore.config.model_checks import ModelCheckMemo, catalogue_for, with_model_issues
from mvcore.config.plugins import Contributions, PluginHost
from mvcore.config.snapshot import Snapshot, build_snapshot


@dataclass(frozen=True)
class ReloadEvent:
    generation: int
    previous_generation: int
    changed: list[str]
    added: list[str]
    removed: list[str]
    errors: list[dict[str, Any]]
    duration_s: float
    reason: str = ""
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "previous_generation": self.previous_generation,
            "changed": self.changed,
            "added": self.added,
            "removed": self.removed,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 6),
            "reason": self.reason,
            "at": self.at,
        }


class StoreSettings(Protocol):
    """What a store reads from an application's settings (``mvcore.settings.Settings`` has it all).

    A protocol, not the mv app's Settings class, so that any app can hand the framework its own.
    """

    @property
    def flavors_dirs(self) -> Sequence[Path]: ...
    @property
    def plugins(self) -> Sequence[str] | None: ...
    @property
    def disable_plugins(self) -> Sequence[str]: ...
    @property
    def strict_flavor(self) -> bool: ...


class FlavorStore:
    def __init__(self, roots: list[Path], host: PluginHost | None = None, *, strict: bool = False) -> None:
        self.roots = [Path(r) for r in roots]
        self.host = host or PluginHost()
        self.strict = strict
        self.cache = ParseCache()
        self._lock = threading.Lock()
        # One pin per store: pinning one store must not pin another (tests run several).
        self._pinned: contextvars.ContextVar[Snapshot | None] = contextvars.ContextVar(
            f"mvcore_snapshot_{id(self)}", default=None
        )
        self._listeners: list[Callable[[ReloadEvent], None]] = []
        self._discovery: tuple[Contributions, Discovery] | None = None
        self._model_checks = ModelCheckMemo()
        self._current: Snapshot = self._build(None)
        logs.debug_event("config_flavors_discovered", flavors=self._current.names())

    @classmethod
    def from_settings(cls, settings: StoreSettings, host: PluginHost | None = None) -> FlavorStore:
        if host is None:
            host = PluginHost(allow=settings.plugins, deny=settings.disable_plugins)
        return cls(list(settings.flavors_dirs), host, strict=settings.strict_flavor)

    # ---- reading -----------------------------------------------------------
    @property
    def current(self) -> Snapshot:
        return self._current

    def snapshot(self) -> Snapshot:
        """The pinned snapshot of this request/task if any, else the current one."""
        return self._pinned.get() or self._current

    @contextlib.contextmanager
    def pin(self, snapshot: Snapshot | None = None) -> Iterator[Snapshot]:
        token = self._pinned.set(snapshot or self._current)
        try:
            yield self._pinned.get() or self._current
        finally:
            self._pinned.reset(token)

    def watch_roots(self) -> list[Path]:
        return self.roots + [d for _, d in self.host.contributions().flavor_dirs]

    # ---- writing -----------------------------------------------------------
    def subscribe(self, listener: Callable[[ReloadEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _build(
        self, previous: Snapshot | None, changed_paths: Iterable[str | Path] | None = None
    ) -> Snapshot:
        contributions = self.host.contributions()
        plan = self._plan(contributions, changed_paths) if previous is not None else None
        if plan is not None and self._discovery is not None:
            found = self._discovery[1]  # only files inside known flavors changed: the listing is the same
        else:
            found = discover(self.roots, contributions.flavor_dirs, contributions.inline_flavors)
            self._discovery = (contributions, found)
        # A build allocates many small, long-lived objects and frees no cycles: pausing the
        # cyclic collector for its duration saves its repeated scans (~10% of a cold load).
        paused = gc.isenabled()
        gc.disable()
        try:
            snapshot = build_snapshot(
                found,
                contributions.registry,
                previous=previous,
                cache=self.cache,
                extra_issues=list(contributions.issues),
                reload_only=plan,
            )
        finally:
            if paused:
                gc.enable()
        if snapshot is previous:
            return snapshot
        # values bound to a model (mvcore_model_bindings) checked against the model each flavor selects
        return with_model_issues(snapshot, catalogue_for(self.host), self._model_checks)

    def _plan(
        self, contributions: Contributions, changed_paths: Iterable[str | Path] | None
    ) -> set[str] | None:
        """The flavors a set of changed paths can affect, or None when everything must be re-read.

        A path two or more levels below a root belongs to the flavor named by its first
        level; anything else (a root itself, an entry directly in a root, a path outside
        every root) may add or remove flavors, so the whole tree is rescanned.
        """
        if changed_paths is None or self._discovery is None or self._discovery[0] is not contributions:
            return None
        known = self._discovery[1].sources
        roots = [os.path.abspath(r) for r in self.watch_roots()]
        names: set[str] = set()
        for changed in changed_paths:
            path = os.path.abspath(changed)
            for root in roots:
                if not path.startswith(root + os.sep):
                    continue
                parts = path[len(root) + 1 :].split(os.sep)
                if len(parts) < 2 or parts[0] not in known:
                    return None
                names.add(parts[0])
                break
            else:
                return None
        return names

    def rebuild(
        self,
        reason: str = "",
        changed_paths: Iterable[str | Path] | None = None,
        *,
        accept: Callable[[Snapshot, Snapshot], bool] | None = None,
    ) -> ReloadEvent | None:
        """Rebuild from disk; swap and notify only when the content changed.

        ``changed_paths`` (from a file watcher) limits the re-read to the flavors
        those paths belong to; without it every flavor is re-read.  ``accept(previous,
        new)`` is asked before the swap (the reloader refuses a build that raced a writer).
        """
        started = time.perf_counter()
        with self._lock:
            previous = self._current
            snapshot = self._build(previous, changed_paths)
            if snapshot is previous or (accept is not None and not accept(previous, snapshot)):
                return None
            self._current = snapshot  # the atomic swap
        event = _diff(previous, snapshot, time.perf_counter() - started, reason)
        logs.event(
            "flavors_reloaded",
            logging.INFO,
            generation=event.generation,
            changed=event.changed,
            added=event.added,
            removed=event.removed,
            errors=len(event.errors),
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:
                logs.event("reload_listener_failed", logging.ERROR, error=repr(exc))
        self.host.notify_reload(event.to_dict())
        return event


def freeze_startup_heap() -> None:
    """Take what is alive after startup out of the cyclic collector's sight, once per process.

    A full collection scans every tracked object.  With 1,000 flavors loaded that is ~100,000
    objects and ~70 ms, and it lands on whichever reload or request happens to allocate at that
    moment (it was the p99 of edit-to-visible).  What exists right after startup -- modules, the
    app, the first snapshot -- lives as long as the process anyway.  Reference counting still frees
    frozen objects; only cyclic garbage among them is kept, a one-time, bounded cost.  Call it
    once, from a process entry point (``mvcore serve``), never per reload: a freeze per reload
    would keep whatever cycles requests hold at that moment.
    """
    gc.collect()
    gc.freeze()


def _diff(old: Snapshot, new: Snapshot, duration: float, reason: str) -> ReloadEvent:
    old_names, new_names = old.statuses.keys(), new.statuses.keys()
    old_flavors, new_flavors = old.flavors, new.flavors
    changed = sorted(
        n
        for n, status in new.statuses.items()
        if n in old_names
        and (
            old_flavors.get(n) is not new_flavors.get(n)
            or (old.statuses[n] is not status and old.statuses[n] != status)
        )
    )
    if old_flavors.get("default") is not new_flavors.get("default"):
        changed = sorted(new_names & old_names)
    changed = sorted(set(changed) | (new.dependents(changed) & old_names))  # children of a changed parent
    return ReloadEvent(
        generation=new.generation,
        previous_generation=old.generation,
        changed=changed,
        added=sorted(new_names - old_names),
        removed=sorted(old_names - new_names),
        errors=[i.to_dict() for i in new.errors()],
        duration_s=duration,
        reason=reason,
    )
