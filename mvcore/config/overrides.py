"""Per-request ``config_overrides``: ``{config_type: {key: value}}`` as the topmost layer.

A request may change a few resolved values for itself only.  Every key is checked
against its config type's schema before anything runs (422 naming the key, with a
did-you-mean), must be allowed by the server (``MVCORE_OVERRIDABLE_KEYS``; by default
every key except the ones that choose a model, which decide what a request costs),
and shows in provenance as the layer ``request``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import jsonschema
from referencing import Registry

from mvcore.config.config_types import ConfigTypeRegistry
from mvcore.config.merge import Layer, merge_layers
from mvcore.config.resolver import Resolution, ResolvedConfig
from mvcore.errors import BadInput, SchemaViolation, did_you_mean

REQUEST_LAYER = "request"
#: keys that choose a model: not overridable unless the setting names them
MODEL_KEYS = frozenset({"model", "video_model", "scene_model"})
_NO_RETRIEVAL: Registry[Any] = Registry()

Overrides = Mapping[str, Mapping[str, Any]]


def is_allowed(config_type: str, key: str, allowed: Collection[str] | None) -> bool:
    """``allowed`` holds ``type.key`` or ``type.*`` entries; None means every non-model key."""
    if allowed is None:
        return key not in MODEL_KEYS
    return f"{config_type}.{key}" in allowed or f"{config_type}.*" in allowed or "*" in allowed


def check_overrides(
    overrides: Overrides, registry: ConfigTypeRegistry, allowed: Collection[str] | None = None
) -> None:
    """Raise SchemaViolation (422) or BadInput (400) naming the first bad key; None when all are fine."""
    for type_name, values in overrides.items():
        field = f"config_overrides.{type_name}"
        if type_name not in registry:
            guess = did_you_mean(type_name, registry.names())
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise SchemaViolation(
                f"{field}: unknown config type {type_name!r}{hint}",
                alternatives=registry.names(),
                details={"field": field, "did_you_mean": guess},
            )
        if not isinstance(values, Mapping):
            raise SchemaViolation(f"{field}: must be an object of key: value", details={"field": field})
        schema = registry[type_name].schema
        known = list(schema.get("properties", {}))
        for key, value in values.items():
            _check_key(type_name, key, value, schema, known, allowed)


def _check_key(
    type_name: str,
    key: str,
    value: Any,
    schema: Mapping[str, Any],
    known: list[str],
    allowed: Collection[str] | None,
) -> None:
    field = f"config_overrides.{type_name}.{key}"
    if known and key not in known and schema.get("additionalProperties") is False:
        guess = did_you_mean(key, known)
        raise SchemaViolation(
            f"{field}: unknown key {key!r}" + (f"; did you mean {guess!r}?" if guess else ""),
            alternatives=known,
            details={"field": field, "did_you_mean": guess},
        )
    validator = jsonschema.Draft202012Validator(schema, registry=_NO_RETRIEVAL)
    error = next(iter(validator.iter_errors({key: value})), None)
    if error is not None:
        raise SchemaViolation(f"{field}: {error.message}", details={"field": field})
    if not is_allowed(type_name, key, allowed):
        raise BadInput(
            f"{field}: this server does not allow overriding {type_name}.{key} per request",
            hint="Use a flavor that sets it, or ask the operator to add it to MVCORE_OVERRIDABLE_KEYS.",
            details={"field": field},
        )


def apply_overrides(resolution: Resolution, overrides: Overrides | None) -> Resolution:
    """``resolution`` with ``overrides`` merged on top (layer ``request``); unchanged when empty."""
    if not overrides:
        return resolution
    configs = dict(resolution.configs)
    for type_name, values in overrides.items():
        base = configs[type_name]
        below = Layer("resolved", base.values)
        merged, provenance = merge_layers([Layer(REQUEST_LAYER, values), below])
        # leaves the request set are ``request``; every other leaf keeps its provenance
        combined = {
            k: p if p.layer == REQUEST_LAYER else base.provenance.get(k, p) for k, p in provenance.items()
        }
        configs[type_name] = ResolvedConfig(
            type_name, base.flavor, MappingProxyType(merged), MappingProxyType(combined)
        )
    plain = {t: dict(v) for t, v in overrides.items()}
    return replace(resolution, configs=configs, overrides=plain)
