"""Shared ffmpeg plumbing: finding the binary, probing files, running jobs, writing outputs safely.

Everything goes through the static ffmpeg binary shipped by ``imageio-ffmpeg`` so
the server needs no system packages.  That wheel has no ``ffprobe``, so probing
parses the banner ``ffmpeg -i FILE`` prints on stderr; when a container does
not state its length (or only estimates it from the bitrate) we measure it by
decoding to the null muxer, which is exact and still fast for audio.

pydub is pointed at the same binary (``configure_pydub``) so code that uses it
for exporting works, but note that ``AudioSegment.from_file`` needs ``ffprobe``
for anything but WAV/raw input -- mvcore therefore does its own decoding with
ffmpeg directly and never relies on pydub's probing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import subprocess
import uuid
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from mvcore.errors import BadInput, DeadlineExceeded, MediaError
from mvcore.media.progress import Progress

#: How many stderr lines of a failed ffmpeg run are kept for the error details.
_STDERR_TAIL = 5
_PROBE_TIMEOUT = 30.0


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


def configure_pydub() -> bool:
    """Point pydub at our ffmpeg binary; returns False when pydub or ffmpeg is missing.

    pydub warns at import time when no ``ffmpeg`` is on PATH (the imageio binary
    has a versioned name), so the import is done with that warning silenced.
    There is no way to give pydub an ffprobe, see the module docstring.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            from pydub import AudioSegment
        exe = ffmpeg_exe()
    except (ImportError, MediaError):
        return False
    AudioSegment.converter = exe
    AudioSegment.ffmpeg = exe  # legacy alias some pydub versions read
    return True


@dataclass(frozen=True)
class MediaInfo:
    """What one probe of a media file tells us (first video and first audio stream)."""

    duration: float
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    audio_channels: int | None
    audio_sample_rate: int | None
    #: Extra facts the stitcher uses to decide whether a lossless concat is safe.
    pixel_format: str | None = None
    video_profile: str | None = None
    #: Display rotation in degrees from the stream's display matrix; width/height are already
    #: the *displayed* size (ffmpeg auto-rotates frames when filtering, so that is what we get).
    rotation: int = 0


# --------------------------------------------------------------------------- probing

_DURATION_RE = re.compile(r"^\s*Duration:\s*(?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)", re.MULTILINE)
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*:\s*(Video|Audio):\s*(.*)$", re.MULTILINE)
_SIZE_RE = re.compile(r",\s*(\d+)x(\d+)(?=[\s,\[]|$)")
_FPS_RE = re.compile(r"([\d.]+)(k?)\s+fps")
_TBR_RE = re.compile(r"([\d.]+)(k?)\s+tbr")
_RATE_RE = re.compile(r"(\d+)\s+Hz")
_CHANNELS_RE = re.compile(r"(\d+)\s+channels")
_ROTATION_RE = re.compile(r"display ?matrix: rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_PIXFMT_RE = re.compile(r"^\s*(\w+)(?:\(|,|$)")
_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "quad": 4,
    "4.0": 4,
    "4.1": 5,
    "5.0": 5,
    "5.1": 6,
    "6.0": 6,
    "6.1": 7,
    "7.0": 7,
    "7.1": 8,
    "downmix": 2,
}


def _rate(match: re.Match[str] | None) -> float | None:
    if not match:
        return None
    value = float(match.group(1)) * (1000 if match.group(2) else 1)
    return value if value > 0 else None


def _channels(layout_part: str) -> int | None:
    if match := _CHANNELS_RE.search(layout_part):
        return int(match.group(1))
    for part in (p.strip() for p in layout_part.split(",")):
        base = part.split("(", 1)[0]
        if base in _LAYOUTS:
            return _LAYOUTS[base]
    return None


def parse_probe_output(stderr: str) -> tuple[MediaInfo, bool]:
    """Parse ``ffmpeg -i`` stderr into a MediaInfo plus "duration needs measuring".

    Pure function so the parser can be tested against captured banners.  Cover
    art in music files shows up as a video stream marked ``(attached pic)``;
    it is ignored, otherwise every mp3 with artwork would look like a video.
    """
    if "Input #0" not in stderr:
        raise ValueError("no input section")
    if re.search(r"^Input #0, tty,", stderr, re.MULTILINE):
        # ffmpeg renders .txt/.nfo files as "ANSI art" video; nobody means that as media.
        raise ValueError("text file")
    duration = 0.0
    needs_measure = True
    if (match := _DURATION_RE.search(stderr)) and match.group(1) is not None:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        needs_measure = "Estimating duration from bitrate" in stderr
    info = MediaInfo(duration, False, False, None, None, None, None, None, None, None)
    streams = list(_STREAM_RE.finditer(stderr))
    for index, stream in enumerate(streams):
        kind, rest = stream.group(1), stream.group(2)
        codec = rest.split(None, 1)[0].rstrip(",") if rest.strip() else None
        if kind == "Video" and not info.has_video and "(attached pic)" not in rest:
            size = _SIZE_RE.search(rest)
            parts = rest.split(", ")
            pix = _PIXFMT_RE.match(parts[1]) if len(parts) > 1 else None
            profile = re.match(r"\w+\s+\(([^)/]+)\)", rest)
            block_end = streams[index + 1].start() if index + 1 < len(streams) else len(stderr)
            turn = _ROTATION_RE.search(stderr, stream.end(), block_end)
            rotation = round(float(turn.group(1))) % 360 if turn else 0
            width, height = (int(size.group(1)), int(size.group(2))) if size else (None, None)
            if rotation in (90, 270):  # phone videos: coded landscape, shown portrait
                width, height = height, width
            info = replace(
                info,
                has_video=True,
                video_codec=codec,
                width=width,
                height=height,
                rotation=rotation,
                fps=_rate(_FPS_RE.search(rest)) or _rate(_TBR_RE.search(rest)),
                pixel_format=pix.group(1) if pix else None,
                video_profile=profile.group(1).strip() if profile else None,
            )
        elif kind == "Audio" and not info.has_audio:
            rate = _RATE_RE.search(rest)
            info = replace(
                info,
                has_audio=True,
                audio_codec=codec,
                audio_sample_rate=int(rate.group(1)) if rate else None,
                audio_channels=_channels(rest[rate.end() :] if rate else rest),
            )
    return info, needs_measure


def _last_out_time(progress_text: str) -> float | None:
    """Last ``out_time_us`` (or ``out_time``) value of an ffmpeg ``-progress`` stream, in seconds."""
    found: float | None = None
    for line in progress_text.splitlines():
        key, _, value = line.partition("=")
        value = value.strip()
        if key == "out_time_us" and value.lstrip("-").isdigit():
            found = max(int(value), 0) / 1e6
    return found


def _unreadable(path: Path) -> BadInput:
    return BadInput(
        f"{path.name} is not a readable audio or video file",
        hint="Check that the file is a complete, supported media file (mp3, wav, m4a, ogg, flac, mp4...).",
        details={"file": path.name},
    )


def _probe_cmd(path: Path) -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]


