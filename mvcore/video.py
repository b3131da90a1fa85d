"""Video steps: offline clip rendering, audio muxing ("offline lipsync") and stitching.

All of them are single ffmpeg runs.  Rendering draws one picture with Pillow
and lets ffmpeg animate it (a slow pan plus a drifting light), so it runs at
encoder speed instead of pushing Python-drawn frames through a pipe.
Stitching normalises every clip inside one filter graph (size, aspect,
frame rate, audio layout) and encodes once; clips that already match are
joined losslessly.  Every output goes through ``media.atomic_output``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import tempfile
from pathlib import Path

from PIL import Image

from mvcore import media
from mvcore.errors import BadInput, MediaError
from mvcore.media import MediaInfo
from mvcore.providers.base import Progress
from mvcore.providers.offline_art import draw_scene_background, draw_scene_overlay

_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p", "-profile:v", "high"]
_AAC = ["-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"]
_MP4 = ["-movflags", "+faststart", "-f", "mp4"]
#: mux_audio: picture from input 0 copied, sound from input 1, cut where the picture ends.
_MUX_COPY_VIDEO = ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-shortest", "-map_metadata", "0"]
_STEREO = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
#: Semitone offsets of a major pentatonic scale, for the prompt-derived tone.
_PENTATONIC = (0, 2, 4, 7, 9)
MAX_CLIP_SECONDS = 600.0
#: A copy-concat whose result is off by more than this falls back to re-encoding.
_CONCAT_TOLERANCE = 0.15


def _num(value: float) -> str:
    """Compact decimal for filter graphs (no exponent notation, which ffmpeg misreads)."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _orb(size: int, colour: tuple[int, int, int]) -> Image.Image:
    """A soft translucent light that drifts over the picture, so frames visibly move."""
    # radial_gradient is 0 at the centre and 181 on the inscribed circle.
    alpha = Image.radial_gradient("L").point(lambda v: int(150 * max(0.0, 1 - v / 181) ** 1.5))
    orb = Image.new("RGBA", (256, 256), (*colour, 255))
    orb.putalpha(alpha)
    return orb.resize((size, size), Image.Resampling.BILINEAR)


def _tone(rng: random.Random, duration: float) -> str:
    """A quiet pentatonic chord with a slow tremolo; the notes follow the prompt hash."""
    root = 220.0 * 2 ** ((rng.choice(_PENTATONIC) + 12 * rng.randrange(2) - 12) / 12)
    third = root * 2 ** ((3 if rng.random() < 0.4 else 4) / 12)
    fifth = root * 1.5
    trem = _num(0.2 + rng.random() * 0.6)

    def voice(detune: float) -> str:
        return (
            f"(0.10*sin(2*PI*{_num(root * detune)}*t)+0.07*sin(2*PI*{_num(third * detune)}*t)"
            f"+0.06*sin(2*PI*{_num(fifth * detune)}*t))*(0.8+0.2*sin(2*PI*{trem}*t))"
        )

    return f"aevalsrc=exprs={voice(1.0)}|{voice(1.003)}:s=48000:d={_num(duration)}"


