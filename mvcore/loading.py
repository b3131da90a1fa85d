"""Reading one flavor source into checked data, with a parse cache.

The cache keys each file by its stat signature and content hash, so a
rebuild after one edit re-reads one file, and a rebuild where nothing
changed yields exactly the same objects -- which is how a snapshot knows
that its content did not change and keeps its generation.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvcore.config_types import ConfigTypeRegistry
from mvcore.discovery import MANIFEST, FlavorSource, is_ignored, within
from mvcore.validation import MAX_FILE_BYTES, Issue, ParsedFile, check_config, parse_yaml_bytes, read_yaml


@dataclass(frozen=True)
class ConfigFile:
    """One config type's values inside one flavor."""

    data: Mapping[str, Any]
    file: str | None  # absolute path of the YAML file; None for in-code values
    lines: Mapping[str, int]
    digest: str


@dataclass(frozen=True)
class FlavorData:
    """A loaded flavor: its configs, manifest and every issue found."""

    source: FlavorSource
    configs: Mapping[str, ConfigFile]
    description: str = ""
    tags: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = ()
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


@dataclass
class _Entry:
    signature: tuple[int, int, int]
    digest: str
    parsed: ParsedFile


@dataclass
class ParseCache:
    """path -> last parse, keyed by (mtime_ns, size, inode) and content hash."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, path: Path, display: str) -> tuple[ParsedFile, str]:
        key = str(path)
        try:
            st = os.stat(path)
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            parsed = read_yaml(path, display=display)
            return parsed, "unreadable"
        with self.lock:
            entry = self.entries.get(key)
        if entry is not None and entry.signature == signature:
            return entry.parsed, entry.digest
        parsed = read_yaml(path, display=display)
        digest = _digest_file(path) if parsed.data is not None else f"bad:{hash(tuple(map(str, parsed.issues)))}"
        if entry is not None and entry.digest == digest:
            parsed = entry.parsed  # same content, new mtime: keep identity
        with self.lock:
            self.entries[key] = _Entry(signature, digest, parsed)
        return parsed, digest

    def forget_missing(self, alive: set[str]) -> None:
        with self.lock:
            for key in [k for k in self.entries if k not in alive]:
                del self.entries[key]


def _digest_file(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(MAX_FILE_BYTES + 1), digest_size=16).hexdigest()
    except OSError:
        return "unreadable"


def _digest_obj(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def load_flavor(source: FlavorSource, registry: ConfigTypeRegistry, cache: ParseCache) -> FlavorData:
    if source.inline is not None:
        return _load_inline(source, registry)
    assert source.directory is not None and source.root is not None
    directory, root = source.directory, source.root
    by_file = registry.by_filename()
    configs: dict[str, ConfigFile] = {}
    issues: list[Issue] = []
    description, tags = "", ()
    digests = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        shown = f"{root.name}/{source.name}"
        return FlavorData(source, {}, issues=(Issue(shown, None, "", f"cannot list: {exc.strerror}"),))
    for name in names:
        if is_ignored(name):
            continue
        path = directory / name
        shown = f"{root.name}/{source.name}/{name}"
        if not (name.endswith(".yaml") or name.endswith(".yml")):
            continue
        if os.path.islink(path) and not within(path, root):
            issues.append(Issue(shown, None, "", "symlink points outside the flavors directory"))
            continue
        if name in (MANIFEST, "flavor.yml"):
            parsed, digest = cache.read(path, shown)
            issues.extend(parsed.issues)
            if parsed.data is not None:
                description, tags, more = _manifest(parsed, shown)
                issues.extend(more)
            digests.append((name, digest))
            continue
        config_type = by_file.get(name)
        if config_type is None:
            known = ", ".join(sorted(t.filename for t in registry))
            issues.append(
                Issue(shown, None, "", f"unknown config file (known: {known}, flavor.yaml); ignored", "warning")
            )
            continue
        parsed, digest = cache.read(path, shown)
        digests.append((name, digest))
        issues.extend(parsed.issues)
        if parsed.data is None:
            continue
        found = check_config(parsed, config_type, shown)
        issues.extend(found)
        if config_type.name in configs:
            issues.append(Issue(shown, None, "", f"both .yaml and .yml exist for {config_type.name}"))
        configs[config_type.name] = ConfigFile(parsed.data, str(path), parsed.lines, digest)
    flavor_digest = _digest_obj([source.origin, digests, [str(i) for i in issues]])
    return FlavorData(source, configs, description, tags, tuple(issues), flavor_digest)


def _manifest(parsed: ParsedFile, shown: str) -> tuple[str, tuple[str, ...], list[Issue]]:
    data = parsed.data or {}
    issues = []
    description = data.get("description", "")
    tags = data.get("tags", [])
    if not isinstance(description, str):
        issues.append(Issue(shown, parsed.lines.get("description"), "description", "must be a string"))
        description = ""
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        issues.append(Issue(shown, parsed.lines.get("tags"), "tags", "must be a list of strings"))
        tags = []
    for key in data:
        if key not in ("description", "tags"):
            issues.append(Issue(shown, parsed.lines.get(key), key, "unknown manifest key; allowed: description, tags"))
    return description, tuple(tags), issues


def _load_inline(source: FlavorSource, registry: ConfigTypeRegistry) -> FlavorData:
    assert source.inline is not None
    configs: dict[str, ConfigFile] = {}
    issues: list[Issue] = []
    shown = f"{source.origin}/{source.name}"
    description = ""
    for type_name, data in source.inline.items():
        if type_name == "flavor" and isinstance(data, Mapping):
            description = str(data.get("description", ""))
            continue
        if type_name not in registry:
            issues.append(Issue(shown, None, type_name, "unknown config type", "warning"))
            continue
        if not isinstance(data, Mapping):
            issues.append(Issue(shown, None, type_name, "must be a mapping"))
            continue
        parsed = ParsedFile(Path(type_name), dict(data))
        issues.extend(check_config(parsed, registry[type_name], f"{shown}/{type_name}"))
        configs[type_name] = ConfigFile(dict(data), None, {}, _digest_obj(data))
    digest = _digest_obj([source.origin, {k: v.digest for k, v in configs.items()}, [str(i) for i in issues]])
    return FlavorData(source, configs, description, (), tuple(issues), digest)


def load_defaults_file(path: Path) -> ParsedFile:
    """Base defaults of a config type (a packaged YAML file)."""
    return parse_yaml_bytes(path.read_bytes(), path=path, display=path.name)
