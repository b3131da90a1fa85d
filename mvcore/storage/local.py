"""Storage on the local disk, under one root directory.

* A key maps to ``root / key``; keys are checked (:func:`~mvcore.storage.keys.check_key`) and the
  resolved path must stay inside the resolved root, so neither ``..`` nor a symlink can escape it.
* Writes go to a hidden temp file in the target directory (``.<name>.<random>.part``), are fsynced
  and then ``os.replace``-d onto the final name: a reader never sees a partial file under a final
  name, and a failed write (disk full, permission...) removes the temp file and raises
  :class:`~mvcore.errors.StorageError` ("disk full while writing 'key'").
* Every blocking call runs in :func:`asyncio.to_thread`.
* Messages name keys, never absolute server paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from mvcore.errors import BadInput, NotFound, StorageError
from mvcore.storage.keys import check_key

__all__ = ["LocalStorage", "is_temp_name"]

_CHUNK = 1 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_temp_name(name: str) -> bool:
    """True for the in-progress files this module writes (never listed, never served)."""
    return name.startswith(".") and name.endswith(".part")


def _write_error(key: str, exc: OSError) -> StorageError:
    if exc.errno in _DISK_FULL:
        return StorageError(
            f"disk full while writing {key!r}",
            code="DISK_FULL",
            hint="Free space in MVCORE_DATA_DIR (or point it at a bigger disk) and retry.",
            details={"key": key},
        )
    reason = exc.strerror or type(exc).__name__
    return StorageError(
        f"could not write {key!r}: {reason}",
        hint="Check that MVCORE_DATA_DIR is writable.",
        details={"key": key},
    )


def _not_found(key: str) -> NotFound:
    return NotFound(f"Stored file {key!r} not found", details={"key": key})


class LocalStorage:
    """A :class:`~mvcore.storage.base.Storage` on a directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # --- paths ---------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        """The (resolved) file for ``key``; refuses keys that would leave the root."""
        check_key(key)
        root = self.root.resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or path == root:
            raise BadInput(
                f"Storage key {key[:64]!r} refused: it resolves outside the storage root",
                code="INVALID_KEY",
                hint="Keys are relative paths like 'mv/jobs/<uuid>/video.mp4'.",
            )
        return path

    def local_path(self, key: str) -> Path | None:
        path = self.path_for(key)
        return path if path.is_file() else None

    # --- writing -------------------------------------------------------------
    def _atomic_write(self, key: str, fill: Callable[[BinaryIO], None]) -> Path:
        final = self.path_for(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(key, exc) from exc
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            with open(tmp, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _write_error(key, exc) from exc
            raise
        return final

    def _put_file_sync(self, local: Path, key: str) -> Path:
        final = self.path_for(key)
        try:
            if final.exists() and os.path.samefile(local, final):
                return final
            source = open(local, "rb")  # noqa: SIM115 - closed below, opened before the temp file exists
        except OSError as exc:
            raise StorageError(
                f"could not read the file to store under {key!r}: {exc.strerror or type(exc).__name__}",
                details={"key": key},
            ) from exc
        with source:

            def fill(out: BinaryIO) -> None:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)

            return self._atomic_write(key, fill)

    async def put_file(self, local: Path, key: str, content_type: str | None = None) -> None:
        await asyncio.to_thread(self._put_file_sync, Path(local), key)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        def fill(out: BinaryIO) -> None:
            out.write(data)

        await asyncio.to_thread(self._atomic_write, key, fill)

    # --- reading -------------------------------------------------------------
    def _get_to_path_sync(self, key: str, dest: Path) -> Path:
        source = self.path_for(key)
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed below
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise _not_found(key) from None
        except OSError as exc:
            raise _read_error(key, exc) from exc
        with handle:
            dest = Path(dest)
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as out:
                    while chunk := handle.read(_CHUNK):
                        out.write(chunk)
                os.replace(tmp, dest)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise _write_error(key, exc) from exc
        return dest

    async def get_to_path(self, key: str, dest: Path) -> Path:
        return await asyncio.to_thread(self._get_to_path_sync, key, dest)

    def _get_bytes_sync(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise _not_found(key) from None
        except OSError as exc:
            raise _read_error(key, exc) from exc

    async def get_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get_bytes_sync, key)

    async def exists(self, key: str) -> bool:
        path = self.path_for(key)
        return await asyncio.to_thread(path.is_file)

    def _delete_sync(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            pass
        except OSError as exc:
            raise StorageError(
                f"could not delete {key!r}: {exc.strerror or type(exc).__name__}", details={"key": key}
            ) from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete_sync, key)

    def _list_sync(self, prefix: str) -> list[str]:
        root = self.root.resolve()
        directory = prefix.rpartition("/")[0]
        base = self.path_for(directory) if directory else root
        found: list[str] = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if is_temp_name(name):
                    continue
                key = (Path(dirpath) / name).relative_to(root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)

    async def list(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._list_sync, prefix)

    async def presigned_url(self, key: str, expires: int) -> str | None:
        return None


def _read_error(key: str, exc: OSError) -> StorageError:
    return StorageError(f"could not read {key!r}: {exc.strerror or type(exc).__name__}", details={"key": key})
