"""Immutable, generation-numbered snapshots of every flavor.

``build_snapshot`` turns a discovery into a Snapshot in four steps, one
function each: read every source (through the parse cache), check the
``extends`` chains, choose what each flavor serves (its new version, or the
last good one when the new files or its chain are invalid), and precompute
the resolution of every (flavor, config type) pair -- so that a lookup at
request time is a dict access.  A rebuild whose content did not change
returns the previous snapshot itself, which is how the generation only
moves when something really changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mvcore import logs
from mvcore.config.config_types import ConfigTypeRegistry
from mvcore.config.discovery import Discovery, FlavorSource, Shadowed, check_flavor_name
from mvcore.config.inheritance import DEFAULT, ancestors, inheritance_issues
from mvcore.config.loading import FlavorData, ParseCache, load_flavor
from mvcore.config.manifest import Manifest
from mvcore.config.precompute import BaseLayer, base_layer, resolve_all
from mvcore.config.resolver import Resolution, ResolvedConfig, content_digest
from mvcore.config.validation import Issue
from mvcore.errors import FlavorNotFound, NotFound

__all__ = ["DEFAULT", "BaseLayer", "FlavorState", "FlavorStatus", "Snapshot", "base_layer", "build_snapshot"]


class FlavorState(StrEnum):
    """What a flavor serves: ``ok``; ``error`` = broken now, serving its last good version;
    ``invalid`` = broken and never loaded (requests for it fall back to ``default``)."""

    OK = "ok"
    ERROR = "error"
    INVALID = "invalid"


@dataclass(frozen=True, kw_only=True)
class FlavorStatus:
    """What the status endpoint and ``flavors list`` say about one flavor."""

    name: str
    source: str
    origin: str
    status: FlavorState
    description: str
    tags: tuple[str, ...]
    issues: tuple[Issue, ...]
    serving: bool
    extends: str | None = None
    chain: tuple[str, ...] = ()  # the parents it resolves through, nearest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "status": str(self.status),
            "description": self.description,
            "tags": list(self.tags),
            "extends": self.extends,
            "chain": list(self.chain),
            "serving": self.serving,
            "errors": [i.to_dict() for i in self.issues if i.is_error],
            "warnings": [i.to_dict() for i in self.issues if not i.is_error],
        }


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
    # the last read of each flavor's own files, valid or not (``flavors`` holds what is served)
    latest: Mapping[str, FlavorData] = field(default_factory=dict, repr=False, compare=False)
    # flavors a hinted build re-reads anyway, and flavors with an ``extends`` (``_carry_over``)
    reread: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    extenders: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _resolution_cache: dict[tuple[str, str], Resolution] = field(default_factory=dict, repr=False)
    # flavor -> config type -> resolved values: plain dicts, so ``get`` is three subscripts.
    # Filled per flavor on its first ``get``: a reload among 1,000 flavors builds none of them.
    _index: dict[str, dict[str, Mapping[str, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _errors: list[list[Issue]] = field(default_factory=list, init=False, repr=False, compare=False)

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
        values: Any = self._values_of(flavor)[config_type]
        if key in values:
            return values[key]
        for part in key.split("."):
            values = values[part]
        return values

    def _values_of(self, flavor: str) -> dict[str, Mapping[str, Any]]:
        found = self._index.get(flavor)
        if found is None:
            configs = self.resolved.get(flavor) or self.resolved[DEFAULT]
            found = {type_name: config.values for type_name, config in configs.items()}
            if flavor in self.resolved:  # unknown names fall back without growing the index
                self._index[flavor] = found
        return found

    def dependents(self, names: Collection[str]) -> set[str]:
        """Flavors that inherit (directly or not) from any of ``names``."""
        wanted = set(names)
        if not wanted:
            return set()
        with_parent = self.extenders or (n for n, d in self.flavors.items() if d.extends is not None)
        return {
            n for n in with_parent if n in self.flavors and wanted.intersection(ancestors(n, self.flavors))
        }

    def errors(self) -> list[Issue]:
        """Every error of the snapshot (computed once: a snapshot never changes)."""
        if not self._errors:
            out = [i for i in self.issues if i.is_error]
            for status in self.statuses.values():
                if status.issues:
                    out.extend(i for i in status.issues if i.is_error)
            self._errors.append(out)
        return list(self._errors[0])

    def status_wire(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "loaded_at": self.loaded_at,
            "last_reload_seconds": round(self.build_seconds, 6),
            "flavors": {
                n: {**s.to_dict(), "digest": self.digest(n)} for n, s in sorted(self.statuses.items())
            },
            "errors": [i.to_dict() for i in self.errors()],
            "warnings": [i.to_dict() for i in self.issues if not i.is_error],
            "shadowed": [s.to_dict() for s in self.shadowed],
            "config_types": self.registry.names(),
        }


def build_snapshot(
    discovery: Discovery,
    registry: ConfigTypeRegistry,
    *,
    previous: Snapshot | None = None,
    cache: ParseCache | None = None,
    extra_issues: list[Issue] | None = None,
    reload_only: Collection[str] | None = None,
    quiet: bool = False,
) -> Snapshot:
    """Load every source into a new snapshot (or return ``previous`` when nothing changed).

    ``reload_only`` is a hint from a file watcher: the names of the flavors whose
    files changed.  A directory flavor outside it that read cleanly last time
    (and reads no symlink, whose target may change without an event) is carried
    over without touching the disk, so an edit costs the edited flavor, not the
    whole tree.  ``None`` reloads everything.  Chains are checked and resolved
    again in every build, so a parent's edit re-resolves its children in the same
    generation even though their files are not re-read.  ``quiet`` skips the
    invalid-flavor log events (a draft checked by the editor is not a reload).
    """
    started = time.perf_counter()
    cache = cache or ParseCache()
    issues = tuple(discovery.issues) + tuple(extra_issues or ())
    built = None
    if reload_only is not None and previous is not None and previous.registry is registry:
        built = _carry_over(discovery, registry, previous, cache, reload_only, issues, quiet)
    if built is None:
        built = _build_all(discovery, registry, previous, cache, reload_only, issues, quiet)
    if previous is not None and previous.fingerprint == built.fingerprint:
        return previous
    snapshot = Snapshot(
        generation=(previous.generation + 1) if previous is not None else 1,
        loaded_at=time.time(),
        registry=registry,
        flavors=built.loaded,
        statuses=built.statuses,
        shadowed=tuple(discovery.shadowed),
        issues=issues,
        resolved=built.resolve(),
        fingerprint=built.fingerprint,
        build_seconds=time.perf_counter() - started,
        latest=built.latest,
        reread=built.reread,
        extenders=built.extenders,
    )
    if len(cache.entries) > 2 * max(len(built.loaded) * max(len(registry.names()), 1), 64):
        alive = {c.file for d in built.loaded.values() for c in d.configs.values() if c.file}
        if len(cache.entries) > 2 * max(len(alive), 64):
            cache.forget_missing(alive)
    return snapshot


@dataclass(frozen=True)
class _Built:
    """What a build decided, before the (skippable) resolution of every flavor."""

    latest: dict[str, FlavorData]
    loaded: dict[str, FlavorData]
    statuses: dict[str, FlavorStatus]
    fingerprint: Fingerprint
    resolve: Callable[[], dict[str, Mapping[str, ResolvedConfig]]]
    reread: frozenset[str]
    extenders: frozenset[str]


def _build_all(
    discovery: Discovery,
    registry: ConfigTypeRegistry,
    previous: Snapshot | None,
    cache: ParseCache,
    reload_only: Collection[str] | None,
    issues: tuple[Issue, ...],
    quiet: bool,
) -> _Built:
    """Every flavor read (or carried over by the hint), checked, chosen and resolved."""
    latest = {
        name: _read_one(name, source, registry, previous, cache, reload_only)
        for name, source in discovery.sources.items()
    }
    loaded, statuses = _choose(latest, inheritance_issues(latest), previous, quiet=quiet)
    if previous is not None and discovery.unreadable:
        _keep_unreadable_roots(previous, discovery, loaded, statuses)
    _ensure_default(previous, loaded, statuses)
    return _Built(
        latest=latest,
        loaded=loaded,
        statuses=statuses,
        fingerprint=_fingerprint(loaded, statuses, discovery, issues, registry),
        resolve=lambda: resolve_all(loaded, registry, previous),
        reread=frozenset(n for n in latest if _reread_always(n, loaded, statuses)),
        extenders=frozenset(n for n, d in latest.items() if d.extends is not None),
    )


def _carry_over(
    discovery: Discovery,
    registry: ConfigTypeRegistry,
    previous: Snapshot,
    cache: ParseCache,
    reload_only: Collection[str],
    issues: tuple[Issue, ...],
    quiet: bool,
) -> _Built | None:
    """A hinted build that touches only what the edit can reach, or None for a full build.

    Every flavor outside ``reload_only`` that served ``ok`` from plain files last time is carried
    over as the previous build's objects -- data, status, resolution -- by copying the previous
    mappings (C-speed), so an edit among 1,000 flavors costs about one flavor.  Re-read: the hinted
    flavors and those that always are (``Snapshot.reread``); re-checked, re-chosen and re-resolved:
    those whose data is a new object, and the flavors that inherit from them.  Anything that could
    change more than that -- ``default`` changed (it is in every chain), a flavor starts or stops
    being served, a root cannot be read, a different listing -- takes the full build.
    """
    sources = discovery.sources
    if discovery.unreadable or len(sources) != len(previous.latest):
        return None
    latest = dict(previous.latest)
    changed: set[str] = set()
    for name in set(reload_only) | previous.reread:
        source = sources.get(name)
        if source is None or name not in latest:
            return None
        data = _read_one(name, source, registry, previous, cache, None)
        if data is not latest[name]:
            latest[name] = data
            changed.add(name)
    if DEFAULT in changed:
        return None
    affected = changed | {
        n for n in previous.extenders if n not in changed and changed.intersection(ancestors(n, latest))
    }
    part, part_statuses = _choose(
        {n: latest[n] for n in affected}, inheritance_issues(latest, affected), previous, quiet=quiet
    )
    if any((n in part) != (n in previous.flavors) for n in affected):
        return None  # a flavor starts or stops being served: the full build keeps discovery order
    loaded, statuses = dict(previous.flavors), dict(previous.statuses)
    loaded.update(part)
    statuses.update({n: _rechain(s, loaded) for n, s in part_statuses.items()})
    old_flavors, old_statuses, shadowed, _issues, _registry = previous.fingerprint
    fingerprint = (
        {**old_flavors, **{n: _flavor_key(loaded[n]) for n in part}},
        {**old_statuses, **{n: _status_key(statuses[n]) for n in affected}},
        shadowed,
        tuple(map(str, issues)),
        _registry_key(registry),
    )
    return _Built(
        latest=latest,
        loaded=loaded,
        statuses=statuses,
        fingerprint=fingerprint,
        resolve=lambda: resolve_all(loaded, registry, previous, keep=affected, only=True),
        reread=(previous.reread - affected) | {n for n in affected if _reread_always(n, loaded, statuses)},
        extenders=(previous.extenders - affected) | {n for n in affected if latest[n].extends is not None},
    )


def _reread_always(name: str, loaded: Mapping[str, FlavorData], statuses: Mapping[str, FlavorStatus]) -> bool:
    """Whether a hinted build must re-read this flavor even when the hint does not name it: it is
    not serving its own files (``error``/``invalid``), is not a directory, or reads a symlink
    (whose target may change without an event)."""
    data, status = loaded.get(name), statuses.get(name)
    return (
        data is None
        or status is None
        or status.status != FlavorState.OK
        or data.source.directory is None
        or data.linked
    )


def _read_one(
    name: str,
    source: FlavorSource,
    registry: ConfigTypeRegistry,
    previous: Snapshot | None,
    cache: ParseCache,
    reload_only: Collection[str] | None,
) -> FlavorData:
    """A source's own files as they are now (carried over when the watcher says unchanged)."""
    served = previous.flavors.get(name) if previous is not None else None
    if (
        reload_only is not None
        and previous is not None
        and name not in reload_only
        and served is not None
        and not _reread_always(name, previous.flavors, previous.statuses)
        and (served.source is source or served.source == source)
    ):
        return served
    data = load_flavor(source, registry, cache)
    if (
        served is not None
        and served.digest == data.digest
        and served.source == data.source
        and served.linked == data.linked
    ):
        return served  # same content: keep identity, so its resolution is reused
    return data


