"""Value checks bound to a selected model: a catalogue of input schemas, and which keys they bind.

A flavor names models by value (``image_params.video_model: google/veo-3.1``) and sets values
that are really that model's inputs (``video_duration: 8`` is veo's ``duration``).  The framework
knows neither the models nor the keys; applications and plugins contribute both through two hooks:

* ``mvcore_models()`` -> :class:`ModelEntry` objects (or dicts): a model's published input schema
  (JSON Schema of its inputs: types, enums, ranges, required keys) with where and when it was taken;
* ``mvcore_model_bindings()`` -> :class:`ModelBinding` objects (or dicts): in config type T, key S
  selects the model, and keys K1..Kn are its inputs I1..In.

:func:`check_snapshot` checks every bound value of every flavor's *resolved* config against the
model that flavor selects (so a value set in one file and a model chosen in another are checked
together) and reports ``file:line: key: VALUE is not accepted by MODEL (ACCEPTED)`` at the file and
line that hold the value.  A model the catalogue does not know is a warning, never an error.
:meth:`ModelEntry.check_input` checks a whole input the way the model's API would (the request
checks of an application and test fakes use it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import jsonschema
from referencing import Registry

from mvcore import logs
from mvcore.config.validation import Issue, Severity

if TYPE_CHECKING:
    from mvcore.config.plugins import PluginHost
    from mvcore.config.resolver import ResolvedConfig
    from mvcore.config.snapshot import Snapshot

__all__ = [
    "InputProblem",
    "ModelBinding",
    "ModelCatalogue",
    "ModelCheckMemo",
    "ModelEntry",
    "ModelIssue",
    "catalogue_for",
    "check_resolved",
    "check_snapshot",
    "with_model_issues",
]

_NO_RETRIEVAL: Registry[Any] = Registry()
_BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "builtin")


def show_value(value: Any) -> str:
    """A value the way a YAML file shows it: ``5``, ``webp``, ``true``."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class InputProblem:
    """One input a model would refuse: which input, the value, why, and what it accepts."""

    input: str
    value: Any
    message: str
    accepted: str = ""
    accepted_values: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.input, "value": self.value, "message": self.message}
        if self.accepted:
            out["accepted"] = self.accepted
        if self.accepted_values is not None:
            out["accepted_values"] = list(self.accepted_values)
        return out


@dataclass(frozen=True)
class ModelEntry:
    """One model's published input schema, with its source and the date it was taken."""

    name: str
    input_schema: Mapping[str, Any]
    source: str
    retrieved: str
    version: str | None = None
    notes: tuple[str, ...] = ()
    inferred: tuple[str, ...] = ()
    owner: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], owner: str = "") -> ModelEntry:
        """Build from a catalogue file / hook dict; raises ValueError naming what is wrong."""
        name = data.get("name")
        if not isinstance(name, str) or "/" not in name or ":" in name:
            raise ValueError(f"a model entry needs 'name' as owner/name, got {name!r}")
        schema = data.get("input_schema")
        if not isinstance(schema, Mapping) or not isinstance(schema.get("properties", {}), Mapping):
            raise ValueError(f"model {name}: 'input_schema' must be a JSON Schema object with properties")
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"model {name}: invalid input_schema: {exc.message}") from None
        for key in ("source", "retrieved"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"model {name}: {key!r} (where and when the schema was taken) is required")
        return cls(
            name=name,
            input_schema=schema,
            source=str(data["source"]),
            retrieved=str(data["retrieved"]),
            version=data.get("version") or None,
            notes=tuple(str(n) for n in data.get("notes") or ()),
            inferred=tuple(str(n) for n in data.get("inferred") or ()),
            owner=owner,
        )

    @property
    def properties(self) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.input_schema.get("properties", {})
        return props

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.input_schema.get("required", ()))

    def accepts(self, input_name: str) -> bool:
        return input_name in self.properties

    def problem(self, input_name: str, value: Any) -> InputProblem | None:
        """Why the model would refuse ``value`` for ``input_name`` (None when it accepts it)."""
        prop = self.properties.get(input_name)
        if prop is None:
            return InputProblem(input_name, value, f"{self.name} has no input {input_name!r}")
        error = next(iter(_validator(prop).iter_errors(value)), None)
        if error is None:
            return None
        accepted = accepted_text(prop)
        enum = prop.get("enum")
        return InputProblem(
            input_name,
            value,
            f"{show_value(value)} is not accepted by {self.name} ({accepted})",
            accepted,
            tuple(enum) if isinstance(enum, list) else None,
        )

    def check_input(self, inp: Mapping[str, Any], *, allow_unknown: bool = True) -> list[InputProblem]:
        """Every problem of a whole input: missing required inputs, refused values, unknown keys."""
        problems = [
            InputProblem(name, None, f"{name} is required by {self.name}")
            for name in self.required
            if name not in inp
        ]
        for name, value in inp.items():
            if name not in self.properties:
                if not allow_unknown or self.input_schema.get("additionalProperties") is False:
                    problems.append(InputProblem(name, value, f"{self.name} has no input {name!r}"))
                continue
            found = self.problem(name, value)
            if found is not None:
                problems.append(found)
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "retrieved": self.retrieved,
            "owner": self.owner,
            "notes": list(self.notes),
            "inferred": list(self.inferred),
            "input_schema": self.input_schema,
        }


