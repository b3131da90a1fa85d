"""Hot reload: edit-to-visible latency by save style, inotify and polling, 0 / 100 / 1,000 flavors.

For each (observer, save style, tree size) a ``Reloader`` with its default timing (completed saves
at once, 1 s settle window for unclosed writes, 0.25 s polling interval) watches a generated tree;
each edit saves one flavor's ``parameters.yaml`` with a new value and the clock runs until
``store.current`` serves it (waiting on the reloader's condition, signalled after every rebuild --
no sleeping).  Save styles: ``rename`` (a temp sibling renamed over the file, what most editors
do) and ``close`` (``open(..., "w")``, write, close: the in-place writer; the close is the signal).
Under polling each edit happens at a random point of the polling cycle.  Reported: p99 (value)
and p50 over the edits (full: 100 inotify / 40 polling; quick: 30 / 15 and no 1,000-flavor tree),
and the p50 of the reloader's own rebuild -- which re-reads only the edited flavor.

Baseline: a bare ``store.rebuild()`` after one edit, without a watcher and without the
changed-paths hint (a full rescan of the tree), p99 -- what a naive "reload everything" costs.
Targets (issue 15): inotify p99 <= 15 ms; polling p99 <= 1.5 x the polling interval.

Run: ``python -m benchmarks reload``, ``python -m benchmarks.bench_reload [--quick]`` or
``python benchmarks/bench_reload.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import emit, make_flavor_tree, note, percentile, result, tiny

INOTIFY_TARGET_MS = 15.0
POLL_TARGET_INTERVALS = 1.5
STYLES = ("rename", "close")
WAIT_S = 30.0
BASELINE = "bare store.rebuild() after one edit (full rescan, no watcher), p99"


def _edit(path: Path, i: int, style: str = "close") -> str:
    value = f"edit {i:04d}"
    text = f'camera_angle: "{value}"\nnumber_of_scenes: {1 + i % 32}\n'
    if style == "rename":
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    else:
        with open(path, "w", encoding="utf-8") as handle:  # truncate, write, close
            handle.write(text)
    return value


def measure(mode: str, others: int, edits: int, workdir: Path, style: str = "close") -> dict[str, Any]:
    from mvcore.config.plugins import PluginHost
    from mvcore.config.store import FlavorStore, freeze_startup_heap
    from mvcore.providers.catalogue import register

    root = workdir / f"{mode}-{style}-{others}"
    make_flavor_tree(root, others)
    target = root / "bench" / "parameters.yaml"
    target.parent.mkdir()
    _edit(target, 0)
    # the server's plugin host (the model catalogue checks every build) and its startup freeze
    store = FlavorStore([root], register(PluginHost(entry_points=False)))
    if store.current.errors() or store.current.issues or len(store.current.names()) != others + 2:
        raise RuntimeError("generated tree did not load cleanly")
    freeze_startup_heap()
    try:
        return _measure_edits(store, mode, others, edits, target, style)
    finally:
        gc.unfreeze()  # the next tree's measure starts from a heap like a fresh server's


def _measure_edits(
    store: Any, mode: str, others: int, edits: int, target: Path, style: str
) -> dict[str, Any]:
    from mvcore.config.reload import DEFAULT_POLL_INTERVAL_S, DEFAULT_SETTLE_MS, Reloader

    def served() -> Any:
        return store.current.get("parameters", "camera_angle", "bench")

    latencies: list[float] = []
    rebuilds: list[float] = []
    jitter = random.Random(others)
    with Reloader(store, mode=mode) as reloader:
        if reloader.mode != mode:
            raise RuntimeError(f"wanted the {mode} observer, got {reloader.mode}")
        if not (reloader.wait_for_rebuilds(1, WAIT_S) and reloader.wait_idle(WAIT_S)):
            raise RuntimeError("the reloader did not settle")
        for i in range(1, edits + 1):
            if mode == "poll":  # edit at a random point of the polling cycle, not always just after a poll
                time.sleep(jitter.uniform(0, DEFAULT_POLL_INTERVAL_S))
            started = time.perf_counter()
            value = _edit(target, i, style)
            if not reloader.wait_until(lambda value=value: served() == value, WAIT_S):  # type: ignore[misc]
                raise RuntimeError(f"edit {i} not visible after {WAIT_S} s ({mode}, {others} flavors)")
            latencies.append(time.perf_counter() - started)
            reloader.wait_idle(WAIT_S)  # the next edit starts from a quiet watcher
            duration = reloader.stats.last_duration_s
            if duration is not None:
                rebuilds.append(duration)
        stats = reloader.stats
    baseline = []
    for i in range(edits + 1, edits + 1 + max(3, edits // 3)):
        _edit(target, i)
        started = time.perf_counter()
        store.rebuild(reason="baseline")
        baseline.append(time.perf_counter() - started)
    return {
        "latencies": latencies,
        "rebuilds": rebuilds,
        "baseline": baseline,
        "swaps": stats.swaps,
        "attempts": stats.rebuilds,
        "settle_ms": DEFAULT_SETTLE_MS,
        "poll_interval_ms": DEFAULT_POLL_INTERVAL_S * 1000,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    if tiny():
        edits, sizes = {"inotify": 4, "poll": 3}, [0, 10]
    elif quick:
        edits, sizes = {"inotify": 30, "poll": 15}, [0, 100]
    else:
        edits, sizes = {"inotify": 100, "poll": 40}, [0, 100, 1000]
    lines: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="mvcore-bench-reload-"))
    try:
        for others in sizes:
            for mode in ("inotify", "poll"):
                for style in STYLES:
                    got = measure(mode, others, edits[mode], workdir, style)
                    lines.append(_line(got, mode, style, others))
                    shutil.rmtree(workdir / f"{mode}-{style}-{others}", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return lines


def _line(got: dict[str, Any], mode: str, style: str, others: int) -> dict[str, Any]:
    edits = len(got["latencies"])
    p50 = percentile(got["latencies"], 50) * 1e3
    p99 = percentile(got["latencies"], 99) * 1e3
    bound = INOTIFY_TARGET_MS if mode == "inotify" else POLL_TARGET_INTERVALS * got["poll_interval_ms"]
    note(f"reload {mode} {style} {others} flavors: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {edits} edits")
    return result(
        f"reload_latency_{mode}_{style}_{others}_flavors",
        p99,
        "ms",
        BASELINE,
        percentile(got["baseline"], 99) * 1e3,
        target=("<=", bound),
        on="value",
        p50_ms=p50,
        rebuild_p50_ms=percentile(got["rebuilds"], 50) * 1e3 if got["rebuilds"] else None,
        baseline_p50_ms=percentile(got["baseline"], 50) * 1e3,
        edits=edits,
        flavors=others + 2,
        observer=mode,
        save=style,
        settle_ms=got["settle_ms"],
        poll_interval_ms=got["poll_interval_ms"] if mode == "poll" else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_reload", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="30/15 edits; 0 and 100 other flavors")
    args = parser.parse_args()
    for line in run(quick=args.quick):
        emit(line)


if __name__ == "__main__":
    main()
