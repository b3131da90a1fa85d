"""Observers for hot reload: flat watches over the flavor roots and each flavor directory.

Flavors are flat (``<root>/<flavor>/<type>.yaml``), so a watch never walks a tree: each root is
watched for flavors coming and going, each flavor directory for its files, and a missing root
through its nearest existing parent.  A directory made inside a flavor is *nested*: ignored and
reported, never watched or listed -- a 1,000-level ``mkdir -p`` costs one event.

Every raw observation is turned into a :class:`Change` by one pure function, :func:`classify`,
shared by both observers:

* :class:`InotifyWatcher` -- watchdog's ``InotifyFD`` (its ctypes inotify reader: buffers, watch
  descriptors, queue overflow) with one callback per directory, on one thread.  It does not go
  through watchdog's ``Observer``: that one runs a thread per watch, walks directories
  recursively for created/moved ones (a RecursionError at 2,000 levels kills it), and holds an
  unpaired ``IN_MOVED_FROM`` for 0.5 s in an uninterruptible sleep that delays every later event
  of its watch -- the wrong tools for "publish a completed save at once" (docs/design-decisions.md).
* ``polling.PollingWatcher`` -- one thread listing every watched directory each interval; a change
  is published only after a second, identical observation ``confirm_s`` later.

Both report their own death (the exception that ended the thread) and whether they are stuck,
so the reloader's supervisor can replace them (``reload.py``).
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import fcntl
import os
import shutil
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mvcore.config.discovery import check_flavor_name, is_ignored

CONFIG_SUFFIXES = (".yaml", ".yml")
CONFIGMAP_LINK = "..data"  # Kubernetes' atomic writer swaps this symlink to publish a new version


class Change(StrEnum):
    """What one observation means for reloading."""

    DONE = "done"  # a completed save: close after write, rename into place, symlink swap
    WRITING = "writing"  # modified and not closed yet: publish once closed or settled
    GONE = "gone"  # deleted or renamed away: publish after a short grace (editors recreate files)
    TOUCHED = "touched"  # metadata only (touch, chmod): done, unless a write is in progress
    STRUCTURE = "structure"  # flavors or watched directories appeared or went: resync, rescan all
    NESTED = "nested"  # a directory inside a flavor: ignored, reported once
    IGNORED = "ignored"


class Role(StrEnum):
    ROOT = "root"  # a flavors directory: its subdirectories are flavors
    FLAVOR = "flavor"  # one flavor: its YAML files are configs
    PARENT = "parent"  # the nearest existing ancestor of a root that does not exist yet


@dataclass(frozen=True)
class WatchSpec:
    role: Role
    leads_to: frozenset[str] = frozenset()  # PARENT: the child names on the way to missing roots


Sink = Callable[[Change, str], None]
OPS = ("created", "deleted", "modified", "closed", "moved_to", "moved_from", "attrib")


def classify(spec: WatchSpec, name: str, op: str, *, is_dir: bool, is_link: Callable[[], bool]) -> Change:
    """The meaning of ``op`` (one of ``OPS``) on entry ``name`` of a directory watched as ``spec``."""
    if spec.role is Role.PARENT:
        return Change.STRUCTURE if name in spec.leads_to else Change.IGNORED
    if spec.role is Role.ROOT:
        if is_ignored(name) or op not in ("created", "deleted", "moved_to", "moved_from"):
            return Change.IGNORED  # hidden staging dirs, .git, files written at the root level
        return Change.STRUCTURE
    if name.startswith(".."):  # ..data (the swap completes a ConfigMap update), ..2024_01_01_... dirs
        if name == CONFIGMAP_LINK and op not in ("attrib", "closed"):
            return Change.DONE
        return Change.IGNORED
    if is_dir:
        return Change.NESTED if op in ("created", "moved_to") else Change.IGNORED
    if is_ignored(name) or not name.endswith(CONFIG_SUFFIXES):
        return Change.IGNORED
    if op in ("closed", "moved_to"):
        return Change.DONE
    if op == "created":  # a new symlink is complete; a new regular file is being written
        return Change.DONE if is_link() else Change.WRITING
    if op == "modified":
        return Change.WRITING
    if op == "attrib":
        return Change.TOUCHED
    return Change.GONE


def desired_watches(roots: list[str]) -> dict[str, WatchSpec]:
    """Every directory to watch for ``roots`` (absolute paths), as they are on disk now."""
    specs: dict[str, WatchSpec] = {}
    for root in roots:
        if not os.path.isdir(root):
            parent = nearest_existing_dir(root)
            first = os.path.relpath(root, parent).split(os.sep)[0]
            known = specs.get(parent)
            if known is None or known.role is Role.PARENT:
                names = known.leads_to if known is not None else frozenset()
                specs[parent] = WatchSpec(Role.PARENT, names | {first})
            continue
        specs[root] = WatchSpec(Role.ROOT)
        try:
            with os.scandir(root) as listing:
                entries = [(e.name, e.path) for e in listing]
        except OSError:
            continue
        for name, path in entries:
            if is_ignored(name) or check_flavor_name(name) is not None or not os.path.isdir(path):
                continue
            specs.setdefault(path, WatchSpec(Role.FLAVOR))
    return specs


class Watcher(Protocol):
    """What the supervisor needs from an observer."""

    mode: str

    def set_dirs(self, specs: Mapping[str, WatchSpec]) -> bool: ...
    def watched(self) -> dict[str, WatchSpec]: ...
    def problem(self) -> str | None: ...
    def stop(self, timeout: float) -> None: ...


# ---- inotify ---------------------------------------------------------------------------------
def _inotify_parts() -> tuple[Any, Any]:
    """watchdog's ``InotifyFD`` and ``InotifyConstants`` (ImportError off Linux / other watchdog)."""
    if not sys.platform.startswith("linux"):
        raise ImportError("inotify exists only on Linux")
    from watchdog.observers.inotify_c import InotifyConstants, InotifyFD

    return InotifyFD, InotifyConstants