def _measure_cmd(path: Path, info: MediaInfo) -> list[str]:
    """Command that reads one stream to its end and reports the clock on stdout.

    Audio is decoded (cheap, and sample-exact); a video-only file is only
    demuxed (``-c copy``), which is far faster than decoding and at most one
    frame short.
    """
    stream = ["-map", "0:a:0"] if info.has_audio else ["-map", "0:v:0", "-c", "copy"]
    head = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-i", str(path)]
    return [*head, *stream, "-f", "null", "-progress", "pipe:1", "-"]


def _finish_probe(path: Path, stderr: str) -> tuple[MediaInfo, bool]:
    try:
        return parse_probe_output(stderr)
    except ValueError:
        raise _unreadable(path) from None


def _with_duration(info: MediaInfo, measured: float | None, path: Path) -> MediaInfo:
    if measured is None:
        if info.duration > 0:
            return info
        raise _unreadable(path)
    return replace(info, duration=measured)


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise MediaError(f"Media file {path.name} does not exist", details={"file": path.name})


async def _spawn(cmd: list[str]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:  # binary missing, not executable, or out of processes
        raise MediaError("Could not start ffmpeg", details={"reason": exc.__class__.__name__}) from None


async def _capture(cmd: list[str], timeout: float) -> tuple[str, str]:
    proc = await _spawn(cmd)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        raise DeadlineExceeded(f"Probing took longer than {timeout:g} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


async def probe(path: Path, *, timeout: float = _PROBE_TIMEOUT) -> MediaInfo:
    """Describe a media file; BadInput when it is not media, MediaError when it does not exist."""
    path = Path(path)
    _check_exists(path)
    _, stderr = await _capture(_probe_cmd(path), timeout)
    info, needs_measure = _finish_probe(path, stderr)
    if not needs_measure or not (info.has_audio or info.has_video):
        return _with_duration(info, None, path)
    out, _ = await _capture(_measure_cmd(path, info), timeout)
    return _with_duration(info, _last_out_time(out), path)


def probe_sync(path: Path, *, timeout: float = _PROBE_TIMEOUT) -> MediaInfo:
    """Blocking twin of :func:`probe` for code that is not async (CLI, tests)."""
    path = Path(path)
    _check_exists(path)

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                errors="replace",
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DeadlineExceeded(f"Probing took longer than {timeout:g} s") from None

    info, needs_measure = _finish_probe(path, run(_probe_cmd(path)).stderr)
    if not needs_measure or not (info.has_audio or info.has_video):
        return _with_duration(info, None, path)
    return _with_duration(info, _last_out_time(run(_measure_cmd(path, info)).stdout), path)


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
        returncode = await asyncio.wait_for(supervise(), timeout=timeout)
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
        what = f"was killed by signal {-returncode}" if returncode < 0 else f"failed (exit {returncode})"
        raise MediaError(
            f"ffmpeg {what} while writing {_output_name(args)}",
            details={"exit_code": returncode, "stderr": _meaningful_tail(list(tail), args)},
        )


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


configure_pydub()