def _choose(
    latest: Mapping[str, FlavorData],
    chain_issues: Mapping[str, tuple[Issue, ...]],
    previous: Snapshot | None,
    *,
    quiet: bool = False,
) -> tuple[dict[str, FlavorData], dict[str, FlavorStatus]]:
    """What each flavor serves: the new version when it and its chain are valid, else its last good."""
    loaded: dict[str, FlavorData] = {}
    statuses: dict[str, FlavorStatus] = {}
    for name, data in latest.items():
        extra = chain_issues.get(name, ())
        if data.ok and not any(i.is_error for i in extra):
            loaded[name] = data
            continue
        errors = [str(i) for i in (*data.issues, *extra) if i.is_error]
        previous_good = previous.flavors.get(name) if previous is not None else None
        if previous_good is not None and previous_good.source.origin == data.source.origin:
            loaded[name] = previous_good  # last known good keeps serving
            statuses[name] = _status(data, FlavorState.ERROR, True, extra)
            if not quiet:
                logs.event("flavor_invalid_kept_last_good", logging.WARNING, flavor=name, errors=errors)
        else:
            statuses[name] = _status(data, FlavorState.INVALID, False, extra)
            if not quiet:
                logs.event("flavor_invalid", logging.WARNING, flavor=name, errors=errors)
    for name in loaded:
        if name not in statuses:
            statuses[name] = _status(loaded[name], FlavorState.OK, True, (), loaded)
    return loaded, statuses


