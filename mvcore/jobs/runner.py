"""The executing side of a job: what the one taskiq task (``mvcore.run_job``) does.

:class:`JobRunner` claims the job (queued -> running, atomically, so a cancelled
or already-running job is skipped and a duplicate delivery runs nothing), runs
:func:`mvcore.generators.registry.execute`, heartbeats the record, writes
throttled progress, polls the cancel flag, writes the outcome -- and only then
acks the message (taskiq ``ack_type=MANUAL``): a worker killed at any point
before that leaves the message pending, to be redelivered.

A job whose task is stopped without an outcome of its own (``StopReason.SHUTDOWN``:
the drain grace ran out, or a forced stop) is *released*: requeued when its kind
is safe to redo (:func:`redo_policy`) and attempts are left, else ``failed`` with
``WORKER_LOST`` -- never ``cancelled``, which means a user asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, Context, TaskiqDepends
from taskiq.acks import AcknowledgeType

from mvcore import logs
from mvcore.errors import MvcoreError
from mvcore.generators.context import GenContext
from mvcore.generators.registry import execute
from mvcore.jobs.attempt import current_attempt
from mvcore.jobs.records import (
    PROGRESS_MIN_INTERVAL,
    PROGRESS_MIN_SPACING,
    PROGRESS_MIN_STEP,
    TASK_NAME,
    JobRecord,
    JobStore,
    Redo,
    Status,
    StopReason,
    cancelled_error,
    error_of,
    new_worker_id,
    plain_json,
    tick_for,
)

Ack = Callable[[], Awaitable[None]]
CLAIM_WAIT_MAX_S = 60.0  # a backing-off job is claimed again after at most this long
WRITE_RETRY_S = 15.0  # how long an outcome write rides out a Redis restart before giving up
LOCAL_KINDS = frozenset({"stitch_videos"})  # ffmpeg on files we have: always safe to redo


def redo_policy(kind: str, request: Mapping[str, Any], ctx: GenContext) -> Redo:
    """May this job run again if its worker is lost?  By kind, then by the provider it calls.

    Local work (stitch) is always safe.  A provider says so itself with a ``redo`` attribute
    (``"safe"``, ``"until_external"``, ``"never"``); offline renderers are safe; any other
    provider -- a paid API that does not say -- is never redone.
    """
    if kind in LOCAL_KINDS:
        return Redo.SAFE
    from mvcore.providers.offline import OfflineProvider

    name = request.get("backend") if kind == "generate_video" else None
    provider = ctx.providers.get(str(name or ctx.default_provider))
    declared = getattr(provider, "redo", None)
    if declared in {r.value for r in Redo}:
        return Redo(str(declared))
    return Redo.SAFE if isinstance(provider, OfflineProvider) else Redo.NEVER


@dataclass(frozen=True)
class Outcome:
    """What a finished task means for the job record."""

    status: Status
    message: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    error_status: int | None = None
    progress: float | None = None


def outcome_of(task: asyncio.Task[dict[str, Any]], stop: StopReason | None) -> Outcome | StopReason:
    """The job's outcome, or the StopReason when the task was stopped from outside (no outcome)."""
    if task.cancelled() or isinstance(task.exception(), asyncio.CancelledError):
        if stop in (StopReason.GONE, StopReason.SHUTDOWN):
            return stop
        error, status = cancelled_error()
        return Outcome("cancelled", "cancelled", error=error, error_status=status)
    exc = task.exception()
    if exc is None:
        try:
            return Outcome("succeeded", "done", result=plain_json(task.result()), progress=1.0)
        except (TypeError, ValueError) as bad:
            exc = bad
    error, status = error_of(exc)
    return Outcome("failed", "failed", error=error, error_status=status)


