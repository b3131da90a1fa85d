"""Offline clip rendering: Pillow draws the layers, one ffmpeg run animates them.

Rendering draws one picture with Pillow and lets ffmpeg animate it (a slow pan
plus a drifting light), so it runs at encoder speed instead of pushing
Python-drawn frames through a pipe.  It belongs to the offline provider (it is
how that provider "generates" a video); media/ supplies only the ffmpeg plumbing.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path

from PIL import Image

from mvcore.errors import BadInput
from mvcore.media import ffmpeg
from mvcore.media.ffmpeg import MediaInfo
from mvcore.media.progress import Progress
from mvcore.media.scratch import scratch_dir
from mvcore.media.video import AAC_ARGS, MP4_ARGS, X264_ARGS
from mvcore.media.video import filter_number as _num
from mvcore.providers.offline_art import draw_scene_background, draw_scene_overlay

#: Semitone offsets of a major pentatonic scale, for the prompt-derived tone.
_PENTATONIC = (0, 2, 4, 7, 9)
MAX_CLIP_SECONDS = 600.0


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


def _picture_graph(width: int, height: int, fps: int, duration: float, rng: random.Random) -> str:
    """The video part of the render graph: [0] the landscape panned by a moving crop window,
    [1] a drifting light, [2] the caption + reference image, fixed.  Crop/overlay are cheap per frame.

    Every picture is read once: the landscape is converted to yuv420p a single time and repeated
    by the loop filter (3x cheaper than ``-loop 1``, which re-decodes the PNG per frame); the other
    layers are single frames that overlay repeats (eof_action=repeat).
    """
    start = (rng.random(), rng.random())
    end = (1 - start[0], rng.random())
    orb_period = _num(3 + rng.random() * 5)
    d = _num(duration)
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
    return (
        f"[0:v]format=yuv420p,loop=loop=-1:size=1:start=0,setpts=N/({fps}*TB),trim=end={d},{pan}[bg];"
        "[1:v]format=rgba[orb];[2:v]format=rgba[hud];"
        f"[bg][orb]{drift}[lit];[lit][hud]overlay=0:0:format=auto{fades},format=yuv420p,setsar=1[v]"
    )


async def _draw_layers(
    scratch: Path,
    prompt: str,
    size: tuple[int, int],
    rng: random.Random,
    seed: int | None,
    reference: Path | None,
) -> list[Path]:
    """Draw the three picture layers (in a thread: Pillow is CPU work) and return their PNGs."""
    width, height = size
    # Draw the picture larger than the frame so the crop window has room to pan.
    big_w, big_h = width + 2 * max(8, width // 12), height + 2 * max(8, height // 12)
    orb_size = max(8, min(width, height) // 4)
    base_png, orb_png, hud_png = (scratch / name for name in ("base.png", "orb.png", "hud.png"))
    orb_colour = (255, 240 - rng.randrange(60), 200 + rng.randrange(55))

    def draw() -> None:
        draw_scene_background(prompt, big_w, big_h, seed=seed).save(base_png, compress_level=1)
        _orb(orb_size, orb_colour).save(orb_png, compress_level=1)
        hud = draw_scene_overlay(prompt, width, height, reference_image=reference)
        hud.save(hud_png, compress_level=1)

    await asyncio.to_thread(draw)
    return [base_png, orb_png, hud_png]


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
    width, height = ffmpeg.aspect_to_size(aspect_ratio, long_side)
    rng = _rng(prompt, seed, width, height)
    graph = _picture_graph(width, height, fps, duration, rng)
    d = _num(duration)
    with scratch_dir("render") as scratch:
        layers = await _draw_layers(scratch, prompt, (width, height), rng, seed, reference_image)
        args = ["-framerate", str(fps), *(arg for png in layers for arg in ("-i", str(png)))]
        maps = ["-map", "[v]"]
        if with_audio:
            args += ["-f", "lavfi", "-i", _tone(rng, duration)]
            afade = min(0.2, duration / 4)
            graph += (
                f";[3:a]afade=t=in:d={_num(afade)},afade=t=out:st={_num(duration - afade)}:d={_num(afade)}[a]"
            )
            maps += ["-map", "[a]", *AAC_ARGS]
        encode = [*maps, *X264_ARGS, "-r", str(fps), "-t", d, *MP4_ARGS]
        with ffmpeg.atomic_output(out) as tmp:
            await ffmpeg.run_ffmpeg(
                [*args, "-filter_complex", graph, *encode, str(tmp)],
                timeout=timeout,
                progress=progress,
                expected_duration=duration,
            )
            info = await ffmpeg.probe(tmp)
    return info
