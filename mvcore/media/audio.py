"""Audio steps: exact clipping, conversion to mp3, durations.

Clips are always re-encoded with the ``atrim`` filter rather than stream-copied
or input-seeked: copying can only cut on frame boundaries (26 ms for mp3,
more for AAC) and input seeking in VBR mp3 lands on an estimated position.
Decoding from the start is sample-accurate and, for audio, still takes well
under a second for a whole song.
"""

from __future__ import annotations

import math
from pathlib import Path

from mvcore.errors import BadInput
from mvcore.media import ffmpeg
from mvcore.media.ffmpeg import MediaInfo

#: Output container (ffmpeg muxer) and encoder arguments per destination suffix.
_OUTPUTS: dict[str, tuple[str, list[str]]] = {
    ".mp3": ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
    ".wav": ("wav", ["-c:a", "pcm_s16le"]),
    ".m4a": ("ipod", ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart"]),
    ".aac": ("adts", ["-c:a", "aac", "-b:a", "192k"]),
    ".ogg": ("ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    ".oga": ("ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    ".opus": ("opus", ["-c:a", "libopus", "-b:a", "160k", "-ar", "48000"]),
    ".flac": ("flac", ["-c:a", "flac"]),
}
_MP3_RATES = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}
#: Containers round durations to 10 ms; an end_time this close past the end is "the end".
_END_SLACK = 0.05


def output_args(dst: Path, info: MediaInfo) -> list[str]:
    """Encoder + muxer arguments for ``dst``; a missing suffix means mp3.

    The muxer is always named explicitly so the temp file's name never
    matters, and mp3's limits (stereo at most, fixed sample rates) are
    respected instead of letting libmp3lame fail on a 96 kHz 5.1 source.
    """
    suffix = dst.suffix.lower() or ".mp3"
    if suffix not in _OUTPUTS:
        raise BadInput(
            f"Unsupported audio output format {suffix!r}",
            alternatives=[s.lstrip(".") for s in _OUTPUTS],
        )
    muxer, codec = _OUTPUTS[suffix]
    args = list(codec)
    if muxer == "mp3":
        if (info.audio_channels or 2) > 2:
            args += ["-ac", "2"]
        if info.audio_sample_rate and info.audio_sample_rate not in _MP3_RATES:
            args += ["-ar", "44100" if info.audio_sample_rate < 48000 else "48000"]
    return [*args, "-f", muxer]


async def _audio_info(path: Path, timeout: float) -> MediaInfo:
    info = await ffmpeg.probe(path, timeout=timeout)
    if not info.has_audio:
        raise BadInput(
            f"{Path(path).name} is not an audio file (it has no audio stream)",
            hint="Upload an mp3, wav, m4a, ogg or flac file, or a video that has sound.",
            details={"file": Path(path).name},
        )
    return info


def _check_range(start: float, end: float | None, duration: float) -> float | None:
    """Validate a clip range against the track; returns the end to use (None = to the end)."""
    track = f"({duration:.2f} s)"
    if not math.isfinite(start) or start < 0:
        raise BadInput(f"start_time must be a number >= 0, got {start}", details={"track_duration": duration})
    if end is not None:
        if not math.isfinite(end):
            raise BadInput(f"end_time must be a finite number, got {end}")
        if end <= start:
            raise BadInput(
                f"end_time {end} must be greater than start_time {start}",
                details={"start_time": start, "end_time": end, "track_duration": duration},
            )
    if start >= duration:
        raise BadInput(
            f"start_time {start} is past the end of the track {track}",
            hint=f"Use a start_time below {duration:.2f}.",
            details={"start_time": start, "track_duration": round(duration, 3)},
        )
    if end is not None and end > duration + _END_SLACK:
        raise BadInput(
            f"end_time {end} is past the end of the track {track}",
            hint=f"Use an end_time of at most {duration:.2f}, or omit it to clip to the end.",
            details={"end_time": end, "track_duration": round(duration, 3)},
        )
    return None if end is None or end >= duration else end


async def clip_audio(src: Path, dst: Path, start: float, end: float | None, *, timeout: float) -> float:
    """Cut ``[start, end)`` seconds of ``src`` into ``dst`` (format from its suffix); returns its length."""
    src, dst = Path(src), Path(dst)
    start = float(start)
    end = None if end is None else float(end)
    info = await _audio_info(src, timeout)
    use_end = _check_range(start, end, info.duration)
    trim = f"atrim=start={start:.6f}" + (f":end={use_end:.6f}" if use_end is not None else "")
    expected = (use_end if use_end is not None else info.duration) - start
    with ffmpeg.atomic_output(dst) as tmp:
        audio_only = ["-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn"]
        await ffmpeg.run_ffmpeg(
            [*audio_only, "-af", f"{trim},asetpts=PTS-STARTPTS", *output_args(dst, info), str(tmp)],
            timeout=timeout,
            expected_duration=expected,
        )
        clipped = await ffmpeg.probe(tmp, timeout=timeout)
    return clipped.duration


async def convert_to_mp3(src: Path, dst: Path, *, timeout: float) -> MediaInfo:
    """Make an mp3 of the first audio stream of ``src`` (any audio or video file ffmpeg reads).

    mp3 input is stream-copied (no second generation of lossy encoding);
    cover art and video streams are dropped.
    """
    src, dst = Path(src), Path(dst)
    info = await _audio_info(src, timeout)
    if info.audio_codec == "mp3":
        codec = ["-c:a", "copy", "-f", "mp3"]
    else:
        codec = output_args(dst.with_suffix(".mp3"), info)
    with ffmpeg.atomic_output(dst) as tmp:
        await ffmpeg.run_ffmpeg(
            ["-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn", *codec, str(tmp)],
            timeout=timeout,
            expected_duration=info.duration,
        )
        result = await ffmpeg.probe(tmp, timeout=timeout)
    return result


async def audio_duration(path: Path, *, timeout: float = 30.0) -> float:
    """Length in seconds of an audio file (or of a video's container); BadInput if it has no audio."""
    return (await _audio_info(Path(path), timeout)).duration