@dataclass
class _Running:
    record: JobRecord
    task: asyncio.Task[dict[str, Any]] | None = None
    progress: float = 0.0
    message: str = "started"
    written_progress: float = 0.0
    written_at: float = field(default_factory=time.monotonic)
    writing: bool = False
    stop_reason: StopReason | None = None
    recorded: bool = False  # the store has this attempt's outcome: the message may be acked
    done: asyncio.Event = field(default_factory=asyncio.Event)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    flush: asyncio.TimerHandle | None = None  # a progress write held back by the spacing


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
        self,
        job_id: str,
        kind: str,
        request: Mapping[str, Any],
        bundle: Mapping[str, Any],
        ack: Ack | None = None,
    ) -> None:
        """Claim and run one delivery of a job; ack it once the store has what happened."""
        recorded = False
        try:
            slots = self._semaphore()
            async with slots if slots is not None else contextlib.nullcontext():
                recorded = await self._claim_and_run(job_id, kind, request, bundle)
        finally:
            if recorded and ack is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(ack())

    async def _claim(self, job_id: str, kind: str, request: Mapping[str, Any]) -> JobRecord | None:
        redo = redo_policy(kind, request, self.ctx)
        while True:
            claim = await self.store.claim(job_id, self.worker_id, redo.value)
            if claim.wait <= 0:
                if claim.record is None:
                    logs.event("job_skipped", logging.INFO, job_id=job_id, kind=kind, status=claim.status)
                return claim.record
            await asyncio.sleep(min(claim.wait, CLAIM_WAIT_MAX_S))  # backoff after a lost worker

    async def _claim_and_run(
        self, job_id: str, kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any]
    ) -> bool:
        record = await self._claim(job_id, kind, request)
        if record is None:
            return True  # not ours to run (done, cancelled, running elsewhere): the message is spent
        logs.event(
            "job_started",
            logging.INFO,
            job_id=job_id,
            kind=kind,
            worker=self.worker_id,
            attempt=record.attempts,
            generation=bundle.get("meta", {}).get("generation"),
        )
        state = _Running(record)
        self._running[job_id] = state
        try:
            await self._execute(state, kind, request, bundle)
        finally:
            self._running.pop(job_id, None)
            if state.flush is not None:
                state.flush.cancel()
            for task in list(state.background):
                task.cancel()
            state.done.set()
            self.completed += 1
        return state.recorded

    async def _execute(
        self, state: _Running, kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any]
    ) -> None:
        token = current_attempt.set((self.store, state.record.job_id, self.worker_id))
        try:  # the task copies the context: note_external() inside it knows its job
            task = asyncio.create_task(
                execute(kind, request, bundle, self.ctx.with_progress(self._progress(state)))
            )
        finally:
            current_attempt.reset(token)
        state.task = task
        tick = tick_for(state.record.heartbeat_timeout)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=tick)
                if not task.done():
                    await self._beat(state)
        except asyncio.CancelledError:
            # The runner itself is stopped (forced worker shutdown): stop the work and say so.
            state.stop_reason = state.stop_reason or StopReason.SHUTDOWN
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._conclude(state, task))
            raise
        await self._conclude(state, task)

    def _progress(self, state: _Running) -> Callable[[float, str], None]:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def progress(fraction: float, message: str) -> None:
            if threading.get_ident() != loop_thread:
                loop.call_soon_threadsafe(progress, fraction, message)
                return
            state.progress = max(state.progress, min(1.0, max(0.0, float(fraction))))
            state.message = str(message)[:200]
            self._write_progress(state, loop)

        return progress

    def _write_progress(self, state: _Running, loop: asyncio.AbstractEventLoop) -> None:
        """Write progress when it moved enough or enough time passed -- but not within
        ``PROGRESS_MIN_SPACING`` of the claim or the last write: then once that has passed."""
        if state.writing or state.task is None or state.task.done():
            return
        now = time.monotonic()
        moved = state.progress - state.written_progress >= PROGRESS_MIN_STEP
        if not (moved or now - state.written_at >= PROGRESS_MIN_INTERVAL):
            return
        wait = state.written_at + PROGRESS_MIN_SPACING - now
        if wait > 0:
            if state.flush is None:
                state.flush = loop.call_later(wait, self._flush_progress, state, loop)
            return
        write = loop.create_task(self._beat(state))
        state.background.add(write)
        write.add_done_callback(state.background.discard)

    def _flush_progress(self, state: _Running, loop: asyncio.AbstractEventLoop) -> None:
        state.flush = None
        self._write_progress(state, loop)

    async def _conclude(self, state: _Running, task: asyncio.Task[dict[str, Any]]) -> None:
        """Write what happened -- the one place an attempt ends."""
        with contextlib.suppress(BaseException):
            await asyncio.wait({task})
        job_id, worker = state.record.job_id, self.worker_id
        outcome = outcome_of(task, state.stop_reason)
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not isinstance(exc, MvcoreError | asyncio.CancelledError):
            logs.event("job_crashed", logging.ERROR, job_id=job_id, error=repr(exc)[:500])
        if outcome is StopReason.GONE:
            logs.event("job_abandoned", logging.WARNING, job_id=job_id, worker=worker)
            state.recorded = True
            return
        if outcome is StopReason.SHUTDOWN:
            verdict = await self._write(lambda: self.store.release(job_id, worker, "the worker stopped"))
            state.recorded = verdict is not None
            logs.event("job_released", logging.WARNING, job_id=job_id, worker=worker, verdict=verdict)
            return
        assert isinstance(outcome, Outcome)
        written = await self._write(
            lambda: self.store.finish(
                job_id,
                worker,
                outcome.status,
                result=outcome.result,
                error=outcome.error,
                error_status=outcome.error_status,
                progress=outcome.progress,
                message=outcome.message,
            )
        )
        state.recorded = written is not None
        logs.event(
            "job_finished",
            logging.INFO if outcome.status == "succeeded" else logging.WARNING,
            job_id=job_id,
            kind=state.record.kind,
            status=outcome.status,
            attempt=state.record.attempts,
            written=written,
            code=(outcome.error or {}).get("detail", {}).get("error"),
        )

    async def _write(self, write: Callable[[], Awaitable[Any]]) -> Any:
        """One outcome write, retried while the store is unreachable (bounded); None if it never got in."""
        deadline = time.monotonic() + WRITE_RETRY_S
        while True:
            try:
                return await write()
            except Exception as exc:
                if time.monotonic() > deadline:
                    logs.event("job_outcome_unwritten", logging.ERROR, error=repr(exc)[:300])
                    return None
                await asyncio.sleep(0.5)

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
            state.stop_reason = state.stop_reason or StopReason(verdict)
            state.task.cancel()

    # ---- control from this process -------------------------------------------------------------
    def cancel_local(self, job_id: str) -> asyncio.Event | None:
        """Cancel a job running in this process now; the event is set once its outcome is written."""
        state = self._running.get(job_id)
        if state is None or state.task is None:
            return None
        state.stop_reason = state.stop_reason or StopReason.CANCEL
        state.task.cancel()
        return state.done

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) until no job runs here; True when none is left."""
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            waiters = [asyncio.ensure_future(s.done.wait()) for s in list(self._running.values())]
            _, pending = await asyncio.wait(waiters, timeout=max(0.0, deadline - time.monotonic()))
            for waiter in pending:
                waiter.cancel()
        return not self._running

    async def cancel_all(self, reason: StopReason = StopReason.SHUTDOWN, timeout: float = 10.0) -> None:
        """Stop every running job for ``reason`` and wait (bounded) until each has been written."""
        for state in list(self._running.values()):
            if state.task is not None:
                state.stop_reason = state.stop_reason or reason
                state.task.cancel()
        await self.wait_idle(timeout)

    async def drain(self, grace: float, timeout: float = 10.0) -> None:
        """Let running jobs finish for up to ``grace`` seconds, then release the rest (requeue/fail)."""
        if not await self.wait_idle(grace):
            logs.event("jobs_drain_grace_over", logging.WARNING, worker=self.worker_id, left=self.running)
            await self.cancel_all(StopReason.SHUTDOWN, timeout)


def register_job_task(
    broker: AsyncBroker, runner: JobRunner
) -> AsyncTaskiqDecoratedTask[..., Coroutine[Any, Any, None]]:
    """Register the one task every job runs (``mvcore.run_job``); it acks its message itself."""

    async def run_job(
        job_id: str,
        kind: str,
        request: dict[str, Any],
        bundle: dict[str, Any],
        context: Context = TaskiqDepends(),
    ) -> None:
        ack = context.ack if context.is_ackable else None
        await runner.run_job(job_id, kind, request, bundle, ack)

    return broker.register_task(run_job, task_name=TASK_NAME, ack_type=AcknowledgeType.MANUAL)


async def kick(
    broker: AsyncBroker,
    job_id: str,
    kind: str,
    request: Mapping[str, Any],
    bundle: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
) -> None:
    """Send one job to the broker (taskiq ``kiq``); the taskiq task id is the job id."""
    from taskiq.kicker import AsyncKicker

    all_labels = {"ack_type": AcknowledgeType.MANUAL.value, **(labels or {})}
    kicker: AsyncKicker[Any, Any] = AsyncKicker(TASK_NAME, broker, all_labels)
    await kicker.with_task_id(job_id).kiq(job_id, kind, dict(request), dict(bundle))
