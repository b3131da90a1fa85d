"""Editing flavor files safely: drafts checked without writing, atomic saves, history.

Everything the in-browser editor (and any other tool) needs, with the framework's rules:

* **Only flavor files of directory flavors inside the configured roots.**  A file name must be
  one of the config type files or ``flavor.yaml`` (an allow-list, so ``../x``, ``a/b``,
  ``%2e%2e`` or a NUL byte never name a path), and the flavor's directory must resolve inside
  its root (symlinks followed).
* **A draft is checked exactly as a reload would check it** -- schema, templates and the
  ``extends`` chain -- by building a snapshot in which the draft shadows the flavor on disk;
  nothing is written.
* **A save that does not validate is refused** and the file stays byte-identical; a valid save
  is written atomically (temp file + rename in the same directory, hidden ``.tmp`` name the
  watcher ignores) and the previous content goes to the file's history (last N saves).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvcore.config.discovery import FLAVOR_NAME, MANIFEST, discover, within
from mvcore.config.loading import ParseCache
from mvcore.config.snapshot import Snapshot, build_snapshot
from mvcore.config.store import FlavorStore
from mvcore.config.validation import MAX_FILE_BYTES, Issue
from mvcore.errors import BadInput, NotFound, SchemaViolation

HISTORY_ID = re.compile(r"^\d{13,20}-[0-9a-f]{8}$")


@dataclass(frozen=True, kw_only=True)
class DraftCheck:
    """What a reload would say about a flavor if its files held the draft."""

    flavor: str
    status: str
    errors: list[Issue]
    warnings: list[Issue]
    snapshot: Snapshot

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_wire(self) -> dict[str, Any]:
        return {
            "flavor": self.flavor,
            "ok": self.ok,
            "status": self.status,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }


class FlavorEditor:
    """Reads, checks and writes the files of a store's directory flavors."""

    def __init__(self, store: FlavorStore, history_dir: Path, history_limit: int = 20) -> None:
        self.store = store
        self.history_dir = Path(history_dir)
        self.history_limit = history_limit
        self._cache = ParseCache()  # the real files, re-read only when they change between drafts

    # ---- where ---------------------------------------------------------------
    def allowed_files(self) -> list[str]:
        registry = self.store.host.contributions().registry
        return [MANIFEST, *(t.filename for t in registry)]

    def check_file_name(self, filename: str) -> str:
        allowed = self.allowed_files()
        if filename not in allowed:
            raise BadInput(
                f"file {filename[:100]!r} is not a flavor file",
                alternatives=allowed,
                hint="Edit one of the config type files or flavor.yaml of the flavor.",
                details={"field": "filename"},
            )
        return filename

    def flavor_dir(self, name: str) -> tuple[Path, Path]:
        """(directory, root) of an editable flavor: a directory flavor inside a configured root."""
        if not FLAVOR_NAME.match(name):
            raise BadInput(f"invalid flavor name {name[:100]!r}", details={"field": "name"})
        source = self.store.current.latest.get(name) or self.store.current.flavors.get(name)
        roots = [Path(r) for r in self.store.roots]
        if source is None or source.source.directory is None or source.source.root not in roots:
            editable = sorted(
                n
                for n, d in self.store.current.latest.items()
                if d.source.root in roots and d.source.directory
            )
            raise NotFound(
                f"flavor {name!r} is not an editable flavor directory",
                alternatives=editable,
                hint="Only flavors in the configured flavor directories can be edited "
                "(not built-ins or plugin flavors); create one with `mvcore flavors new`.",
            )
        directory, root = source.source.directory, source.source.root
        assert root is not None
        if not within(directory, root):
            raise BadInput(f"flavor {name!r} points outside its flavors directory")
        return directory, root

    # ---- reading -------------------------------------------------------------
    def read_files(self, name: str) -> dict[str, str | None]:
        directory, _ = self.flavor_dir(name)
        out: dict[str, str | None] = {}
        for filename in self.allowed_files():
            path = directory / filename
            out[filename] = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        return out

    # ---- checking ------------------------------------------------------------
    def check_draft(self, name: str, files: dict[str, str | None]) -> DraftCheck:
        """Build a snapshot in which ``files`` (name -> content, None = deleted) replace the flavor's."""
        directory, root = self.flavor_dir(name)
        for filename, content in files.items():
            self.check_file_name(filename)
            if content is not None and len(content.encode("utf-8")) > MAX_FILE_BYTES:
                raise BadInput(
                    f"{filename} is over the {MAX_FILE_BYTES}-byte limit", details={"field": filename}
                )
        with tempfile.TemporaryDirectory(prefix="mvcore-draft-") as tmp:
            shadow_root = Path(tmp) / root.name  # same name: messages read "flavors/<name>/<file>"
            shadow = shadow_root / name
            shadow.mkdir(parents=True)
            for existing in self.allowed_files():
                if (directory / existing).is_file() and existing not in files:
                    shutil.copyfile(directory / existing, shadow / existing)
            for filename, content in files.items():
                if content is not None:
                    (shadow / filename).write_text(content, encoding="utf-8")
            contributions = self.store.host.contributions()
            found = discover(
                [shadow_root, *self.store.roots], contributions.flavor_dirs, contributions.inline_flavors
            )
            found.shadowed = [s for s in found.shadowed if s.name != name]
            # ``previous``: an invalid draft is judged like a reload -- the flavor keeps serving its
            # current values (shown by the preview) and the draft's errors are reported.
            snap = build_snapshot(
                found,
                contributions.registry,
                previous=self.store.current,
                cache=self._cache,
                extra_issues=list(contributions.issues),
                quiet=True,
            )
            status = snap.statuses[name]
        return DraftCheck(
            flavor=name,
            status=str(status.status),
            errors=[i for i in status.issues if i.is_error],
            warnings=[i for i in status.issues if not i.is_error],
            snapshot=snap,
        )

    # ---- writing -------------------------------------------------------------
    def save(self, name: str, filename: str, content: str) -> DraftCheck:
        """Write one file if the flavor validates with it; else raise and leave the file as it was."""
        self.check_file_name(filename)
        check = self.check_draft(name, {filename: content})
        if not check.ok:
            raise SchemaViolation(
                f"{filename} of flavor {name!r} was not saved: {len(check.errors)} error(s), first: "
                f"{check.errors[0]}",
                hint="Fix the errors (file:line below) and save again; the file on disk is unchanged.",
                details={"errors": [i.to_dict() for i in check.errors]},
            )
        directory, _ = self.flavor_dir(name)
        target = directory / filename
        if target.is_file():
            self._remember(name, filename, target.read_bytes())
        atomic_write(target, content.encode("utf-8"))
        self.store.rebuild("saved in the editor", changed_paths=[target])
        return check

    def history(self, name: str, filename: str) -> list[dict[str, Any]]:
        self.flavor_dir(name)
        folder = self._history_folder(name, self.check_file_name(filename))
        entries = sorted(folder.glob("*.yaml"), reverse=True) if folder.is_dir() else []
        return [
            {
                "id": entry.stem,
                "saved_at": int(entry.stem.split("-")[0]) / 1e9,
                "bytes": entry.stat().st_size,
            }
            for entry in entries
        ]

    def history_content(self, name: str, filename: str, entry_id: str) -> str:
        self.flavor_dir(name)
        if not HISTORY_ID.match(entry_id):
            raise BadInput(f"invalid history id {entry_id[:60]!r}", details={"field": "history_id"})
        path = self._history_folder(name, self.check_file_name(filename)) / f"{entry_id}.yaml"
        if not path.is_file():
            raise NotFound(f"no saved version {entry_id!r} of {name}/{filename}")
        return path.read_text(encoding="utf-8", errors="replace")

    def restore(self, name: str, filename: str, entry_id: str) -> DraftCheck:
        """Save a version from the history again (validated like any save; the current one is kept)."""
        return self.save(name, filename, self.history_content(name, filename, entry_id))

    def _history_folder(self, name: str, filename: str) -> Path:
        return self.history_dir / name / filename

    def _remember(self, name: str, filename: str, data: bytes) -> None:
        folder = self._history_folder(name, filename)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"{time.time_ns()}-{secrets.token_hex(4)}.yaml", data)
        entries = sorted(folder.glob("*.yaml"))
        for old in entries[: max(0, len(entries) - self.history_limit)]:
            old.unlink(missing_ok=True)


def atomic_write(target: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over the target: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            shutil.copymode(target, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
