"""Generic fixtures shared by every test package.

* ``flavors_dir`` -- a private copy of the shipped ``./flavors`` in ``tmp_path``.
* ``make_store(root, *plugins)`` -- a FlavorStore over ``root`` (a path or a list of
  paths) on a fresh PluginHost without entry points; each plugin is either an object
  (registered under its ``__name__``/class name) or a ``(name, object)`` pair.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def flavors_dir(tmp_path: Path) -> Path:
    """A tmp copy of the shipped flavors directory (safe to edit)."""
    target = tmp_path / "flavors"
    shutil.copytree(SHIPPED_FLAVORS, target)
    return target


def _plugin_name(plugin: Any) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


def build_store(
    root: Path | str | list[Path] | list[str],
    *plugins: Any,
    strict: bool = False,
    hook_timeout: float | None = None,
) -> FlavorStore:
    roots = [Path(r) for r in root] if isinstance(root, list | tuple) else [Path(root)]
    kwargs: dict[str, Any] = {"entry_points": False}
    if hook_timeout is not None:
        kwargs["hook_timeout"] = hook_timeout
    host = PluginHost(**kwargs)
    for plugin in plugins:
        if isinstance(plugin, tuple):
            name, obj = plugin
        else:
            name, obj = _plugin_name(plugin), plugin
        host.register(obj, name)
    return FlavorStore(roots, host, strict=strict)


@pytest.fixture
def make_store() -> Callable[..., FlavorStore]:
    """Factory: ``make_store(root, *plugins, strict=False, hook_timeout=None)``."""
    return build_store
