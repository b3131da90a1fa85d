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
import stat as stat_module
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvcore.config.config_types import ConfigTypeRegistry
from mvcore.config.discovery import MANIFEST, FlavorSource, is_ignored, within
from mvcore.config.validation import (
    MAX_FILE_BYTES,
    Issue,
    ParsedFile,
    check_config,
    parse_yaml_bytes,
    read_yaml,
)

# A file whose mtime is this close to the moment it was read may have been written again within the same
# timestamp tick (coarse kernel clocks, 2 s on FAT): its stat signature is not trusted ("racy" entries,
# as in git's index), the bytes are re-hashed instead.
RACY_WINDOW_NS = 2_000_000_000


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
    linked: bool = False  # the directory or one of its YAML files is a symlink (may change with no event)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


@dataclass
class _Entry:
    signature: tuple[int, int, int]
    content: str  # hash of the bytes read
    digest: str  # what callers get: the content hash, or "bad:..." when the file did not parse
    parsed: ParsedFile
    checked_ns: int  # wall clock when these bytes were read


@dataclass
class ParseCache:
    """path -> last parse, keyed by (mtime_ns, size, inode) and content hash.

    The digest and the parse always come from the same bytes, so a file that
    changes while it is read never pairs new content with an old parse; and a
    signature is only trusted once the file's mtime is safely older than the
    read (see ``RACY_WINDOW_NS``), so two same-size writes within one
    timestamp tick are not mistaken for "unchanged".
    """

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
        if (
            entry is not None
            and entry.signature == signature
            and st.st_mtime_ns + RACY_WINDOW_NS < entry.checked_ns
        ):
            return entry.parsed, entry.digest
        checked_ns = time.time_ns()
        raw = _read_capped(path, st)
        if raw is None:  # not a regular file, too big or unreadable: read_yaml says why
            parsed = read_yaml(path, display=display)
            return parsed, f"bad:{hash(tuple(map(str, parsed.issues)))}"
        content = hashlib.blake2b(raw, digest_size=16).hexdigest()
        if entry is not None and entry.content == content:
            parsed, digest = (
                entry.parsed,
                entry.digest,
            )  # same bytes (touched, or rewritten alike): keep identity
        else:
            parsed = parse_yaml_bytes(raw, path=path, display=display)
            digest = content if parsed.data is not None else f"bad:{hash(tuple(map(str, parsed.issues)))}"
        with self.lock:
            self.entries[key] = _Entry(signature, content, digest, parsed, checked_ns)
        return parsed, digest

    def forget_missing(self, alive: set[str]) -> None:
        with self.lock:
            for key in [k for k in self.entries if k not in alive]:
                del self.entries[key]


def _read_capped(path: Path, st: os.stat_result) -> bytes | None:
    if not stat_module.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
        return None
    try:
        with open(path, "rb") as handle:
            # Size the read from the stat (a 1 MiB read buffer costs more than parsing a small file);
            # a file that grew since the stat is topped up to the cap.
            raw = handle.read(st.st_size + 1)
            if len(raw) > st.st_size:
                raw += handle.read(MAX_FILE_BYTES + 1 - len(raw))
    except OSError:
        return None
    return raw if len(raw) <= MAX_FILE_BYTES else None


def _digest_obj(obj: Any) -> str:
    try:
        text = json.dumps(obj, sort_keys=True, default=str)
    except (TypeError, ValueError):  # in-code data with mixed key types: still a stable-enough digest
        text = repr(obj)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def load_flavor(source: FlavorSource, registry: ConfigTypeRegistry, cache: ParseCache) -> FlavorData:
    if source.inline is not None:
        return _load_inline(source, registry)
    assert source.directory is not None and source.root is not None
    directory, root = source.directory, source.root
    by_file = registry.by_filename()
    configs: dict[str, ConfigFile] = {}
    issues: list[Issue] = []
    description: str = ""
    tags: tuple[str, ...] = ()
    digests = []
    linked = os.path.islink(directory)
    try:
        # scandir: whether an entry is a symlink comes with the listing (d_type), no lstat per file
        with os.scandir(directory) as listing:
            entries = sorted((entry.name, entry.is_symlink()) for entry in listing)
    except OSError as exc:
        shown = f"{root.name}/{source.name}"
        return FlavorData(source, {}, issues=(Issue(shown, None, "", f"cannot list: {exc.strerror}"),))
    for name, is_link in entries:
        if is_ignored(name):
            continue
        if not (name.endswith(".yaml") or name.endswith(".yml")):
            continue
        path = directory / name
        shown = f"{root.name}/{source.name}/{name}"
        if is_link:
            linked = True
            if not within(path, root):
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
                Issue(
                    shown, None, "", f"unknown config file (known: {known}, flavor.yaml); ignored", "warning"
                )
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
    return FlavorData(source, configs, description, tags, tuple(issues), flavor_digest, linked)


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
            issues.append(
                Issue(shown, parsed.lines.get(key), key, "unknown manifest key; allowed: description, tags")
            )
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
