"""Finding flavor sources: flavor directories, plugin directories, in-code flavors.

Precedence for one name is: the configured flavor directories (in order) ->
directories contributed by plugins -> in-code flavors from plugins.  A name
found twice is *shadowed*: the first source wins and the others are
reported, never silently dropped.  Discovery only lists; it reads no YAML.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvcore.config.validation import Issue, Severity

FLAVOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MANIFEST = "flavor.yaml"
_IGNORED_SUFFIXES = (".swp", ".swx", ".tmp", ".bak", "~", ".orig", ".part")


def check_flavor_name(name: str) -> str | None:
    """None when ``name`` is a valid flavor name, else the reason it is not."""
    if FLAVOR_NAME.match(name):
        return None
    return (
        f"invalid flavor name {name[:80]!r}: use 1-64 characters, lower-case letters, digits, '_' or '-',"
        " starting with a letter or digit"
    )


@dataclass(frozen=True)
class FlavorSource:
    """Where one flavor comes from."""

    name: str
    origin: str  # "dir" for flavor directories, "plugin:<name>" for plugin dirs / in-code
    directory: Path | None = None
    root: Path | None = None
    inline: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def describe(self) -> str:
        if self.directory is not None:
            return f"{self.origin}:{self.directory}" if self.origin != "dir" else str(self.directory)
        return f"{self.origin} (in code)"


@dataclass(frozen=True)
class Shadowed:
    name: str
    winner: str
    loser: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "used": self.winner, "shadowed": self.loser}


@dataclass
class Discovery:
    sources: dict[str, FlavorSource] = field(default_factory=dict)
    shadowed: list[Shadowed] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)  # roots that exist but could not be listed

    def add(self, source: FlavorSource) -> None:
        existing = self.sources.get(source.name)
        if existing is None:
            self.sources[source.name] = source
        else:
            self.shadowed.append(Shadowed(source.name, existing.describe, source.describe))


def is_ignored(name: str) -> bool:
    """Hidden entries (``..data``, ``.git``) and editor leftovers are not flavors or configs."""
    return name.startswith(".") or name.endswith(_IGNORED_SUFFIXES) or name.startswith("#")


def within(path: Path, root: Path) -> bool:
    """True when the real location of ``path`` stays inside ``root`` (symlinks followed)."""
    try:
        real = Path(os.path.realpath(path))
        real_root = Path(os.path.realpath(root))
    except (OSError, RuntimeError):
        return False
    return real == real_root or real_root in real.parents


def scan_root(root: Path, origin: str, discovery: Discovery) -> None:
    """Add every flavor directory directly under ``root``."""
    discovery.roots.append(root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        discovery.issues.append(
            Issue(
                file=str(root),
                line=None,
                path="",
                message="flavors directory does not exist",
                severity=Severity.WARNING,
            )
        )
        return
    except OSError as exc:
        discovery.issues.append(
            Issue(
                file=str(root), line=None, path="", message=f"cannot list flavors directory: {exc.strerror}"
            )
        )
        discovery.unreadable.append(root)
        return
    for entry in entries:
        if is_ignored(entry.name):
            continue
        shown = f"{root.name}/{entry.name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if not is_dir:
            if entry.is_symlink() and not os.path.exists(entry.path):
                discovery.issues.append(
                    Issue(file=shown, line=None, path="", message="broken symlink (or a symlink loop)")
                )
            continue
        reason = check_flavor_name(entry.name)
        if reason:
            discovery.issues.append(Issue(file=shown, line=None, path="", message=reason))
            continue
        path = Path(entry.path)
        if entry.is_symlink() and not within(path, root):
            discovery.issues.append(
                Issue(file=shown, line=None, path="", message="symlink points outside the flavors directory")
            )
            continue
        discovery.add(FlavorSource(entry.name, origin, path, root))


def discover(
    roots: Iterable[Path],
    plugin_dirs: Iterable[tuple[str, Path]] = (),
    inline: Iterable[tuple[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]] = (),
) -> Discovery:
    """List every flavor source in precedence order."""
    discovery = Discovery()
    for root in roots:
        scan_root(Path(root), "dir", discovery)
    for plugin, directory in plugin_dirs:
        scan_root(Path(directory), f"plugin:{plugin}", discovery)
    for plugin, flavors in inline:
        for name, configs in flavors.items():
            reason = check_flavor_name(str(name))
            if reason:
                discovery.issues.append(Issue(file=f"plugin:{plugin}", line=None, path="", message=reason))
                continue
            discovery.add(FlavorSource(name, f"plugin:{plugin}", inline=configs))
    return discovery
