"""Job records in this process (the default, without Redis).

The same state machine as :mod:`mvcore.jobs.redis_store`, one dict instead of Lua
scripts (one event loop, so every method is atomic by construction).  A running
job whose heartbeat is older than its timeout -- its task died or the loop was
blocked that long -- gets the worker-lost verdict on the next read, exactly as
in Redis: requeued through ``requeue`` (the service's kick) when its kind is safe
to redo and attempts are left, else ``failed`` with ``WORKER_LOST``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import time
from collections import OrderedDict
from typing import Any

from mvcore.jobs.records import (
    ACTIVE,
    MAX_JOBS_KEPT,
    Claim,
    JobRecord,
    QueueFull,
    Requeue,
    Status,
    backoff_s,
    cancelled_error,
    not_redone_because,
    worker_lost_error,
)


class MemoryJobStore:
    """Records in this process; ``requeue`` re-sends a job (set by the JobService that owns it)."""

    def __init__(
        self,
        max_kept: int = MAX_JOBS_KEPT,
        *,
        requeue: Requeue | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        self.max_kept = max_kept
        self.requeue = requeue
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()
        self._events: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _notify(self, job_id: str) -> None:
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    async def create(self, record: JobRecord, *, queue_max: int | None = None) -> None:
        if queue_max is not None:
            queued = sum(1 for r in self._jobs.values() if r.status == "queued")
            if queued >= queue_max:
                raise QueueFull(queued, queue_max, retry_after=5)
        self._jobs[record.job_id] = dataclasses.replace(record)
        if len(self._jobs) > self.max_kept:
            for job_id in [j for j, r in self._jobs.items() if r.final][: len(self._jobs) - self.max_kept]:
                del self._jobs[job_id]

    def _stale(self, record: JobRecord) -> bool:
        beat = record.heartbeat_at or record.started_at or 0.0
        return record.status == "running" and time.time() - beat > record.heartbeat_timeout

    async def _verdict(self, record: JobRecord, why: str = "heartbeat stopped") -> str:
        """A running job lost its runner: requeue it (safe, attempts left) or fail it WORKER_LOST."""
        reason = not_redone_because(record.redo, record.attempts, record.max_attempts, record.external_ref)
        if reason is None and self.requeue is not None and record.payload is not None:
            record.status, record.worker, record.heartbeat_at = "queued", None, None
            record.retry_at = time.time() + backoff_s(record.attempts, self.backoff_base, self.backoff_cap)
            record.message = f"requeued: {why} (attempt {record.attempts} of {record.max_attempts})"
            await self.requeue(dataclasses.replace(record))
            return "requeued"
        record.error, record.error_status = worker_lost_error(
            record.worker, reason or "nothing can run it again in this process", record.attempts
        )
        record.status, record.finished_at, record.message = "failed", time.time(), "worker lost"
        self._notify(record.job_id)
        return "failed"

    async def load(self, job_id: str) -> JobRecord | None:
        record = self._jobs.get(job_id)
        if record is None:
            return None
        if self._stale(record):
            await self._verdict(record)
        return dataclasses.replace(record)

    async def claim(self, job_id: str, worker: str, redo: str) -> Claim:
        record = self._jobs.get(job_id)
        if record is None:
            return Claim(None)
        if self._stale(record):
            await self._verdict(record)
        if record.status != "queued":
            return Claim(None, record.status)
        now = time.time()
        if record.retry_at > now:
            return Claim(None, "queued", wait=record.retry_at - now)
        record.status, record.started_at, record.heartbeat_at, record.worker = "running", now, now, worker
        record.attempts += 1
        record.redo, record.message = redo, "started"
        return Claim(dataclasses.replace(record), "running")

    async def beat(self, job_id: str, worker: str, progress: float, message: str) -> str:
        record = self._jobs.get(job_id)
        if record is None or record.status != "running" or record.worker != worker:
            return "gone"
        record.progress = max(record.progress, progress)
        record.message = message if not record.cancel_requested else record.message
        record.heartbeat_at = time.time()
        return "cancel" if record.cancel_requested else "ok"

    async def note_external(self, job_id: str, worker: str, ref: str) -> None:
        record = self._jobs.get(job_id)
        if record is not None and record.status == "running" and record.worker == worker:
            record.external_ref = ref[:200]

    async def finish(
        self,
        job_id: str,
        worker: str | None,
        status: Status,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        error_status: int | None = None,
        progress: float | None = None,
        message: str = "",
    ) -> bool:
        record = self._jobs.get(job_id)
        if record is None or record.final:
            return False
        if worker is not None and (record.status != "running" or record.worker != worker):
            return False
        record.status, record.finished_at = status, time.time()
        record.result, record.error, record.error_status = result, error, error_status
        if progress is not None:
            record.progress = progress
        record.message = message
        self._notify(job_id)
        return True

    async def release(self, job_id: str, worker: str, why: str) -> str:
        record = self._jobs.get(job_id)
        if record is None or record.status != "running" or record.worker != worker:
            return "gone"
        return await self._verdict(record, why)

    async def retry(self, job_id: str) -> str | None:
        record = self._jobs.get(job_id)
        if record is None:
            return None
        was = record.status
        if was in ("failed", "cancelled") and self.requeue is not None and record.payload is not None:
            record.status, record.attempts, record.retry_at, record.cancel_requested = "queued", 0, 0.0, False
            record.result = record.error = record.error_status = record.finished_at = None
            record.external_ref, record.progress, record.message = "", 0.0, "queued again (retry)"
            await self.requeue(dataclasses.replace(record))
        return was

    async def request_cancel(self, job_id: str) -> str | None:
        record = self._jobs.get(job_id)
        if record is None:
            return None
        if record.status == "queued":
            record.error, record.error_status = cancelled_error()
            record.status, record.finished_at, record.message = "cancelled", time.time(), "cancelled"
            self._notify(job_id)
        elif record.status == "running":
            record.cancel_requested, record.message = True, "cancelling"
        return record.status

    async def list(self, status: str | None, limit: int) -> list[JobRecord]:
        out = []
        for record in reversed(self._jobs.values()):
            if self._stale(record):
                await self._verdict(record)
            if status is None or record.status == status:
                out.append(dataclasses.replace(record))
                if len(out) >= limit:
                    break
        return out

    async def count(self, status: str) -> int:
        assert status in ACTIVE
        return sum(1 for r in self._jobs.values() if r.status == status)

    async def active(self) -> builtins.list[JobRecord]:
        """Every queued or running job (what a stopping process must settle)."""
        return [dataclasses.replace(r) for r in self._jobs.values() if r.status in ACTIVE]

    async def wait_change(self, job_id: str, timeout: float) -> None:
        event = self._events.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