class _DirCallback:
    """watchdog ``WatchCallback`` for one directory: turns inotify events into Changes."""

    def __init__(self, watcher: InotifyWatcher, path: str, spec: WatchSpec) -> None:
        self.watcher, self.path, self.spec = watcher, path, spec
        self.wd: int | None = None
        self.ident = path_identity(path)
        self.removed = False

    def on_event(self, event: Any) -> None:
        self.watcher.busy_since = time.monotonic()
        self.watcher.delivered += 1
        try:
            self.watcher.deliver(self, event)
        except Exception as exc:  # never let one bad event end the reader thread
            self.watcher.note_error(exc)
        finally:
            self.watcher.busy_since = None

    def on_watch_deleted(self, wd: int) -> None:
        if not self.removed:
            self.removed = True
            self.watcher.sink(Change.STRUCTURE, self.path)

    def on_queue_overflow(self) -> None:
        pass  # reported once per overflow by the reader (_ReportingFD.handle_event), not per directory


class _FenceCallback:
    """Events of the private fence directory: proof that every earlier event was dispatched."""

    def __init__(self, watcher: InotifyWatcher) -> None:
        self.watcher = watcher

    def on_event(self, event: Any) -> None:
        with self.watcher.fence_cond:
            self.watcher.fence_seen = self.watcher.fence_sent
            self.watcher.fence_cond.notify_all()

    def on_watch_deleted(self, wd: int) -> None:
        pass

    def on_queue_overflow(self) -> None:
        pass


