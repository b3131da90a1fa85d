"""Shared helpers: best-of-N timing loops, percentiles, result lines, generated flavor trees.

Every benchmark line is a dict with at least the keys in ``REQUIRED_KEYS``:

- ``value``/``unit``: what mvcore measured;
- ``baseline``/``baseline_value``: what the alternative is and what it measured, same unit;
- ``ratio``: ``value / baseline_value`` (always that way round; the target says which side is good);
- ``target``: the goal as text (``"ratio <= 2"``), with ``met`` true/false (null when not judged).

A line may add ``note`` (e.g. ``"skipped: omegaconf not installed"``) and other details.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sys
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLAVORS_DIR = REPO / "flavors"
REQUIRED_KEYS = ("name", "value", "unit", "baseline", "baseline_value", "ratio", "target")
TINY_ENV = "MVCORE_BENCH_TINY"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def tiny() -> bool:
    """True under ``MVCORE_BENCH_TINY=1``: the smallest sizes, for tests that only check the shape."""
    return os.environ.get(TINY_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


# ---- timing -------------------------------------------------------------------------------------
def _autorange(timer: timeit.Timer, min_time: float) -> int:
    """Smallest loop count (1, 2, 5, 10, 20, ...) whose run takes at least ``min_time`` seconds."""
    number = 1
    while True:
        for factor in (1, 2, 5):
            count = number * factor
            if timer.timeit(count) >= min_time:
                return count
        number *= 10


def per_call(
    stmt: str | Callable[[], Any],
    namespace: dict[str, Any] | None = None,
    *,
    repeat: int = 5,
    min_time: float = 0.05,
    subtract_loop: bool = False,
) -> float:
    """Best-of-``repeat`` seconds per execution of ``stmt``, timeit-style.

    ``stmt`` is a statement string run in ``namespace`` (no function-call overhead: use this for
    nanosecond lookups) or a zero-argument callable.  With ``subtract_loop`` the cost of the empty
    timing loop itself is measured the same way and taken off, so tiny statements are compared by
    what they really cost rather than by loop overhead.
    """
    if tiny():
        repeat, min_time = min(repeat, 2), min(min_time, 0.005)
    timer = timeit.Timer(stmt, globals=namespace)
    number = _autorange(timer, min_time)
    best = min(timer.repeat(repeat, number)) / number
    if subtract_loop and isinstance(stmt, str):
        empty = timeit.Timer("pass")
        best -= min(empty.repeat(repeat, number)) / number
    return max(best, 1e-12)


def timed_runs(fn: Callable[[], Any], runs: int) -> list[float]:
    """Wall seconds of ``runs`` separate calls of ``fn`` (for things too slow to loop)."""
    out = []
    for _ in range(max(1, runs)):
        started = timeit.default_timer()
        fn()
        out.append(timeit.default_timer() - started)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    k = (len(ordered) - 1) * min(max(p, 0.0), 100.0) / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo))


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares ``y = slope * x + intercept``; returns (slope, intercept, r squared)."""
    n = len(xs)
    if n < 2:
        return (ys[0] / xs[0] if n and xs[0] else 0.0), 0.0, 1.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx if sxx else 0.0
    intercept = my - slope * mx
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 1.0
    return slope, intercept, r2


# ---- result lines -------------------------------------------------------------------------------
def _num(x: Any) -> Any:
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return float(f"{x:.6g}")
    return x


