"""The embedded project store: one SQLite file in WAL mode (readers never block the writer).

Counters and statuses are columns, changed with ``UPDATE ... SET x = x + 1`` inside
``BEGIN IMMEDIATE`` transactions; the other attributes are a JSON document per row, changed with
``json_patch`` (a ``null`` removes a key), so no update is a read-modify-write in Python.  Each
thread has its own connection; several processes (API + workers on one host) share the file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mvcore.errors import StorageError
from mvcore.projects.records import UNFINISHED_STATUSES, Project, Scene, now_iso
from mvcore.projects.store import ProjectStore

__all__ = ["SqliteProjectStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    sceneCount INTEGER NOT NULL DEFAULT 0,
    completedScenes INTEGER NOT NULL DEFAULT 0,
    failedScenes INTEGER NOT NULL DEFAULT 0,
    leaseOwner TEXT,
    leaseUntil REAL,
    createdAt TEXT NOT NULL,
    updatedAt TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS projects_status ON projects(status, createdAt);
CREATE TABLE IF NOT EXISTS scenes (
    projectId TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    status TEXT NOT NULL,
    retryCount INTEGER NOT NULL DEFAULT 0,
    createdAt TEXT NOT NULL,
    updatedAt TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (projectId, sequence)
);
"""
_PROJECT_COLUMNS = ("status", "sceneCount", "completedScenes", "failedScenes", "leaseOwner", "leaseUntil")
_SCENE_COLUMNS = ("status", "retryCount")
_COUNTER = {"completed": "completedScenes", "failed": "failedScenes"}