class InotifyWatcher:
    """One inotify instance and reader thread; one watch per directory (see module doc)."""

    mode = "inotify"

    def __init__(
        self, sink: Sink, *, on_overflow: Callable[[], None], on_death: Callable[[], None], stuck_s: float
    ) -> None:
        fd_class, constants = _inotify_parts()
        self.sink, self._on_overflow, self._stuck_s = sink, on_overflow, stuck_s
        self._c = constants
        self._mask = (
            constants.IN_CREATE | constants.IN_DELETE | constants.IN_MODIFY | constants.IN_CLOSE_WRITE
            | constants.IN_MOVED_FROM | constants.IN_MOVED_TO | constants.IN_ATTRIB
            | constants.IN_DELETE_SELF | constants.IN_MOVE_SELF | constants.IN_ONLYDIR
        )  # fmt: skip
        self._dirs: dict[str, _DirCallback] = {}
        self._lock = threading.Lock()
        self.error: str | None = None
        self.busy_since: float | None = None
        self.delivered = 0  # events handed to callbacks: progress, for the stuck check
        self._seen_delivered = -1
        self._backlog_since: float | None = None
        self._stopping = False
        watcher = self

        class _ReportingFD(fd_class):  # type: ignore[misc, valid-type]
            """watchdog's reader thread, telling the supervisor when it ends unexpectedly."""

            def handle_event(self, event: Any) -> None:
                if event.is_queue_overflow:
                    watcher.overflow()  # once, not once per watched directory
                    return
                super().handle_event(event)

            def run(self) -> None:
                try:
                    super().run()
                except BaseException as exc:
                    watcher.note_error(exc)
                finally:
                    if not watcher._stopping:
                        watcher.error = watcher.error or "the inotify reader thread ended"
                        on_death()

        self.fd = _ReportingFD()
        self.fd.name = "mvcore-inotify"
        self.fd.start()
        # a private directory whose events, queued after everything else, mark "all delivered"
        self.fence_cond = threading.Condition()
        self.fence_sent = self.fence_seen = 0
        self._fence_dir = tempfile.mkdtemp(prefix="mvcore-fence-")
        self._fence_file = os.path.join(self._fence_dir, "fence")
        with open(self._fence_file, "w"):
            pass
        self._fence = _FenceCallback(self)
        self.fd.add_callback(os.fsencode(self._fence_dir), constants.IN_ATTRIB, self._fence, id(self._fence))

    def note_error(self, exc: BaseException) -> None:
        self.error = describe_error(exc)

    def overflow(self) -> None:
        self._on_overflow()

    def deliver(self, callback: _DirCallback, event: Any) -> None:
        if callback.removed:
            return
        if not event.name:
            if event.is_delete_self or event.is_move_self or event.is_ignored:
                callback.removed = True
                self.sink(Change.STRUCTURE, callback.path)
            return
        name = os.fsdecode(event.name)
        path = os.path.join(callback.path, name)
        for op in _ops_of(event):
            change = classify(
                callback.spec, name, op, is_dir=event.is_directory, is_link=lambda: os.path.islink(path)
            )
            self.sink(change, path)

    def set_dirs(self, specs: Mapping[str, WatchSpec]) -> bool:
        """Watch exactly ``specs``; True when something changed.  OSError when a watch cannot be
        added (the watch limit): the caller falls back to polling."""
        changed = False
        with self._lock:
            for path, callback in list(self._dirs.items()):
                want = specs.get(path)
                if want == callback.spec and not callback.removed and path_identity(path) == callback.ident:
                    continue
                self._remove(callback)
                del self._dirs[path]
                changed = True
            for path, spec in specs.items():
                if path in self._dirs:
                    continue
                callback = _DirCallback(self, path, spec)
                try:
                    callback.wd = self.fd.add_callback(os.fsencode(path), self._mask, callback, id(callback))
                except OSError as exc:
                    if exc.errno in (2, 20):  # ENOENT, ENOTDIR: gone meanwhile; the next resync sees it
                        continue
                    raise
                self._dirs[path] = callback
                changed = True
        return changed

    def _remove(self, callback: _DirCallback) -> None:
        callback.removed = True
        if callback.wd is not None:
            with contextlib.suppress(Exception):
                self.fd.remove_callbacks([(callback.wd, id(callback))])

    def watched(self) -> dict[str, WatchSpec]:
        with self._lock:
            return {path: cb.spec for path, cb in self._dirs.items()}

    def problem(self) -> str | None:
        """Why this watcher cannot be trusted any more (dead, or stuck behind unread events)."""
        if not self.fd.is_alive():
            return self.error or "the inotify reader thread is not running"
        now = time.monotonic()
        busy = self.busy_since
        if busy is not None and now - busy > self._stuck_s:
            return f"the inotify reader has been stuck in one event for {now - busy:.1f} s"
        # unread events and no progress since the last look: the reader is blocked somewhere
        stalled = self.delivered == self._seen_delivered
        self._seen_delivered = self.delivered
        if stalled and _unread_bytes(getattr(self.fd, "_inotify_fd", None)) > 0:
            self._backlog_since = self._backlog_since or now
            if now - self._backlog_since > self._stuck_s:
                return f"inotify events have been waiting unread for {now - self._backlog_since:.1f} s"
        else:
            self._backlog_since = None
        return None

    def drain(self, timeout: float) -> None:
        """Wait (bounded) until every event the kernel queued before this call has been delivered.

        inotify keeps one ordered queue per instance: a touch of the fence file queues an event
        behind all the others, so once the reader hands it over, everything before it is in.
        """
        if not self.fd.is_alive() or self.fd is threading.current_thread():
            return
        with self.fence_cond:
            self.fence_sent += 1
            token = self.fence_sent
        try:
            os.utime(self._fence_file)
        except OSError:
            return
        with self.fence_cond:
            self.fence_cond.wait_for(lambda: self.fence_seen >= token, timeout)

    def stop(self, timeout: float) -> None:
        self._stopping = True
        with contextlib.suppress(Exception):
            self.fd.stop()
        if self.fd.is_alive() and self.fd is not threading.current_thread():
            self.fd.join(timeout)
        shutil.rmtree(self._fence_dir, ignore_errors=True)


def _ops_of(event: Any) -> list[str]:
    ops = []
    if event.is_create:
        ops.append("created")
    if event.is_moved_to:
        ops.append("moved_to")
    if event.is_modify:
        ops.append("modified")
    if event.is_attrib:
        ops.append("attrib")
    if event.is_close_write:
        ops.append("closed")
    if event.is_delete:
        ops.append("deleted")
    if event.is_moved_from:
        ops.append("moved_from")
    return ops


def _unread_bytes(fd: int | None) -> int:
    """Bytes waiting on an inotify descriptor (FIONREAD); 0 when unknown."""
    if not isinstance(fd, int):
        return 0
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    except OSError:
        return 0
    return buf[0]


# ---- shared helpers --------------------------------------------------------------------------
@dataclass
class ReloadStats:
    """What the reloader did so far (a copy; see ``Reloader.stats``)."""

    requested_mode: str
    mode: str = "off"  # the observer actually used: inotify | poll | off
    fallback_reason: str | None = None  # why ``mode`` differs from the requested one
    rebuilds: int = 0  # rebuild attempts
    swaps: int = 0  # attempts that published a new generation
    failures: int = 0  # attempts that raised
    events: int = 0  # relevant filesystem events
    ignored_events: int = 0
    overflows: int = 0  # inotify queue overflows (each one triggers a full rescan)
    restarts: int = 0  # observers replaced by the supervisor
    last_reason: str = ""
    last_duration_s: float | None = None
    last_rebuild_at: float | None = None  # epoch seconds
    last_error: str | None = None  # the exception of the last rebuild attempt; None when it succeeded
    watch_error: str | None = None  # the last observer failure (death, stuck, could not start)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
