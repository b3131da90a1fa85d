"""Jobs: every generator call runs as a taskiq task.

``submit`` enqueues and answers at once (``?async=true``); ``run`` enqueues the
same task and waits for it (the original synchronous API), so both give the same
body.  A task carries its request and the fully resolved ConfigBundle (with the
snapshot generation in ``bundle["meta"]``), so a reload between enqueue and run
changes nothing.

Three pieces, the same for both deployments:

- a **store** of job records (status, progress, result or error): in process
  (:class:`MemoryJobStore`) or in Redis (:mod:`mvcore.jobs.redis_store`), readable by
  every API process;
- a **broker**: taskiq's ``InMemoryBroker`` in process, or taskiq-redis'
  ``ListQueueBroker`` feeding ``mvcore worker`` processes;
- a :class:`JobRunner` on the executing side: it claims the job (queued ->
  running, atomically, so a cancelled job is skipped), runs
  :func:`mvcore.generators.registry.execute`, heartbeats the record, writes
  throttled progress, polls the cancel flag and writes the outcome.

Environment (read here, not in Settings):

- ``MVCORE_JOB_HEARTBEAT_TIMEOUT`` (seconds, default 30): a running job whose
  worker has not heartbeaten for this long is marked failed ``WORKER_LOST``;
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
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mvcore import logs
from mvcore.errors import BadInput, MvcoreError, NotFound
from mvcore.generators.context import GenContext
from mvcore.generators.registry import GENERATORS, execute
from mvcore.jobs.records import (
    PROGRESS_MIN_INTERVAL,
    PROGRESS_MIN_STEP,
    TASK_NAME,
    JobFailed,
    JobRecord,
    JobStore,
    MemoryJobStore,
    Status,
    cancelled_error,
    concurrency_from_env,
    error_of,
    heartbeat_timeout_from_env,
    new_worker_id,
    plain_json,
    tick_for,
    worker_lost_error,
)

__all__ = [
    "JobFailed",
    "JobRecord",
    "JobRunner",
    "JobService",
    "JobStore",
    "MemoryJobStore",
    "kick",
    "new_worker_id",
    "register_job_task",
]


# ---------------------------------------------------------------------------------------------- runner
@dataclass
class _Running:
    record: JobRecord
    task: asyncio.Task[dict[str, Any]] | None = None
    progress: float = 0.0
    message: str = "started"
    written_progress: float = 0.0
    written_at: float = field(default_factory=time.monotonic)
    writing: bool = False
    stop_reason: str | None = None  # "cancel" | "gone" | "shutdown"
    done: asyncio.Event = field(default_factory=asyncio.Event)
    background: set[asyncio.Task[None]] = field(default_factory=set)


class JobRunner:
    """The executing side: what a taskiq task does with one job (in the API process or a worker)."""

    def __init__(
        self,
        ctx: GenContext,
        store: JobStore,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._running: dict[str, _Running] = {}
        self.completed = 0

    @property
    def running(self) -> int:
        return len(self._running)

    def _semaphore(self) -> asyncio.Semaphore | None:
        if self.concurrency and self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    async def run_job(
        self, job_id: str, kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any]
    ) -> None:
        slots = self._semaphore()
        if slots is None:
            await self._claim_and_run(job_id, kind, request, bundle)
            return
        async with slots:
            await self._claim_and_run(job_id, kind, request, bundle)

    async def _claim_and_run(
        self, job_id: str, kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any]
    ) -> None:
        record = await self.store.claim(job_id, self.worker_id)
        if record is None:
            logs.event("job_skipped", logging.INFO, job_id=job_id, kind=kind, reason="not queued")
            return
        logs.event(
            "job_started",
            logging.INFO,
            job_id=job_id,
            kind=kind,
            worker=self.worker_id,
            generation=bundle.get("meta", {}).get("generation"),
        )
        state = _Running(record)
        self._running[job_id] = state
        try:
            await self._execute(state, kind, request, bundle)
        finally:
            self._running.pop(job_id, None)
            for task in list(state.background):
                task.cancel()
            state.done.set()
            self.completed += 1

    async def _execute(
        self, state: _Running, kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def progress(fraction: float, message: str) -> None:
            if threading.get_ident() != loop_thread:
                loop.call_soon_threadsafe(progress, fraction, message)
                return
            state.progress = max(state.progress, min(1.0, max(0.0, float(fraction))))
            state.message = str(message)[:200]
            now = time.monotonic()
            if not state.writing and (
                state.progress - state.written_progress >= PROGRESS_MIN_STEP
                or now - state.written_at >= PROGRESS_MIN_INTERVAL
            ):
                write = loop.create_task(self._beat(state))
                state.background.add(write)
                write.add_done_callback(state.background.discard)

        task = asyncio.create_task(execute(kind, request, bundle, self.ctx.with_progress(progress)))
        state.task = task
        tick = tick_for(state.record.heartbeat_timeout)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=tick)
                if not task.done():
                    await self._beat(state)
        except asyncio.CancelledError:
            # The runner itself is stopped (forced worker shutdown): stop the work and say so.
            state.stop_reason = state.stop_reason or "shutdown"
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._conclude(state, task))
            raise
        await self._conclude(state, task)

    async def _conclude(self, state: _Running, task: asyncio.Task[dict[str, Any]]) -> None:
        with contextlib.suppress(BaseException):
            await asyncio.wait({task})
        job_id, worker = state.record.job_id, self.worker_id
        status: Status
        result = error = None
        error_status = None
        progress: float | None = None
        message = ""
        if task.cancelled() or isinstance(task.exception(), asyncio.CancelledError):
            if state.stop_reason == "gone":
                logs.event("job_abandoned", logging.WARNING, job_id=job_id, worker=worker)
                return
            if state.stop_reason == "shutdown":
                status, message = "failed", "worker stopped"
                error, error_status = worker_lost_error(worker)
            else:
                status, message = "cancelled", "cancelled"
                error, error_status = cancelled_error()
        elif task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            status, message = "failed", "failed"
            error, error_status = error_of(exc)
            if not isinstance(exc, MvcoreError):
                logs.event("job_crashed", logging.ERROR, job_id=job_id, error=repr(exc)[:500])
        else:
            status, message, progress = "succeeded", "done", 1.0
            try:
                result = plain_json(task.result())
            except (TypeError, ValueError) as exc:
                status, message, progress = "failed", "failed", None
                error, error_status = error_of(exc)
        written = await self.store.finish(
            job_id,
            worker,
            status,
            result=result,
            error=error,
            error_status=error_status,
            progress=progress,
            message=message,
        )
        logs.event(
            "job_finished",
            logging.INFO if status == "succeeded" else logging.WARNING,
            job_id=job_id,
            kind=state.record.kind,
            status=status,
            written=written,
            code=(error or {}).get("detail", {}).get("error"),
        )

    async def _beat(self, state: _Running) -> None:
        if state.writing or state.task is None:
            return
        state.writing = True
        sent = state.progress
        try:
            verdict = await self.store.beat(state.record.job_id, self.worker_id, sent, state.message)
        except Exception as exc:  # a store hiccup must not fail the job
            logs.event("job_heartbeat_failed", logging.WARNING, job_id=state.record.job_id, error=repr(exc))
            return
        finally:
            state.writing = False
            state.written_at = time.monotonic()
        state.written_progress = sent
        if verdict in ("cancel", "gone") and not state.task.done():
            state.stop_reason = state.stop_reason or verdict
            state.task.cancel()

    # ---- control from this process -------------------------------------------------------------
    def cancel_local(self, job_id: str) -> asyncio.Event | None:
        """Cancel a job running in this process now; the event is set once its outcome is written."""
        state = self._running.get(job_id)
        if state is None or state.task is None:
            return None
        state.stop_reason = state.stop_reason or "cancel"
        state.task.cancel()
        return state.done

    async def cancel_all(self, reason: str = "cancel", timeout: float = 10.0) -> None:
        states = list(self._running.values())
        for state in states:
            if state.task is not None:
                state.stop_reason = state.stop_reason or reason
                state.task.cancel()
        if states:
            waiters = [asyncio.ensure_future(s.done.wait()) for s in states]
            _, pending = await asyncio.wait(waiters, timeout=timeout)
            for waiter in pending:
                waiter.cancel()


def register_job_task(broker: Any, runner: JobRunner) -> Any:
    """Register the one task every job runs (``mvcore.run_job``) on a taskiq broker."""

    async def run_job(job_id: str, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> None:
        await runner.run_job(job_id, kind, request, bundle)

    return broker.register_task(run_job, task_name=TASK_NAME)


async def kick(
    broker: Any, job_id: str, kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any]
) -> None:
    """Send one job to the broker (taskiq ``kiq``); the taskiq task id is the job id."""
    from taskiq.kicker import AsyncKicker

    kicker: AsyncKicker[Any, Any] = AsyncKicker(TASK_NAME, broker, {})
    await kicker.with_task_id(job_id).kiq(job_id, kind, dict(request), dict(bundle))


# ---------------------------------------------------------------------------------------------- service
class JobService:
    """What the API uses: submit, run (submit and wait), get, cancel, list.

    ``JobService(ctx)`` runs jobs in this process through taskiq's ``InMemoryBroker``;
    :class:`mvcore.jobs.redis_store.RedisJobService` sends them to ``mvcore worker`` processes.
    """

    def __init__(
        self,
        ctx: GenContext,
        *,
        store: JobStore | None = None,
        broker: Any = None,
        runner: JobRunner | None = None,
        concurrency: int | None = None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.heartbeat_timeout = heartbeat_timeout or heartbeat_timeout_from_env()
        receiver_log = logging.getLogger("taskiq.receiver.receiver")
        if receiver_log.level == logging.NOTSET:
            receiver_log.setLevel(logging.WARNING)  # one INFO line per job; mvcore logs job_* events itself
        if broker is None:
            from taskiq import InMemoryBroker

            store = store or MemoryJobStore()
            broker = InMemoryBroker(max_stored_results=1)
            runner = runner or JobRunner(
                ctx, store, worker_id="in-process", concurrency=concurrency or concurrency_from_env()
            )
            register_job_task(broker, runner)
        if store is None:
            raise ValueError("a JobService with its own broker needs a store")
        self.store: JobStore = store
        self.broker = broker
        self.runner = runner
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self.store.start()
            await self.broker.startup()
            self._started = True

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cancel_all("cancel")
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                await self.broker.shutdown()
            await self.store.close()

    async def submit(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> JobRecord:
        if kind not in GENERATORS:
            raise BadInput(f"Unknown job kind {kind!r}", alternatives=list(GENERATORS))
        record = JobRecord(
            str(uuid.uuid4()),
            kind,
            heartbeat_timeout=self.heartbeat_timeout,
            config=dict(bundle.get("meta") or {}) or None,
        )
        try:
            await self.store.create(record)
            await kick(self.broker, record.job_id, kind, request, bundle)
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

    async def run(self, kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> dict[str, Any]:
        record = await self.submit(kind, request, bundle)
        try:
            record = await self.wait(record.job_id)
        except NotFound:
            # the caller never saw a job id: "job not found, use an id from ?async=true" would be
            # nonsense to them; what happened is that the job store lost the record mid-request
            raise MvcoreError(
                "The job's record disappeared while the request waited for it",
                code="JOB_LOST",
                status_code=503,
                hint="The job store lost its data (was Redis restarted without persistence?); retry.",
            ) from None
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
                    await asyncio.wait_for(done.wait(), wait)
            else:
                await self.wait(job_id, timeout=wait)
        logs.event("job_cancel_requested", logging.INFO, job_id=job_id, was=state)
        return await self.get(job_id)

    async def list(self, status: str | None = None, limit: int = 50) -> list[JobRecord]:
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


def _queue_down_error() -> MvcoreError:
    return MvcoreError(
        "The job queue is not reachable",
        code="QUEUE_UNAVAILABLE",
        status_code=503,
        hint="Check MVCORE_REDIS_URL and that Redis is up, then retry.",
    )