_validators: dict[str, jsonschema.Draft202012Validator] = {}


def _validator(prop: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    key = json.dumps(prop, sort_keys=True, default=str)
    found = _validators.get(key)
    if found is None:
        if len(_validators) > 1024:
            _validators.clear()
        found = _validators[key] = jsonschema.Draft202012Validator(prop, registry=_NO_RETRIEVAL)
    return found


def accepted_text(prop: Mapping[str, Any]) -> str:
    """What a property accepts, for a human: ``4, 6, 8`` / ``0 to 1`` / ``a boolean``."""
    enum = prop.get("enum")
    if isinstance(enum, list):
        return ", ".join(show_value(v) for v in enum)
    low, high = prop.get("minimum"), prop.get("maximum")
    kind = prop.get("type", "value")
    if low is not None and high is not None:
        return f"{kind} from {show_value(low)} to {show_value(high)}"
    if low is not None:
        return f"{kind} of at least {show_value(low)}"
    if high is not None:
        return f"{kind} of at most {show_value(high)}"
    if "maxItems" in prop:
        return f"{kind} of at most {prop['maxItems']} items"
    article = "an" if str(kind)[:1] in "aeiou" else "a"
    return f"{article} {kind}"


@dataclass(frozen=True)
class ModelBinding:
    """In config type ``config_type``, key ``selector`` names the model; ``keys`` maps config keys
    to that model's input names (``{"video_duration": "duration"}``)."""

    config_type: str
    selector: str
    keys: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], owner: str = "") -> ModelBinding:
        keys = data.get("keys") or {}
        if not isinstance(data.get("config_type"), str) or not isinstance(data.get("selector"), str):
            raise ValueError("a model binding needs 'config_type' and 'selector' strings")
        if not isinstance(keys, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
        ):
            raise ValueError("a model binding's 'keys' must map config keys to model input names")
        return cls(str(data["config_type"]), str(data["selector"]), dict(keys), owner)


@dataclass(frozen=True)
class ModelCatalogue:
    """Models by name and the bindings that point at them."""

    entries: Mapping[str, ModelEntry] = field(default_factory=dict)
    bindings: tuple[ModelBinding, ...] = ()
    issues: tuple[Issue, ...] = ()

    def get(self, model: str | None) -> ModelEntry | None:
        """The entry of ``owner/name`` (a ``:version`` suffix is ignored)."""
        if not model:
            return None
        return self.entries.get(str(model).partition(":")[0].strip())

    def names(self) -> list[str]:
        return sorted(self.entries)

    def merged(self, other: ModelCatalogue) -> ModelCatalogue:
        """This catalogue with ``other``'s entries added (``other`` wins on a name clash)."""
        bindings = self.bindings + tuple(b for b in other.bindings if b not in self.bindings)
        return ModelCatalogue({**self.entries, **other.entries}, bindings, self.issues + other.issues)

    @classmethod
    def build(
        cls, models: Iterable[tuple[str, Any]], bindings: Iterable[tuple[str, Any]] = ()
    ) -> ModelCatalogue:
        """From ``(owner, item)`` pairs; a bad item is an issue naming its owner, not a crash."""
        entries: dict[str, ModelEntry] = {}
        found: list[ModelBinding] = []
        issues: list[Issue] = []
        for owner, item in models:
            try:
                entry = item if isinstance(item, ModelEntry) else ModelEntry.from_mapping(item, owner)
            except (ValueError, TypeError, AttributeError) as exc:
                issues.append(
                    Issue(file=f"plugin:{owner}", line=None, path="", message=f"mvcore_models: {exc}")
                )
                continue
            entries[entry.name] = entry if entry.owner else replace(entry, owner=owner)
        for owner, item in bindings:
            try:
                binding = item if isinstance(item, ModelBinding) else ModelBinding.from_mapping(item, owner)
            except (ValueError, TypeError, AttributeError) as exc:
                issues.append(
                    Issue(file=f"plugin:{owner}", line=None, path="", message=f"mvcore_model_bindings: {exc}")
                )
                continue
            if binding not in found:
                found.append(binding)
        return cls(entries, tuple(found), tuple(issues))


