"""``mvcore worker``: run generation jobs from Redis in this process.

Each worker builds its own GenContext from Settings (providers, including plugin
providers, and storage), listens on the taskiq-redis queue with a taskiq
``Receiver`` that runs at most ``concurrency`` jobs at once, and announces itself
under ``{prefix}:worker:{id}`` every 2 s.  Workers need no flavors: every job
carries its resolved config.  They must share ``MVCORE_DATA_DIR`` (or the
``STORAGE_BUCKET``) with the API processes, which serve the files.

Delivery is acknowledged (:mod:`mvcore.jobs.broker`): a message is acked only once
its job's outcome is recorded, so a worker killed outright loses nothing -- its
messages are redelivered to another worker after ``MVCORE_JOB_VISIBILITY_TIMEOUT``,
and its running jobs (heartbeat gone) are requeued when safe to redo.  Every worker
also runs the reaper (:meth:`RedisJobStore.reap`, one at a time by a Redis lock)
every ``MVCORE_JOB_REAPER_INTERVAL`` seconds.

Stopping: the first SIGTERM/SIGINT stops taking jobs and lets the running ones
finish for up to ``MVCORE_JOB_DRAIN_GRACE`` seconds (taskiq's ``wait_tasks_timeout``);
what is left is released -- requeued for another worker when safe to redo, else
``failed`` with ``WORKER_LOST``.  A second signal releases them at once.  A draining
worker stops announcing itself at once (it takes no more jobs, so a synchronous call
waiting on a queued job must not count on it: ``NO_WORKER``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mvcore import logs
from mvcore.jobs.records import StopReason, new_worker_id
from mvcore.jobs.runner import JobRunner, register_job_task
from mvcore.media.scratch import sweep_scratch
from mvcore.settings import Settings

log = logging.getLogger("mvcore.jobs.worker")
HELPER_STOP_S = 3.0


class Worker:
    def __init__(self, settings: Settings, concurrency: int = 2, *, worker_id: str | None = None) -> None:
        if not settings.redis_url:
            raise SystemExit("mvcore worker needs MVCORE_REDIS_URL (the Redis the API enqueues on)")
        from mvcore.generators.context import build_context
        from mvcore.jobs.redis_store import RedisJobStore, make_broker
        from mvcore.providers.catalogue import app_catalogue, app_plugin_host

        self.settings = settings
        self.concurrency = max(1, int(concurrency))
        self.worker_id = worker_id or new_worker_id()
        host = app_plugin_host(settings)
        self.ctx = build_context(settings, host.providers(settings), models=app_catalogue(host))
        self.store = RedisJobStore(
            settings.redis_url,
            backoff_base=settings.job_retry_backoff_s,
            backoff_cap=settings.job_retry_backoff_max_s,
        )
        self.broker = make_broker(
            settings.redis_url, self.store.prefix, settings, consumer=self.worker_id, batch=self.concurrency
        )
        self.runner = JobRunner(self.ctx, self.store, worker_id=self.worker_id, concurrency=self.concurrency)
        register_job_task(self.broker, self.runner)
        self.finish = asyncio.Event()
        self.started_at = time.time()

    def info(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": self.concurrency,
            "running": self.runner.running,
            "completed": self.runner.completed,
            "started_at": self.started_at,
            "providers": sorted(self.ctx.providers),
        }

    async def _announce(self) -> None:
        while not self.finish.is_set():
            try:
                await self.store.worker_beat(self.worker_id, self.info())
            except Exception as exc:  # Redis may blip; keep working
                logs.event("worker_announce_failed", logging.WARNING, error=repr(exc)[:300])
            await asyncio.sleep(2.0)

    async def _reap(self) -> None:
        """Settle jobs whose message or worker is gone (see RedisJobStore.reap)."""
        interval = self.settings.job_reaper_interval_s
        while not self.finish.is_set():
            await asyncio.sleep(interval)
            try:
                await self.store.reap(min_age=self.settings.job_visibility_timeout_s)
            except Exception as exc:  # Redis may blip; try again next round
                logs.event("worker_reaper_failed", logging.WARNING, error=repr(exc)[:300])

    async def serve(self) -> None:
        from taskiq.acks import AcknowledgeType
        from taskiq.receiver import Receiver

        self.finish = asyncio.Event()
        sweep_scratch(self.ctx.scratch, max_age_s=self.settings.scratch_max_age_s)
        with ThreadPoolExecutor(max_workers=1) as executor:
            self.broker.is_worker_process = True
            receiver = Receiver(
                broker=self.broker,
                executor=executor,
                run_startup=True,
                validate_params=True,
                max_async_tasks=self.concurrency,
                max_prefetch=0,
                propagate_exceptions=True,
                ack_type=AcknowledgeType.MANUAL,
                wait_tasks_timeout=self.settings.job_drain_grace_s,
            )
            announce = asyncio.create_task(self._announce())
            reaper = asyncio.create_task(self._reap())
            logs.event(
                "worker_ready",
                logging.INFO,
                worker=self.worker_id,
                concurrency=self.concurrency,
                queue=self.broker.queue_name,
                data_dir=str(self.settings.data_dir),
                providers=sorted(self.ctx.providers),
            )
            try:
                await receiver.listen(self.finish)
            finally:
                # redis-py can swallow a cancel that lands inside a command, so the loops also
                # watch ``finish`` and the wait is bounded: a stuck helper must not keep the
                # process alive past its drain (a SIGTERMed worker once outlived a 15 s wait).
                for helper in (announce, reaper):
                    helper.cancel()
                await asyncio.wait({announce, reaper}, timeout=HELPER_STOP_S)
                await self.runner.cancel_all(StopReason.SHUTDOWN)
                with contextlib.suppress(Exception):
                    await self.store.worker_gone(self.worker_id)
                with contextlib.suppress(Exception):
                    await self.broker.shutdown()
                await self.store.close()
                logs.event(
                    "worker_stopped", logging.INFO, worker=self.worker_id, completed=self.runner.completed
                )

    def stop(self) -> None:
        """Take no new jobs; let the running ones finish (up to the drain grace)."""
        self.finish.set()


async def serve_worker(settings: Settings, concurrency: int = 2) -> None:
    worker = Worker(settings, concurrency)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            logs.event(
                "worker_draining", logging.INFO, worker=worker.worker_id, running=worker.runner.running
            )
            worker.stop()
        elif main is not None:
            main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    with contextlib.suppress(asyncio.CancelledError):
        await worker.serve()


def run_worker(settings: Settings, concurrency: int = 2) -> None:
    """Entry point of ``mvcore worker`` (blocks until stopped)."""
    logging.getLogger("taskiq").setLevel(logging.WARNING)
    asyncio.run(serve_worker(settings, concurrency))