def _rechain(status: FlavorStatus, loaded: Mapping[str, FlavorData]) -> FlavorStatus:
    """An ``ok`` status chosen among a few flavors, with its chain read from all of them."""
    if status.status != FlavorState.OK:
        return status
    chain = tuple(ancestors(status.name, loaded))
    return status if chain == status.chain else replace(status, chain=chain)


def _keep_unreadable_roots(
    previous: Snapshot, discovery: Discovery, loaded: dict[str, FlavorData], statuses: dict[str, FlavorStatus]
) -> None:
    """A root that exists but cannot be listed (permissions, I/O error) is not a deletion: its
    flavors keep serving their last good version until it can be read again."""
    for name, kept in previous.flavors.items():
        if name in loaded or name in discovery.sources or kept.source.root not in discovery.unreadable:
            continue
        loaded[name] = kept
        message = "its flavors directory cannot be read; serving last good"
        unreadable = Issue(file=kept.source.describe, line=None, path="", message=message)
        statuses[name] = _status(kept, FlavorState.ERROR, True, (unreadable,))


def _ensure_default(
    previous: Snapshot | None, loaded: dict[str, FlavorData], statuses: dict[str, FlavorStatus]
) -> None:
    """There is always a ``default``: the last good one when it disappeared, else the built-ins."""
    if DEFAULT not in loaded and previous is not None and DEFAULT in previous.flavors:
        kept = previous.flavors[DEFAULT]
        if kept.configs:
            loaded[DEFAULT] = kept
            if DEFAULT not in statuses:
                message = "default flavor disappeared; serving last good"
                missing = Issue(file=kept.source.describe, line=None, path="", message=message)
                statuses[DEFAULT] = _status(kept, FlavorState.ERROR, True, (missing,))
    if DEFAULT not in loaded:
        virtual = FlavorData(
            source=FlavorSource(DEFAULT, "builtin"),
            configs={},
            manifest=Manifest(description="Built-in defaults"),
            digest="builtin",
        )
        loaded[DEFAULT] = virtual
        statuses.setdefault(DEFAULT, _status(virtual, FlavorState.OK, True))


