"""Reading and checking one flavor file.

YAML is parsed safely (``CSafeLoader`` when PyYAML has libyaml) into a node
tree, which gives us line numbers for every key; values are built from the
nodes with hard caps (size, node count -- which stops alias bombs --, depth)
so a hostile file costs bounded time and memory.  Then the value is checked
against its config type: pydantic first (fast), and only when that fails the
JSON Schema, which collects *every* error as ``file:line: key.path: message``.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError as PydanticValidationError
from referencing import Registry

from mvcore.config import templates
from mvcore.config.config_types import ConfigType

try:  # libyaml is much faster; fall back to the pure-python safe loader
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 32
MAX_ALIASES = 100

_SAFE_SCALARS = yaml.constructor.SafeConstructor.yaml_constructors
# Only JSON-like data: no timestamps, binary, sets, ordered maps or language-specific tags.
_PLAIN_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_COLLECTION_TAGS: dict[type, str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}
_scalar_builder = yaml.constructor.SafeConstructor()


class Severity(StrEnum):
    """How bad an issue is: an ``error`` stops a flavor from loading, a ``warning`` does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, kw_only=True)
class Issue:
    """One problem in one file, formatted the way editors jump to it."""

    file: str
    line: int | None
    path: str
    message: str
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "severity": str(self.severity),
            "text": str(self),
        }


@dataclass
class ParsedFile:
    """A YAML document with the line of every key path (dotted, ``a.b.0``)."""

    path: Path
    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


