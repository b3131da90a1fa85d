"""Media: mvcore's ffmpeg steps against the bare ffmpeg command doing the same job, same run.

1. ``media_render_720p``: :func:`mvcore.providers.offline_video.render_clip`, 8 s at 1280x720 (drawn
   with Pillow, one ffmpeg run, output probed) against that very ffmpeg command run bare on the
   same pictures.  The command is not re-typed here: one untimed render runs with
   ``mvcore.media.ffmpeg.run_ffmpeg`` wrapped to record its arguments and keep its input files, so the
   baseline is exactly the filter graph and encoder settings mvcore uses.  Target <= 1.2x.
2. ``media_audio_clip``: :func:`mvcore.media.audio.clip_audio` of 8 s from the middle of a 3-minute
   stereo 44.1 kHz mp3 (two tones; music is stereo, and the stitch lines use it as the song)
   against the bare ffmpeg clip *with the same accuracy*: decode from the start and cut with
   ``atrim`` (sample-exact; input seeking lands on an estimated position in VBR mp3, which the
   line ``media_audio_clip_vs_input_seek`` shows for information, not judged).  Target <= 1.3x.
3. ``media_stitch_<N>x<S>s_720p`` (3x2 s and, in full runs, 8x8 s): :func:`mvcore.media.video.stitch`
   of matching clips, no overlay, against ``ffmpeg -f concat -safe 0 -i list -c copy``.  <= 1.3x.
4. ``media_stitch_overlay_<N>x<S>s_720p``: the pipeline's stitch (song overlay, clip sound
   suppressed) of the same clips against ``ffmpeg -f concat -safe 0 -i list -i song -map 0:v
   -map 1:a -c:v copy -c:a aac -shortest``.  ``path`` is the way mvcore took.  <= 1.3x.
5. ``media_stitch_mismatched_3x2s``: clips of other sizes and orientations (so the picture must be
   re-encoded) with a song, against the recorded filter-graph command run bare.  <= 1.2x.

Runs alternate mvcore / bare and keep the best of each (the machine may be busy).  Each line also
has ``cpu_ms`` / ``baseline_cpu_ms`` / ``ratio_cpu``: user+system time of this process and its
ffmpeg children, which a busy machine disturbs far less than wall time (targets judge wall time).
Quick mode: only 3x2 s clips, a 1-minute song, fewer runs; ``MVCORE_BENCH_TINY=1``: 1 s clips at 320 px.
Run only this area with ``python -m benchmarks media`` (``nox -s bench -- media``).
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import note, result, tiny
from mvcore.media import audio, ffmpeg, video
from mvcore.providers import offline_video

TIGHT, LOOSE = 1.2, 1.3


def _sizes(quick: bool) -> dict[str, Any]:
    if tiny():
        small = {"clip_s": 1, "clips": 2}
        return {"clip_s": 1, "long_side": 320, "sets": [small], "song_s": 20, "runs": 1, "render_runs": 1}
    small = {"clip_s": 2, "clips": 3}
    if quick:
        return {"clip_s": 2, "long_side": 1280, "sets": [small], "song_s": 60, "runs": 5, "render_runs": 2}
    big = {"clip_s": 8, "clips": 8}
    return {"clip_s": 8, "long_side": 1280, "sets": [small, big], "song_s": 180, "runs": 7, "render_runs": 3}


def _line(name: str, t: _Timing, baseline: str, *, limit: float = TIGHT, **extra: Any) -> dict[str, Any]:
    line = result(name, t.ours * 1000, "ms", baseline, t.bare * 1000, target=("<=", limit), **extra)
    line["target"] = f"≤ {limit:g}×"  # noqa: RUF001 - the wording of the target
    line["cpu_ms"], line["baseline_cpu_ms"] = round(t.ours_cpu * 1000, 1), round(t.bare_cpu * 1000, 1)
    line["ratio_cpu"] = round(t.ours_cpu / t.bare_cpu, 3) if t.bare_cpu > 0 else None
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


@dataclass
class _Timing:
    """Best wall and best CPU seconds (ours: this process + its ffmpeg children) of both sides."""

    ours: float = float("inf")
    bare: float = float("inf")
    ours_cpu: float = float("inf")
    bare_cpu: float = float("inf")


def _cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _alternate(
    loop: asyncio.AbstractEventLoop,
    ours: Callable[[], Awaitable[Any]],
    bare: Callable[[], None],
    runs: int,
) -> _Timing:
    """Best of ``runs`` alternating rounds; CPU time is reported too (it holds on a busy machine)."""
    t = _Timing()
    for _ in range(max(1, runs)):
        started, cpu = time.perf_counter(), _cpu()
        loop.run_until_complete(ours())
        t.ours, t.ours_cpu = min(t.ours, time.perf_counter() - started), min(t.ours_cpu, _cpu() - cpu)
        started, cpu = time.perf_counter(), _cpu()
        bare()
        t.bare, t.bare_cpu = min(t.bare, time.perf_counter() - started), min(t.bare_cpu, _cpu() - cpu)
    return t


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


def _render(out: Path, size: dict[str, Any], prompt: str, aspect: str = "16:9") -> Awaitable[Any]:
    return offline_video.render_clip(
        out,
        prompt=prompt,
        duration=float(size["clip_s"]),
        aspect_ratio=aspect,
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
    timing = _alternate(
        loop,
        lambda: _render(work / "render.mp4", size, "a fox on a rooftop"),
        lambda: _bare(args),
        size["render_runs"],
    )
    bare_info = ffmpeg.probe_sync(work / "bare_render.mp4")
    return _line(
        f"media_render_{info.height}p",
        timing,
        "the same ffmpeg command, bare",
        clip_seconds=size["clip_s"],
        size=f"{info.width}x{info.height}",
        same_output=(bare_info.width, bare_info.height, round(bare_info.duration, 2))
        == (info.width, info.height, round(info.duration, 2)),
    )


def _bench_audio(loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any]) -> list[dict[str, Any]]:
    song = work / "song.mp3"
    seconds = size["song_s"]
    _bare(
        [
            "-filter_complex",
            f"sine=f=440:d={seconds}:r=44100[l];sine=f=554:d={seconds}:r=44100[r];[l][r]amerge=inputs=2",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "192k",
            str(song),
        ]
    )
    start, length = round(seconds / 2, 3), min(8.0, seconds / 4)
    encode = ["-map", "0:a:0", "-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3"]
    trim = f"atrim=start={start:.6f}:end={start + length:.6f},asetpts=PTS-STARTPTS"
    exact = ["-i", str(song), *encode[:2], "-af", trim, *encode[2:], str(work / "bare_clip.mp3")]
    seek = ["-ss", str(start), "-t", str(length), "-i", str(song), *encode, str(work / "seek_clip.mp3")]
    timing = _alternate(
        loop,
        lambda: audio.clip_audio(song, work / "clip.mp3", start, start + length, timeout=120),
        lambda: _bare(exact),
        size["runs"],
    )
    seeking = _alternate(loop, _nothing, lambda: _bare(seek), size["runs"]).bare
    common = {"song_seconds": seconds, "clip_seconds": length}
    return [
        _line(
            "media_audio_clip",
            timing,
            "ffmpeg -i song.mp3 -af atrim (same accuracy)",
            limit=LOOSE,
            **common,
        ),
        result(
            "media_audio_clip_vs_input_seek",
            timing.ours * 1000,
            "ms",
            "ffmpeg -ss -t -i song.mp3 (input seek: not sample-exact on VBR mp3)",
            seeking * 1000,
            target=None,
            note="information only: input seeking trades accuracy for speed",
            **common,
        ),
    ]


async def _nothing() -> None:
    return None


def _clips(loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any], count: int) -> list[Path]:
    clips = []
    for index in range(count):
        clip = work / f"clip{size['clip_s']}s_{index}.mp4"
        loop.run_until_complete(_render(clip, size, f"scene {index}: a fox in the city"))
        clips.append(clip)
    return clips


def _bench_stitch(
    loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any], song: Path
) -> list[dict[str, Any]]:
    """Plain and overlay stitch of matching clips against the bare concat commands."""
    clips = _clips(loop, work, size, size["clips"])
    listing = work / f"list{size['clip_s']}.txt"
    listing.write_text("".join(f"file '{c}'\n" for c in clips), encoding="utf-8")
    concat = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    label = f"{size['clips']}x{size['clip_s']}s_{ffmpeg.probe_sync(clips[0]).height}p"
    plain = video.stitch(clips, work / "probe_plain.mp4", timeout=600)
    path = loop.run_until_complete(plain).stitch_path
    timing = _alternate(
        loop,
        lambda: video.stitch(clips, work / "stitch.mp4", timeout=600),
        lambda: _bare([*concat, "-c", "copy", str(work / "bare_stitch.mp4")]),
        size["runs"],
    )
    extra = {"clips": size["clips"], "clip_seconds": size["clip_s"]}
    lines = [
        _line(
            f"media_stitch_{label}",
            timing,
            "ffmpeg -f concat -safe 0 -c copy",
            limit=LOOSE,
            path=path,
            **extra,
        )
    ]
    bare_overlay = [*concat, "-i", str(song), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac"]
    overlay_kw: dict[str, Any] = {"audio_overlay": song, "suppress_video_audio": True, "timeout": 600}
    path = loop.run_until_complete(video.stitch(clips, work / "probe_overlay.mp4", **overlay_kw)).stitch_path
    timing = _alternate(
        loop,
        lambda: video.stitch(clips, work / "overlay.mp4", **overlay_kw),
        lambda: _bare([*bare_overlay, "-shortest", str(work / "bare_overlay.mp4")]),
        size["runs"],
    )
    lines.append(
        _line(
            f"media_stitch_overlay_{label}",
            timing,
            "ffmpeg -f concat -i list -i song -map 0:v -map 1:a -c:v copy -c:a aac -shortest",
            limit=LOOSE,
            path=path,
            **extra,
        )
    )
    return lines


def _bench_mismatched(
    loop: asyncio.AbstractEventLoop, work: Path, size: dict[str, Any], song: Path
) -> dict[str, Any]:
    """Clips that must be re-encoded (other orientations) against the same filter graph run bare."""
    small = {**size, "clip_s": min(2, size["clip_s"])}
    clips = []
    for index, aspect in enumerate(("16:9", "9:16", "16:9")):
        clip = work / f"odd{index}.mp4"
        loop.run_until_complete(_render(clip, small, f"odd scene {index}", aspect))
        clips.append(clip)
    keep = work / "mismatched_inputs"
    keep.mkdir()
    kwargs: dict[str, Any] = {"audio_overlay": song, "suppress_video_audio": True, "timeout": 1800}
    with _Recorder(keep) as recorder:  # untimed: learn the exact command stitch runs
        path = loop.run_until_complete(video.stitch(clips, work / "probe_odd.mp4", **kwargs)).stitch_path
    args = recorder.commands[-1]
    args[-1] = str(work / "bare_odd.mp4")
    timing = _alternate(
        loop,
        lambda: video.stitch(clips, work / "odd.mp4", **kwargs),
        lambda: _bare(args),
        max(2, size["render_runs"]),
    )
    return _line(
        "media_stitch_mismatched_3x2s",
        timing,
        "the same filter-graph ffmpeg command, bare",
        path=path,
        calls=len(recorder.commands),
    )


def _timed(what: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    out = step()
    note(f"media: {what} in {time.perf_counter() - started:.1f} s")
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    size = _sizes(quick)
    loop = asyncio.new_event_loop()
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mvcore-bench-media-") as tmp:
        work = Path(tmp)
        try:
            lines.append(_timed("render", lambda: _bench_render(loop, work, size)))
            lines.extend(_timed("audio clip", lambda: _bench_audio(loop, work, size)))
            song = work / "song.mp3"
            for clip_set in size["sets"]:
                sized = {**size, **clip_set}
                lines.extend(_timed(f"stitch {clip_set}", lambda s=sized: _bench_stitch(loop, work, s, song)))
            lines.append(_timed("mismatched stitch", lambda: _bench_mismatched(loop, work, size, song)))
        finally:
            loop.close()
    return lines


if __name__ == "__main__":
    import json
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
