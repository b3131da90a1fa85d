"""Hot-reload tests: real files in tmp dirs, real observers, bounded waits (never a fixed sleep)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mvcore.config.store import FlavorStore

DEADLINE = 5.0  # seconds any change may take to become visible before a test fails
DEBOUNCE_MS = 20
POLL_INTERVAL = 0.05
MODES = ["inotify", "poll"]


def params(angle: str, scenes: int = 3) -> str:
    return f'camera_angle: "{angle}"\nnumber_of_scenes: {scenes}\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_atomic(path: Path, text: str, temp_name: str | None = None) -> None:
    """Write a sibling temp file, then rename it over ``path`` (what most editors do)."""
    temp = path.with_name(temp_name or f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def make_tree(root: Path, flavors: dict[str, str]) -> Path:
    """``{name: parameters.yaml text}`` under ``root``; returns root."""
    for name, text in flavors.items():
        write(root / name / "parameters.yaml", text)
    return root


def angle(store: FlavorStore, flavor: str = "test") -> object:
    """The camera_angle the live snapshot serves for ``flavor`` (None when the flavor is not served)."""
    snap = store.current
    if not snap.has(flavor):
        return None
    return snap.resolved[flavor]["parameters"].values.get("camera_angle")


def status(store: FlavorStore, flavor: str = "test") -> str | None:
    found = store.current.statuses.get(flavor)
    return found.status if found is not None else None


def thaw(value: Any) -> Any:
    """Resolved values (read-only mappings, tuples) as plain dicts and lists, for comparing."""
    if hasattr(value, "items"):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
