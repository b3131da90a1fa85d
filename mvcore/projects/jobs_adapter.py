"""The one place the project pipeline touches the job system (``JobService.submit/get/wait``).

The driver sees a :class:`StepOutcome` -- status, error code and message, and whether a retry can
help -- not a ``JobRecord``, so a rework of the job service changes this module only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from mvcore.errors import MvcoreError, NotFound

__all__ = ["RETRYABLE_CODES", "StepJobs", "StepOutcome"]

# Failures a second attempt can fix: the worker died, the queue blinked, the model timed out or
# answered 5xx.  A refusal of the input (4xx, e.g. CONTENT_POLICY_VIOLATION) fails at once.
RETRYABLE_CODES = frozenset(
    {
        "WORKER_LOST",
        "TIMEOUT",
        "QUEUE_UNAVAILABLE",
        "JOB_LOST",
        "RATE_LIMITED",
        "STORAGE_ERROR",
        "UNKNOWN_ERROR",
    }
)


@dataclass(frozen=True)
class StepOutcome:
    job_id: str
    status: str  # queued | running | succeeded | failed | cancelled | lost
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    result: dict[str, Any] | None = None

    @property
    def final(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled", "lost")

    @property
    def retryable(self) -> bool:
        if self.status in ("lost", "cancelled"):
            return True
        if self.code in RETRYABLE_CODES:
            return True
        return self.http_status is not None and self.http_status >= 500


def _outcome(record: Any) -> StepOutcome:
    detail = (record.error or {}).get("detail", {}) if record.error else {}
    return StepOutcome(
        job_id=record.job_id,
        status=record.status,
        code=detail.get("error"),
        message=detail.get("message"),
        http_status=record.error_status,
        result=record.result,
    )


class StepJobs:
    def __init__(self, jobs: Any) -> None:
        self.jobs = jobs

    async def submit(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> str:
        record = await self.jobs.submit(kind, request, bundle)
        return str(record.job_id)

    async def get(self, job_id: str) -> StepOutcome:
        """The job's state; ``lost`` when the job store no longer knows it (e.g. in-memory, restarted)."""
        try:
            return _outcome(await self.jobs.get(job_id))
        except NotFound:
            return StepOutcome(job_id, "lost", "JOB_LOST", "the job is no longer known to the job store")

    async def wait(self, job_id: str, timeout: float, unclaimed_after: float | None = None) -> StepOutcome:
        """Wait until the job is final, ``timeout`` passes (``TIMEOUT``), or -- with ``unclaimed_after``
        -- it is still ``queued`` that long after it was created (``NOT_CLAIMED``, the job is cancelled):
        a message a killed worker had taken off the queue but not yet claimed is never run."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            step = left if unclaimed_after is None else min(left, unclaimed_after)
            try:
                record = await self.jobs.wait(job_id, timeout=max(0.0, step))
            except NotFound:
                return StepOutcome(job_id, "lost", "JOB_LOST", "the job is no longer known to the job store")
            except MvcoreError as exc:  # queue unreachable while waiting
                return StepOutcome(job_id, "lost", exc.code, exc.message, exc.status_code)
            outcome = _outcome(record)
            if outcome.final:
                return outcome
            if loop.time() >= deadline:
                return StepOutcome(job_id, "lost", "TIMEOUT", f"the step did not finish within {timeout:g} s")
            waited = time.time() - float(record.created_at)
            if outcome.status == "queued" and unclaimed_after is not None and waited >= unclaimed_after:
                await self.cancel(job_id)
                return StepOutcome(
                    job_id, "lost", "NOT_CLAIMED", f"no worker took the step within {waited:.0f} s"
                )

    async def cancel(self, job_id: str) -> None:
        with contextlib.suppress(MvcoreError):
            await self.jobs.cancel(job_id, wait=2.0)
