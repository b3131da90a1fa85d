"""The plugin host: built-ins, entry points one by one, allow/deny lists.

Plugins are untrusted in the sense that they may be broken: each entry
point is imported on its own, each hook implementation is called on its
own (in a thread, with a deadline) and its result is type-checked, so a
plugin that raises, hangs or returns garbage is reported with its name and
skipped while everything else loads.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pluggy

from mvcore import logs
from mvcore.config import builtin, hookspecs
from mvcore.config.config_types import ConfigType, ConfigTypeRegistry
from mvcore.config.validation import Issue, schema_problem
from mvcore.errors import PluginError

ENTRY_POINT_GROUP = "mvcore"
HOOK_TIMEOUT_S = 5.0


class PluginSource(StrEnum):
    """Where a plugin came from: shipped with mvcore, an installed entry point, or registered in code."""

    BUILTIN = "builtin"
    ENTRY_POINT = "entry-point"
    DIRECT = "direct"


@dataclass
class PluginRecord:
    name: str
    version: str | None
    source: PluginSource
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": str(self.source),
            "hooks": self.hooks,
            "errors": self.errors,
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class Contributions:
    """Everything plugins add, gathered once per plugin set."""

    registry: ConfigTypeRegistry
    flavor_dirs: tuple[tuple[str, Path], ...]
    inline_flavors: tuple[tuple[str, Mapping[str, Mapping[str, Mapping[str, Any]]]], ...]
    issues: tuple[Issue, ...]


class PluginHost:
    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] = (),
        entry_points: bool = True,
        hook_timeout: float = HOOK_TIMEOUT_S,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.allow = set(allow) if allow is not None else None
        self.deny = set(deny)
        self.hook_timeout = hook_timeout
        self.records: dict[str, PluginRecord] = {}
        self._contributions: Contributions | None = None
        self._lock = threading.Lock()
        # (plugin, hook) -> the thread of a call that timed out: while it still runs, that hook is
        # not called again (a hung mvcore_on_reload would otherwise stall every reload by the
        # timeout and leave one more thread behind each time)
        self._hung: dict[tuple[str, str], threading.Thread] = {}
        self.register(builtin, "builtin", source="builtin", version=_version("mvcore"))
        if entry_points:
            self.load_entry_points()

    # ---- registration ------------------------------------------------------
    def register(
        self,
        plugin: object,
        name: str,
        *,
        source: PluginSource | str = PluginSource.DIRECT,
        version: str | None = None,
    ) -> None:
        record = PluginRecord(name, version, PluginSource(source))
        self.records[name] = record
        if source != "builtin" and not self._wanted(name):  # an app's own parts are never filtered
            record.enabled = False
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            record.errors.append(f"register failed: {exc}")
            return
        callers = self.pm.get_hookcallers(plugin) or []
        wrappers = sorted(
            c.name for c in callers for i in c.get_hookimpls() if i.plugin is plugin and _is_wrapper(i)
        )
        if wrappers:
            # Each implementation runs alone (thread + deadline), so a wrapper around the others
            # could never see their results: refuse it loudly instead of calling it wrongly.
            self.pm.unregister(plugin)
            record.errors.append(
                f"hook wrappers are not supported ({', '.join(wrappers)}): mvcore calls each "
                "implementation on its own; drop wrapper=True/hookwrapper=True"
            )
            return
        for caller in callers:
            if caller.spec is None and not _optional(caller, plugin):
                record.errors.append(_unknown_hook_message(caller.name))
        record.hooks = sorted(c.name for c in callers if c.spec is not None)
        self._contributions = None

    def _wanted(self, name: str) -> bool:
        if name == "builtin":
            return True
        if name in self.deny:
            return False
        return self.allow is None or name in self.allow

    def load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in self.records:
                continue
            version = _version(ep.dist.name) if ep.dist is not None else None
            if not self._wanted(ep.name):
                self.records[ep.name] = PluginRecord(
                    ep.name, version, PluginSource.ENTRY_POINT, enabled=False
                )
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:
                record = PluginRecord(
                    ep.name, version, PluginSource.ENTRY_POINT, errors=[f"import failed: {exc!r}"]
                )
                self.records[ep.name] = record
                logs.event("plugin_failed", logging.ERROR, plugin=ep.name, error=repr(exc))
                continue
            self.register(plugin, ep.name, source="entry-point", version=version)

    # ---- calling hooks -----------------------------------------------------
    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation separately, in pluggy's order; failures are recorded, not raised.

        pluggy calls the last registered implementation first, ``tryfirst`` ones before all
        others and ``trylast`` ones after; each call here runs alone with a deadline, so one
        plugin that raises or hangs cannot take the others down.
        """
        caller = getattr(self.pm.hook, hook_name)
        results = []
        for impl in reversed(caller.get_hookimpls()):
            name = impl.plugin_name
            hung = self._hung.get((name, hook_name))
            if hung is not None and hung.is_alive():
                continue  # reported when it timed out; still stuck
            args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
            ok, value, thread = _call_with_deadline(impl.function, args, self.hook_timeout)
            if thread is not None:
                self._hung[(name, hook_name)] = thread
            if ok:
                results.append((name, value))
            else:
                self._fail(name, f"{hook_name}: {value}")
        return results

    def _fail(self, name: str, message: str) -> None:
        record = self.records.get(name)
        if record is not None and message not in record.errors:
            record.errors.append(message)
        logs.event("plugin_hook_failed", logging.ERROR, plugin=name, error=message)

    def contributions(self) -> Contributions:
        with self._lock:
            if self._contributions is None:
                self._contributions = self._gather()
            return self._contributions

    def _gather(self) -> Contributions:
        issues: list[Issue] = []
        registry = ConfigTypeRegistry()
        for name, value in self.call_each("mvcore_config_types"):
            for item in value if isinstance(value, list | tuple) else [value]:
                try:
                    config_type = _as_config_type(item, name)
                    registry.add(config_type)
                except (PluginError, TypeError, ValueError, KeyError) as exc:
                    message = getattr(exc, "message", str(exc))
                    self._fail(name, f"mvcore_config_types: {message}")
                    issues.append(Issue(file=f"plugin:{name}", line=None, path="", message=message))
        dirs: list[tuple[str, Path]] = []
        for name, value in self.call_each("mvcore_flavor_dirs"):
            if value is None:
                continue
            items = value if isinstance(value, list | tuple) else [value]
            for item in items:
                if isinstance(item, str | Path):
                    dirs.append((name, Path(item)))
                else:
                    self._fail(name, f"mvcore_flavor_dirs: expected paths, got {type(item).__name__}")
        inline: list[tuple[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]] = []
        for name, value in self.call_each("mvcore_flavors"):
            if value is None:
                continue
            if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
                self._fail(name, "mvcore_flavors: expected {flavor: {config_type: mapping}}")
                continue
            bad_names = [k for k in value if not isinstance(k, str)]
            if bad_names:
                self._fail(name, f"mvcore_flavors: flavor names must be strings, got {bad_names[0]!r}")
                value = {k: v for k, v in value.items() if isinstance(k, str)}
            inline.append((name, value))
        return Contributions(registry, tuple(dirs), tuple(inline), tuple(issues))

    def providers(self, settings: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.call_each("mvcore_providers"):
            if not isinstance(value, Mapping):
                self._fail(name, "mvcore_providers: expected {name: provider}")
                continue
            for key, provider in value.items():
                try:
                    out[str(key)] = (
                        provider(settings) if callable(provider) and isinstance(provider, type) else provider
                    )
                except Exception as exc:  # a provider that cannot be built is skipped, not fatal
                    self._fail(name, f"mvcore_providers: {key!s}: raised {exc!r}")
        return out

    def notify_reload(self, event: dict[str, Any]) -> None:
        self.call_each("mvcore_on_reload", event=event)

    def report(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records.values()]


def _as_config_type(item: Any, plugin: str) -> ConfigType:
    if isinstance(item, ConfigType):
        if plugin != "builtin" and item.owner == "builtin":
            item = ConfigType(**{**item.__dict__, "owner": f"plugin:{plugin}"})
        if plugin != "builtin" and item.model is None:
            problem = schema_problem(item.schema, item.defaults)
            if problem:
                raise TypeError(problem)
        return item
    if not isinstance(item, Mapping) or "name" not in item or not isinstance(item.get("schema"), Mapping):
        raise TypeError("a config type needs at least 'name' and a JSON Schema 'schema'")
    defaults = item.get("defaults")
    if defaults is not None and not isinstance(defaults, Mapping):
        raise TypeError("'defaults' must be a mapping")
    problem = schema_problem(item["schema"], defaults)
    if problem:
        raise TypeError(problem)
    return ConfigType(
        name=str(item["name"]),
        schema=dict(item["schema"]),
        placeholders={k: frozenset(v) for k, v in dict(item.get("placeholders") or {}).items()},
        owner=f"plugin:{plugin}",
        defaults=dict(defaults or {}),
        description=str(item.get("description", "")),
        replaces_builtin=bool(item.get("replaces_builtin", False)),
    )


def _call_with_deadline(
    function: Any, args: dict[str, Any], timeout: float
) -> tuple[bool, Any, threading.Thread | None]:
    """(ok, value or error message, the thread when it is still running after ``timeout``)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function(**args)
        except BaseException as exc:
            box["error"] = f"raised {exc!r}"

    thread = threading.Thread(target=run, name="mvcore-hook", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return False, f"did not return within {timeout:g} s (skipped)", thread
    if "error" in box:
        return False, box["error"], None
    return True, box.get("value"), None


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return bool(impl.hookwrapper or getattr(impl, "wrapper", False))


def _optional(caller: pluggy.HookCaller, plugin: object) -> bool:
    return all(i.optionalhook for i in caller.get_hookimpls() if i.plugin is plugin)


def _unknown_hook_message(hook: str) -> str:
    """A misspelled hook would otherwise register silently and never be called (pluggy's check_pending)."""
    known = [name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_")]
    close = difflib.get_close_matches(hook, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f"; known hooks: {', '.join(sorted(known))}"
    return f"unknown hook {hook}: no such hook specification{hint}"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
