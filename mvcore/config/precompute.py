"""Precomputing the resolution of every (flavor, config type) pair of a snapshot.

The chain of a flavor is: its own files (layer ``flavor``) -> each parent named
by ``extends`` (layer ``flavor:<parent>``) -> ``default`` (layer ``default``)
-> the config type's base defaults (``builtin`` or ``plugin:<name>``).  Two
shortcuts keep a rebuild cheap: a flavor whose whole chain is the same objects
as in the previous snapshot keeps its previous resolution, and a config type
that no flavor of a chain sets resolves exactly as ``default`` does, so it
shares ``default``'s (read-only) values instead of merging them again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mvcore.config.config_types import ConfigType, ConfigTypeRegistry
from mvcore.config.inheritance import DEFAULT, ancestors
from mvcore.config.loading import FlavorData, load_defaults_file
from mvcore.config.merge import Layer
from mvcore.config.resolver import ResolvedConfig, resolve_layers

if TYPE_CHECKING:
    from mvcore.config.snapshot import Snapshot


@dataclass(frozen=True)
class BaseLayer:
    layer: Layer
    digest: str


# key -> (the in-code defaults object the layer was built from, the layer).  Holding the
# object keeps its id from being reused by another config type's defaults while cached.
_DEFAULTS_CACHE: dict[str, tuple[object, BaseLayer]] = {}


def base_layer(config_type: ConfigType) -> BaseLayer:
    """The last layer of the chain for a config type (packaged YAML or plugin mapping)."""
    key = f"{config_type.owner}:{config_type.name}:{config_type.defaults_file}:{id(config_type.defaults)}"
    cached = _DEFAULTS_CACHE.get(key)
    if cached is not None and cached[0] is config_type.defaults:
        return cached[1]
    if config_type.defaults_file is not None:
        parsed = load_defaults_file(config_type.defaults_file)
        if parsed.data is None:
            raise RuntimeError(f"built-in defaults {config_type.defaults_file} are invalid: {parsed.issues}")
        layer = Layer(config_type.layer, parsed.data, str(config_type.defaults_file), parsed.lines)
    else:
        layer = Layer(config_type.layer, dict(config_type.defaults or {}), None, {})
    found = BaseLayer(layer, key)
    if len(_DEFAULTS_CACHE) > 256:  # many short-lived plugin hosts (tests): don't grow forever
        _DEFAULTS_CACHE.clear()
    _DEFAULTS_CACHE[key] = (config_type.defaults, found)
    return found


def flavor_layer(data: FlavorData, config_type: str, layer_name: str) -> Layer | None:
    """One flavor's values of one config type as a layer (None when it has no such file)."""
    config = data.configs.get(config_type)
    if config is None:
        return None
    name = layer_name
    if config.file is None and data.source.origin.startswith("plugin:"):
        name = data.source.origin  # in-code values say which plugin gave them
    return Layer(name, config.data, config.file, config.lines)


def chain_of(name: str, loaded: Mapping[str, FlavorData]) -> list[tuple[str, str]]:
    """``[(flavor, layer name), ...]`` highest precedence first, ``default`` last."""
    if name == DEFAULT:
        return [(DEFAULT, DEFAULT)]
    parents = [p for p in ancestors(name, loaded) if p in loaded]
    return [(name, "flavor"), *((p, f"flavor:{p}") for p in parents), (DEFAULT, DEFAULT)]


def resolve_all(
    loaded: Mapping[str, FlavorData],
    registry: ConfigTypeRegistry,
    previous: Snapshot | None,
    keep: Collection[str] = frozenset(),
    *,
    only: bool = False,
) -> dict[str, Mapping[str, ResolvedConfig]]:
    """Every flavor's resolved config types, in the order of ``loaded``.

    ``only=True`` (a carried-over build, ``snapshot._carry_over``): resolve just the flavors in
    ``keep``, whose chains changed, and take every other flavor's previous resolution as it is.
    """
    bases = {t.name: base_layer(t) for t in registry}
    same_registry = previous is not None and previous.registry is registry
    if only and same_registry and previous is not None and DEFAULT not in keep:
        carried = dict(previous.resolved)
        for name in keep:
            if name in loaded:
                carried[name] = _resolve_chain(name, loaded, bases, previous.resolved[DEFAULT])
        return carried
    out: dict[str, Mapping[str, ResolvedConfig]] = {}
    # What ``default`` resolves to, per type: shared by every chain in which no flavor sets the type.
    # ``default`` goes first so every later flavor -- rebuilt or not -- shares the same objects.
    plain: dict[str, ResolvedConfig] = {}
    for name in [DEFAULT, *(n for n in loaded if n != DEFAULT)]:
        chain = chain_of(name, loaded)
        reuse = _reusable(name, chain, loaded, previous) if same_registry else None
        if reuse is not None:
            out[name] = dict(reuse)
        else:
            out[name] = _resolve_chain(name, loaded, bases, plain, chain)
        if name == DEFAULT:
            plain.update(out[name])
    return {name: out[name] for name in loaded}  # discovery order, as before


def _resolve_chain(
    name: str,
    loaded: Mapping[str, FlavorData],
    bases: Mapping[str, BaseLayer],
    plain: Mapping[str, ResolvedConfig],
    chain: list[tuple[str, str]] | None = None,
) -> dict[str, ResolvedConfig]:
    chain = chain if chain is not None else chain_of(name, loaded)
    return {
        type_name: _resolve_one(name, type_name, chain, loaded, base, plain)
        for type_name, base in bases.items()
    }


def _reusable(
    name: str, chain: list[tuple[str, str]], loaded: Mapping[str, FlavorData], previous: Snapshot | None
) -> Mapping[str, ResolvedConfig] | None:
    """The previous resolution of ``name`` when every flavor of its chain is the same object."""
    if previous is None:
        return None
    if chain != chain_of(name, previous.flavors):
        return None
    if any(previous.flavors.get(member) is not loaded[member] for member, _ in chain):
        return None
    return previous.resolved.get(name)


def _resolve_one(
    name: str,
    type_name: str,
    chain: list[tuple[str, str]],
    loaded: Mapping[str, FlavorData],
    base: BaseLayer,
    plain: Mapping[str, ResolvedConfig],
) -> ResolvedConfig:
    layers: list[Layer] = []
    own = False  # does a flavor of the chain other than ``default`` set this type?
    for member, layer_name in chain:
        layer = flavor_layer(loaded[member], type_name, layer_name)
        if layer is not None:
            layers.append(layer)
            own = own or member != DEFAULT
    if not own and type_name in plain:
        shared = plain[type_name]
        return ResolvedConfig(type_name, name, shared.values, shared.provenance)
    return resolve_layers(type_name, name, [*layers, base.layer])
