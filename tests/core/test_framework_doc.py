"""docs/framework.md shows a whole program using the framework; this runs exactly that program."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "framework.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_framework_doc_program_runs_and_prints_what_the_doc_says(tmp_path: Path) -> None:
    program = _blocks("python")[0]
    assert len(program.strip().splitlines()) <= 26, "the doc promises a short program"
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    expected = _blocks("text")[0]
    assert result.stdout == expected


def test_the_framework_program_imports_nothing_from_the_mv_application(tmp_path: Path) -> None:
    listing = "\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('mvcore')))"
    program = _blocks("python")[0] + listing
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    loaded = eval(result.stdout.strip().splitlines()[-1])  # a list literal printed above
    shared = {"mvcore", "mvcore.errors", "mvcore.logs"}
    app = [m for m in loaded if not (m.startswith("mvcore.config") or m in shared)]
    assert app == []
