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
from mvcore.config.manifest import Manifest, read_manifest
from mvcore.config.validation import (
    MAX_FILE_BYTES,
    Issue,
    ParsedFile,
    Severity,
    check_config,
    parse_yaml_bytes,
    read_yaml,
)

# A file whose mtime is this close to the moment it was read may have been written again within the same
# timestamp tick (coarse kernel clocks, 2 s on FAT): its stat signature is not trusted ("racy" entries,
# as in git's index), the bytes are re-hashed instead.
RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True, kw_only=True)
class ConfigFile:
    """One config type's values inside one flavor."""

    data: Mapping[str, Any]
    file: str | None  # absolute path of the YAML file; None for in-code values
    lines: Mapping[str, int]
    digest: str


@dataclass(frozen=True, kw_only=True)
class FlavorData:
    """A loaded flavor: its configs, manifest and every issue found in its own files."""

    source: FlavorSource
    configs: Mapping[str, ConfigFile]
    manifest: Manifest = field(default_factory=Manifest)
    issues: tuple[Issue, ...] = ()
    digest: str = ""
    linked: bool = False  # the directory or one of its YAML files is a symlink (may change with no event)

    @property
    def ok(self) -> bool:
        return not any(i.is_error for i in self.issues)

    @property
    def description(self) -> str:
        return self.manifest.description

    @property
    def tags(self) -> tuple[str, ...]:
        return self.manifest.tags

    @property
    def extends(self) -> str | None:
        return self.manifest.extends


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
    """Read one flavor source (directory or in-code) into checked data; never raises for bad input."""
    if source.inline is not None:
        return _load_inline(source, registry)
    return _DirectoryLoad(source, registry, cache).run()


class _DirectoryLoad:
    """One directory flavor being read: each entry is a manifest, a config file or noise."""

    def __init__(self, source: FlavorSource, registry: ConfigTypeRegistry, cache: ParseCache) -> None:
        assert source.directory is not None and source.root is not None
        self.source, self.registry, self.cache = source, registry, cache
        self.by_file = registry.by_filename()
        self.configs: dict[str, ConfigFile] = {}
        self.issues: list[Issue] = []
        self.digests: list[tuple[str, str]] = []
        self.manifest = Manifest()
        self.linked = os.path.islink(source.directory)

    def run(self) -> FlavorData:
        directory, root = self.source.directory, self.source.root
        assert directory is not None and root is not None
        try:
            # scandir: whether an entry is a symlink comes with the listing (d_type), no lstat per file
            with os.scandir(directory) as listing:
                entries = sorted((entry.name, entry.is_symlink()) for entry in listing)
        except OSError as exc:
            shown = f"{root.name}/{self.source.name}"
            issue = Issue(file=shown, line=None, path="", message=f"cannot list: {exc.strerror}")
            return FlavorData(source=self.source, configs={}, issues=(issue,))
        for name, is_link in entries:
            if is_ignored(name) or not name.endswith((".yaml", ".yml")):
                continue
            self._entry(directory / name, f"{root.name}/{self.source.name}/{name}", is_link)
        digest = _digest_obj([self.source.origin, self.digests, [str(i) for i in self.issues]])
        return FlavorData(
            source=self.source,
            configs=self.configs,
            manifest=self.manifest,
            issues=tuple(self.issues),
            digest=digest,
            linked=self.linked,
        )

    def _entry(self, path: Path, shown: str, is_link: bool) -> None:
        assert self.source.root is not None
        if is_link:
            self.linked = True
            if not within(path, self.source.root):
                message = "symlink points outside the flavors directory"
                self.issues.append(Issue(file=shown, line=None, path="", message=message))
                return
        if path.name in (MANIFEST, "flavor.yml"):
            self._manifest(path, shown)
            return
        config_type = self.by_file.get(path.name)
        if config_type is None:
            known = ", ".join(sorted(t.filename for t in self.registry))
            message = f"unknown config file (known: {known}, flavor.yaml); ignored"
            self.issues.append(
                Issue(file=shown, line=None, path="", message=message, severity=Severity.WARNING)
            )
            return
        parsed, digest = self.cache.read(path, shown)
        self.digests.append((path.name, digest))
        self.issues.extend(parsed.issues)
        if parsed.data is None:
            return
        self.issues.extend(check_config(parsed, config_type, shown))
        if config_type.name in self.configs:
            message = f"both .yaml and .yml exist for {config_type.name}"
            self.issues.append(Issue(file=shown, line=None, path="", message=message))
        self.configs[config_type.name] = ConfigFile(
            data=parsed.data, file=str(path), lines=parsed.lines, digest=digest
        )

    def _manifest(self, path: Path, shown: str) -> None:
        parsed, digest = self.cache.read(path, shown)
        self.issues.extend(parsed.issues)
        self.digests.append((path.name, digest))
        if parsed.data is not None:
            self.manifest, more = read_manifest(parsed, shown)
            self.issues.extend(more)


def _load_inline(source: FlavorSource, registry: ConfigTypeRegistry) -> FlavorData:
    """An in-code flavor from a plugin: ``{config_type: mapping}``, ``flavor`` holding the manifest."""
    assert source.inline is not None
    configs: dict[str, ConfigFile] = {}
    issues: list[Issue] = []
    shown = f"{source.origin}/{source.name}"
    manifest = Manifest()
    for type_name, data in source.inline.items():
        if type_name == "flavor" and isinstance(data, Mapping):
            manifest, more = read_manifest(ParsedFile(Path(MANIFEST), dict(data)), f"{shown}/flavor")
            issues.extend(more)
            continue
        if type_name not in registry:
            issues.append(
                Issue(
                    file=shown,
                    line=None,
                    path=type_name,
                    message="unknown config type",
                    severity=Severity.WARNING,
                )
            )
            continue
        if not isinstance(data, Mapping):
            issues.append(Issue(file=shown, line=None, path=type_name, message="must be a mapping"))
            continue
        parsed = ParsedFile(Path(type_name), dict(data))
        issues.extend(check_config(parsed, registry[type_name], f"{shown}/{type_name}"))
        configs[type_name] = ConfigFile(data=dict(data), file=None, lines={}, digest=_digest_obj(data))
    digest = _digest_obj(
        [source.origin, {k: v.digest for k, v in configs.items()}, manifest.extends, [str(i) for i in issues]]
    )
    return FlavorData(source=source, configs=configs, manifest=manifest, issues=tuple(issues), digest=digest)


def load_defaults_file(path: Path) -> ParsedFile:
    """Base defaults of a config type (a packaged YAML file)."""
    return parse_yaml_bytes(path.read_bytes(), path=path, display=path.name)