class _Builder:
    """Turns a composed node tree into python values, counting as it goes."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.nodes = 0
        self.aliases = 0
        self.lines: dict[str, int] = {}
        self._seen: set[int] = set()

    def fail(self, node: yaml.Node | None, message: str, path: str = "") -> Issue:
        line = node.start_mark.line + 1 if node is not None else None
        return Issue(file=self.display, line=line, path=path, message=message)

    def build(self, node: yaml.Node, path: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Stop(self.fail(node, f"too many YAML nodes (over {MAX_NODES}); aliases expanding?"))
        if depth > MAX_DEPTH:
            raise _Stop(self.fail(node, f"nesting deeper than {MAX_DEPTH} levels"))
        if not isinstance(node, yaml.ScalarNode):
            # The composer hands back the *same* node object for an alias.
            if id(node) in self._seen:
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _Stop(self.fail(node, f"more than {MAX_ALIASES} aliases"))
            self._seen.add(id(node))
            if node.tag != _COLLECTION_TAGS.get(type(node)):
                raise _Stop(self.fail(node, _unsupported(node.tag), path))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Stop(
                        self.fail(key_node, "YAML merge keys ('<<') are not supported; write keys out")
                    )
                key = self.build(key_node, path, depth + 1)
                if not isinstance(key, str):
                    raise _Stop(self.fail(key_node, f"keys must be strings, got {type(key).__name__}"))
                child = f"{path}.{key}" if path else key
                if key in out:
                    first = self.lines.get(child)
                    raise _Stop(self.fail(key_node, f"duplicate key (first defined on line {first})", child))
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = f"{path}.{index}" if path else str(index)
                self.lines[child] = item.start_mark.line + 1
                items.append(self.build(item, child, depth + 1))
            return items
        constructor = _SAFE_SCALARS.get(node.tag)
        if constructor is None or node.tag not in _PLAIN_SCALAR_TAGS:
            raise _Stop(self.fail(node, _unsupported(node.tag), path))
        return constructor(_scalar_builder, node)


def _unsupported(tag: str) -> str:
    return f"unsupported YAML tag {tag!r} (only plain data is allowed; quote the value if it is text)"


class _Stop(Exception):
    def __init__(self, issue: Issue) -> None:
        self.issue = issue


def display_name(path: Path, root: Path | None) -> str:
    """Paths in messages are relative to the flavors root: no server layout leaks."""
    if root is not None:
        try:
            return str(path.relative_to(root.parent))
        except ValueError:
            pass
    return path.name


def read_yaml(path: Path, *, display: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> ParsedFile:
    """Parse one file into a ParsedFile; never raises for bad input."""
    shown = display or path.name
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return _bad(path, shown, "is a directory, expected a YAML file")
        if not stat.S_ISREG(st.st_mode):
            return _bad(path, shown, "is not a regular file (FIFO, socket or device)")
        if st.st_size > max_bytes:
            return _bad(path, shown, f"file is {st.st_size} bytes, over the {max_bytes}-byte limit")
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        return _bad(path, shown, f"cannot read file: {exc.strerror or exc.__class__.__name__}")
    if len(raw) > max_bytes:
        return _bad(path, shown, f"file is over the {max_bytes}-byte limit")
    return parse_yaml_bytes(raw, path=path, display=shown)


# libyaml's composer is recursive C code with no depth limit: a 200 KB file of nested brackets
# overflows the C stack (the whole process dies with SIGSEGV, sooner on a thread's smaller stack),
# and a 1 MiB file of half a million tiny nodes takes seconds and ~100 MiB to compose before the
# node cap is even checked.  A file this small cannot do either (at most ~1,000 levels); bigger
# ones are first scanned as an event stream, which stops at the first level or node over the caps.
_PRESCAN_ABOVE_BYTES = 2048


def _event_line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _shape_problem(text: str) -> tuple[int | None, str] | None:
    """(line, message) when the document nests deeper or holds more nodes than the caps allow."""
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                nodes += 1
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                nodes += 1
                depth += 1
                if depth > MAX_DEPTH + 1:  # the builder counts the top-level collection as depth 0
                    return _event_line(event), f"nesting deeper than {MAX_DEPTH} levels"
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
            if nodes > MAX_NODES:
                return _event_line(event), f"too many YAML nodes (over {MAX_NODES}); aliases expanding?"
    except yaml.YAMLError:
        return None  # not well-formed: compose reports it, with its line
    return None


def parse_yaml_bytes(raw: bytes, *, path: Path, display: str) -> ParsedFile:
    if b"\x00" in raw:
        return _bad(path, display, "file contains a NUL byte; is it binary?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _bad(path, display, f"file is not valid UTF-8 (byte {exc.start})")
    if len(raw) > _PRESCAN_ABOVE_BYTES:
        shape = _shape_problem(text)
        if shape is not None:
            return ParsedFile(
                path, None, issues=[Issue(file=display, line=shape[0], path="", message=shape[1])]
            )
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = exc.problem or "invalid YAML"
        return ParsedFile(
            path, None, issues=[Issue(file=display, line=line, path="", message=f"invalid YAML: {problem}")]
        )
    except yaml.YAMLError as exc:
        return _bad(path, display, f"invalid YAML: {exc.__class__.__name__}")
    if node is None:
        return ParsedFile(path, {})
    builder = _Builder(display)
    try:
        data = builder.build(node, "", 0)
    except _Stop as stop:
        return ParsedFile(path, None, issues=[stop.issue])
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        return _bad(path, display, f"invalid value: {exc}")
    if not isinstance(data, dict):
        return ParsedFile(
            path,
            None,
            issues=[
                Issue(
                    file=display,
                    line=1,
                    path="",
                    message=f"top level must be a mapping, got {type(data).__name__}",
                )
            ],
        )
    return ParsedFile(path, data, builder.lines)


def _bad(path: Path, display: str, message: str) -> ParsedFile:
    return ParsedFile(path, None, issues=[Issue(file=display, line=None, path="", message=message)])


_validators: dict[int, jsonschema.Draft202012Validator] = {}
_NO_RETRIEVAL: Registry[Any] = Registry()  # a $ref is never fetched from the network


def _validator(config_type: ConfigType) -> jsonschema.Draft202012Validator:
    key = id(config_type.schema)
    found = _validators.get(key)
    if found is None:
        found = _validators[key] = jsonschema.Draft202012Validator(config_type.schema, registry=_NO_RETRIEVAL)
    return found


def check_config(parsed: ParsedFile, config_type: ConfigType, display: str) -> list[Issue]:
    """Schema and template checks of a parsed file; returns every issue."""
    data = parsed.data
    if data is None:
        return []
    issues: list[Issue] = []
    if config_type.model is not None:
        try:
            config_type.model.model_validate(data)
            schema_ok = True
        except PydanticValidationError:
            schema_ok = False
    else:
        schema_ok = False
    if not schema_ok:
        try:
            issues.extend(_schema_issues(data, parsed.lines, config_type, display))
        except Exception as exc:  # a plugin's broken schema must not break loading
            detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            message = f"cannot check against the {config_type.name!r} schema: {detail}"
            issues.append(Issue(file=display, line=None, path="", message=message))
    issues.extend(check_templates(data, parsed.lines, config_type, display))
    return issues


def _schema_issues(data: Any, lines: Mapping[str, int], config_type: ConfigType, display: str) -> list[Issue]:
    issues = []
    validator = _validator(config_type)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        base = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            extra = [str(k) for k in error.instance if k not in allowed]
            for key in extra:
                path = f"{base}.{key}" if base else key
                guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {guess[0]!r}?" if guess else f"; allowed keys: {', '.join(allowed)}"
                issues.append(
                    Issue(file=display, line=lines.get(path), path=path, message=f"unknown key {key!r}{hint}")
                )
            continue
        issues.append(Issue(file=display, line=_line_for(lines, base), path=base, message=error.message))
    return issues


def schema_problem(schema: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str | None:
    """Why a plugin's JSON Schema (with its defaults) can't be used, or None when it can."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"invalid JSON Schema: {exc.message}"
    remote = _remote_refs(schema)
    if remote:
        return f"$ref {remote[0]!r} is not local; remote schemas are never fetched (bundle it under $defs)"
    try:
        validator = jsonschema.Draft202012Validator(schema, registry=_NO_RETRIEVAL)
        error = next(iter(validator.iter_errors(dict(defaults or {}))), None)
    except Exception as exc:  # unresolvable local $ref and the like
        return f"schema cannot be used: {exc.__class__.__name__}: {str(exc)[:200]}"
    if error is not None:
        where = ".".join(map(str, error.absolute_path))
        return f"defaults do not match the schema: {where + ': ' if where else ''}{error.message}"
    return None


