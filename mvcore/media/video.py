"""Video steps: audio muxing ("offline lipsync") and stitching.

Both are single ffmpeg runs.  Stitching never re-encodes pictures it can copy: clips whose video
streams match are joined by the concat demuxer with ``-c:v copy`` and only the new sound (their
own, a song over it, or the song alone) is encoded -- the cost of the bare ``ffmpeg -f concat``.
Clips that really differ (size, rate, codec, pixel format) are normalised inside one filter graph
and encoded once.  Every output goes through ``ffmpeg.atomic_output``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path

from mvcore.errors import BadInput, MediaError
from mvcore.media import ffmpeg
from mvcore.media.ffmpeg import MediaInfo
from mvcore.media.progress import Progress
from mvcore.media.scratch import scratch_dir

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


class StitchPath(StrEnum):
    """How :func:`stitch` made its output (reported in the stitch's ``metadata``)."""

    #: clips joined by stream copy, picture and sound: nothing re-encoded.
    CONCAT_COPY = "concat-copy"
    #: picture copied from the clips, only the new sound track encoded.
    COPY_VIDEO = "copy-video"
    #: clips really differ (size, rate, codec, pixel format): one filter graph, encoded once.
    RE_ENCODE = "re-encode"


@dataclass(frozen=True, kw_only=True)
class StitchInfo(MediaInfo):
    """The probe of a stitched file plus the path that made it."""

    stitch_path: StitchPath


def _video_key(i: MediaInfo) -> tuple[object, ...]:
    return (
        i.video_codec,
        i.video_profile,
        i.width,
        i.height,
        i.rotation,
        i.fps,
        i.pixel_format,
        i.video_config,
    )


def _audio_key(i: MediaInfo) -> tuple[object, ...]:
    return (i.has_audio, i.audio_codec, i.audio_channels, i.audio_sample_rate, i.audio_config)


def _video_copyable(infos: list[MediaInfo]) -> bool:
    """True when the pictures can be joined by stream copy: identical H.264 yuv420p streams.

    "Identical" includes the decoder configuration (SPS/PPS): an MP4 track has one, so clips
    encoded with other settings (level, reference frames, crf) would not decode after a copy.
    """
    first = infos[0]
    return (
        first.video_codec == "h264"
        and first.pixel_format == "yuv420p"
        and all(_video_key(i) == _video_key(first) for i in infos)
    )


def _copy_compatible(infos: list[MediaInfo]) -> bool:
    """True when a lossless concat of picture *and* sound is safe (same streams, all with sound)."""
    return (
        _video_copyable(infos)
        and all(i.has_audio for i in infos)
        and all(_audio_key(i) == _audio_key(infos[0]) for i in infos)
    )


def _concat_list(clips: list[Path], scratch: Path) -> Path:
    listing = scratch / "clips.txt"
    lines = ["ffconcat version 1.0"]
    for clip in clips:
        escaped = str(clip.resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


def _concat_input(listing: Path) -> list[str]:
    """The concat demuxer over ``listing``, passing packets through untouched.

    ``auto_convert`` (on by default) runs ``h264_mp4toannexb``, which writes the SPS/PPS into every
    clip's first keyframe: the copy would no longer be the clips' own packets.  It exists for
    inputs that need converting (MPEG-TS); ours are MP4 with one decoder configuration.
    """
    return ["-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(listing)]


def _audio_graph(
    infos: list[MediaInfo], *, clips_from: int | None, song: int | None, total: float
) -> list[str]:
    """Chains ending in ``[aout]``: the clips' sound (inputs from ``clips_from``), the song, both, or silence.

    Each clip's sound is padded or cut to exactly that clip's length so the sound stays in step
    with the pictures; the song is padded with silence or cut to the total length, at its own
    loudness (no normalisation), and under the clips' sound it is mixed louder than they are.
    """
    t = filter_number(total)
    parts: list[str] = []
    if clips_from is not None:
        pads = []
        for index, info in enumerate(infos):
            d = filter_number(info.duration)
            source = (
                f"[{clips_from + index}:a:0]aresample=48000,"
                if info.has_audio
                else "anullsrc=r=48000:cl=stereo,"
            )
            parts.append(f"{source}{_STEREO},apad,atrim=end={d},asetpts=PTS-STARTPTS[a{index}]")
            pads.append(f"[a{index}]")
        parts.append(f"{''.join(pads)}concat=n={len(infos)}:v=0:a=1[acat]")
    chain = f"[{song}:a:0]aresample=48000,{_STEREO},apad,atrim=end={t},asetpts=PTS-STARTPTS"
    if song is not None and clips_from is None:
        parts.append(f"{chain}[aout]")
    elif song is not None:
        parts.append(f"{chain}[song]")
        parts.append(
            "[acat][song]amix=inputs=2:duration=first:dropout_transition=0:weights=0.35 0.9:normalize=0[aout]"
        )
    elif clips_from is None:
        parts.append(f"anullsrc=r=48000:cl=stereo,{_STEREO},atrim=end={t}[aout]")
    else:
        parts.append("[acat]anull[aout]")
    return parts


def _video_graph(infos: list[MediaInfo]) -> list[str]:
    """Filter chains ending in ``[vout]``: every clip scaled/padded into the first one's frame and rate."""
    first = infos[0]
    if not first.width or not first.height:
        raise MediaError("Could not read the frame size of the first clip")
    width, height = first.width // 2 * 2, first.height // 2 * 2
    fps = filter_number(first.fps if first.fps and first.fps <= 120 else 24.0)
    parts: list[str] = []
    for index, info in enumerate(infos):
        parts.append(
            f"[{index}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={fps},format=yuv420p,"
            f"tpad=stop_mode=clone:stop_duration=1,trim=end={filter_number(info.duration)},"
            f"setpts=PTS-STARTPTS[v{index}]"
        )
    parts.append(f"{''.join(f'[v{i}]' for i in range(len(infos)))}concat=n={len(infos)}:v=1:a=0[vout]")
    return parts


def _stitch_graph(infos: list[MediaInfo], *, overlay: bool, suppress: bool) -> tuple[str, float]:
    """The one graph that normalises and joins every clip (inputs 0..N-1, song N); and the total length."""
    total = sum(info.duration for info in infos)
    audio = _audio_graph(
        infos, clips_from=None if suppress else 0, song=len(infos) if overlay else None, total=total
    )
    return ";".join([*_video_graph(infos), *audio]), total


class _Stitch:
    """One stitch job: the probed clips, the song, and the three ways to write the output."""

    def __init__(
        self,
        clips: list[Path],
        infos: list[MediaInfo],
        overlay: Path | None,
        suppress: bool,
        timeout: float,
        progress: Progress | None,
    ) -> None:
        self.clips, self.infos, self.overlay, self.suppress = clips, infos, overlay, suppress
        self.timeout, self.progress = timeout, progress
        self.total = sum(info.duration for info in infos)

    async def _run(self, args: list[str], tmp: Path, path: StitchPath) -> StitchInfo:
        await ffmpeg.run_ffmpeg(
            [*args, *MP4_ARGS, str(tmp)],
            timeout=self.timeout,
            progress=self.progress,
            expected_duration=self.total,
        )
        info = await ffmpeg.probe(tmp)
        return StitchInfo(**{f.name: getattr(info, f.name) for f in fields(MediaInfo)}, stitch_path=path)

    def _whole(self, info: StitchInfo) -> StitchInfo | None:
        """``info`` if a copy came out as long as the clips; None (re-encode instead) for odd timestamps."""
        return info if abs(info.duration - self.total) <= _CONCAT_TOLERANCE else None

    async def concat_copy(self, tmp: Path, listing: Path) -> StitchInfo | None:
        args = [*_concat_input(listing), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy"]
        return self._whole(await self._run(args, tmp, StitchPath.CONCAT_COPY))

    async def copy_video(self, tmp: Path, listing: Path) -> StitchInfo | None:
        """Pictures by stream copy from the concat demuxer (input 0); only the sound is built and encoded."""
        inputs = _concat_input(listing)
        clips_from = None
        if not self.suppress:  # the clips' own sound: read from each clip (their layouts may differ)
            clips_from = 1
            inputs += [arg for clip in self.clips for arg in ("-i", str(clip))]
        song = None
        if self.overlay is not None:
            song = (len(self.clips) + 1) if clips_from is not None else 1
            inputs += ["-i", str(self.overlay)]
        graph = ";".join(_audio_graph(self.infos, clips_from=clips_from, song=song, total=self.total))
        maps = ["-filter_complex", graph, "-map", "0:v:0", "-map", "[aout]", "-c:v", "copy"]
        return self._whole(await self._run([*inputs, *maps, *AAC_ARGS], tmp, StitchPath.COPY_VIDEO))

    async def re_encode(self, tmp: Path) -> StitchInfo:
        graph, total = _stitch_graph(self.infos, overlay=self.overlay is not None, suppress=self.suppress)
        inputs = [arg for clip in self.clips for arg in ("-i", str(clip))]
        if self.overlay is not None:
            inputs += ["-i", str(self.overlay)]
        maps = ["-filter_complex", graph, "-map", "[vout]", "-map", "[aout]"]
        args = [*inputs, *maps, *X264_ARGS, *AAC_ARGS, "-t", filter_number(total)]
        return await self._run(args, tmp, StitchPath.RE_ENCODE)

    async def write(self, out: Path) -> StitchInfo:
        video_ok = _video_copyable(self.infos)
        plain = self.overlay is None and not self.suppress
        with scratch_dir("stitch") as scratch, ffmpeg.atomic_output(out) as tmp:
            listing = _concat_list(self.clips, scratch)
            info = None
            if video_ok and plain and _copy_compatible(self.infos):
                info = await self.concat_copy(tmp, listing)
            if info is None and video_ok:
                info = await self.copy_video(tmp, listing)
            if info is None:
                info = await self.re_encode(tmp)
        return info


async def _probe_clips(clips: list[Path], audio_overlay: Path | None) -> list[MediaInfo]:
    """Probe every clip and the song at once; BadInput naming the first one that cannot serve."""
    songs = [audio_overlay] if audio_overlay is not None else []
    (*infos,) = await asyncio.gather(*(ffmpeg.probe(p) for p in [*clips, *songs]))
    for index, (clip, info) in enumerate(zip(clips, infos, strict=False)):
        if not info.has_video:
            raise BadInput(f"Clip {index + 1} ({clip.name}) has no video stream", details={"file": clip.name})
    if audio_overlay is not None and not infos[-1].has_audio:
        raise BadInput(f"The audio overlay {audio_overlay.name} has no audio stream")
    return infos[: len(clips)]


async def stitch(
    clips: list[Path],
    out: Path,
    *,
    audio_overlay: Path | None = None,
    suppress_video_audio: bool = False,
    timeout: float,
    progress: Progress | None = None,
) -> StitchInfo:
    """Join ``clips`` in order into one MP4, optionally laying a song over (or instead of) their sound.

    The result always has one H.264 stream the size and frame rate of the first clip and one AAC
    stereo stream covering the whole length; its duration is the sum of the clip durations.
    Pictures are re-encoded only when the clips really differ, and then once; ``stitch_path`` of
    the result says which way was taken (:class:`StitchPath`).
    """
    if not clips:
        raise BadInput("Nothing to stitch: the clip list is empty", hint="Pass at least one video id.")
    clips = [Path(c) for c in clips]
    overlay = Path(audio_overlay) if audio_overlay is not None else None
    infos = await _probe_clips(clips, overlay)
    job = _Stitch(clips, infos, overlay, suppress_video_audio, timeout, progress)
    return await job.write(Path(out))