Fingerprint = tuple[Any, ...]


def _fingerprint(
    loaded: Mapping[str, FlavorData],
    statuses: Mapping[str, FlavorStatus],
    discovery: Discovery,
    issues: tuple[Issue, ...],
    registry: ConfigTypeRegistry,
) -> Fingerprint:
    """Everything a snapshot's answers depend on: equal fingerprints, equal snapshots.

    Per-flavor parts are mappings, so a carried-over build updates the entries it touched.
    """
    return (
        {n: _flavor_key(d) for n, d in loaded.items()},
        {n: _status_key(s) for n, s in statuses.items()},
        tuple(s.to_dict().items().__repr__() for s in discovery.shadowed),
        tuple(map(str, issues)),
        _registry_key(registry),
    )


def _flavor_key(data: FlavorData) -> tuple[str, str]:
    return (data.digest, data.source.describe)


def _status_key(status: FlavorStatus) -> tuple[str, tuple[str, ...]]:
    return (str(status.status), tuple(map(str, status.issues)))


def _registry_key(registry: ConfigTypeRegistry) -> tuple[Any, ...]:
    return tuple((t.name, t.owner, id(t.schema)) for t in registry)


def _status(
    data: FlavorData,
    status: FlavorState,
    serving: bool,
    extra: tuple[Issue, ...] = (),
    loaded: Mapping[str, FlavorData] | None = None,
) -> FlavorStatus:
    return FlavorStatus(
        name=data.source.name,
        source=data.source.describe,
        origin=data.source.origin,
        status=status,
        description=data.description,
        tags=data.tags,
        issues=data.issues + extra,
        serving=serving,
        extends=data.extends,
        chain=tuple(ancestors(data.source.name, loaded)) if loaded is not None else (),
    )