def _remote_refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
                found.append(value)
            else:
                found.extend(_remote_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_remote_refs(item))
    return found


def _line_for(lines: Mapping[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path.rpartition(".")[0]
    return 1 if lines else None


def template_fields(template: str) -> set[str]:
    """Placeholder names of a template (:mod:`mvcore.config.templates`); TemplateError when invalid."""
    return set(templates.parse(template).names)


def check_templates(
    data: Mapping[str, Any], lines: Mapping[str, int], config_type: ConfigType, display: str
) -> list[Issue]:
    issues = []
    for key, allowed in config_type.placeholders.items():
        template = data.get(key)
        if not isinstance(template, str):
            continue
        try:
            used = template_fields(template)
        except templates.TemplateError as exc:
            line = _template_line(lines.get(key), template, exc)
            issues.append(Issue(file=display, line=line, path=key, message=str(exc)))
            continue
        for name in sorted(used - allowed):
            guess = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.6)
            hint = f"; did you mean {{{guess[0]}}}?" if guess else ""
            issues.append(
                Issue(
                    file=display,
                    line=lines.get(key),
                    path=key,
                    message=f"unknown placeholder {{{name}}}{hint} (allowed: {', '.join(sorted(allowed))})",
                )
            )
    return issues


def _template_line(key_line: int | None, template: str, exc: templates.TemplateError) -> int | None:
    """The file line of a template error: a one-line value sits on its key's line; a block
    scalar (``|``/``>``) starts on the next one."""
    if key_line is None:
        return None
    if "\n" not in template.rstrip("\n"):
        return key_line
    return key_line + exc.line
