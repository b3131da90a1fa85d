"""Pre-encoded JSON answers of the hot flavor reads, per snapshot generation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from mvcore.config.snapshot import Snapshot


class WireCache:
    """Encoded JSON answers per snapshot generation: a hot read is a dict lookup, no serialization.

    Bounded, and emptied whenever the generation moves, so it never serves a stale answer.
    """

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self.generation = -1
        self.entries: dict[tuple[Any, ...], bytes] = {}

    def get(self, snap: Snapshot, key: tuple[Any, ...], build: Callable[[], Any]) -> bytes:
        if snap.generation != self.generation:
            self.entries, self.generation = {}, snap.generation
        found = self.entries.get(key)
        if found is None:
            found = msgspec.json.encode(build())
            if len(self.entries) < self.limit:
                self.entries[key] = found
        return found
