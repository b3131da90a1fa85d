"""Media: mvcore's ffmpeg steps against the bare ffmpeg command doing the same job, same run.

1. ``media_render_720p``: :func:`mvcore.providers.offline_video.render_clip`, 8 s at 1280x720 (drawn
   with Pillow, one ffmpeg run, output probed) against that very ffmpeg command run bare on the
   same pictures.  The command is not re-typed here: one untimed render runs with
   ``mvcore.media.ffmpeg.run_ffmpeg`` wrapped to record its arguments and keep its input files, so the
   baseline is exactly the filter graph and encoder settings mvcore uses.
2. ``media_audio_clip``: :func:`mvcore.media.audio.clip_audio` of 8 s from the middle of a 3-minute mp3
   against ``ffmpeg -ss S -t 8 -i song.mp3 -c:a libmp3lame -b:a 192k clip.mp3`` (mvcore decodes
   from the start and trims with ``atrim`` so the cut is sample-accurate, and probes input and
   output; the bare command seeks the input).
3. ``media_stitch_8x8s_720p``: :func:`mvcore.media.video.stitch` of 8 clips of 8 s at 1280x720 (same
   codec, size, rate and audio layout, no overlay) against ``ffmpeg -f concat -safe 0 -i list.txt
   -c copy``.  ``path`` says whether mvcore took its stream-copy fast path.  An extra line,
   ``media_stitch_overlay_reencode``, times the usual pipeline stitch (song overlay, clip sound
   suppressed), which must re-encode, against the same plain concat: not judged, it shows what
   the fast path saves.

Runs alternate mvcore / bare and keep the best of each (the machine may be busy).  Quick mode:
2 s clips, 3 of them, a 1-minute song; ``MVCORE_BENCH_TINY=1``: 1 s clips at 320 px.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.common import note, result, tiny
from mvcore.media import audio, ffmpeg, video
from mvcore.providers import offline_video

TARGET = ("<=", 1.2)
TARGET_TEXT = "≤ 1.2×"  # noqa: RUF001 - the wording of the target


def _sizes(quick: bool) -> dict[str, Any]:
    if tiny():
        return {"clip_s": 1, "long_side": 320, "clips": 2, "song_s": 20, "runs": 1, "render_runs": 1}
    if quick:
        return {"clip_s": 2, "long_side": 1280, "clips": 3, "song_s": 60, "runs": 5, "render_runs": 2}
    return {"clip_s": 8, "long_side": 1280, "clips": 8, "song_s": 180, "runs": 7, "render_runs": 3}


def _line(name: str, mvcore_s: float, baseline: str, bare_s: float, **extra: Any) -> dict[str, Any]:
    line = result(name, mvcore_s * 1000, "ms", baseline, bare_s * 1000, target=TARGET, **extra)
    line["target"] = TARGET_TEXT
    return line


def _bare(args: list[str]) -> None:
    """Run ``ffmpeg <args>`` the plain way (no progress pipe, no probing)."""
    done = subprocess.run(
        [ffmpeg.ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bare ffmpeg failed: {done.stderr[-500:]}")


def _alternate(
    loop: asyncio.AbstractEventLoop,
    ours: Callable[[], Awaitable[Any]],
    bare: Callable[[], None],
    runs: int,
) -> tuple[float, float]:
    """Best wall seconds of ``ours`` and of ``bare`` over ``runs`` alternating rounds."""
    best_ours = best_bare = float("inf")
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        loop.run_until_complete(ours())
        best_ours = min(best_ours, time.perf_counter() - started)
        started = time.perf_counter()
        bare()
        best_bare = min(best_bare, time.perf_counter() - started)
    return best_ours, best_bare


def _is_file(arg: str) -> bool:
    try:
        return Path(arg).is_file()
    except OSError:  # a lavfi graph is not a path (and may be longer than a file name may be)
        return False


class _Recorder:
    """Wraps ``mvcore.media.ffmpeg.run_ffmpeg``: keeps every command and a copy of its input files."""

    def __init__(self, keep: Path) -> None:
        self.keep = keep
        self.commands: list[list[str]] = []
        self._original = ffmpeg.run_ffmpeg

    async def __call__(self, args: list[str], **kwargs: Any) -> None:
        kept = list(args)
        for index, arg in enumerate(args[:-1]):
            if index > 0 and args[index - 1] == "-i" and _is_file(arg):
                copy = self.keep / f"in{len(self.commands)}_{index}{Path(arg).suffix}"
                shutil.copyfile(arg, copy)
                kept[index] = str(copy)
        self.commands.append(kept)
        await self._original(args, **kwargs)

    def __enter__(self) -> _Recorder:
        ffmpeg.run_ffmpeg = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        ffmpeg.run_ffmpeg = self._original  # type: ignore[assignment]


def _render(out: Path, size: dict[str, Any], prompt: str) -> Awaitable[Any]:
    return offline_video.render_clip(
        out,
        prompt=prompt,
        duration=float(size["clip_s"]),
        aspect_ratio="16:9",
        fps=24,
        long_side=size["long_side"],
        with_audio=True,
        timeout=600,
    )


def _bench_render(loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any]) -> dict[str, Any]:
    keep = work / "render_inputs"
    keep.mkdir()
    with _Recorder(keep) as recorder:  # untimed: learn the exact command render_clip runs
        info = loop.run_until_complete(_render(work / "captured.mp4", size, "a fox on a rooftop"))
    args = recorder.commands[-1]
    args[-1] = str(work / "bare_render.mp4")
    ours, bare = _alternate(
        loop,
        lambda: _render(work / "render.mp4", size, "a fox on a rooftop"),
        lambda: _bare(args),
        size["render_runs"],
    )
    bare_info = ffmpeg.probe_sync(work / "bare_render.mp4")
    return _line(
        f"media_render_{info.height}p",
        ours,
        "the same ffmpeg command, bare",
        bare,
        clip_seconds=size["clip_s"],
        size=f"{info.width}x{info.height}",
        same_output=(bare_info.width, bare_info.height, round(bare_info.duration, 2))
        == (info.width, info.height, round(info.duration, 2)),
    )


def _bench_audio(loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any]) -> dict[str, Any]:
    song = work / "song.mp3"
    seconds = size["song_s"]
    _bare(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "192k",
            str(song),
        ]
    )
    start, length = round(seconds / 2, 3), min(8.0, seconds / 4)
    bare_args = [
        "-ss",
        str(start),
        "-t",
        str(length),
        "-i",
        str(song),
        "-map",
        "0:a:0",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "192k",
        "-f",
        "mp3",
        str(work / "bare_clip.mp3"),
    ]
    ours, bare = _alternate(
        loop,
        lambda: audio.clip_audio(song, work / "clip.mp3", start, start + length, timeout=120),
        lambda: _bare(bare_args),
        size["runs"],
    )
    return _line(
        "media_audio_clip",
        ours,
        "ffmpeg -ss -t -i song.mp3 (input seek)",
        bare,
        song_seconds=seconds,
        clip_seconds=length,
    )


def _bench_stitch(loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any]) -> list[dict[str, Any]]:
    clips = []
    for index in range(size["clips"]):
        clip = work / f"clip{index}.mp4"
        loop.run_until_complete(_render(clip, size, f"scene {index}: a fox in the city"))
        clips.append(clip)
    listing = work / "list.txt"
    listing.write_text("".join(f"file '{c}'\n" for c in clips), encoding="utf-8")
    bare_args = [
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(listing),
        "-c",
        "copy",
        str(work / "bare_stitch.mp4"),
    ]

    keep = work / "stitch_inputs"
    keep.mkdir()
    with _Recorder(keep) as recorder:  # untimed: which path does stitch take for these clips?
        loop.run_until_complete(video.stitch(clips, work / "probe_stitch.mp4", timeout=600))
    copied = all("copy" in cmd for cmd in recorder.commands) and len(recorder.commands) == 1
    ours, bare = _alternate(
        loop,
        lambda: video.stitch(clips, work / "stitch.mp4", timeout=600),
        lambda: _bare(bare_args),
        size["runs"],
    )
    label = f"{size['clips']}x{size['clip_s']}s_{ffmpeg.probe_sync(clips[0]).height}p"
    lines = [
        _line(
            f"media_stitch_{label}",
            ours,
            "ffmpeg -f concat -safe 0 -c copy",
            bare,
            path="stream-copy" if copied else "re-encode",
            clips=size["clips"],
            clip_seconds=size["clip_s"],
        )
    ]
    song = work / "song.mp3"
    started = time.perf_counter()
    loop.run_until_complete(
        video.stitch(clips, work / "overlay.mp4", audio_overlay=song, suppress_video_audio=True, timeout=1800)
    )
    overlay_s = time.perf_counter() - started
    line = result(
        f"media_stitch_overlay_reencode_{label}",
        overlay_s * 1000,
        "ms",
        "ffmpeg -f concat -safe 0 -c copy",
        bare * 1000,
        target=None,
        note="song overlay + suppressed clip sound: one re-encode, by design; not judged",
    )
    lines.append(line)
    return lines


def run(quick: bool = False) -> list[dict[str, Any]]:
    size = _sizes(quick)
    loop = asyncio.new_event_loop()
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mvcore-bench-media-") as tmp:
        work = Path(tmp)
        try:
            started = time.perf_counter()
            lines.append(_bench_render(loop, work, size))
            note(f"media: render in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            lines.append(_bench_audio(loop, work, size))
            note(f"media: audio clip in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            lines.extend(_bench_stitch(loop, work, size))
            note(f"media: stitch in {time.perf_counter() - started:.1f} s")
        finally:
            loop.close()
    return lines


if __name__ == "__main__":
    import json
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
