"""Jobs: every generator call runs as a taskiq task.

``submit`` enqueues and answers at once (``?async=true``); ``run`` enqueues the
same task and waits for it (the original synchronous API), so both give the same
body.  A task carries its request and the fully resolved ConfigBundle (with the
snapshot generation in ``bundle["meta"]``), so a reload between enqueue and run
changes nothing.

Three pieces, the same for both deployments:

- a **store** of job records (status, progress, attempts, result or error): in
  process (:class:`~mvcore.jobs.memory_store.MemoryJobStore`) or in Redis
  (:mod:`mvcore.jobs.redis_store`), readable by every API process;
- a **broker**: taskiq's ``InMemoryBroker`` in process, or taskiq-redis'
  ``RedisStreamBroker`` (:mod:`mvcore.jobs.broker`) feeding ``mvcore worker`` processes;
- a :class:`~mvcore.jobs.runner.JobRunner` on the executing side.

Nothing waits forever: a synchronous call whose job stays queued with no live
worker for ``MVCORE_JOB_NO_WORKER_WAIT`` seconds answers 503 ``NO_WORKER`` with the
job id (the job stays queued); more than ``MVCORE_JOB_QUEUE_MAX`` queued jobs
answer 429 ``QUEUE_FULL`` with ``Retry-After``; stopping the service cancels its
waiters and drains its in-process jobs (``MVCORE_JOB_DRAIN_GRACE``).

Environment (read here, not in Settings):

- ``MVCORE_JOB_HEARTBEAT_TIMEOUT`` (seconds, default 30): a running job whose
  worker has not heartbeaten for this long gets the worker-lost verdict;
- ``MVCORE_JOB_CONCURRENCY`` (default 4): jobs run at once by the in-process
  runner (no Redis); ``mvcore worker --concurrency N`` sets it per worker.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

from taskiq import AsyncBroker

from mvcore import logs
from mvcore.errors import BadInput, MvcoreError, NotFound
from mvcore.generators.context import GenContext
from mvcore.generators.registry import GENERATORS
from mvcore.jobs.memory_store import MemoryJobStore
from mvcore.jobs.records import (
    JobFailed,
    JobRecord,
    JobStore,
    StopReason,
    concurrency_from_env,
    heartbeat_timeout_from_env,
    new_worker_id,
    worker_lost_error,
)
from mvcore.jobs.runner import JobRunner, kick, register_job_task

__all__ = [
    "JobFailed",
    "JobRecord",
    "JobRunner",
    "JobService",
    "JobStore",
    "MemoryJobStore",
    "StopReason",
    "kick",
    "new_worker_id",
    "register_job_task",
]

WAIT_STEP_S = 1.0  # how often a synchronous wait re-checks for a live worker


# ---------------------------------------------------------------------------------------------- service
class JobService:
    """What the API uses: submit, run (submit and wait), get, cancel, retry, list.

    ``JobService(ctx)`` runs jobs in this process through taskiq's ``InMemoryBroker``;
    :class:`mvcore.jobs.redis_store.RedisJobService` sends them to ``mvcore worker`` processes.
    """

    def __init__(
        self,
        ctx: GenContext,
        *,
        store: JobStore | None = None,
        broker: AsyncBroker | None = None,
        runner: JobRunner | None = None,
        concurrency: int | None = None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.heartbeat_timeout = heartbeat_timeout or heartbeat_timeout_from_env()
        self.max_attempts = settings.job_max_attempts
        self.queue_max = settings.job_queue_max
        self.no_worker_wait = settings.job_no_worker_wait_s
        self.drain_grace = settings.job_drain_grace_s
        receiver_log = logging.getLogger("taskiq.receiver.receiver")
        if receiver_log.level == logging.NOTSET:
            receiver_log.setLevel(logging.WARNING)  # one INFO line per job; mvcore logs job_* events itself
        if broker is None:
            from taskiq import InMemoryBroker

            store = store or MemoryJobStore(
                requeue=self._resend,
                backoff_base=settings.job_retry_backoff_s,
                backoff_cap=settings.job_retry_backoff_max_s,
            )
            broker = InMemoryBroker(max_stored_results=1)
            runner = runner or JobRunner(
                ctx, store, worker_id="in-process", concurrency=concurrency or concurrency_from_env()
            )
            register_job_task(broker, runner)
        if store is None:
            raise ValueError("a JobService with its own broker needs a store")
        self.store: JobStore = store
        self.broker: AsyncBroker = broker
        self.runner = runner
        self._started = False
        self._accepting = True
        self._waiters: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        if not self._started:
            await self.store.start()
            await self.broker.startup()
            self._started = True
            self._accepting = True

    async def stop(self) -> None:
        """Stop: take no more in-process jobs, let running ones finish (grace), settle the rest.

        Jobs this process runs and cannot finish in ``MVCORE_JOB_DRAIN_GRACE`` end ``failed``
        with ``WORKER_LOST`` (nothing in a stopping process can run them again); every
        synchronous request still waiting here is cancelled, so shutdown never hangs on one.
        """
        self._accepting = False
        if self.runner is not None and isinstance(self.store, MemoryJobStore):
            self.store.requeue = None  # this process is going away: a lost job is failed, not re-sent
            await self.runner.drain(self.drain_grace)
            for record in await self.store.active():
                error, status = worker_lost_error(
                    self.runner.worker_id, "the server stopped before the job started", record.attempts
                )
                await self.store.finish(
                    record.job_id, None, "failed", error=error, error_status=status, message="server stopped"
                )
        elif self.runner is not None:
            await self.runner.drain(self.drain_grace)
        for waiter in list(self._waiters):
            waiter.cancel()
        if self._waiters:
            await asyncio.wait(set(self._waiters), timeout=5.0)
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                await self.broker.shutdown()
            await self.store.close()

    async def _resend(self, record: JobRecord) -> None:
        """Send an in-process job again (the memory store's requeue after a lost run, or a retry)."""
        kind, request, bundle = record.payload
        await kick(self.broker, record.job_id, kind, request, bundle)

    async def submit(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> JobRecord:
        if kind not in GENERATORS:
            raise BadInput(f"Unknown job kind {kind!r}", alternatives=list(GENERATORS))
        if not self._accepting and self.runner is not None:
            raise MvcoreError(
                "The server is shutting down and takes no new jobs",
                code="SHUTTING_DOWN",
                status_code=503,
                hint="Retry in a moment (another instance will take it).",
            )
        record = JobRecord(
            str(uuid.uuid4()),
            kind,
            heartbeat_timeout=self.heartbeat_timeout,
            config=dict(bundle.get("meta") or {}) or None,
            max_attempts=self.max_attempts,
            payload=(kind, request, bundle) if isinstance(self.store, MemoryJobStore) else None,
        )
        try:
            await self._enqueue(record, kind, request, bundle)
        except MvcoreError:
            raise
        except Exception as exc:
            logs.event("job_enqueue_failed", logging.ERROR, job_id=record.job_id, error=repr(exc)[:300])
            down = _queue_down_error()
            with contextlib.suppress(Exception):
                await self.store.finish(
                    record.job_id,
                    None,
                    "failed",
                    error={"detail": down.to_detail()},
                    error_status=down.status_code,
                    message="not enqueued",
                )
            raise down from exc
        logs.event(
            "job_queued",
            logging.INFO,
            job_id=record.job_id,
            kind=kind,
            generation=bundle.get("meta", {}).get("generation"),
        )
        return record

    async def _enqueue(
        self, record: JobRecord, kind: str, request: dict[str, Any], bundle: dict[str, Any]
    ) -> None:
        """Create the record (raises QueueFull past the cap) and send the job."""
        await self.store.create(record, queue_max=self.queue_max)
        await kick(self.broker, record.job_id, kind, request, bundle)

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Wait until the job is final (or ``timeout`` passes) and return its record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.05
        while True:
            record = await self.get(job_id)
            if record.final:
                return record
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return record
            step = interval if remaining is None else min(interval, remaining)
            await self.store.wait_change(job_id, step)
            interval = min(interval * 2, 1.0)

    async def has_worker(self) -> bool:
        """Is anything running jobs?  In process: this process (while it is not stopping)."""
        return self.runner is not None and self._accepting

    async def _wait_for_outcome(self, job_id: str) -> JobRecord:
        """Wait for the job; 503 NO_WORKER when it stays queued without a live worker too long."""
        alone_since: float | None = None
        while True:
            record = await self.wait(job_id, timeout=WAIT_STEP_S)
            if record.final:
                return record
            if record.status == "queued" and not await self.has_worker():
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since >= self.no_worker_wait:
                    raise _no_worker_error(job_id, self.no_worker_wait)
            else:
                alone_since = None

    async def run(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> dict[str, Any]:
        record = await self.submit(kind, request, bundle)
        me = asyncio.current_task()
        if me is not None:
            self._waiters.add(me)
        try:
            record = await self._wait_for_outcome(record.job_id)
        except NotFound:
            # the caller never saw a job id: "job not found, use an id from ?async=true" would be
            # nonsense to them; what happened is that the job store lost the record mid-request
            raise MvcoreError(
                "The job's record disappeared while the request waited for it",
                code="JOB_LOST",
                status_code=503,
                hint="The job store lost its data (was Redis restarted without persistence?); retry.",
            ) from None
        finally:
            if me is not None:
                self._waiters.discard(me)
        if record.status == "succeeded" and record.result is not None:
            return record.result
        raise JobFailed(record)

    async def get(self, job_id: str) -> JobRecord:
        try:
            record = await self.store.load(job_id)
        except MvcoreError:
            raise
        except Exception as exc:
            raise _queue_down_error() from exc
        if record is None:
            raise NotFound(f"Job {job_id[:64]!r} not found", hint="Use a job_id returned with ?async=true.")
        return record

    async def cancel(self, job_id: str, wait: float = 5.0) -> JobRecord:
        """Cancel a queued job at once; ask a running one to stop and wait (bounded) until it has."""
        try:
            state = await self.store.request_cancel(job_id)
        except MvcoreError:
            raise
        except Exception as exc:
            raise _queue_down_error() from exc
        if state is None:
            await self.get(job_id)  # raises the 404
        if state == "running":
            done = self.runner.cancel_local(job_id) if self.runner is not None else None
            if done is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await done.wait()
            else:
                await self.wait(job_id, timeout=wait)
        logs.event("job_cancel_requested", logging.INFO, job_id=job_id, was=state)
        return await self.get(job_id)

    async def retry(self, job_id: str) -> JobRecord:
        """Queue a failed or cancelled job again (same id, attempts start over)."""
        try:
            was = await self.store.retry(job_id)
        except MvcoreError:
            raise
        except Exception as exc:
            raise _queue_down_error() from exc
        if was is None:
            await self.get(job_id)  # raises the 404
        if was not in ("failed", "cancelled"):
            record = await self.get(job_id)
            raise BadInput(
                f"Job {job_id} is {record.status}; only failed or cancelled jobs can be retried",
                details={"field": "job_id", "status": record.status},
                hint="Wait for the job to end, or submit the request again.",
            )
        logs.event("job_retried", logging.INFO, job_id=job_id, was=was)
        return await self.get(job_id)

    async def list(self, status: str | None = None, limit: int = 50) -> builtins.list[JobRecord]:
        try:
            return await self.store.list(status, max(1, min(limit, 500)))
        except MvcoreError:
            raise
        except Exception as exc:
            raise _queue_down_error() from exc

    async def workers(self) -> builtins.list[dict[str, Any]]:
        """Who runs the jobs: this process (in-memory) or the live ``mvcore worker`` processes (Redis)."""
        if self.runner is None:
            return []
        return [
            {
                "worker_id": self.runner.worker_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "concurrency": self.runner.concurrency,
                "running": self.runner.running,
                "completed": self.runner.completed,
            }
        ]


def _no_worker_error(job_id: str, waited: float) -> MvcoreError:
    return MvcoreError(
        f"No worker took the job within {waited:g} s; it stays queued",
        code="NO_WORKER",
        status_code=503,
        details={"job_id": job_id, "status_url": f"/api/mv/jobs/{job_id}"},
        hint="Start `mvcore worker` (MVCORE_REDIS_URL), then poll status_url; the job runs when one is up.",
    )


def _queue_down_error() -> MvcoreError:
    return MvcoreError(
        "The job queue is not reachable",
        code="QUEUE_UNAVAILABLE",
        status_code=503,
        hint="Check MVCORE_REDIS_URL and that Redis is up, then retry.",
    )