class SqliteProjectStore(ProjectStore):
    backend = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._db().executescript(_SCHEMA)  # idempotent DDL (executescript manages its own commit)

    def __repr__(self) -> str:
        return f"SqliteProjectStore({str(self.path)!r})"

    # --- connections --------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # one connection per thread; check_same_thread=False only so close_sync() can close them
            # all from the thread that shuts down (sqlite3 refuses that otherwise, and the files stay open)
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so it cannot deadlock on upgrade."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def close_sync(self) -> None:
        with self._lock:
            for db in self._all:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._all.clear()
        self._local = threading.local()

    # --- reads ----------------------------------------------------------------
    def get_sync(self, project_id: str) -> Project | None:
        db = self._db()
        row = db.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        if row is None:
            return None
        scenes = [
            _scene(r)
            for r in db.execute("SELECT * FROM scenes WHERE projectId = ? ORDER BY sequence", (project_id,))
        ]
        return Project.from_attrs(_merge(row, _PROJECT_COLUMNS), scenes)

    def list_sync(self, limit: int) -> list[Project]:
        rows = self._db().execute("SELECT * FROM projects ORDER BY createdAt DESC LIMIT ?", (limit,))
        return [Project.from_attrs(_merge(r, _PROJECT_COLUMNS)) for r in rows]

    def unfinished_sync(self) -> list[str]:
        marks = ",".join("?" * len(UNFINISHED_STATUSES))
        rows = self._db().execute(
            f"SELECT id FROM projects WHERE status IN ({marks}) ORDER BY createdAt", UNFINISHED_STATUSES
        )
        return [r["id"] for r in rows]

    # --- writes ---------------------------------------------------------------
    def create_sync(self, project: Project) -> None:
        attrs = project.to_attrs()
        columns, data = _split(attrs, _PROJECT_COLUMNS)
        with self._tx() as db:
            db.execute(
                "INSERT INTO projects (id, status, sceneCount, completedScenes, failedScenes, "
                "createdAt, updatedAt, data) VALUES (?, ?, 0, 0, 0, ?, ?, ?)",
                (project.projectId, columns["status"], attrs["createdAt"], attrs["updatedAt"], _dumps(data)),
            )

    def delete_sync(self, project_id: str) -> bool:
        with self._tx() as db:
            db.execute("DELETE FROM scenes WHERE projectId = ?", (project_id,))
            return db.execute("DELETE FROM projects WHERE id = ?", (project_id,)).rowcount > 0

    def set_project_sync(self, project_id: str, fields: dict[str, Any]) -> bool:
        with self._tx() as db:
            return _update(db, "projects", "id = ?", (project_id,), fields, _PROJECT_COLUMNS) > 0

    def add_scenes_sync(self, project_id: str, scenes: list[Scene]) -> bool:
        now = now_iso()
        with self._tx() as db:
            changed = db.execute(
                "UPDATE projects SET sceneCount = ?, status = 'processing', updatedAt = ? "
                "WHERE id = ? AND sceneCount = 0",
                (len(scenes), now, project_id),
            ).rowcount
            if not changed:
                return False
            for scene in scenes:
                columns, data = _split(scene.to_attrs(), _SCENE_COLUMNS)
                db.execute(
                    "INSERT INTO scenes (projectId, sequence, status, retryCount, createdAt, updatedAt, "
                    "data) "
                    "VALUES (?, ?, ?, 0, ?, ?, ?)",
                    (project_id, scene.sequence, columns["status"], now, now, _dumps(data)),
                )
        return True

    def set_scene_sync(self, project_id: str, sequence: int, fields: dict[str, Any]) -> bool:
        with self._tx() as db:
            where, args = "projectId = ? AND sequence = ?", (project_id, sequence)
            return _update(db, "scenes", where, args, fields, _SCENE_COLUMNS) > 0

    def bump_retry_sync(self, project_id: str, sequence: int) -> int:
        with self._tx() as db:
            db.execute(
                "UPDATE scenes SET retryCount = retryCount + 1, updatedAt = ? "
                "WHERE projectId = ? AND sequence = ?",
                (now_iso(), project_id, sequence),
            )
            row = db.execute(
                "SELECT retryCount FROM scenes WHERE projectId = ? AND sequence = ?", (project_id, sequence)
            ).fetchone()
        return int(row["retryCount"]) if row else 0

    def finish_scene_sync(self, project_id: str, sequence: int, status: str, fields: dict[str, Any]) -> bool:
        with self._tx() as db:
            where = "projectId = ? AND sequence = ? AND status IN ('pending', 'processing')"
            changed = _update(
                db, "scenes", where, (project_id, sequence), {**fields, "status": status}, _SCENE_COLUMNS
            )
            if changed:
                counter = _COUNTER[status]
                db.execute(
                    f"UPDATE projects SET {counter} = {counter} + 1, updatedAt = ? WHERE id = ?",
                    (now_iso(), project_id),
                )
        return changed > 0

    def reopen_scene_sync(self, project_id: str, sequence: int, fields: dict[str, Any]) -> bool:
        with self._tx() as db:
            row = db.execute(
                "SELECT status FROM scenes WHERE projectId = ? AND sequence = ?", (project_id, sequence)
            ).fetchone()
            # The read and the writes are one IMMEDIATE transaction: nobody changes the row between.
            was = row["status"] if row else None
            _update(
                db,
                "scenes",
                "projectId = ? AND sequence = ?",
                (project_id, sequence),
                {**fields, "status": "processing"},
                _SCENE_COLUMNS,
            )
            if was in _COUNTER:
                counter = _COUNTER[was]
                db.execute(
                    f"UPDATE projects SET {counter} = {counter} - 1, updatedAt = ? WHERE id = ?",
                    (now_iso(), project_id),
                )
        return was in _COUNTER

    def claim_sync(self, project_id: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._tx() as db:
            changed = db.execute(
                "UPDATE projects SET leaseOwner = ?, leaseUntil = ? WHERE id = ? AND "
                "(leaseOwner IS NULL OR leaseOwner = ? OR leaseUntil IS NULL OR leaseUntil < ?)",
                (owner, now + ttl, project_id, owner, now),
            ).rowcount
        return changed > 0

    def release_sync(self, project_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE projects SET leaseOwner = NULL, leaseUntil = NULL WHERE id = ? AND leaseOwner = ?",
                (project_id, owner),
            )


def _update(
    db: sqlite3.Connection,
    table: str,
    where: str,
    args: tuple[Any, ...],
    fields: dict[str, Any],
    column_names: tuple[str, ...],
) -> int:
    columns, data = _split(fields, column_names)
    sets = [f"{name} = ?" for name in columns]
    values: list[Any] = list(columns.values())
    if data:
        sets.append("data = json_patch(data, ?)")
        values.append(_dumps(data, keep_null=True))
    sets.append("updatedAt = ?")
    values.append(now_iso())
    return db.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {where}", (*values, *args)).rowcount


def _split(attrs: dict[str, Any], column_names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    skip = {"createdAt", "updatedAt", "projectId", "sequence"}
    columns = {k: v for k, v in attrs.items() if k in column_names}
    data = {k: v for k, v in attrs.items() if k not in column_names and k not in skip}
    return columns, data


def _dumps(data: dict[str, Any], *, keep_null: bool = False) -> str:
    if not keep_null:
        data = {k: v for k, v in data.items() if v is not None}
    return json.dumps(data, separators=(",", ":"), default=str)


def _merge(row: sqlite3.Row, column_names: tuple[str, ...]) -> dict[str, Any]:
    attrs: dict[str, Any] = json.loads(row["data"])
    for name in (*column_names, "createdAt", "updatedAt"):
        attrs[name] = row[name]
    attrs["projectId"] = row["id"]
    return attrs


def _scene(row: sqlite3.Row) -> Scene:
    attrs: dict[str, Any] = json.loads(row["data"])
    for name in ("projectId", "sequence", *_SCENE_COLUMNS, "createdAt", "updatedAt"):
        attrs[name] = row[name]
    return Scene.from_attrs(attrs)


def _storage_error(exc: sqlite3.Error) -> StorageError:
    return StorageError(
        f"The project database is not available ({type(exc).__name__})",
        hint="Check that MVCORE_DATA_DIR is writable and not on a network filesystem without locking.",
    )
