"""``python -m benchmarks [--quick] [AREA ...]``: run every ``bench_*.py`` area, one JSON line per result.

Exit status is non-zero only when an area crashed (its line is ``{"name": "<area>:error", ...}``),
never because something was slow or missed its target.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Iterable
from typing import Any

import benchmarks
from benchmarks.common import REQUIRED_KEYS, emit, error_line, note


def discover() -> list[str]:
    """Area names (``resolve`` for ``bench_resolve.py``), sorted."""
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if info.name.startswith("bench_") and not info.ispkg
    )


def _normalize(area: str, line: Any) -> dict[str, Any]:
    if not isinstance(line, dict):
        raise TypeError(f"{area}: run() returned a {type(line).__name__}, expected dicts")
    out = {key: line.get(key) for key in REQUIRED_KEYS}
    out.update(line)
    if not out["name"]:
        out["name"] = f"{area}:unnamed"
    return out


def run_area(area: str, quick: bool) -> bool:
    """Run one area and print its lines; False when it crashed."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.bench_{area}")
        lines = module.run(quick=quick)
        normalized = [_normalize(area, line) for line in lines]
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit(error_line(area, exc))
        return False
    for line in normalized:
        emit(line)
    note(f"{area}: {len(normalized)} lines in {time.perf_counter() - started:.1f} s")
    return True


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (under 2 minutes in total)")
    parser.add_argument("areas", nargs="*", help="only these areas (default: every bench_*.py)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    known = discover()
    unknown = [a for a in args.areas if a not in known]
    if unknown:
        parser.error(f"unknown area(s) {', '.join(unknown)}; known: {', '.join(known)}")
    ok = True
    started = time.perf_counter()
    for area in args.areas or known:
        ok = run_area(area, args.quick) and ok
    note(f"all areas in {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
