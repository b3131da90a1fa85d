"""The flavors this repository ships, isolated from whatever else a user adds to ``flavors/``.

A user who runs ``mvcore flavors new my_style`` (or leaves a half-edited flavor there) must still
get a green test run, so tests read a private copy of just the shipped flavors, made once per run.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Every flavor directory committed under ./flavors; tests assert on exactly these.
SHIPPED_FLAVOR_NAMES = ("default", "example", "test_flavor")


def _copy_shipped() -> Path:
    root = Path(tempfile.mkdtemp(prefix="mvcore-shipped-")) / "flavors"
    for name in SHIPPED_FLAVOR_NAMES:
        shutil.copytree(REPO / "flavors" / name, root / name)
    atexit.register(shutil.rmtree, root.parent, True)
    return root


#: A read-only-by-convention copy; tests that edit flavors copy it again into their tmp_path.
SHIPPED_FLAVORS = _copy_shipped()
