"""Fan-out of reload events to SSE clients (thread-safe: watchdog calls from its thread)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mvcore.config.store import ReloadEvent

MAX_QUEUE = 100


class EventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, event: ReloadEvent) -> None:
        """Called from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        payload = event.to_dict()
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._fan_out, payload)

    def _fan_out(self, payload: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.qsize() >= MAX_QUEUE:
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # a slow client loses old events, never blocks reloads
            queue.put_nowait(payload)

    def close(self) -> None:
        for queue in list(self._queues):
            queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    async def stream(self, first: dict[str, Any], heartbeat_s: float = 15.0) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield {"event": "hello", "data": first}
            while True:
                try:
                    async with asyncio.timeout(heartbeat_s):
                        item = await queue.get()
                except TimeoutError:
                    yield {"event": "ping", "data": {}}
                    continue
                if item is None:
                    return
                yield {"event": "reload", "data": item}
        finally:
            self._queues.discard(queue)
