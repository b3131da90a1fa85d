"""``mvcore worker``: run generation jobs from Redis in this process.

Each worker builds its own GenContext from Settings (providers, including plugin
providers, and storage), listens on the taskiq-redis queue with a taskiq
``Receiver`` that runs at most ``concurrency`` jobs at once, and announces itself
under ``{prefix}:worker:{id}`` every 2 s.  Workers need no flavors: every job
carries its resolved config.  They must share ``MVCORE_DATA_DIR`` (or the
``STORAGE_BUCKET``) with the API processes, which serve the files.

Stopping: the first SIGTERM/SIGINT stops taking jobs and lets the running ones
finish; a second one cancels them (they end ``failed`` with ``WORKER_LOST``).
A worker killed outright is detected by the API through the job heartbeat.
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
from mvcore.jobs.service import JobRunner, new_worker_id, register_job_task
from mvcore.media.scratch import sweep_scratch
from mvcore.settings import Settings

log = logging.getLogger("mvcore.jobs.worker")


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
        self.store = RedisJobStore(settings.redis_url)
        self.broker = make_broker(settings.redis_url, self.store.prefix)
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
        while True:
            try:
                await self.store.worker_beat(self.worker_id, self.info())
            except Exception as exc:  # Redis may blip; keep working
                logs.event("worker_announce_failed", logging.WARNING, error=repr(exc)[:300])
            await asyncio.sleep(2.0)

    async def serve(self) -> None:
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
            )
            announce = asyncio.create_task(self._announce())
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
                announce.cancel()
                with contextlib.suppress(BaseException):
                    await announce
                await self.runner.cancel_all("shutdown")
                with contextlib.suppress(Exception):
                    await self.store.worker_gone(self.worker_id)
                with contextlib.suppress(Exception):
                    await self.broker.shutdown()
                await self.store.close()
                logs.event(
                    "worker_stopped", logging.INFO, worker=self.worker_id, completed=self.runner.completed
                )

    def stop(self) -> None:
        """Take no new jobs; let the running ones finish."""
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
