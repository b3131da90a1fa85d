"""mvcore.config — the config-flavor framework: flavors, fallback, provenance, validation, hot reload.

This package is usable by any application; it imports nothing from the mv
application beside it (``mvcore.api``, ``generators``, ``providers``,
``storage``, ``jobs``, ``media``), and a test walks the imports to keep it so.

The public surface is the names in ``__all__``; everything else is internal
and may move.  A minimal program (see ``docs/framework.md``)::

    from mvcore.config import FlavorStore, PluginHost, Reloader
    store = FlavorStore(["./flavors"], PluginHost())
    value = store.current.config("my_flavor", "parameters")["number_of_scenes"]
    reloader = Reloader(store).start()   # edits to ./flavors are picked up live

Names are imported lazily (PEP 562) so that ``import mvcore`` stays cheap for
the CLI and for plugins that only need ``hookimpl``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mvcore.config.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from mvcore.config.config_types import ConfigType, ConfigTypeRegistry
    from mvcore.config.plugins import PluginHost, PluginSource
    from mvcore.config.reload import Reloader
    from mvcore.config.resolver import Resolution, ResolvedConfig
    from mvcore.config.snapshot import FlavorStatus, Snapshot
    from mvcore.config.store import FlavorStore, ReloadEvent, StoreSettings
    from mvcore.config.validation import Issue

_LAZY = {
    "ConfigType": "mvcore.config.config_types",
    "ConfigTypeRegistry": "mvcore.config.config_types",
    "FlavorStatus": "mvcore.config.snapshot",
    "FlavorStore": "mvcore.config.store",
    "StoreSettings": "mvcore.config.store",
    "Issue": "mvcore.config.validation",
    "PluginHost": "mvcore.config.plugins",
    "PluginSource": "mvcore.config.plugins",
    "ReloadEvent": "mvcore.config.store",
    "Reloader": "mvcore.config.reload",
    "Resolution": "mvcore.config.resolver",
    "ResolvedConfig": "mvcore.config.resolver",
    "Snapshot": "mvcore.config.snapshot",
}

__all__ = [
    "ConfigType",
    "ConfigTypeRegistry",
    "FlavorStatus",
    "FlavorStore",
    "Issue",
    "PluginHost",
    "PluginSource",
    "ReloadEvent",
    "Reloader",
    "Resolution",
    "ResolvedConfig",
    "Snapshot",
    "StoreSettings",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mvcore.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
