"""Settings for tests of code built on mvcore: offline, local storage in a tmp dir, small media."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mvcore.settings import Settings


def offline_settings(tmp_path: Path, *, flavors_from: Path | None = None, **overrides: Any) -> Settings:
    """Offline provider, no watcher, storage under ``tmp_path/data``, 160 px / 12 fps videos.

    ``flavors_from`` is copied to ``tmp_path/flavors`` once (so a test may edit its copy) and used as
    the only flavor root; without it the root is an empty ``tmp_path/flavors``.
    """
    flavors = tmp_path / "flavors"
    if not flavors.exists():
        if flavors_from is not None:
            shutil.copytree(flavors_from, flavors)
        else:
            flavors.mkdir(parents=True)
    values: dict[str, Any] = {
        "flavors_dirs": [flavors],
        "data_dir": tmp_path / "data",
        "watch": "off",
        "provider": "offline",
        "offline_long_side": 160,
        "offline_fps": 12,
    }
    values.update(overrides)
    return Settings(**values)
