"""The pluggy hook specifications of the ``mvcore`` project.

A plugin is any object (usually a module) with functions marked
``@mvcore.hookimpl`` named like the specs below, published under the
entry-point group ``mvcore``.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "mvcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mvcore_flavor_dirs() -> list[Any]:  # type: ignore[empty-body]
    """Directories whose sub-directories are flavors (paths or str)."""


@hookspec
def mvcore_flavors() -> dict[str, dict[str, dict[str, Any]]]:  # type: ignore[empty-body]
    """In-code flavors: ``{flavor_name: {config_type: mapping}}``."""


@hookspec
def mvcore_config_types() -> list[Any]:  # type: ignore[empty-body]
    """Extra config types: ``mvcore.config.config_types.ConfigType`` objects, or dicts with
    ``name``, ``schema`` and optional ``defaults``, ``placeholders``, ``description``,
    ``replaces_builtin``."""


@hookspec
def mvcore_providers() -> dict[str, Any]:  # type: ignore[empty-body]
    """Generation providers by name: a Provider instance or a factory ``f(settings)``."""


@hookspec
def mvcore_on_reload(event: dict[str, Any]) -> None:
    """Called after each snapshot swap with ``{generation, changed, removed, errors}``."""


@hookspec
def mvcore_models() -> list[Any]:  # type: ignore[empty-body]
    """Model catalogue entries: ``mvcore.config.model_checks.ModelEntry`` objects, or dicts with
    ``name`` (owner/name), ``input_schema`` (the model's published input JSON Schema), ``source``
    and ``retrieved`` (where and when it was taken), optional ``version``, ``notes``, ``inferred``.
    A later plugin's entry replaces an earlier one of the same name."""


@hookspec
def mvcore_model_bindings() -> list[Any]:  # type: ignore[empty-body]
    """Which config key selects a model and which keys are its inputs:
    ``mvcore.config.model_checks.ModelBinding`` objects, or dicts ``{config_type, selector,
    keys: {config_key: model_input_name}}``.  Flavor validation checks each bound value against
    the model the flavor's ``selector`` names."""
