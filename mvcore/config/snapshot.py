"""Immutable, generation-numbered snapshots of every flavor.

``build_snapshot`` turns a discovery into a Snapshot: it loads each source
(through the parse cache), keeps the last good version of any flavor whose
new files are invalid, and precomputes the resolution of every (flavor,
config type) pair -- so that a lookup at request time is a dict access.  A
rebuild whose content did not change returns the previous snapshot itself,
which is how the generation only moves when something really changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from mvcore import logs
from mvcore.config.config_types import ConfigType, ConfigTypeRegistry
from mvcore.config.discovery import Discovery, FlavorSource, Shadowed, check_flavor_name
from mvcore.config.loading import FlavorData, ParseCache, load_defaults_file, load_flavor
from mvcore.config.merge import Layer
from mvcore.config.resolver import Resolution, ResolvedConfig, content_digest, resolve_layers
from mvcore.config.validation import Issue
from mvcore.errors import FlavorNotFound, NotFound

DEFAULT = "default"


@dataclass(frozen=True)
class FlavorStatus:
    """What the status endpoint and ``flavors list`` say about one flavor."""

    name: str
    source: str
    origin: str
    status: str  # ok | error (serving last good) | invalid (never loaded)
    description: str
    tags: tuple[str, ...]
    issues: tuple[Issue, ...]
    serving: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "status": self.status,
            "description": self.description,
            "tags": list(self.tags),
            "serving": self.serving,
            "errors": [i.to_dict() for i in self.issues if i.severity == "error"],
            "warnings": [i.to_dict() for i in self.issues if i.severity != "error"],
        }


@dataclass(frozen=True)
class BaseLayer:
    layer: Layer
    digest: str


@dataclass(frozen=True)
class Snapshot:
    generation: int
    loaded_at: float
    registry: ConfigTypeRegistry
    flavors: Mapping[str, FlavorData]
    statuses: Mapping[str, FlavorStatus]
    shadowed: tuple[Shadowed, ...]
    issues: tuple[Issue, ...]
    resolved: Mapping[str, Mapping[str, ResolvedConfig]]
    fingerprint: tuple[Any, ...]
    build_seconds: float = 0.0
    _resolution_cache: dict[tuple[str, str], Resolution] = field(default_factory=dict, repr=False)
    # flavor -> config type -> resolved values: plain dicts, so ``get`` is three subscripts.
    _index: dict[str, dict[str, Mapping[str, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name, configs in self.resolved.items():
            self._index[name] = {type_name: config.values for type_name, config in configs.items()}

    # ---- queries -------------------------------------------------------------
    def names(self) -> list[str]:
        """Flavors that can be used, ``default`` first."""
        return sorted(self.resolved, key=lambda n: (n != DEFAULT, n))

    def has(self, name: str) -> bool:
        return name in self.resolved

    def digest(self, name: str) -> str | None:
        """Content digest of a served flavor's resolved values (``resolver.content_digest``)."""
        configs = self.resolved.get(name)
        return content_digest(configs) if configs is not None else None

    def resolve(self, flavor: str | None = None, *, strict: bool = False) -> Resolution:
        """Answer a flavor request; unknown names fall back to ``default`` unless strict."""
        requested = flavor if flavor not in (None, "") else None
        name = requested or DEFAULT
        key = (name, "s" if strict else "")
        cached = self._resolution_cache.get(key)
        if cached is not None and cached.flavor_requested == requested:
            return cached
        if name in self.resolved:
            configs = self.resolved[name]
            digest = content_digest(configs)
            result = Resolution(requested, name, False, self.generation, configs, digest=digest)
        else:
            if strict:
                raise FlavorNotFound(name[:100], self.names())
            reason = check_flavor_name(name) or (
                f"flavor {name!r} is invalid and has never loaded; see /api/mv/flavors/status"
                if name in self.statuses
                else f"flavor {name[:100]!r} does not exist"
            )
            logs.event(
                "config_flavor_fallback",
                logging.WARNING,
                requested_flavor=name[:100],
                fallback=DEFAULT,
                reason=reason,
            )
            configs = self.resolved[DEFAULT]
            result = Resolution(
                requested, DEFAULT, True, self.generation, configs, reason, digest=content_digest(configs)
            )
            if len(self._resolution_cache) > 4096:
                return result  # don't let random names grow the cache
        self._resolution_cache[key] = result
        return result

    def config(self, flavor: str | None, config_type: str, *, strict: bool = False) -> ResolvedConfig:
        resolution = self.resolve(flavor, strict=strict)
        try:
            return resolution.configs[config_type]
        except KeyError:
            raise NotFound(
                f"Config type {config_type!r} does not exist",
                alternatives=self.registry.names(),
                hint="Use one of the registered config types.",
            ) from None

    def get(self, config_type: str, key: str, flavor: str = DEFAULT) -> Any:
        """Fast path: one resolved value (dotted keys allowed)."""
        try:
            return self._index[flavor][config_type][key]
        except KeyError:
            pass
        configs = self._index.get(flavor) or self._index[DEFAULT]
        values: Any = configs[config_type]
        if key in values:
            return values[key]
        for part in key.split("."):
            values = values[part]
        return values

    def errors(self) -> list[Issue]:
        out = [i for i in self.issues if i.severity == "error"]
        for status in self.statuses.values():
            out.extend(i for i in status.issues if i.severity == "error")
        return out

    def status_wire(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "loaded_at": self.loaded_at,
            "last_reload_seconds": round(self.build_seconds, 6),
            "flavors": {
                n: {**s.to_dict(), "digest": self.digest(n)} for n, s in sorted(self.statuses.items())
            },
            "errors": [i.to_dict() for i in self.errors()],
            "warnings": [i.to_dict() for i in self.issues if i.severity != "error"],
            "shadowed": [s.to_dict() for s in self.shadowed],
            "config_types": self.registry.names(),
        }


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