async def render_clip(
    out: Path,
    *,
    prompt: str,
    duration: float,
    aspect_ratio: str,
    fps: int = 24,
    long_side: int = 1280,
    with_audio: bool,
    reference_image: Path | None = None,
    seed: int | None = None,
    timeout: float,
    progress: Progress | None = None,
) -> MediaInfo:
    """Render an H.264 (+AAC when ``with_audio``) MP4 of exactly ``duration`` seconds for ``prompt``."""
    if not 0 < duration <= MAX_CLIP_SECONDS:
        raise BadInput(f"duration must be between 0 and {MAX_CLIP_SECONDS:g} seconds, got {duration}")
    if not 1 <= fps <= 120:
        raise BadInput(f"fps must be between 1 and 120, got {fps}")
    width, height = media.aspect_to_size(aspect_ratio, long_side)
    rng = _rng(prompt, seed, width, height)
    # Draw the picture larger than the frame so the crop window has room to pan.
    big_w, big_h = width + 2 * max(8, width // 12), height + 2 * max(8, height // 12)
    orb_size = max(8, min(width, height) // 4)
    start = (rng.random(), rng.random())
    end = (1 - start[0], rng.random())
    orb_period = _num(3 + rng.random() * 5)
    d = _num(duration)
    with tempfile.TemporaryDirectory(prefix="mvcore-render-") as scratch:
        base_png, orb_png, hud_png = (Path(scratch) / name for name in ("base.png", "orb.png", "hud.png"))
        orb_colour = (255, 240 - rng.randrange(60), 200 + rng.randrange(55))

        def draw() -> None:
            draw_scene_background(prompt, big_w, big_h, seed=seed).save(base_png, compress_level=1)
            _orb(orb_size, orb_colour).save(orb_png, compress_level=1)
            hud = draw_scene_overlay(prompt, width, height, reference_image=reference_image)
            hud.save(hud_png, compress_level=1)

        await asyncio.to_thread(draw)
        # Layers: [0] the landscape, panned by a moving crop window; [1] a drifting light;
        # [2] the caption + reference image, fixed.  Crop/overlay are cheap per frame.
        pan = (
            f"crop=w={width}:h={height}"
            f":x='(iw-ow)*({_num(start[0])}+{_num(end[0] - start[0])}*t/{d})'"
            f":y='(ih-oh)*({_num(start[1])}+{_num(end[1] - start[1])}*t/{d})'"
        )
        drift = (
            f"overlay=x='(W-w)*(0.5+0.45*sin(2*PI*t/{orb_period}))'"
            f":y='(H-h)*(0.5+0.4*cos(2*PI*t/{orb_period}*0.7))':format=auto"
        )
        fade = min(0.3, duration / 4)
        fades = f",fade=t=in:d={_num(fade)},fade=t=out:st={_num(duration - fade)}:d={_num(fade)}"
        graph = (
            f"[0:v]format=yuv420p,loop=loop=-1:size=1:start=0,setpts=N/({fps}*TB),trim=end={d},{pan}[bg];"
            "[1:v]format=rgba[orb];[2:v]format=rgba[hud];"
            f"[bg][orb]{drift}[lit];[lit][hud]overlay=0:0:format=auto{fades},format=yuv420p,setsar=1[v]"
        )
        # Every picture is read once: the landscape is converted to yuv420p a single time and
        # repeated by the loop filter (3x cheaper than ``-loop 1``, which re-decodes the PNG per
        # frame); the other layers are single frames that overlay repeats (eof_action=repeat).
        args = ["-framerate", str(fps), "-i", str(base_png), "-i", str(orb_png), "-i", str(hud_png)]
        maps = ["-map", "[v]"]
        if with_audio:
            args += ["-f", "lavfi", "-i", _tone(rng, duration)]
            afade = min(0.2, duration / 4)
            graph += (
                f";[3:a]afade=t=in:d={_num(afade)},afade=t=out:st={_num(duration - afade)}:d={_num(afade)}[a]"
            )
            maps += ["-map", "[a]", *_AAC]
        with media.atomic_output(out) as tmp:
            await media.run_ffmpeg(
                [*args, "-filter_complex", graph, *maps, *_X264, "-r", str(fps), "-t", d, *_MP4, str(tmp)],
                timeout=timeout,
                progress=progress,
                expected_duration=duration,
            )
            info = await media.probe(tmp)
    return info


async def mux_audio(video: Path, audio: Path, out: Path, *, timeout: float) -> MediaInfo:
    """Put ``audio`` on ``video`` in place of its sound; the result is exactly as long as the video.

    The video stream is copied (no quality loss, near-instant); the audio is
    AAC-encoded, padded with silence when short and cut when long.
    """
    video, audio, out = Path(video), Path(audio), Path(out)
    v_info, a_info = await asyncio.gather(media.probe(video), media.probe(audio))
    if not v_info.has_video:
        raise BadInput(f"{video.name} is not a video (it has no video stream)", details={"file": video.name})
    if not a_info.has_audio:
        raise BadInput(
            f"{audio.name} is not an audio file (it has no audio stream)", details={"file": audio.name}
        )
    with media.atomic_output(out) as tmp:
        inputs = ["-i", str(video), "-i", str(audio)]
        await media.run_ffmpeg(
            [*inputs, *_MUX_COPY_VIDEO, "-af", f"{_STEREO},apad", *_AAC, *_MP4, str(tmp)],
            timeout=timeout,
            expected_duration=v_info.duration,
        )
        info = await media.probe(tmp)
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
    fps = _num(first.fps if first.fps and first.fps <= 120 else 24.0)
    parts: list[str] = []
    pads: list[str] = []
    for index, info in enumerate(infos):
        d = _num(info.duration)
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
    t = _num(total)
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
    infos = list(await asyncio.gather(*(media.probe(c) for c in clips)))
    for index, (clip, info) in enumerate(zip(clips, infos, strict=True)):
        if not info.has_video:
            raise BadInput(f"Clip {index + 1} ({clip.name}) has no video stream", details={"file": clip.name})
    overlay_info = await media.probe(audio_overlay) if audio_overlay is not None else None
    if overlay_info is not None and not overlay_info.has_audio:
        raise BadInput(f"The audio overlay {Path(str(audio_overlay)).name} has no audio stream")
    total = sum(info.duration for info in infos)
    with tempfile.TemporaryDirectory(prefix="mvcore-stitch-") as scratch, media.atomic_output(out) as tmp:
        if audio_overlay is None and not suppress_video_audio and _copy_compatible(infos):
            listing = _concat_list(clips, Path(scratch))
            concat = ["-f", "concat", "-safe", "0", "-i", str(listing)]
            await media.run_ffmpeg(
                [*concat, "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", *_MP4, str(tmp)],
                timeout=timeout,
                progress=progress,
                expected_duration=total,
            )
            info = await media.probe(tmp)
            if abs(info.duration - total) <= _CONCAT_TOLERANCE:
                return info
        graph, total = _stitch_graph(infos, overlay=audio_overlay is not None, suppress=suppress_video_audio)
        inputs = [arg for clip in clips for arg in ("-i", str(clip))]
        if audio_overlay is not None:
            inputs += ["-i", str(audio_overlay)]
        maps = ["-filter_complex", graph, "-map", "[vout]", "-map", "[aout]"]
        await media.run_ffmpeg(
            [*inputs, *maps, *_X264, *_AAC, "-t", _num(total), *_MP4, str(tmp)],
            timeout=timeout,
            progress=progress,
            expected_duration=total,
        )
        info = await media.probe(tmp)
    return info
