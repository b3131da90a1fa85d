"""Probing media files in process with PyAV: streams, codecs, sizes and an exact duration.

The imageio-ffmpeg wheel ships no ``ffprobe``, so probing used to cost an ``ffmpeg -i`` process per
file plus a hand-written parser of its banner.  PyAV opens the file with the same libavformat code
ffmpeg runs (``avformat_open_input`` + ``avformat_find_stream_info``) and hands us the fields, in
about a millisecond for an audio file and a few for a video.

Two facts PyAV does not give directly:

* **Is the container's duration exact?**  libavformat *estimates* it from the bitrate for raw
  streams (mp3 without a Xing/LAME header, ADTS AAC, ...) and leaves it unset for files written
  to a pipe.  PyAV does not expose ``duration_estimation_method``, so we trust the header only
  for containers that store their length (``_EXACT_FORMATS``, and mp3 whose LAME header gave the
  encoder delay, seen as a non-zero ``start_time``) and otherwise *measure* it by demuxing the
  stream's packets -- no decoding, exact to one audio frame (~25 ms), ~25 ms for a 3-minute mp3.
* **Display rotation.**  PyAV 18 reads the display matrix only from decoded frames
  (``VideoFrame.rotation``).  For MP4/MOV it is read from the track header instead
  (:mod:`mvcore.media.isobmff`, no decoding); other containers decode their first frame.

Everything runs under a deadline: ``av.open(timeout=...)`` interrupts blocking reads, and the
measuring loop checks the clock per packet.  ``probe`` runs in a worker thread so the event loop
never waits on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import av.error

from mvcore.errors import BadInput, DeadlineExceeded, MediaError
from mvcore.media.isobmff import track_rotation

_PROBE_TIMEOUT = 30.0
#: libavformat names of containers whose header states an exact duration.
_EXACT_FORMATS = frozenset(
    {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "wav", "w64", "flac", "ogg", "aiff", "caf", "avi", "asf"}
)
#: Formats that libavformat opens but that nobody means as media (``tty`` renders text files).
_NOT_MEDIA = frozenset({"tty", "ansi", "bin", "xbin", "idf", "adf"})
#: At most this many packets are read while looking for the first decodable video frame.
_ROTATION_PACKETS = 32
_ATTACHED_PIC = av.stream.Disposition.attached_pic


@dataclass(frozen=True, kw_only=True)
class MediaInfo:
    """What one probe of a media file tells us (first video and first audio stream)."""

    duration: float
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    #: Extra facts the stitcher uses to decide whether a lossless concat is safe.
    pixel_format: str | None = None
    video_profile: str | None = None
    #: Display rotation in degrees (clockwise, as ffmpeg prints it); width/height are already
    #: the *displayed* size (ffmpeg auto-rotates frames when filtering, so that is what we get).
    rotation: int = 0
    #: Short fingerprints of the decoder configuration (H.264 SPS/PPS, AAC AudioSpecificConfig):
    #: two clips may share one stream in a stream copy only when these are equal.
    video_config: str | None = None
    audio_config: str | None = None


def unreadable(path: Path) -> BadInput:
    """The one error for "this is not media we can read" (names the file, never its directory)."""
    return BadInput(
        f"{path.name} is not a readable audio or video file",
        hint="Check that the file is a complete, supported media file (mp3, wav, m4a, ogg, flac, mp4...).",
        details={"file": path.name},
    )


def check_exists(path: Path) -> None:
    if not path.is_file():
        raise MediaError(f"Media file {path.name} does not exist", details={"file": path.name})


def _fingerprint(data: bytes | None) -> str | None:
    return hashlib.blake2b(data, digest_size=8).hexdigest() if data else None


def _rate(stream: Any) -> float | None:
    """Average frame rate, else the base (``tbr``) rate -- what ffmpeg's banner shows as fps."""
    for rate in (stream.average_rate, stream.base_rate):
        if rate and rate > 0:
            return float(rate)
    return None


def _rotation(container: Any, stream: Any, deadline: float) -> int:
    """Clockwise display rotation of ``stream`` (0 when unknown), from its first decoded frame."""
    stream.codec_context.thread_count = 1
    for count, packet in enumerate(container.demux(stream)):
        if count >= _ROTATION_PACKETS or time.monotonic() > deadline:
            break
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        if frames:
            return round(-frames[0].rotation) % 360
    return 0


