"""Scratch space that outlives no one: pid-tagged temp dirs, and a sweep at startup.

A server killed with ``kill -9`` mid-render leaves its scratch behind: the render's
``/tmp/mvcore-render-*`` pictures, the stitcher's concat lists, and the generator's working
directories under ``<data_dir>/tmp/``.  Nothing would ever delete them.  The sweep, run once
when the API or a worker starts, removes what belongs to no living process:

* temp dirs made by :func:`scratch_dir` carry the creating pid in their name
  (``mvcore-render-<pid>-xxxx``); one whose pid is gone is removed;
* ``<data_dir>/tmp`` entries carry no pid.  Every process that sweeps keeps a *shared* ``flock``
  on the directory itself for its whole life (the kernel drops it when the process dies, even by
  SIGKILL; locking the directory's own descriptor adds no file that listings would show).
  A sweeper that gets the lock *exclusively* knows nobody else is using the directory and
  removes everything in it; otherwise it removes only entries untouched for longer than
  ``max_age_s`` (a live job never runs that long: its deadline ends it first).

Removing a live entry would break another process's job, so every rule errs on keeping.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Prefix of every temp dir mvcore makes in the system temp directory.
PREFIX = "mvcore-"
_TAGGED = re.compile(rf"^{re.escape(PREFIX)}[a-z]+-(\d+)-")
#: Directories this process holds a lock on, kept open for the process's life (newest last).
_held: dict[Path, int] = {}
#: A process serves one data dir; tests make hundreds.  Beyond this many, the oldest is let go.
_MAX_HELD = 64


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A fresh ``mvcore-<kind>-<pid>-*`` temp dir, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{kind}-{os.getpid()}-") as path:
        yield Path(path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("scratch_sweep_failed", extra={"path": path.name, "reason": exc.strerror})
        return False
    return True


def _old(path: Path, max_age_s: float, now: float) -> bool:
    try:
        return now - path.lstat().st_mtime > max_age_s
    except FileNotFoundError:
        return False


def _sweep_temp(temp_root: Path, max_age_s: float, now: float) -> int:
    """Remove ``mvcore-*`` temp dirs whose creating process is gone (untagged ones by age)."""
    removed = 0
    for entry in temp_root.glob(f"{PREFIX}*"):
        tagged = _TAGGED.match(entry.name)
        orphan = not _alive(int(tagged.group(1))) if tagged else _old(entry, max_age_s, now)
        if orphan and _remove(entry):
            removed += 1
    return removed


def _claim(root: Path) -> bool:
    """Hold a shared lock on ``root`` for this process's life; True if no other process held it."""
    root = root.resolve()
    if root in _held:
        return False
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    alone = True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        alone = False
    fcntl.flock(fd, fcntl.LOCK_SH)  # downgrade (or wait our turn): we use the directory from now on
    _held[root] = fd
    while len(_held) > _MAX_HELD:
        os.close(_held.pop(next(iter(_held))))
    return alone


def _sweep_data(data_tmp: Path, max_age_s: float, now: float) -> int:
    data_tmp.mkdir(parents=True, exist_ok=True)
    alone = _claim(data_tmp)
    removed = 0
    for entry in data_tmp.iterdir():
        if (alone or _old(entry, max_age_s, now)) and _remove(entry):
            removed += 1
    return removed


def sweep_scratch(data_tmp: Path, *, max_age_s: float, temp_root: Path | None = None) -> int:
    """Remove scratch left by dead processes (see the module docstring); returns how many entries."""
    now = time.time()
    temp_root = Path(temp_root or tempfile.gettempdir())
    removed = _sweep_temp(temp_root, max_age_s, now) + _sweep_data(Path(data_tmp), max_age_s, now)
    if removed:
        log.info("scratch_swept", extra={"entries": removed})
    return removed