def _flatten(owner: str, value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [(owner, item) for item in items]


# host id -> (the contributions the catalogue was gathered with, the catalogue)
_HOST_CACHE: dict[int, tuple[object, ModelCatalogue]] = {}


def catalogue_for(host: PluginHost) -> ModelCatalogue:
    """The catalogue every plugin of ``host`` contributes (gathered once per plugin set)."""
    contributions = host.contributions()
    cached = _HOST_CACHE.get(id(host))
    if cached is not None and cached[0] is contributions:
        return cached[1]
    models = [pair for name, value in host.call_each("mvcore_models") for pair in _flatten(name, value)]
    bindings = [
        pair for name, value in host.call_each("mvcore_model_bindings") for pair in _flatten(name, value)
    ]
    catalogue = ModelCatalogue.build(models, bindings)
    for issue in catalogue.issues:
        logs.event("model_catalogue_entry_skipped", logging.WARNING, problem=str(issue))
    if len(_HOST_CACHE) > 64:
        _HOST_CACHE.clear()
    _HOST_CACHE[id(host)] = (contributions, catalogue)
    return catalogue


# ------------------------------------------------------------------------------ flavor checks


@dataclass(frozen=True, kw_only=True)
class ModelIssue(Issue):
    """An issue of a model-bound value; ``flavors`` are the flavors whose resolution shows it."""

    flavors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "flavors": list(self.flavors)}


Display = Callable[[str], str]


def _where(config: ResolvedConfig, key: str, display: Display) -> tuple[str, int | None]:
    prov = config.provenance.get(key)
    if prov is None:
        return f"{config.config_type}.yaml", None
    return (display(prov.file) if prov.file else f"{prov.layer}:{config.config_type}"), prov.line


def check_resolved(
    flavor: str,
    configs: Mapping[str, ResolvedConfig],
    catalogue: ModelCatalogue,
    display: Display = lambda path: path,
) -> list[ModelIssue]:
    """Issues of one flavor's resolved configs against the models they select.

    ``display`` turns a provenance file (absolute) into the path shown in messages.
    """
    issues: list[ModelIssue] = []
    for binding in catalogue.bindings:
        config = configs.get(binding.config_type)
        if config is None:
            continue
        model = config.values.get(binding.selector)
        if not isinstance(model, str) or not model.strip():
            continue
        entry = catalogue.get(model)
        if entry is None:
            file, line = _where(config, binding.selector, display)
            message = (
                f"{model} is not in the model catalogue, so its values are not checked "
                "(`mvcore models list` shows the catalogue; a plugin can add it with mvcore_models)"
            )
            issues.append(
                ModelIssue(
                    file=file,
                    line=line,
                    path=binding.selector,
                    message=message,
                    severity=Severity.WARNING,
                    flavors=(flavor,),
                )
            )
            continue
        for key, input_name in binding.keys.items():
            if key not in config.values:
                continue
            value = config.values[key]
            if not entry.accepts(input_name):
                # not an input of this model: it is not sent, and each response says so in
                # metadata.parameters_not_sent (files written for the original system keep such keys)
                continue
            file, line = _where(config, key, display)
            found = entry.problem(input_name, value)
            if found is None:
                continue
            message = found.message
            model_file, model_line = _where(config, binding.selector, display)
            if model_file != file:
                message += f" (model chosen at {model_file}:{model_line})"
            issues.append(ModelIssue(file=file, line=line, path=key, message=message, flavors=(flavor,)))
    return issues


