"""Video steps: audio muxing ("offline lipsync") and stitching.

Both are single ffmpeg runs.  Stitching normalises every clip inside one filter graph (size, aspect,
frame rate, audio layout) and encodes once; clips that already match are
joined losslessly.  Every output goes through ``ffmpeg.atomic_output``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from mvcore.errors import BadInput, MediaError
from mvcore.media import ffmpeg
from mvcore.media.ffmpeg import MediaInfo
from mvcore.media.progress import Progress

X264_ARGS = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "21",
    "-pix_fmt",
    "yuv420p",
    "-profile:v",
    "high",
]
AAC_ARGS = ["-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"]
MP4_ARGS = ["-movflags", "+faststart", "-f", "mp4"]
#: mux_audio: picture from input 0 copied, sound from input 1, cut where the picture ends.
_MUX_COPY_VIDEO = ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-shortest", "-map_metadata", "0"]
_STEREO = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
#: A copy-concat whose result is off by more than this falls back to re-encoding.
_CONCAT_TOLERANCE = 0.15


def filter_number(value: float) -> str:
    """Compact decimal for filter graphs (no exponent notation, which ffmpeg misreads)."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


async def mux_audio(video: Path, audio: Path, out: Path, *, timeout: float) -> MediaInfo:
    """Put ``audio`` on ``video`` in place of its sound; the result is exactly as long as the video.

    The video stream is copied (no quality loss, near-instant); the audio is
    AAC-encoded, padded with silence when short and cut when long.
    """
    video, audio, out = Path(video), Path(audio), Path(out)
    v_info, a_info = await asyncio.gather(ffmpeg.probe(video), ffmpeg.probe(audio))
    if not v_info.has_video:
        raise BadInput(f"{video.name} is not a video (it has no video stream)", details={"file": video.name})
    if not a_info.has_audio:
        raise BadInput(
            f"{audio.name} is not an audio file (it has no audio stream)", details={"file": audio.name}
        )
    with ffmpeg.atomic_output(out) as tmp:
        inputs = ["-i", str(video), "-i", str(audio)]
        await ffmpeg.run_ffmpeg(
            [*inputs, *_MUX_COPY_VIDEO, "-af", f"{_STEREO},apad", *AAC_ARGS, *MP4_ARGS, str(tmp)],
            timeout=timeout,
            expected_duration=v_info.duration,
        )
        info = await ffmpeg.probe(tmp)
    return info


def _copy_compatible(infos: list[MediaInfo]) -> bool:
    """True when a lossless concat is safe: same H.264 profile, size, rate, pixel format and audio."""
    first = infos[0]

    def key(i: MediaInfo) -> tuple[object, ...]:
        return (
            i.video_codec,
            i.video_profile,
            i.width,
            i.height,
            i.rotation,
            i.fps,
            i.pixel_format,
            i.audio_codec,
            i.audio_channels,
            i.audio_sample_rate,
        )

    return (
        first.video_codec == "h264"
        and first.pixel_format == "yuv420p"
        and all(i.has_audio and i.has_video for i in infos)
        and all(key(i) == key(first) for i in infos)
    )


