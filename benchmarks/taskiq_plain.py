"""The baseline of ``bench_jobs``: taskiq's own plain task, run by taskiq's own ``taskiq worker``.

``taskiq worker benchmarks.taskiq_plain:broker --workers N`` with ``MVCORE_REDIS_URL`` set: a
stock taskiq-redis ``RedisStreamBroker`` (its defaults, its acks, its XAUTOCLAIM) on its own
stream of the same Redis, and one task that does the same work as an mvcore job -- the same
generator with the same request and bundle -- then counts itself done (``INCR``), so the
driver can time both without a result backend's polling in the way.  No job records,
heartbeats, claims or redo policy: exactly what mvcore adds is what the ratio measures.
"""

from __future__ import annotations

import os
from typing import Any

from redis.asyncio import Redis
from taskiq import TaskiqEvents, TaskiqState
from taskiq_redis import RedisStreamBroker

URL = os.environ.get("MVCORE_REDIS_URL", "redis://127.0.0.1:6379/0")
DONE_KEY, QUEUE, GROUP, TASK = "plain:done", "plain:stream", "plain", "plain.run"
broker = RedisStreamBroker(URL, queue_name=QUEUE, consumer_group_name=GROUP)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _startup(state: TaskiqState) -> None:
    from mvcore.generators.context import build_context
    from mvcore.settings import Settings

    state.ctx = build_context(Settings())
    state.redis = Redis.from_url(URL)


@broker.task(task_name=TASK)
async def plain_run(kind: str, request: dict[str, Any], bundle: dict[str, Any]) -> None:
    from mvcore.generators.registry import execute

    state = broker.state
    await execute(kind, request, bundle, state.ctx)
    await state.redis.incr(DONE_KEY)
