"""Every benchmark area runs at tiny size and prints well-formed lines (the shape, never the speed)."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the repo root on the path
    sys.path.insert(0, str(REPO))

from benchmarks import __main__ as bench_main  # noqa: E402
from benchmarks.common import REQUIRED_KEYS, TINY_ENV, percentile, result  # noqa: E402

NUMBER = (int, float)


@pytest.fixture(autouse=True)
def _tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TINY_ENV, "1")


def check_line(line: Any) -> None:
    assert isinstance(line, dict), line
    missing = [k for k in REQUIRED_KEYS if k not in line]
    assert not missing, f"{line.get('name')}: missing {missing}"
    assert isinstance(line["name"], str) and line["name"]
    value = line["value"]
    assert value is None or (isinstance(value, NUMBER) and not isinstance(value, bool))
    assert line["unit"] is None or isinstance(line["unit"], str)
    assert line["baseline"] is None or isinstance(line["baseline"], str)
    assert line["baseline_value"] is None or isinstance(line["baseline_value"], NUMBER)
    assert line["ratio"] is None or isinstance(line["ratio"], NUMBER)
    assert line["target"] is None or isinstance(line["target"], str)
    if line["value"] is None:
        assert line.get("note") or line.get("error"), f"{line['name']}: a null value must say why"
    assert json.loads(json.dumps(line)) == line  # one JSON object per line, nothing exotic


@pytest.mark.parametrize("area", bench_main.discover())
def test_area_runs_at_tiny_size(area: str) -> None:
    module = importlib.import_module(f"benchmarks.bench_{area}")
    lines = module.run(quick=True)
    assert isinstance(lines, list) and lines, f"{area} returned no lines"
    for line in lines:
        check_line(line)
    names = [line["name"] for line in lines]
    assert len(names) == len(set(names)), f"{area}: duplicate names {names}"


def test_every_planned_area_is_discovered() -> None:
    assert {"resolve", "load", "api", "memory"} <= set(bench_main.discover())


def test_missing_peer_prints_a_skipped_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import bench_resolve

    monkeypatch.setattr(bench_resolve, "_have", lambda module: False)
    lines = bench_resolve.run(quick=True)
    for line in lines:
        check_line(line)
    peers = [x for x in lines if x["name"].startswith("resolve_lookup_vs_")]
    peers = [x for x in peers if x["name"] != "resolve_lookup_vs_dict"]
    assert len(peers) == 4
    assert all(line["value"] is None and "skipped" in line["note"] for line in peers)


def _fake_area(monkeypatch: pytest.MonkeyPatch, name: str, run: Any) -> None:
    module = types.ModuleType(f"benchmarks.bench_{name}")
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    known = bench_main.discover()
    monkeypatch.setattr(bench_main, "discover", lambda: sorted([*known, name]))


def test_main_prints_json_lines_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_area(
        monkeypatch,
        "fake",
        lambda quick: [result("fake_line", 2.0, "ms", "nothing", 1.0, target=("<=", 1.5))],
    )
    assert bench_main.main(["--quick", "fake"]) == 0
    out = [json.loads(row) for row in capsys.readouterr().out.splitlines()]
    assert [line["name"] for line in out] == ["fake_line"]
    check_line(out[0])
    assert out[0]["ratio"] == 2.0 and out[0]["met"] is False  # slow is reported, never an exit code


def test_a_crashing_area_prints_an_error_line_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(quick: bool) -> list[dict[str, Any]]:
        raise RuntimeError("kaput")

    _fake_area(monkeypatch, "boom", boom)
    _fake_area(monkeypatch, "fine", lambda quick: [result("fine_line", 1.0, "ms")])
    assert bench_main.main(["boom", "fine"]) == 1
    out = [json.loads(row) for row in capsys.readouterr().out.splitlines()]
    assert [line["name"] for line in out] == ["boom:error", "fine_line"]
    assert "kaput" in out[0]["error"]
    for line in out:
        check_line(line)


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile(list(range(101)), 99) == 99