def _flavor_layer(data: FlavorData, config_type: str, layer_name: str) -> Layer | None:
    config = data.configs.get(config_type)
    if config is None:
        return None
    name = layer_name
    if config.file is None and data.source.origin.startswith("plugin:"):
        name = data.source.origin  # in-code values say which plugin gave them
    return Layer(name, config.data, config.file, config.lines)


def build_snapshot(
    discovery: Discovery,
    registry: ConfigTypeRegistry,
    *,
    previous: Snapshot | None = None,
    cache: ParseCache | None = None,
    extra_issues: list[Issue] | None = None,
    reload_only: Collection[str] | None = None,
) -> Snapshot:
    """Load every source into a new snapshot (or return ``previous`` when nothing changed).

    ``reload_only`` is a hint from a file watcher: the names of the flavors whose
    files changed.  A directory flavor outside it that loaded cleanly last time
    (and reads no symlink, whose target may change without an event) is carried
    over without touching the disk, so an edit costs the edited flavor, not the
    whole tree.  ``None`` reloads everything.
    """
    started = time.perf_counter()
    cache = cache or ParseCache()
    loaded: dict[str, FlavorData] = {}
    statuses: dict[str, FlavorStatus] = {}
    for name, source in discovery.sources.items():
        previous_good = previous.flavors.get(name) if previous is not None else None
        if reload_only is not None and name not in reload_only and previous is not None:
            kept_status = previous.statuses.get(name)
            if (
                previous_good is not None
                and kept_status is not None
                and kept_status.status == "ok"
                and source.directory is not None
                and not previous_good.linked
                and (previous_good.source is source or previous_good.source == source)
            ):
                loaded[name] = previous_good
                statuses[name] = kept_status
                continue
        data = load_flavor(source, registry, cache)
        if (
            previous_good is not None
            and previous_good.digest == data.digest
            and previous_good.source == data.source
            and previous_good.linked == data.linked
        ):
            data = previous_good  # same content: keep identity, so its resolution is reused
        if data.ok:
            loaded[name] = data
            statuses[name] = _status(data, "ok", True)
        elif previous_good is not None and previous_good.source.origin == source.origin:
            loaded[name] = previous_good  # last known good keeps serving
            statuses[name] = _status(data, "error", True)
            logs.event(
                "flavor_invalid_kept_last_good",
                logging.WARNING,
                flavor=name,
                errors=[str(i) for i in data.issues if i.severity == "error"],
            )
        else:
            statuses[name] = _status(data, "invalid", False)
            logs.event(
                "flavor_invalid",
                logging.WARNING,
                flavor=name,
                errors=[str(i) for i in data.issues if i.severity == "error"],
            )
    if previous is not None and discovery.unreadable:
        # A root that exists but cannot be listed (permissions, I/O error) is not a deletion: its
        # flavors keep serving their last good version until it can be read again.
        for name, kept in previous.flavors.items():
            if name in loaded or name in discovery.sources or kept.source.root not in discovery.unreadable:
                continue
            loaded[name] = kept
            unreadable = Issue(
                kept.source.describe, None, "", "its flavors directory cannot be read; serving last good"
            )
            statuses[name] = _status(kept, "error", True, (unreadable,))
    if DEFAULT not in loaded and previous is not None and DEFAULT in previous.flavors:
        kept = previous.flavors[DEFAULT]
        if kept.configs:
            loaded[DEFAULT] = kept
            if DEFAULT not in statuses:
                missing = Issue(
                    kept.source.describe, None, "", "default flavor disappeared; serving last good"
                )
                statuses[DEFAULT] = _status(kept, "error", True, (missing,))
    if DEFAULT not in loaded:
        virtual = FlavorData(FlavorSource(DEFAULT, "builtin"), {}, "Built-in defaults", (), (), "builtin")
        loaded[DEFAULT] = virtual
        statuses.setdefault(DEFAULT, _status(virtual, "ok", True))

    issues = tuple(discovery.issues) + tuple(extra_issues or ())
    fingerprint = (
        tuple(sorted((n, d.digest, d.source.describe) for n, d in loaded.items())),
        tuple(sorted((n, s.status, tuple(map(str, s.issues))) for n, s in statuses.items())),
        tuple(s.to_dict().items().__repr__() for s in discovery.shadowed),
        tuple(map(str, issues)),
        tuple((t.name, t.owner, id(t.schema)) for t in registry),
    )
    if previous is not None and previous.fingerprint == fingerprint:
        return previous

    resolved = _resolve_all(loaded, registry, previous)
    snapshot = Snapshot(
        generation=(previous.generation + 1) if previous is not None else 1,
        loaded_at=time.time(),
        registry=registry,
        flavors=loaded,
        statuses=statuses,
        shadowed=tuple(discovery.shadowed),
        issues=issues,
        resolved=resolved,
        fingerprint=fingerprint,
        build_seconds=time.perf_counter() - started,
    )
    alive = {c.file for d in loaded.values() for c in d.configs.values() if c.file}
    if len(cache.entries) > 2 * max(len(alive), 64):
        cache.forget_missing(alive)
    return snapshot