def result(
    name: str,
    value: float | None,
    unit: str,
    baseline: str | None = None,
    baseline_value: float | None = None,
    *,
    target: tuple[str, float] | str | None = None,
    on: str = "ratio",
    ratio: float | None = None,
    note: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One benchmark line.  ``target=("<=", 2)`` judges ``on`` (``"ratio"`` or ``"value"``)."""
    if ratio is None and isinstance(value, int | float) and isinstance(baseline_value, int | float):
        ratio = value / baseline_value if baseline_value else None
    met: bool | None = None
    if isinstance(target, tuple):
        op, bound = target
        subject = ratio if on == "ratio" else value
        if subject is not None:
            met = _OPS[op](subject, bound)
        target_text: str | None = f"{on} {op} {bound:g}"
    else:
        target_text = target
    line: dict[str, Any] = {
        "name": name,
        "value": _num(value),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": _num(baseline_value),
        "ratio": _num(ratio),
        "target": target_text,
        "met": met,
    }
    if note:
        line["note"] = note
    line.update({k: _num(v) for k, v in extra.items()})
    return line


def skipped(
    name: str, unit: str, baseline: str, reason: str, *, target: tuple[str, float] | str | None = None
) -> dict[str, Any]:
    """The line of a benchmark that could not run (an optional peer is missing): value null."""
    line = result(name, None, unit, baseline, None, target=target, note=f"skipped: {reason}")
    line["met"] = None
    return line


def error_line(area: str, exc: BaseException) -> dict[str, Any]:
    return {
        "name": f"{area}:error",
        "value": None,
        "unit": None,
        "baseline": None,
        "baseline_value": None,
        "ratio": None,
        "target": None,
        "met": None,
        "error": f"{type(exc).__name__}: {exc}"[:500],
    }


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """Progress for humans: stderr, so stdout stays one JSON object per line."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


# ---- environment --------------------------------------------------------------------------------
def rss_mib(pid: int | str = "self") -> float:
    """Resident set size from /proc/<pid>/status (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for row in handle:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- generated flavors ----------------------------------------------------------------------------
_STYLES = ("cinematic", "documentary", "anime", "noir", "vlog", "pastel", "retro", "neon")
_ANGLES = ("front", "wide", "close-up", "over the shoulder", "low angle", "aerial")
_RATIOS = ("16:9", "9:16", "1:1", "4:3")  # image aspect ratios google/imagen-4 accepts
_VIDEO_RATIOS = ("16:9", "9:16")  # what google/veo-3.1 accepts: a generated tree is a clean tree
_VIDEO_SECONDS = (4, 6, 8)


def flavor_files(i: int) -> dict[str, str]:
    """The four files of generated flavor ``i``, shaped like ``flavors/example``."""
    style = _STYLES[i % len(_STYLES)]
    ratio = _RATIOS[i % len(_RATIOS)]
    return {
        "flavor.yaml": f"description: Generated flavor {i}, {style} look.\ntags: [generated, {style}]\n",
        "parameters.yaml": (
            "# Keys missing here fall back to the 'default' flavor, then to the built-in defaults.\n"
            f"character_characteristics: quiet, determined, secretly funny, variant {i}\n"
            f"video_type: short film {i % 7}\n"
            f"video_characteristics: anamorphic, film grain, golden hour, {style}\n"
            f"camera_angle: {_ANGLES[i % len(_ANGLES)]}\n"
            f"number_of_scenes: {1 + i % 32}\n"
        ),
        "image_params.yaml": (
            f'aspect_ratio: "{ratio}"\nvideo_aspect_ratio: "{_VIDEO_RATIOS[i % 2]}"\n'
            f"video_duration: {_VIDEO_SECONDS[i % 3]}\n"
        ),
        "scene_prompts.yaml": (
            "scene_generation_prompt: |\n"
            f"  Write exactly {{number_of_scenes}} scenes of a {{video_type}} about: {{idea}} ({style} {i})\n"
            "  Character: {character_description} ({character_characteristics}).\n"
            "  Shoot every scene {camera_angle}; look: {video_characteristics}.\n"
            "  Every scene must stand alone: restate the character, place, action and camera.\n"
            '  Reply with JSON only: {{"scenes": [{{"description": "...",'
            ' "negative_description": "..."}}]}}\n'
        ),
    }


def flavor_name(i: int) -> str:
    return f"gen-{i:05d}"


def make_flavor_tree(root: Path, count: int, *, with_default: bool = True) -> list[Path]:
    """Write ``count`` generated flavors (4 files each) under ``root``, plus a copy of the repo's
    ``default`` flavor so fallback resolution is realistic.  Returns every YAML file written."""
    root.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if with_default:
        shutil.copytree(FLAVORS_DIR / "default", root / "default", dirs_exist_ok=True)
        files.extend(sorted((root / "default").glob("*.yaml")))
    for i in range(count):
        directory = root / flavor_name(i)
        directory.mkdir(exist_ok=True)
        for filename, text in flavor_files(i).items():
            path = directory / filename
            path.write_text(text, encoding="utf-8")
            files.append(path)
    return files
