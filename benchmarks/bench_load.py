"""Load: cold discovery + validation + snapshot of N generated flavors against a bare YAML parse.

For N in 1, 10, 100, 1,000 a tree of N flavors (4 files each, shaped like ``flavors/example``)
plus a copy of the repo's ``default`` flavor is written to a temporary directory.  mvcore's time is
``FlavorStore([root], PluginHost(entry_points=False))`` -- a fresh store, so a cold parse cache,
including discovery, validation and the precomputed resolution of every (flavor, type) pair.
The baseline is ``yaml.load(f, Loader=yaml.CSafeLoader)`` of exactly the same files (file list
given, no listing).  Both are best-of-k, interleaved, in the same process; the slope (µs per
flavor) comes from a least-squares fit over the sizes measured.  Each line also carries the best
CPU time of either side (``cpu_ms``, ``baseline_cpu_ms``, ``ratio_cpu``): on a shared machine the
wall-clock ratio is at the mercy of other processes, the CPU ratio much less so.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import linear_fit, make_flavor_tree, note, result, tiny
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

RATIO_TARGET = ("<=", 1.5)
THOUSAND_BUDGET_S = 1.0
QUICK_BUDGET_S = 25.0  # the quick run measures 1,000 flavors only when it should fit in this


def _store(root: Path) -> FlavorStore:
    return FlavorStore([root], PluginHost(entry_points=False))


def _parse(files: list[Path]) -> None:
    for path in files:
        with open(path, encoding="utf-8") as handle:
            yaml.load(handle, Loader=yaml.CSafeLoader)


def _once(fn: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU time (all threads) is what a busy machine cannot inflate."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(root: Path, count: int, runs: int) -> tuple[float, float, float, float]:
    """Best-of-``runs`` (mvcore wall, baseline wall, mvcore CPU, baseline CPU) for ``count`` flavors."""
    files = make_flavor_tree(root, count)
    store = _store(root)  # warm imports and the per-type caches; checks the tree loads cleanly
    snap = store.current
    if len(snap.names()) != count + 1 or snap.errors():
        raise RuntimeError(f"generated tree did not load cleanly: {[str(e) for e in snap.errors()[:3]]}")
    del store, snap
    best = [float("inf")] * 4
    for _ in range(runs):  # interleaved, so machine noise hits both sides alike
        mv_wall, mv_cpu = _once(lambda: _store(root))
        base_wall, base_cpu = _once(lambda: _parse(files))
        best = [min(b, x) for b, x in zip(best, (mv_wall, base_wall, mv_cpu, base_cpu), strict=True)]
    return best[0], best[1], best[2], best[3]


def run(quick: bool = False) -> list[dict[str, Any]]:
    if tiny():
        plan = [(1, 2), (5, 2)]
    elif quick:
        plan = [(1, 5), (10, 5), (100, 3)]
    else:
        plan = [(1, 9), (10, 7), (100, 5), (1000, 3)]
    lines: list[dict[str, Any]] = []
    points: list[tuple[int, float, float, float, float]] = []
    tmp = Path(tempfile.mkdtemp(prefix="mvcore-bench-load-"))
    started = time.perf_counter()
    try:
        for count, runs in plan:
            points.append((count, *measure(tmp / f"n{count}" / "flavors", count, runs)))
        if quick and not tiny():
            # 1,000 (best of 2, plus its baseline) if the slope so far says it fits the quick budget
            slope, intercept, _ = linear_fit([p[0] for p in points], [p[1] for p in points])
            predicted = 4 * (slope * 1000 + intercept) + 2.0  # warm-up + 2 runs + baselines, tree writing
            if time.perf_counter() - started + predicted < QUICK_BUDGET_S:
                points.append((1000, *measure(tmp / "n1000" / "flavors", 1000, 2)))
            else:
                note(f"load: skipping 1,000 flavors in --quick (predicted {predicted:.1f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for count, mv, base, mv_cpu, base_cpu in points:
        lines.append(
            result(
                f"load_cold_{count}_flavors",
                mv * 1e3,
                "ms",
                "yaml.load(CSafeLoader) of the same files",
                base * 1e3,
                target=RATIO_TARGET,
                files=count * 4 + 5,
                cpu_ms=mv_cpu * 1e3,
                baseline_cpu_ms=base_cpu * 1e3,
                ratio_cpu=mv_cpu / base_cpu if base_cpu else None,
            )
        )
    xs = [p[0] for p in points]
    slope, intercept, r2 = linear_fit(xs, [p[1] for p in points])
    base_slope, base_intercept, base_r2 = linear_fit(xs, [p[2] for p in points])
    lines.append(
        result(
            "load_slope_per_flavor",
            slope * 1e6,
            "us/flavor",
            "yaml.load(CSafeLoader) slope of the same files",
            base_slope * 1e6,
            target=RATIO_TARGET,
            intercept_ms=intercept * 1e3,
            r2=r2,
            baseline_intercept_ms=base_intercept * 1e3,
            baseline_r2=base_r2,
            sizes=",".join(map(str, xs)),
        )
    )
    thousand = next((p for p in points if p[0] == 1000), None)
    if thousand is not None:
        lines.append(
            result(
                "load_cold_1000_flavors_wall",
                thousand[1],
                "s",
                "budget",
                THOUSAND_BUDGET_S,
                target=("<", THOUSAND_BUDGET_S),
                on="value",
            )
        )
    else:
        predicted = slope * 1000 + intercept
        lines.append(
            result(
                "load_cold_1000_flavors_wall",
                None,
                "s",
                "budget",
                THOUSAND_BUDGET_S,
                target=("<", THOUSAND_BUDGET_S),
                on="value",
                note=f"not measured at this size; linear fit predicts {predicted:.3f} s",
                predicted_s=predicted,
            )
        )
    return lines