def _status(data: FlavorData, status: str, serving: bool, extra: tuple[Issue, ...] = ()) -> FlavorStatus:
    return FlavorStatus(
        data.source.name,
        data.source.describe,
        data.source.origin,
        status,
        data.description,
        data.tags,
        data.issues + extra,
        serving,
    )


def _resolve_all(
    loaded: Mapping[str, FlavorData], registry: ConfigTypeRegistry, previous: Snapshot | None
) -> dict[str, dict[str, ResolvedConfig]]:
    default = loaded[DEFAULT]
    out: dict[str, dict[str, ResolvedConfig]] = {}
    bases = {t.name: base_layer(t) for t in registry}
    same_registry = previous is not None and previous.registry is registry
    # A flavor without a file for a type resolves it exactly as ``default`` does: share the (read-only)
    # values and provenance of ``default``'s resolution instead of merging them again per flavor.
    # ``default`` goes first so every later flavor -- rebuilt or not -- shares the same objects.
    inherited: dict[str, ResolvedConfig] = {}
    for name in [DEFAULT, *(n for n in loaded if n != DEFAULT)]:
        data = loaded[name]
        reuse = None
        if (
            same_registry
            and previous is not None
            and previous.flavors.get(name) is data
            and (previous.flavors.get(DEFAULT) is default)
        ):
            reuse = previous.resolved.get(name)
        if reuse is not None:
            out[name] = dict(reuse)
            if name == DEFAULT:
                inherited.update(reuse)
            continue
        configs: dict[str, ResolvedConfig] = {}
        for type_name, base in bases.items():
            own = _flavor_layer(data, type_name, "flavor") if name != DEFAULT else None
            if own is None and type_name in inherited:
                shared = inherited[type_name]
                configs[type_name] = ResolvedConfig(type_name, name, shared.values, shared.provenance)
                continue
            layers = [own] if own is not None else []
            fallback = _flavor_layer(default, type_name, DEFAULT)
            if fallback is not None:
                layers.append(fallback)
            layers.append(base.layer)
            configs[type_name] = resolve_layers(type_name, name, layers)
            if own is None:
                inherited[type_name] = configs[type_name]
        out[name] = configs
    return {name: out[name] for name in loaded}  # discovery order, as before