def _concat_list(clips: list[Path], scratch: Path) -> Path:
    listing = scratch / "clips.txt"
    lines = ["ffconcat version 1.0"]
    for clip in clips:
        escaped = str(clip.resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


def _stitch_graph(infos: list[MediaInfo], *, overlay: bool, suppress: bool) -> tuple[str, float]:
    """The filter graph that normalises and concatenates every clip; returns it and the total length."""
    first = infos[0]
    if not first.width or not first.height:
        raise MediaError("Could not read the frame size of the first clip")
    width, height = first.width // 2 * 2, first.height // 2 * 2
    fps = filter_number(first.fps if first.fps and first.fps <= 120 else 24.0)
    parts: list[str] = []
    pads: list[str] = []
    for index, info in enumerate(infos):
        d = filter_number(info.duration)
        parts.append(
            f"[{index}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={fps},format=yuv420p,"
            f"tpad=stop_mode=clone:stop_duration=1,trim=end={d},setpts=PTS-STARTPTS[v{index}]"
        )
        pads.append(f"[v{index}]")
        if suppress:
            continue
        source = f"[{index}:a:0]aresample=48000," if info.has_audio else "anullsrc=r=48000:cl=stereo,"
        parts.append(f"{source}{_STEREO},apad,atrim=end={d},asetpts=PTS-STARTPTS[a{index}]")
        pads.append(f"[a{index}]")
    total = sum(info.duration for info in infos)
    t = filter_number(total)
    audio_streams = 0 if suppress else 1
    parts.append(
        f"{''.join(pads)}concat=n={len(infos)}:v=1:a={audio_streams}[vout]" + ("" if suppress else "[acat]")
    )
    song = f"[{len(infos)}:a:0]aresample=48000,{_STEREO},apad,atrim=end={t},asetpts=PTS-STARTPTS"
    if overlay and suppress:
        parts.append(f"{song}[aout]")
    elif overlay:
        parts.append(f"{song}[song]")
        parts.append(
            "[acat][song]amix=inputs=2:duration=first:dropout_transition=0:weights=0.35 0.9:normalize=0[aout]"
        )
    elif suppress:
        parts.append(f"anullsrc=r=48000:cl=stereo,{_STEREO},atrim=end={t}[aout]")
    else:
        parts.append("[acat]anull[aout]")
    return ";".join(parts), total


async def stitch(
    clips: list[Path],
    out: Path,
    *,
    audio_overlay: Path | None = None,
    suppress_video_audio: bool = False,
    timeout: float,
    progress: Progress | None = None,
) -> MediaInfo:
    """Join ``clips`` in order into one MP4, optionally laying a song over (or instead of) their sound.

    The result always has one H.264 stream the size and frame rate of the
    first clip and one AAC stereo stream covering the whole length; its
    duration is the sum of the clip durations.
    """
    if not clips:
        raise BadInput("Nothing to stitch: the clip list is empty", hint="Pass at least one video id.")
    clips = [Path(c) for c in clips]
    out = Path(out)
    infos = list(await asyncio.gather(*(ffmpeg.probe(c) for c in clips)))
    for index, (clip, info) in enumerate(zip(clips, infos, strict=True)):
        if not info.has_video:
            raise BadInput(f"Clip {index + 1} ({clip.name}) has no video stream", details={"file": clip.name})
    overlay_info = await ffmpeg.probe(audio_overlay) if audio_overlay is not None else None
    if overlay_info is not None and not overlay_info.has_audio:
        raise BadInput(f"The audio overlay {Path(str(audio_overlay)).name} has no audio stream")
    total = sum(info.duration for info in infos)
    with tempfile.TemporaryDirectory(prefix="mvcore-stitch-") as scratch, ffmpeg.atomic_output(out) as tmp:
        if audio_overlay is None and not suppress_video_audio and _copy_compatible(infos):
            listing = _concat_list(clips, Path(scratch))
            concat = ["-f", "concat", "-safe", "0", "-i", str(listing)]
            await ffmpeg.run_ffmpeg(
                [*concat, "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", *MP4_ARGS, str(tmp)],
                timeout=timeout,
                progress=progress,
                expected_duration=total,
            )
            info = await ffmpeg.probe(tmp)
            if abs(info.duration - total) <= _CONCAT_TOLERANCE:
                return info
        graph, total = _stitch_graph(infos, overlay=audio_overlay is not None, suppress=suppress_video_audio)
        inputs = [arg for clip in clips for arg in ("-i", str(clip))]
        if audio_overlay is not None:
            inputs += ["-i", str(audio_overlay)]
        maps = ["-filter_complex", graph, "-map", "[vout]", "-map", "[aout]"]
        await ffmpeg.run_ffmpeg(
            [*inputs, *maps, *X264_ARGS, *AAC_ARGS, "-t", filter_number(total), *MP4_ARGS, str(tmp)],
            timeout=timeout,
            progress=progress,
            expected_duration=total,
        )
        info = await ffmpeg.probe(tmp)
    return info
