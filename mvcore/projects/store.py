"""``ProjectStore``: where projects and their scenes live, with atomic counters and a driver lease.

Two backends with the same contract (tests run the same suite on both):

- :class:`~mvcore.projects.sqlite_store.SqliteProjectStore` -- one WAL-mode file in the data
  dir (``projects.sqlite3``), the embedded default; API and worker processes on one host share it;
- :class:`~mvcore.projects.dynamo_store.DynamoProjectStore` -- the original's DynamoDB table
  (``DYNAMODB_TABLE_NAME``; ``DYNAMODB_ENDPOINT`` for a local endpoint), key schema
  ``PK=PROJECT#{id}``, ``SK=METADATA | SCENE#{seq:03d}``.

The rules every backend keeps:

- counters (``completedScenes``, ``failedScenes``, ``retryCount``) change only inside the store
  (``x = x + 1`` / DynamoDB ``ADD``), never by reading, adding and writing back;
- a scene's final transition and its counter change are one transaction, and happen once:
  :meth:`finish_scene` on a scene that is already final changes nothing and answers False;
- :meth:`add_scenes` writes all scenes and ``sceneCount`` together, only when there are none yet;
- :meth:`claim` is a conditional write, so one driver at a time advances a project.

The backends are synchronous (sqlite3, boto3); this base class runs them in a worker thread.
"""

from __future__ import annotations

import abc
import asyncio
import builtins
from typing import Any

from mvcore.errors import MvcoreError
from mvcore.projects.records import Project, Scene
from mvcore.settings import Settings

__all__ = ["ProjectStore", "open_store", "store_for"]


class ProjectStore(abc.ABC):
    """The async facade; subclasses implement the ``_sync`` methods below."""

    backend: str = "?"

    # --- implemented by backends (blocking) ---------------------------------
    @abc.abstractmethod
    def create_sync(self, project: Project) -> None: ...
    @abc.abstractmethod
    def get_sync(self, project_id: str) -> Project | None: ...
    @abc.abstractmethod
    def list_sync(self, limit: int) -> list[Project]: ...
    @abc.abstractmethod
    def unfinished_sync(self) -> list[str]: ...
    @abc.abstractmethod
    def delete_sync(self, project_id: str) -> bool: ...
    @abc.abstractmethod
    def set_project_sync(self, project_id: str, fields: dict[str, Any]) -> bool: ...
    @abc.abstractmethod
    def add_scenes_sync(self, project_id: str, scenes: list[Scene]) -> bool: ...
    @abc.abstractmethod
    def set_scene_sync(self, project_id: str, sequence: int, fields: dict[str, Any]) -> bool: ...
    @abc.abstractmethod
    def bump_retry_sync(self, project_id: str, sequence: int) -> int: ...
    @abc.abstractmethod
    def finish_scene_sync(
        self, project_id: str, sequence: int, status: str, fields: dict[str, Any]
    ) -> bool: ...
    @abc.abstractmethod
    def reopen_scene_sync(self, project_id: str, sequence: int, fields: dict[str, Any]) -> bool: ...
    @abc.abstractmethod
    def claim_sync(self, project_id: str, owner: str, ttl: float) -> bool: ...
    @abc.abstractmethod
    def release_sync(self, project_id: str, owner: str) -> None: ...
    def close_sync(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""

    # --- the async API ------------------------------------------------------
    async def create(self, project: Project) -> None:
        await asyncio.to_thread(self.create_sync, project)

    async def get(self, project_id: str) -> Project | None:
        return await asyncio.to_thread(self.get_sync, project_id)

    async def list(self, limit: int = 50) -> list[Project]:
        """Newest first, without scenes."""
        return await asyncio.to_thread(self.list_sync, limit)

    async def unfinished(self) -> builtins.list[str]:
        """Ids of projects a driver must pick up (pending, processing, composing)."""
        return await asyncio.to_thread(self.unfinished_sync)

    async def delete(self, project_id: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, project_id)

    async def set_project(self, project_id: str, **fields: Any) -> bool:
        """Set (None: remove) project attributes; False when the project does not exist."""
        return await asyncio.to_thread(self.set_project_sync, project_id, fields)

    async def add_scenes(self, project_id: str, scenes: builtins.list[Scene]) -> bool:
        """All scenes and ``sceneCount`` at once, status ``processing``; False if scenes exist already."""
        return await asyncio.to_thread(self.add_scenes_sync, project_id, scenes)

    async def set_scene(self, project_id: str, sequence: int, **fields: Any) -> bool:
        return await asyncio.to_thread(self.set_scene_sync, project_id, sequence, fields)

    async def bump_retry(self, project_id: str, sequence: int) -> int:
        """``retryCount += 1`` in the store; the new value."""
        return await asyncio.to_thread(self.bump_retry_sync, project_id, sequence)

    async def finish_scene(self, project_id: str, sequence: int, status: str, **fields: Any) -> bool:
        """pending/processing -> completed|failed with its counter +1, atomically; False if already final."""
        if status not in ("completed", "failed"):
            raise ValueError(f"finish_scene to {status!r}")
        return await asyncio.to_thread(self.finish_scene_sync, project_id, sequence, status, fields)

    async def reopen_scene(self, project_id: str, sequence: int, **fields: Any) -> bool:
        """completed|failed -> processing with that counter -1, atomically; False if it was not final."""
        return await asyncio.to_thread(self.reopen_scene_sync, project_id, sequence, fields)

    async def claim(self, project_id: str, owner: str, ttl: float) -> bool:
        """Take (or renew) the driver lease: free, expired or already ours."""
        return await asyncio.to_thread(self.claim_sync, project_id, owner, ttl)

    async def release(self, project_id: str, owner: str) -> None:
        await asyncio.to_thread(self.release_sync, project_id, owner)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)


def open_store(settings: Settings) -> ProjectStore:
    """The configured backend: DynamoDB when chosen (or ``DYNAMODB_TABLE_NAME`` set), else SQLite."""
    backend = settings.project_store
    if backend == "auto":
        backend = "dynamodb" if settings.dynamodb_table_name else "sqlite"
    if backend == "dynamodb":
        if not settings.dynamodb_table_name:
            raise MvcoreError(
                "MVCORE_PROJECT_STORE=dynamodb needs DYNAMODB_TABLE_NAME",
                code="CONFIG_ERROR",
                status_code=500,
                hint="Set DYNAMODB_TABLE_NAME (and DYNAMODB_ENDPOINT for a local endpoint).",
            )
        from mvcore.projects.dynamo_store import DynamoProjectStore

        return DynamoProjectStore.from_settings(settings)
    from mvcore.projects.sqlite_store import SqliteProjectStore

    return SqliteProjectStore(settings.data_dir / "projects.sqlite3")


_OPEN: dict[tuple[Any, ...], ProjectStore] = {}


def store_for(settings: Settings) -> ProjectStore:
    """One store per process and configuration (what workers' step jobs use)."""
    key = (
        settings.project_store,
        str(settings.data_dir.resolve()),
        settings.dynamodb_table_name,
        settings.dynamodb_endpoint,
    )
    store = _OPEN.get(key)
    if store is None:
        store = _OPEN[key] = open_store(settings)
    return store
