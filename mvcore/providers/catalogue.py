"""The mv application's model catalogue: the models it calls, and which flavor keys feed them.

The data is shipped in ``providers/models/*.json`` -- one file per model with its Replicate input
schema, the page it was taken from, the date, and notes on every field that had to be inferred
(``mvcore models show NAME`` prints them).  This module contributes that data and the key mappings
to the framework through the ``mvcore_models`` / ``mvcore_model_bindings`` hooks, registered as a
built-in part of the application (``register``), so other plugins can add models the same way.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from mvcore.config.hookspecs import hookimpl
from mvcore.config.model_checks import ModelBinding, ModelCatalogue, ModelEntry, catalogue_for
from mvcore.config.plugins import PluginHost

__all__ = [
    "BINDINGS",
    "MODELS_DIR",
    "PLUGIN_NAME",
    "app_catalogue",
    "app_plugin_host",
    "register",
    "shipped_catalogue",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"
PLUGIN_NAME = "mv-models"

#: which config key selects which model, and the flavor keys that are that model's inputs
BINDINGS: tuple[ModelBinding, ...] = (
    ModelBinding(
        "image_params",
        "model",
        {
            "aspect_ratio": "aspect_ratio",
            "safety_filter_level": "safety_filter_level",
            "person_generation": "person_generation",
            "output_format": "output_format",
        },
        PLUGIN_NAME,
    ),
    ModelBinding(
        "image_params",
        "video_model",
        {
            "video_aspect_ratio": "aspect_ratio",
            "video_duration": "duration",
            "video_generate_audio": "generate_audio",
            "video_person_generation": "person_generation",
        },
        PLUGIN_NAME,
    ),
    ModelBinding(
        "lipsync_params",
        "model",
        {
            "temperature": "temperature",
            "active_speaker_detection": "active_speaker",
            "occlusion_detection_enabled": "occlusion_detection_enabled",
        },
        PLUGIN_NAME,
    ),
    ModelBinding("scene_prompts", "scene_model", {}, PLUGIN_NAME),
)


@functools.lru_cache(maxsize=1)
def shipped_entries() -> tuple[ModelEntry, ...]:
    """The packaged catalogue files (read once; a broken file is a bug of the package)."""
    entries = []
    for path in sorted(MODELS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        entries.append(ModelEntry.from_mapping(data, PLUGIN_NAME))
    return tuple(entries)


@functools.lru_cache(maxsize=1)
def shipped_catalogue() -> ModelCatalogue:
    return ModelCatalogue({e.name: e for e in shipped_entries()}, BINDINGS)


@hookimpl
def mvcore_models() -> list[ModelEntry]:
    return list(shipped_entries())


@hookimpl
def mvcore_model_bindings() -> list[ModelBinding]:
    return list(BINDINGS)


def register(host: PluginHost) -> PluginHost:
    """Add the catalogue to ``host`` as a built-in part of the app (no-op when already there)."""
    import mvcore.providers.catalogue as plugin
    from mvcore import __version__

    if not host.pm.is_registered(plugin) and PLUGIN_NAME not in host.records:
        host.register(plugin, PLUGIN_NAME, source="builtin", version=__version__)
    return host


def app_plugin_host(settings: Any) -> PluginHost:
    """The plugin host of the mv app: settings' allow/deny lists, plus the model catalogue."""
    return register(PluginHost(allow=settings.plugins, deny=settings.disable_plugins))


def app_catalogue(host: PluginHost | None = None) -> ModelCatalogue:
    """The shipped catalogue with what ``host``'s plugins add (a plugin's entry wins on a clash)."""
    if host is None:
        return shipped_catalogue()
    return shipped_catalogue().merged(catalogue_for(host))
