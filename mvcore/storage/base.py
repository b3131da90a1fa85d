"""The interface both storage backends implement.

Keys are relative ``/``-separated strings (see :mod:`mvcore.storage.keys`);
every backend checks them with :func:`~mvcore.storage.keys.check_key`.
Errors: a missing object raises :class:`~mvcore.errors.NotFound`, anything
else that goes wrong raises :class:`~mvcore.errors.StorageError` whose
message names the key and the reason but never a credential or a server path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Storage"]


@runtime_checkable
class Storage(Protocol):
    """An async key -> bytes store."""

    async def put_file(self, local: Path, key: str, content_type: str | None = None) -> None:
        """Store the contents of ``local`` under ``key`` (replacing any previous object)."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``."""
        ...

    async def get_to_path(self, key: str, dest: Path) -> Path:
        """Write the object to the file ``dest`` (atomically; parents are created) and return ``dest``."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The whole object in memory (use for small things such as metadata)."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    async def list(self, prefix: str = "") -> list[str]:
        """Sorted keys that start with ``prefix``."""
        ...

    async def presigned_url(self, key: str, expires: int) -> str | None:
        """A time-limited GET URL, or None when the backend cannot make one (local disk)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file holding ``key`` when the backend is a local disk and it exists, else None."""
        ...
