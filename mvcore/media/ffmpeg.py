"""Shared ffmpeg plumbing: finding the binary, running jobs, writing outputs safely.

Every encode goes through the static ffmpeg binary shipped by ``imageio-ffmpeg`` so the server
needs no system packages.  Probing happens in process with PyAV (:mod:`mvcore.media.probe`; its
names are re-exported here because every media step imports them from this module).

Every ffmpeg child is tied to our process: it gets ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, so a
server killed with ``kill -9`` does not leave an encoder running at full CPU (issue 16).  The
scratch such a death leaves behind is swept at the next start (:mod:`mvcore.media.scratch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from mvcore.errors import BadInput, DeadlineExceeded, MediaError, StorageError
from mvcore.media.probe import MediaInfo, describe, probe
from mvcore.media.progress import Progress

__all__ = [
    "MediaInfo",
    "aspect_to_size",
    "atomic_output",
    "ffmpeg_exe",
    "probe",
    "probe_sync",
    "run_ffmpeg",
    "scrub_paths",
]

#: How many stderr lines of a failed ffmpeg run are kept for the error details.
_STDERR_TAIL = 5
#: prctl(2) option: the signal the kernel sends a child when the thread that forked it dies.
_PR_SET_PDEATHSIG = 1
#: What ffmpeg prints when the disk (or quota) is full; mapped to 507 DISK_FULL, not a 500.
_DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded", "File too large")

#: Blocking twin of :func:`probe` for code that is not async (CLI, tests, benchmarks).
probe_sync = describe


@functools.cache
def _libc_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once (None off Linux or without a C library)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel to SIGKILL the child when we die (Linux only).

    The death signal fires when the *thread* that forked the child ends; asyncio forks from the
    event-loop thread, which lives as long as the loop.  If we already died between fork and
    prctl the child is orphaned (its parent pid changed) and exits at once.
    """
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary from imageio-ffmpeg (looked up once; honours IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as exc:  # any failure here means "no usable ffmpeg"
        raise MediaError(
            "ffmpeg is not available on this server",
            hint="Install the imageio-ffmpeg package (it ships a static ffmpeg binary).",
            details={"reason": exc.__class__.__name__},
        ) from None


# --------------------------------------------------------------------------- running ffmpeg

_NOISE_PREFIXES = ("Input #", "Output #", "Stream mapping", "Press [q]", "frame=", "size=", "video:", "[out#")
_ABS_PATH_RE = re.compile(r"(?<![\w.])/(?:[^\s/'\"]+/)+([^\s/'\",:]+)")


def scrub_paths(text: str, args: list[str] | None = None) -> str:
    """Replace server paths by bare file names so errors never reveal the disk layout."""
    for arg in args or ():
        if os.sep in arg and len(arg) > 1:
            text = text.replace(arg, Path(arg).name)
    return _ABS_PATH_RE.sub(r"\1", text)


def _meaningful_tail(lines: list[str], args: list[str]) -> list[str]:
    kept = [
        scrub_paths(line.strip(), args)
        for line in lines
        if line.strip() and not line[:1].isspace() and not line.startswith(_NOISE_PREFIXES)
    ]
    return kept[-_STDERR_TAIL:]


def _output_name(args: list[str]) -> str:
    return Path(args[-1]).name if args else "output"


@functools.cache
def _setpriv() -> str | None:
    """util-linux ``setpriv`` when it can set the parent-death signal, else None (checked once)."""
    found = shutil.which("setpriv") if _libc_prctl() is not None else None
    if found is None:
        return None
    try:
        done = subprocess.run([found, "--pdeathsig", "KILL", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return found if done.returncode == 0 else None


def _tied_to_us(cmd: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """``cmd`` made to die with this process: through ``setpriv --pdeathsig`` or a ``preexec_fn``.

    ``setpriv`` is preferred because a ``preexec_fn`` makes Python fork() the whole server instead
    of vfork(), which costs tens of milliseconds per ffmpeg run on a loaded machine (measured in
    ``benchmarks/bench_media.py``); one extra exec of a tiny binary costs about one.  The
    ``preexec_fn`` fallback also closes the fork/prctl race (it checks the parent pid afterwards).
    """
    wrapper = _setpriv()
    if wrapper is not None:
        return [wrapper, "--pdeathsig", "KILL", "--", *cmd], None
    return cmd, _die_with_parent()


async def _spawn(cmd: list[str]) -> asyncio.subprocess.Process:
    argv, preexec = _tied_to_us(cmd)
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=preexec,
        )
    except OSError as exc:  # binary missing, not executable, or out of processes
        raise MediaError("Could not start ffmpeg", details={"reason": exc.__class__.__name__}) from None


def _failure(returncode: int, lines: list[str], args: list[str]) -> StorageError | MediaError:
    """The error for a failed run: disk full is the caller's storage (507), the rest a MediaError."""
    name = _output_name(args)
    if any(marker in line for line in lines for marker in _DISK_FULL_MARKERS):
        return StorageError(
            f"disk full while writing {name}",
            code="DISK_FULL",
            hint="Free space in MVCORE_DATA_DIR and the temp directory (or use a bigger disk) and retry.",
            details={"file": name},
        )
    what = f"was killed by signal {-returncode}" if returncode < 0 else f"failed (exit {returncode})"
    return MediaError(
        f"ffmpeg {what} while writing {name}",
        details={"exit_code": returncode, "stderr": _meaningful_tail(lines, args)},
    )


async def run_ffmpeg(
    args: list[str],
    *,
    timeout: float,
    progress: Progress | None = None,
    expected_duration: float | None = None,
) -> None:
    """Run ``ffmpeg <args>`` (args exclude the binary and the global flags) under a deadline.

    ``-progress pipe:1`` is always requested and parsed so ``progress`` gets a
    real fraction when ``expected_duration`` is known.  The process is killed
    when the deadline passes, the task is cancelled, or the progress callback
    raises -- an orphaned ffmpeg would keep burning CPU and writing files.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-y", "-progress", "pipe:1", *args]
    proc = await _spawn(cmd)
    tail: deque[str] = deque(maxlen=200)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            tail.append(raw.decode("utf-8", "replace").rstrip("\r\n"))

    async def read_progress() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            if progress is None or not expected_duration or expected_duration <= 0:
                continue
            if key == "out_time_us" and value.isdigit():
                progress(min(int(value) / 1e6 / expected_duration, 1.0), "encoding")
            elif key == "progress" and value == "end":
                progress(1.0, "encoding")

    async def supervise() -> int:
        readers = [asyncio.ensure_future(read_stderr()), asyncio.ensure_future(read_progress())]
        try:
            await asyncio.gather(*readers)
        finally:
            for reader in readers:  # a raising progress callback must not leave a reader behind
                reader.cancel()
        return await proc.wait()

    try:
        async with asyncio.timeout(timeout):
            returncode = await supervise()
    except TimeoutError:
        raise DeadlineExceeded(
            f"ffmpeg did not finish {_output_name(args)} within {timeout:g} s",
            hint="Try shorter or fewer clips, or raise the media timeout on the server.",
            details={"timeout_s": timeout, "file": _output_name(args)},
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if returncode != 0:
        raise _failure(returncode, list(tail), args)


# --------------------------------------------------------------------------- outputs


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temp path next to ``final``; rename it into place only if the block succeeds.

    The temp name keeps the real suffix last (``.video.mp4.<hex>.tmp.mp4``) so
    ffmpeg still picks the right muxer, and being in the same directory makes
    the final ``os.replace`` atomic: readers see the old file or the complete
    new one, never a half-written video.  Any exception -- including task
    cancellation -- removes the temp file and propagates.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp{final.suffix}")
    try:
        yield tmp
        if not tmp.is_file():
            raise MediaError(f"No output was produced for {final.name}", details={"file": final.name})
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- sizes

_ASPECT_RE = re.compile(r"^\s*(\d{1,4}(?:\.\d{1,3})?)\s*[:/x]\s*(\d{1,4}(?:\.\d{1,3})?)\s*$")


def _even(value: float) -> int:
    return max(2, round(value / 2.0) * 2)


def aspect_to_size(aspect_ratio: str, long_side: int = 1280) -> tuple[int, int]:
    """Frame size (width, height) for ``"16:9"``-style ratios; both even, as yuv420p/H.264 need."""
    match = _ASPECT_RE.match(str(aspect_ratio))
    hint = "Use W:H with positive numbers, e.g. 16:9, 9:16, 1:1, 4:3 or 3:4."
    if not match:
        raise BadInput(f"Malformed aspect ratio {aspect_ratio!r}", hint=hint)
    aw, ah = float(match.group(1)), float(match.group(2))
    if aw <= 0 or ah <= 0 or max(aw, ah) / min(aw, ah) > 10:
        raise BadInput(f"Unsupported aspect ratio {aspect_ratio!r}", hint=hint + " At most 10:1.")
    if not 16 <= long_side <= 8192:
        raise BadInput(f"long_side must be between 16 and 8192, got {long_side}")
    if aw >= ah:
        return _even(long_side), _even(long_side * ah / aw)
    return _even(long_side * aw / ah), _even(long_side)
