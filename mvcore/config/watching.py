"""Observer plumbing for hot reload: which observer, which filesystem, how to stop it.

Kept apart from ``reload.py`` (the debounce/rebuild policy) because it is about watchdog and the
operating system -- inotify overflow handling, network filesystems that inotify cannot see,
inode identities -- not about flavors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
)
from watchdog.observers.api import BaseObserver, ObservedWatch

# Only what can change a flavor: no "opened"/"closed_no_write" (our own reads would wake us up) and no
# "directory modified" (always accompanied by the event of the entry that changed).
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


@dataclass
class ReloadStats:
    """What the reloader did so far (a copy; see ``Reloader.stats``)."""

    requested_mode: str
    mode: str = "off"  # the observer actually used: inotify | poll | off | fsevents/kqueue/... elsewhere
    fallback_reason: str | None = None  # why ``mode`` differs from the requested one
    rebuilds: int = 0  # rebuild attempts
    swaps: int = 0  # attempts that published a new generation
    failures: int = 0  # attempts that raised
    events: int = 0  # relevant filesystem events
    ignored_events: int = 0
    overflows: int = 0  # inotify queue overflows (each one triggers a full rescan)
    last_reason: str = ""
    last_duration_s: float | None = None
    last_rebuild_at: float | None = None  # epoch seconds
    last_error: str | None = None  # the exception of the last attempt; None when it succeeded

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Watch:
    watch: ObservedWatch
    alias: str  # the configured (absolute, unresolved) path this watch stands for
    recursive: bool
    ident: tuple[int, int] | None  # (st_dev, st_ino) when scheduled: a replaced directory is re-watched


# Filesystems where inotify only sees local writes (or nothing): changes made on the server, the
# host or another client are never reported, so ``auto`` polls them.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "vmhgfs", "ceph",
        "glusterfs", "lustre", "gpfs", "beegfs", "afs", "davfs", "fuse.sshfs", "fuse.rclone",
        "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs", "fuse.vmhgfs-fuse", "fuse.davfs2",
        "fuse.grpcfuse", "fuse.osxfs",
    }
)  # fmt: skip


def nearest_existing_dir(path: str) -> str:
    current = os.path.dirname(path)
    while not os.path.isdir(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def path_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def close_observer(observer: BaseObserver, timeout: float) -> None:
    with contextlib.suppress(Exception):
        observer.stop()
    if observer.is_alive():
        with contextlib.suppress(Exception):
            observer.join(timeout)


def filesystem_type(path: str, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (Linux ``/proc/self/mounts``), or None if unknown."""
    if mounts is None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
                mounts = handle.read()
        except OSError:
            return None
    real = os.path.realpath(path)  # resolves the part that exists
    best, best_type = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type


_InotifyFactory = Callable[[Callable[[], None]], BaseObserver]
_INOTIFY_CLASS: list[_InotifyFactory] = []


def inotify_observer_class() -> _InotifyFactory | None:
    """An InotifyObserver whose queue overflows are reported to a callback (None off Linux).

    watchdog re-adds its watches after ``IN_Q_OVERFLOW`` but cannot replay the lost events; the
    callback makes the reloader rescan everything.  Degrades to no overflow callback if watchdog's
    internals differ from the version this was written against.
    """
    if _INOTIFY_CLASS:
        return _INOTIFY_CLASS[0]
    if not sys.platform.startswith("linux"):
        return None
    try:
        from watchdog.observers.inotify import InotifyEmitter, InotifyObserver
    except Exception:  # a libc without inotify, or another watchdog layout
        return None

    class _OverflowAwareEmitter(InotifyEmitter):
        def __init__(self, *args: Any, on_overflow: Callable[[], None] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._on_overflow = on_overflow

        def on_thread_start(self) -> None:
            super().on_thread_start()
            group = getattr(self, "_inotify", None)
            original = getattr(group, "on_queue_overflow", None)
            callback = self._on_overflow
            if group is None or not callable(original) or callback is None:
                return

            def on_queue_overflow() -> None:
                original()
                callback()

            group.on_queue_overflow = on_queue_overflow

    class _OverflowAwareObserver(InotifyObserver):
        def __init__(self, on_overflow: Callable[[], None]) -> None:
            super().__init__()
            if hasattr(self, "_emitter_class") and isinstance(getattr(self, "_emitter_kwargs", None), dict):
                self._emitter_class = _OverflowAwareEmitter
                self._emitter_kwargs = {**self._emitter_kwargs, "on_overflow": on_overflow}

    _INOTIFY_CLASS.append(_OverflowAwareObserver)
    return _OverflowAwareObserver
