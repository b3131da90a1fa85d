"""Job records, their error bodies and where they are kept in process.

The data half of the job system (``service.py`` is the executing half): the wire
shape of a job, the error bodies a job can end with (``WORKER_LOST``,
``JOB_CANCELLED``, ``NO_WORKER``, ``QUEUE_FULL`` or the generator's own), the
``JobStore`` protocol that the in-memory and Redis stores implement, and the job
settings read from the environment (``MVCORE_JOB_HEARTBEAT_TIMEOUT``,
``MVCORE_JOB_CONCURRENCY``; the reliability limits live in ``Settings``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
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
# ... and never sooner than this after the claim or the last write: a job done within it never
# writes progress at all (its finish does), which saves a Redis round trip per short job
PROGRESS_MIN_SPACING = 0.05
MAX_TICK = 0.5  # heartbeat + cancel poll period (shorter when the heartbeat timeout is short)

WORKER_LOST = "WORKER_LOST"
JOB_CANCELLED = "JOB_CANCELLED"


class StopReason(StrEnum):
    """Why a running job's task was cancelled before it returned."""

    CANCEL = "cancel"  # a user asked: the job ends ``cancelled``
    GONE = "gone"  # the store says the job is no longer ours: write nothing
    SHUTDOWN = "shutdown"  # this process stops: requeue (safe kinds) or ``failed`` WORKER_LOST


class Redo(StrEnum):
    """May a job whose worker was lost be run again?  Decided per job kind and provider."""

    SAFE = "safe"  # local, repeatable work (offline renders, stitch, audio clips)
    UNTIL_EXTERNAL = "until_external"  # a paid provider call: only until it has created something
    NEVER = "never"


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
    attempts: int = 0  # runs started (claims); on the wire
    max_attempts: int = 1  # runs allowed when a worker is lost (Redo.SAFE kinds); on the wire
    redo: str = Redo.NEVER.value  # set by the worker that claims the job
    external_ref: str = ""  # what a paid provider call created (a prediction id): no redo after it
    retry_at: float = 0.0  # a requeued job is not started before this (backoff)
    payload: Any = None  # what re-sends the job (the taskiq message, or kind/request/bundle)

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
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
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


def worker_lost_error(
    worker: str | None = None, reason: str | None = None, attempts: int | None = None
) -> tuple[dict[str, Any], int]:
    """The body of a job whose worker stopped; ``reason`` says why it was not run again."""
    details: dict[str, Any] = {"hint": "Retry the request; check that `mvcore worker` processes stay up."}
    if worker:
        details["worker"] = worker
    if reason:
        details["not_retried_because"] = reason
    if attempts is not None:
        details["attempts"] = attempts
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


# ---------------------------------------------------------------------------------------------- policy
def not_redone_because(redo: str, attempts: int, max_attempts: int, external_ref: str) -> str | None:
    """None when a job whose worker was lost may run again, else why not (the Redis scripts agree)."""
    if redo == Redo.UNTIL_EXTERNAL and external_ref:
        return f"a paid provider call had started ({external_ref}); running it again could pay twice"
    if redo not in (Redo.SAFE, Redo.UNTIL_EXTERNAL):
        return "this kind of job is not safe to run twice"
    if attempts >= max_attempts:
        return f"gave up after {attempts} attempts (MVCORE_JOB_MAX_ATTEMPTS={max_attempts})"
    return None


def backoff_s(attempts: int, base: float, cap: float) -> float:
    """Delay before attempt ``attempts + 1``: ``base``, ``2 base``, ``4 base`` ... at most ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass
class Claim:
    """What ``JobStore.claim`` found: the running record (ours), or why not."""

    record: JobRecord | None
    status: str = ""  # the job's status when it was not claimed ("" = unknown job)
    wait: float = 0.0  # > 0: the job backs off after a lost worker; claim again after this long


def retry_after_s(queued: int) -> int:
    """A Retry-After for a full queue: grows with the backlog, 5 s to 60 s."""
    return max(5, min(60, queued // 20))


class QueueFull(MvcoreError):
    """More jobs are queued than ``MVCORE_JOB_QUEUE_MAX``: 429 with ``Retry-After``."""

    status_code = 429
    code = "QUEUE_FULL"

    def __init__(self, queued: int, limit: int, retry_after: int) -> None:
        super().__init__(
            f"{queued} jobs are already waiting (limit {limit}); try again later",
            hint="Retry after the number of seconds in Retry-After, or raise MVCORE_JOB_QUEUE_MAX.",
            details={"queued": queued, "limit": limit, "retry_after_s": retry_after},
        )
        self.headers = {"Retry-After": str(retry_after)}


# ---------------------------------------------------------------------------------------------- stores
Requeue = Callable[[JobRecord], Awaitable[None]]


class JobStore(Protocol):
    """Where job records live.  Every transition is atomic in the store."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, record: JobRecord, *, queue_max: int | None = None) -> None:
        """Add a queued job; raise :class:`QueueFull` when ``queue_max`` jobs already wait."""
        ...

    async def load(self, job_id: str) -> JobRecord | None:
        """The record; a running job whose worker stopped heartbeating gets its verdict first
        (requeued when its kind is safe to redo and attempts are left, else failed WORKER_LOST)."""
        ...

    async def claim(self, job_id: str, worker: str, redo: str) -> Claim:
        """queued -> running (attempts + 1, heartbeat starts), or a lost running job taken over."""
        ...

    async def beat(self, job_id: str, worker: str, progress: float, message: str) -> str:
        """Heartbeat + progress of a running job: "ok", "cancel" (requested) or "gone" (not ours)."""
        ...

    async def note_external(self, job_id: str, worker: str, ref: str) -> None:
        """A paid provider call created ``ref``: from now on a lost worker means failed, not redone."""
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

    async def release(self, job_id: str, worker: str, why: str) -> str:
        """This worker stops running the job: "requeued" (safe to redo) or "failed" (WORKER_LOST),
        "gone" when it was not ours any more."""
        ...

    async def retry(self, job_id: str) -> str | None:
        """A failed or cancelled job back to queued (attempts start again); its old status, or None."""
        ...

    async def request_cancel(self, job_id: str) -> str | None:
        """queued -> cancelled; running -> cancel flag set (returns "running"); None if unknown."""
        ...

    async def list(self, status: str | None, limit: int) -> list[JobRecord]: ...

    async def count(self, status: str) -> int:
        """How many jobs are ``queued`` or ``running`` now."""
        ...

    async def wait_change(self, job_id: str, timeout: float) -> None:
        """Return when the job may have become final, or after ``timeout`` seconds."""
        ...
