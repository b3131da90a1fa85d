"""Job records, their error bodies and where they are kept in process.

The data half of the job system (``jobs.py`` is the executing half): the wire
shape of a job, the error bodies a job can end with (``WORKER_LOST``,
``JOB_CANCELLED``, or the generator's own), the ``JobStore`` protocol that the
in-memory and Redis stores implement, and the job settings read from the
environment (``MVCORE_JOB_HEARTBEAT_TIMEOUT``, ``MVCORE_JOB_CONCURRENCY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Literal, Protocol

from mvcore.errors import BadInput, MvcoreError

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
MAX_JOBS_KEPT = 1000
TASK_NAME = "mvcore.run_job"

HEARTBEAT_TIMEOUT_ENV = "MVCORE_JOB_HEARTBEAT_TIMEOUT"
CONCURRENCY_ENV = "MVCORE_JOB_CONCURRENCY"
DEFAULT_HEARTBEAT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 4
PROGRESS_MIN_INTERVAL = 0.25  # seconds between progress writes ...
PROGRESS_MIN_STEP = 0.05  # ... unless progress moved at least this much
MAX_TICK = 0.5  # heartbeat + cancel poll period (shorter when the heartbeat timeout is short)

WORKER_LOST = "WORKER_LOST"
JOB_CANCELLED = "JOB_CANCELLED"


def env_number(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise BadInput(f"{name} must be a number, got {raw!r}") from exc
    return max(minimum, value)


def heartbeat_timeout_from_env() -> float:
    return env_number(HEARTBEAT_TIMEOUT_ENV, DEFAULT_HEARTBEAT_TIMEOUT, minimum=0.5)


def concurrency_from_env() -> int:
    return int(env_number(CONCURRENCY_ENV, DEFAULT_CONCURRENCY, minimum=1))


def tick_for(heartbeat_timeout: float) -> float:
    return max(0.05, min(MAX_TICK, heartbeat_timeout / 4))


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# ---------------------------------------------------------------------------------------------- records
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
    # metadata.config of the resolution the job runs with (flavor, generation, content digest)
    config: dict[str, Any] | None = None
    # bookkeeping, not on the wire
    worker: str | None = None
    heartbeat_at: float | None = None
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    cancel_requested: bool = False

    @property
    def final(self) -> bool:
        return self.status in FINAL

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
            "config": self.config,
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


def worker_lost_error(worker: str | None = None) -> tuple[dict[str, Any], int]:
    details: dict[str, Any] = {"hint": "Retry the request; check that `mvcore worker` processes stay up."}
    if worker:
        details["worker"] = worker
    return (
        {
            "detail": {
                "error": WORKER_LOST,
                "message": "the worker running this job stopped; retry the request",
                "details": details,
            }
        },
        503,
    )


def cancelled_error() -> tuple[dict[str, Any], int]:
    return (
        {
            "detail": {
                "error": JOB_CANCELLED,
                "message": "The job was cancelled",
                "details": {"hint": "Submit the request again to run it."},
            }
        },
        409,
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
        self.record = record


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def plain_json(value: Any) -> Any:
    """``value`` as JSON would carry it (what a worker in another process can send back)."""
    return json.loads(json.dumps(value, default=_json_default))


# ---------------------------------------------------------------------------------------------- stores
class JobStore(Protocol):
    """Where job records live.  Every transition is atomic in the store."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, record: JobRecord) -> None: ...

    async def load(self, job_id: str) -> JobRecord | None:
        """The record; a running job whose worker stopped heartbeating is marked failed first."""
        ...

    async def claim(self, job_id: str, worker: str) -> JobRecord | None:
        """queued -> running (heartbeat starts); None when the job is not queued (cancelled, gone)."""
        ...

    async def beat(self, job_id: str, worker: str, progress: float, message: str) -> str:
        """Heartbeat + progress of a running job: "ok", "cancel" (requested) or "gone" (not ours)."""
        ...

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
        """Write the outcome unless the job is already final (first writer wins)."""
        ...

    async def request_cancel(self, job_id: str) -> str | None:
        """queued -> cancelled; running -> cancel flag set (returns "running"); None if unknown."""
        ...

    async def list(self, status: str | None, limit: int) -> list[JobRecord]: ...

    async def wait_change(self, job_id: str, timeout: float) -> None:
        """Return when the job may have become final, or after ``timeout`` seconds."""
        ...


class MemoryJobStore:
    """Records in this process (the default, without Redis)."""

    def __init__(self, max_kept: int = MAX_JOBS_KEPT) -> None:
        self.max_kept = max_kept
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

    async def create(self, record: JobRecord) -> None:
        self._jobs[record.job_id] = dataclasses.replace(record)
        if len(self._jobs) > self.max_kept:
            for job_id in [j for j, r in self._jobs.items() if r.final][: len(self._jobs) - self.max_kept]:
                del self._jobs[job_id]

    async def load(self, job_id: str) -> JobRecord | None:
        record = self._jobs.get(job_id)
        return dataclasses.replace(record) if record is not None else None

    async def claim(self, job_id: str, worker: str) -> JobRecord | None:
        record = self._jobs.get(job_id)
        if record is None or record.status != "queued":
            return None
        now = time.time()
        record.status, record.started_at, record.heartbeat_at, record.worker = "running", now, now, worker
        record.message = "started"
        return dataclasses.replace(record)

    async def beat(self, job_id: str, worker: str, progress: float, message: str) -> str:
        record = self._jobs.get(job_id)
        if record is None or record.status != "running" or record.worker != worker:
            return "gone"
        record.progress = max(record.progress, progress)
        record.message = message if not record.cancel_requested else record.message
        record.heartbeat_at = time.time()
        return "cancel" if record.cancel_requested else "ok"

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
        if worker is not None and record.status == "running" and record.worker != worker:
            return False
        record.status, record.finished_at = status, time.time()
        record.result, record.error, record.error_status = result, error, error_status
        if progress is not None:
            record.progress = progress
        record.message = message
        self._notify(job_id)
        return True

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
            if status is None or record.status == status:
                out.append(dataclasses.replace(record))
                if len(out) >= limit:
                    break
        return out

    async def wait_change(self, job_id: str, timeout: float) -> None:
        event = self._events.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