def _video_fields(path: Path, container: Any, stream: Any, deadline: float) -> dict[str, Any]:
    ctx = stream.codec_context
    rotation = None
    if container.format.name.startswith("mov,"):  # read from the track header, no decoding
        with contextlib.suppress(OSError, struct.error):
            rotation = track_rotation(path, stream.id)
    if rotation is None:
        rotation = _rotation(container, stream, deadline)
    width, height = ctx.width or None, ctx.height or None
    if rotation in (90, 270):  # phone videos: coded landscape, shown portrait
        width, height = height, width
    return {
        "has_video": True,
        "video_codec": stream.codec.canonical_name,
        "width": width,
        "height": height,
        "rotation": rotation,
        "fps": _rate(stream),
        "pixel_format": ctx.pix_fmt,
        "video_profile": stream.profile,
        "video_config": _fingerprint(ctx.extradata),
    }


def _audio_fields(stream: Any) -> dict[str, Any]:
    ctx = stream.codec_context
    return {
        "has_audio": True,
        "audio_codec": stream.codec.canonical_name,
        "audio_sample_rate": ctx.sample_rate or None,
        "audio_channels": ctx.layout.nb_channels or None,
        "audio_config": _fingerprint(ctx.extradata),
    }


def _header_is_exact(container: Any, audio: Any) -> bool:
    if not container.duration or container.duration <= 0:
        return False
    name = container.format.name
    if name in _EXACT_FORMATS:
        return True
    # mp3 with a LAME/Info header: frame count and encoder delay known, hence a non-zero start.
    return bool(name == "mp3" and audio is not None and audio.start_time)


def _measure(path: Path, stream_index: int, deadline: float, timeout: float) -> float | None:
    """Length of one stream from its packets' timestamps (reopened: the first pass was consumed)."""
    first: float | None = None
    end: float | None = None
    summed = 0.0
    with av.open(str(path), timeout=timeout) as container:
        stream = container.streams[stream_index]
        base = float(stream.time_base or 0)
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                raise DeadlineExceeded(f"Probing took longer than {timeout:g} s")
            if packet.size == 0 or not base:
                continue
            length = (packet.duration or 0) * base
            summed += length
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                continue
            start = stamp * base
            first = start if first is None else min(first, start)
            end = start + length if end is None else max(end, start + length)
    if first is not None and end is not None and end > first:
        return end - first
    return summed or None


def describe(path: Path, *, timeout: float = _PROBE_TIMEOUT) -> MediaInfo:
    """Blocking probe (see the module docstring); BadInput for non-media, MediaError when missing."""
    path = Path(path)
    check_exists(path)
    deadline = time.monotonic() + timeout
    try:
        with av.open(str(path), timeout=timeout) as container:
            if container.format.name in _NOT_MEDIA:
                raise unreadable(path)
            video = next((s for s in container.streams.video if not s.disposition & _ATTACHED_PIC), None)
            audio = next(iter(container.streams.audio), None)
            fields: dict[str, Any] = {"has_video": False, "has_audio": False}
            if audio is not None:
                fields.update(_audio_fields(audio))
            exact = _header_is_exact(container, audio)
            header = container.duration / 1e6 if container.duration and container.duration > 0 else 0.0
            measure_index = audio.index if audio is not None else (video.index if video else None)
            if video is not None:
                fields.update(_video_fields(path, container, video, deadline))
        info = MediaInfo(duration=header, **fields)
        if exact or measure_index is None:
            if info.duration <= 0:
                raise unreadable(path)
            return info
        measured = _measure(path, measure_index, deadline, timeout)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError):
        if time.monotonic() >= deadline:  # av.open's interrupt callback ended the read
            raise DeadlineExceeded(f"Probing took longer than {timeout:g} s") from None
        raise unreadable(path) from None
    except OSError as exc:
        raise MediaError(
            f"Could not read {path.name}", details={"file": path.name, "errno": exc.errno}
        ) from None
    if measured is None:
        if info.duration > 0:
            return info
        raise unreadable(path)
    return replace(info, duration=measured)


async def probe(path: Path, *, timeout: float = _PROBE_TIMEOUT) -> MediaInfo:
    """Describe a media file without blocking the event loop (a worker thread, under ``timeout``)."""
    try:
        async with asyncio.timeout(timeout + 1):
            return await asyncio.to_thread(describe, Path(path), timeout=timeout)
    except TimeoutError:
        raise DeadlineExceeded(f"Probing took longer than {timeout:g} s") from None
