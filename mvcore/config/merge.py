"""The fallback rule: flavor -> ``default`` -> base defaults, key by key.

Mappings merge recursively; scalars and lists replace whole; a present key
wins (even when its value is falsy).  Every leaf of the result remembers the
layer it came from, the file that holds it and the line -- so a caller can
always answer "why is this value what it is?".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Provenance:
    layer: str
    file: str | None
    line: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "file": self.file, "line": self.line}


@dataclass(frozen=True, slots=True)
class Layer:
    """One source of values: its name, data, key-path lines and file."""

    name: str
    data: Mapping[str, Any]
    file: str | None = None
    lines: Mapping[str, int] | None = None


def merge_layers(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[str, Provenance]]:
    """Merge highest-precedence-first layers; returns (values, provenance by dotted path)."""
    values: dict[str, Any] = {}
    provenance: dict[str, Provenance] = {}
    # Apply lowest precedence first so higher layers simply overwrite.
    for layer in reversed(layers):
        _overlay(values, layer.data, "", layer, provenance)
    return values, provenance


def _overlay(
    target: dict[str, Any],
    source: Mapping[str, Any],
    prefix: str,
    layer: Layer,
    provenance: dict[str, Provenance],
) -> None:
    lines = layer.lines or {}
    for key, value in source.items():
        path = f"{prefix}.{key}" if prefix else key
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            if value:
                # An empty mapping below was a leaf; now it has children, which carry provenance.
                provenance.pop(path, None)
            _overlay(current, value, path, layer, provenance)
            continue
        if isinstance(current, dict):
            _drop(provenance, path)
        if isinstance(value, Mapping):
            target[key] = {}
            provenance[path] = Provenance(layer.name, layer.file, lines.get(path))
            _overlay(target[key], value, path, layer, provenance)
            if value:
                del provenance[path]
            continue
        target[key] = _freeze_copy(value)
        provenance[path] = Provenance(layer.name, layer.file, lines.get(path))


def _drop(provenance: dict[str, Provenance], path: str) -> None:
    prefix = path + "."
    for key in [k for k in provenance if k.startswith(prefix)]:
        del provenance[key]


def _freeze_copy(value: Any) -> Any:
    # Lists are replaced whole; copy so no two snapshots share a mutable list.
    if isinstance(value, list):
        return [_freeze_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _freeze_copy(v) for k, v in value.items()}
    return value


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten to ``{dotted.path: leaf}``; empty mappings are leaves too."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value:
            out.update(leaf_paths(value, path))
        else:
            out[path] = value
    return out
