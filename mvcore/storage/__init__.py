"""Storage: ids and keys, the local disk, an S3 bucket, and the MediaStore generators use.

``keys`` is imported eagerly (it is tiny and used everywhere to validate ids); the backends are
imported lazily so that code which only checks ids does not pay for boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mvcore.storage import keys
from mvcore.storage.base import Storage

if TYPE_CHECKING:
    from mvcore.storage.local import LocalStorage
    from mvcore.storage.media_store import MediaStore, SaveResult
    from mvcore.storage.s3 import S3Storage

__all__ = ["LocalStorage", "MediaStore", "S3Storage", "SaveResult", "Storage", "keys"]

_LAZY = {
    "LocalStorage": "mvcore.storage.local",
    "MediaStore": "mvcore.storage.media_store",
    "SaveResult": "mvcore.storage.media_store",
    "S3Storage": "mvcore.storage.s3",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mvcore.storage' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
