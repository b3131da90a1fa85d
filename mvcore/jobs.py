"""Job records and the in-process job service.

Every generator call is a job: ``submit`` answers at once (``?async=true``),
``run`` submits and waits for the same job (the original synchronous API).
A job carries its request and the resolved ConfigBundle it was given, so a
reload between enqueue and run changes nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from mvcore.errors import BadInput, MvcoreError, NotFound
from mvcore.generators.context import GenContext
from mvcore.generators.registry import GENERATORS, execute

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL = ("succeeded", "failed", "cancelled")
MAX_JOBS_KEPT = 1000


@dataclass
class JobRecord:
    job_id: str
    kind: str
    status: Status = "queued"
    progress: float = 0.0
    message: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    error_status: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "progress": round(self.progress, 4),
            "message": self.message,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
            "status_url": f"/api/mv/jobs/{self.job_id}",
        }


def error_of(exc: BaseException) -> tuple[dict[str, Any], int]:
    if isinstance(exc, MvcoreError):
        return {"detail": exc.to_detail()}, exc.status_code
    return (
        {
            "detail": {
                "error": "INTERNAL_ERROR",
                "message": "The job failed unexpectedly",
                "details": {"hint": "See the server log."},
            }
        },
        500,
    )


class JobFailed(MvcoreError):
    """Raised by ``run`` so the synchronous endpoint answers with the job's own error."""

    def __init__(self, record: JobRecord) -> None:
        detail = (record.error or {}).get("detail", {})
        super().__init__(
            detail.get("message", "job failed"),
            details=detail.get("details"),
            code=detail.get("error", "UNKNOWN_ERROR"),
            status_code=record.error_status or 500,
        )


class JobService:
    """In-process jobs on the running event loop (no broker needed)."""

    def __init__(self, ctx: GenContext) -> None:
        self.ctx = ctx
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    async def submit(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> JobRecord:
        if kind not in GENERATORS:
            raise BadInput(f"Unknown job kind {kind!r}", alternatives=list(GENERATORS))
        record = JobRecord(str(uuid.uuid4()), kind)
        self._jobs[record.job_id] = record
        while len(self._jobs) > MAX_JOBS_KEPT:
            self._jobs.popitem(last=False)
        self._tasks[record.job_id] = asyncio.create_task(self._run(record, request, bundle))
        return record

    async def _run(self, record: JobRecord, request: dict[str, Any], bundle: dict[str, Any]) -> None:
        record.status, record.started_at = "running", time.time()

        def progress(fraction: float, message: str) -> None:
            record.progress = max(record.progress, min(1.0, fraction))
            record.message = message

        try:
            record.result = await execute(record.kind, request, bundle, self.ctx.with_progress(progress))
            record.status, record.progress = "succeeded", 1.0
        except asyncio.CancelledError:
            record.status = "cancelled"
        except Exception as exc:
            record.error, record.error_status = error_of(exc)
            record.status = "failed"
        finally:
            record.finished_at = time.time()
            self._tasks.pop(record.job_id, None)

    async def run(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> dict[str, Any]:
        record = await self.submit(kind, request, bundle)
        task = self._tasks.get(record.job_id)
        if task is not None:
            await asyncio.shield(task)
        if record.status == "succeeded" and record.result is not None:
            return record.result
        raise JobFailed(record)

    async def get(self, job_id: str) -> JobRecord:
        record = self._jobs.get(job_id)
        if record is None:
            raise NotFound(f"Job {job_id[:64]!r} not found", hint="Use a job_id returned with ?async=true.")
        return record

    async def cancel(self, job_id: str) -> JobRecord:
        record = await self.get(job_id)
        task = self._tasks.get(job_id)
        if task is not None and record.status not in FINAL:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            record.status = "cancelled"
        return record

    async def list(self, status: str | None = None, limit: int = 50) -> list[JobRecord]:
        jobs = [j for j in reversed(self._jobs.values()) if status is None or j.status == status]
        return jobs[:limit]
