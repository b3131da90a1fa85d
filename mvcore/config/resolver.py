"""Resolved configs and the answer to "which flavor, and why".

``ResolvedConfig`` is precomputed once per (flavor, config type) when a
snapshot is built; ``Resolution`` is the per-call answer that also says what
was asked for, what was used, whether it fell back, and from which
generation -- the object the CLI prints and the API serves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mvcore.config.merge import Layer, Provenance, merge_layers


@dataclass(frozen=True)
class ResolvedConfig:
    """One config type of one flavor after the fallback chain."""

    config_type: str
    flavor: str
    values: Mapping[str, Any]
    provenance: Mapping[str, Provenance]
    _wire: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _digest: list[str] = field(default_factory=list, repr=False, compare=False)

    def to_wire(self) -> dict[str, Any]:
        if not self._wire:
            self._wire.update(
                values=_thaw(self.values),
                provenance={k: p.to_dict() for k, p in sorted(self.provenance.items())},
            )
        return self._wire

    def digest(self) -> str:
        """sha256 of the values as canonical JSON: no paths, no provenance -- the same on every machine."""
        if not self._digest:
            self._digest.append(hashlib.sha256(_canonical_json(self.values)).hexdigest())
        return self._digest[0]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def resolve_layers(config_type: str, flavor: str, layers: list[Layer]) -> ResolvedConfig:
    values, provenance = merge_layers(layers)
    return ResolvedConfig(config_type, flavor, MappingProxyType(values), MappingProxyType(provenance))


def content_digest(configs: Mapping[str, ResolvedConfig]) -> str:
    """The digest of a resolved flavor: its config types' value digests, in name order.

    Generation numbers are per process; this names the exact values on any replica or worker.
    """
    joined = "\n".join(f"{name}={configs[name].digest()}" for name in sorted(configs))
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _canonical_json(values: Mapping[str, Any]) -> bytes:
    canonical = _canonical(values)
    return json.dumps(
        canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Resolution:
    """A flavor request answered by one snapshot."""

    flavor_requested: str | None
    flavor_used: str
    fallback: bool
    generation: int
    configs: Mapping[str, ResolvedConfig]
    reason: str | None = None
    digest: str = ""  # content_digest(configs): the same for the same values on every machine
    overrides: Mapping[str, Mapping[str, Any]] | None = None  # the request's config_overrides

    def __getitem__(self, config_type: str) -> ResolvedConfig:
        return self.configs[config_type]

    def meta(self) -> dict[str, Any]:
        """``metadata.config`` of every generator response."""
        meta: dict[str, Any] = {
            "flavor_requested": self.flavor_requested,
            "flavor_used": self.flavor_used,
            "fallback": self.fallback,
            "generation": self.generation,
            "digest": self.digest,
        }
        if self.overrides:
            meta["overrides"] = {k: dict(v) for k, v in self.overrides.items()}
        return meta

    def to_wire(self, config_type: str | None = None) -> dict[str, Any]:
        types = [config_type] if config_type else list(self.configs)
        return {
            **self.meta(),
            "configs": {t: self.configs[t].to_wire() for t in types},
        }