class ModelCheckMemo:
    """Each flavor's model issues from the last check, kept while its resolution is the same.

    A reload re-resolves only the flavors whose chain changed and hands every other flavor the
    same :class:`ResolvedConfig` objects as before, so "same objects" means "same answer": one
    edit among 1,000 flavors re-checks one flavor, not 1,000 (each check runs JSON Schema
    validators).  Entries hold the objects they were computed from, so an id is never reused.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Checked] = {}

    def issues(
        self, name: str, configs: Mapping[str, ResolvedConfig], catalogue: ModelCatalogue, display: Display
    ) -> list[ModelIssue]:
        cached = self._entries.get(name)
        if cached is not None and cached.catalogue is catalogue:
            if cached.configs is configs:  # a carried-over flavor shares the very mapping
                return cached.issues
            key = tuple(configs.get(b.config_type) for b in catalogue.bindings)
            if _same_objects(cached.bound, key):
                self._entries[name] = _Checked(catalogue, configs, key, cached.issues)
                return cached.issues
        found = check_resolved(name, configs, catalogue, display)
        key = tuple(configs.get(b.config_type) for b in catalogue.bindings)
        self._entries[name] = _Checked(catalogue, configs, key, found)
        return found

    def keep_only(self, names: Iterable[str]) -> None:
        wanted = set(names)
        for name in [n for n in self._entries if n not in wanted]:
            del self._entries[name]


@dataclass(frozen=True)
class _Checked:
    catalogue: ModelCatalogue
    configs: Mapping[str, ResolvedConfig]
    bound: tuple[object, ...]  # the resolved configs of the bound config types, in binding order
    issues: list[ModelIssue]


def _same_objects(old: tuple[object, ...], new: tuple[object, ...]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))


def check_snapshot(
    snapshot: Snapshot, catalogue: ModelCatalogue, memo: ModelCheckMemo | None = None
) -> tuple[ModelIssue, ...]:
    """Every flavor's model issues, each reported once with the flavors it affects."""
    memo = memo or ModelCheckMemo()
    others: dict[str, str] = {}  # every flavor folder, built only if a folder is not named after its flavor

    def display(path: str) -> str:
        folder, _, filename = os.path.abspath(path).rpartition(os.sep)
        if folder == _BUILTIN_DIR:
            return f"builtin/{filename}"
        prefix = _named_flavor_folder(snapshot, folder)
        if prefix is None:
            if not others:
                others.update(_flavor_folders(snapshot))
            prefix = others.get(folder)
        return f"{prefix}/{filename}" if prefix is not None else filename

    merged: dict[tuple[str, int | None, str, str, str], list[str]] = {}
    entries = memo._entries
    for name, configs in snapshot.resolved.items():
        cached = entries.get(name)
        if cached is not None and cached.configs is configs and cached.catalogue is catalogue:
            found = cached.issues  # the common case of a reload, inlined: one per flavor
        else:
            found = memo.issues(name, configs, catalogue, display)
        for issue in found:
            key = (issue.file, issue.line, issue.path, issue.message, issue.severity)
            merged.setdefault(key, []).append(name)
    memo.keep_only(snapshot.resolved)
    return tuple(
        ModelIssue(
            file=file,
            line=line,
            path=path,
            message=message,
            severity=Severity(severity),
            flavors=tuple(flavors),
        )
        for (file, line, path, message, severity), flavors in merged.items()
    )


def _named_flavor_folder(snapshot: Snapshot, folder: str) -> str | None:
    """``root/name`` when ``folder`` (absolute) is the folder of the flavor it is named after."""
    data = snapshot.flavors.get(os.path.basename(folder))
    if data is None or data.source.directory is None or data.source.root is None:
        return None
    if os.path.abspath(data.source.directory) != folder:
        return None
    return f"{data.source.root.name}/{data.source.name}"


def _flavor_folders(snapshot: Snapshot) -> dict[str, str]:
    """Absolute folder of each directory flavor -> ``root/name``, as messages show it."""
    shown = {"": ""}  # never empty, so ``display`` builds it at most once per check
    for data in snapshot.flavors.values():
        source = data.source
        if source.directory is not None and source.root is not None:
            shown[os.path.abspath(source.directory)] = f"{source.root.name}/{source.name}"
    return shown


def with_model_issues(
    snapshot: Snapshot, catalogue: ModelCatalogue, memo: ModelCheckMemo | None = None
) -> Snapshot:
    """``snapshot`` with its model issues (and the catalogue's own issues) among its issues.

    The issues go to the snapshot-wide list, not to a flavor's status: a value and the model that
    refuses it may live in different flavors' files (default's duration, a flavor's model), so
    "keep the last good version of that flavor" has no meaning for them.  They are reported
    (status, ``flavors validate``) and requests are refused before any provider call.  ``memo``
    (one per store) carries each unchanged flavor's result over from the previous build.
    """
    if not catalogue.bindings and not catalogue.issues:
        return snapshot
    found = check_snapshot(snapshot, catalogue, memo)
    if not found and not catalogue.issues:
        return snapshot
    kept = tuple(i for i in snapshot.issues if not isinstance(i, ModelIssue))
    return replace(snapshot, issues=kept + catalogue.issues + found)
