"""The Redis broker: taskiq-redis' ``RedisStreamBroker`` (consumer group, acks, XAUTOCLAIM).

Acknowledged delivery instead of ``BRPOP``: a message a worker read stays in the
group's pending list until the worker acks it, and the task acks only once the
job's outcome is in the job store (``ack_type=MANUAL``, see ``service.JobRunner``).
A worker killed after reading a message leaves it pending; any other worker's
``XAUTOCLAIM`` (run by taskiq-redis after each read) takes it over once it has
been idle for ``MVCORE_JOB_VISIBILITY_TIMEOUT`` seconds.  Duplicate deliveries
are harmless: the store's claim is atomic, so a job runs once per attempt.

What this subclass adds to taskiq-redis, and why:

- ``kick`` creates the job record (queue cap included) and stores the message
  bytes (``payload``) and the stream id in it in the same Lua call as ``XADD``:
  one round trip per submit, never a record without its message, and the store
  can re-send a job by itself (requeue after a lost worker, drain, ``mvcore jobs
  retry``, the reaper);
- the ack also ``XDEL``\\ s the entry, so the stream holds exactly the messages not
  yet done (``XLEN`` is the backlog, and the stream never grows without bound --
  taskiq-redis' ``maxlen`` would trim messages that were never delivered);
- ``listen`` reclaims idle messages on a clock (taskiq-redis 1.2.4 does it only
  after a read that returned new messages, so on an idle stream a dead worker's
  messages waited for the next job), and survives a Redis restart: connection
  errors back off and reconnect, and a group lost with the data (Redis without
  persistence) is declared again (taskiq-redis' loop ends the receiver on the
  first error);
- one message per read (``xread_count=1``) and a claim batch of ``concurrency``:
  taskiq-redis' default of 100 would park up to 100 messages in one worker's
  pending list, each waiting there a visibility timeout if the worker dies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from taskiq import AckableMessage, BrokerMessage
from taskiq_redis import RedisStreamBroker

from mvcore import logs
from mvcore.jobs.redis_scripts import SUBMIT

GROUP = "mvcore"
CREATE_LABEL = "mvcore_create"  # a kick that also creates the job record (RedisJobService.submit)
READ_BLOCK_MS = 1000
RECONNECT_S = 0.5

# KEYS: job hash, stream; ARGV: message bytes.  The hash is written only if the job exists.
_KICK = """
local id = redis.call('XADD', KEYS[2], '*', 'data', ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'msg_id', id)
end
return id
"""


def reconnecting_retry() -> Retry:
    """Retry a command a few times (reconnecting) on ConnectionError/TimeoutError, ~1.5 s in all.

    A pool built by ``from_url`` retries nothing by default, so after Redis restarts the first
    command on each pooled (now dead) connection failed -- a worker lost the job it had just
    read, an API process answered 503 to a request that could simply have reconnected.
    """
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 5)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobStreamBroker(RedisStreamBroker):
    """``RedisStreamBroker`` for mvcore jobs (see the module docstring for what it adds)."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        visibility_timeout_s: float = 45.0,
        claim_batch: int = 2,
        consumer_name: str | None = None,
    ) -> None:
        super().__init__(
            url,
            queue_name=f"{prefix}:stream",
            consumer_group_name=GROUP,
            consumer_name=consumer_name,
            consumer_id="0",  # a group made after jobs were sent still sees them
            xread_block=READ_BLOCK_MS,
            xread_count=1,
            idle_timeout=int(visibility_timeout_s * 1000),
            unacknowledged_batch_size=max(1, claim_batch),
            unacknowledged_lock_timeout=max(1.0, visibility_timeout_s),
            retry=reconnecting_retry(),
        )
        self.prefix = prefix
        self._scripts: dict[str, AsyncScript] = {}
        self._shared: Redis | None = None
        self.reclaim_interval = max(0.2, min(5.0, visibility_timeout_s / 4))

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @property
    def client(self) -> Redis:
        """One client over the pool for the per-job calls (kick, ack): a ``Redis`` object costs
        ~0.4 ms to build (its response-callback table), more than the command it would send."""
        if self._shared is None:
            self._shared = Redis(connection_pool=self.connection_pool)
        return self._shared

    def _script(self, conn: Redis, source: str) -> AsyncScript:
        """``source`` as an ``EVALSHA`` script (loaded again by redis-py after a Redis restart):
        a submit then sends 40 bytes of hash instead of the whole script."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = conn.register_script(source)
        return script

    async def kick(self, message: BrokerMessage) -> None:
        """XADD the message; with the ``mvcore_create`` label, create the job record in the same call."""
        create = message.labels.get(CREATE_LABEL)
        conn = self.client
        if not create:
            await self._script(conn, _KICK)(
                keys=[self.job_key(message.task_id), self.queue_name], args=[message.message], client=conn
            )
            return
        spec = json.loads(create)
        keys = [
            self.job_key(message.task_id),
            self.queue_name,
            f"{self.prefix}:queued",
            f"{self.prefix}:jobs",
        ]
        fields = [item for pair in spec["fields"].items() for item in pair]
        args = [message.message, spec["cap"], spec["ttl"], repr(time.time()), message.task_id, *fields]
        verdict = await self._script(conn, SUBMIT)(keys=keys, args=args, client=conn)
        if _text(verdict[0]) == "full":
            from mvcore.jobs.records import QueueFull, retry_after_s

            queued = int(_text(verdict[1]))
            raise QueueFull(queued, int(spec["cap"]), retry_after=retry_after_s(queued))

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def _ack() -> None:
            async with self.client.pipeline() as pipe:
                pipe.xack(queue_name, self.consumer_group_name, id)
                pipe.xdel(queue_name, id)
                await pipe.execute()

        return _ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New messages, and every ``reclaim_interval`` the group's messages idle past the timeout.

        taskiq-redis 1.2.4 runs its ``XAUTOCLAIM`` only after a read that returned new messages
        (on an idle stream it skips the claim), so a dead worker's messages were redelivered
        only when some new job arrived.  Here the claim runs on a clock, and ``XAUTOCLAIM`` alone
        guards it (atomic; ``min-idle-time`` is reset by the claim), without taskiq-redis' lock.
        """
        last_claim = 0.0
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    while True:
                        fetched: Any = await conn.xreadgroup(
                            self.consumer_group_name,
                            self.consumer_name,
                            {self.queue_name: ">"},
                            block=self.block,
                            count=self.count,
                        )
                        for stream, entries in fetched or []:
                            for msg_id, fields in entries:
                                yield self._message(stream, msg_id, fields)
                        if time.monotonic() - last_claim >= self.reclaim_interval:
                            last_claim = time.monotonic()
                            async for message in self._reclaim(conn):
                                yield message
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                logs.event("worker_queue_error", logging.WARNING, error=repr(exc)[:300])
                await asyncio.sleep(RECONNECT_S)
            except redis_errors.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logs.event("worker_queue_group_lost", logging.WARNING, error=str(exc)[:300])
            try:
                await self._declare_consumer_group()
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError):
                await asyncio.sleep(RECONNECT_S)

    async def _reclaim(self, conn: Redis) -> AsyncGenerator[AckableMessage, None]:
        reply: Any = await conn.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            start_id="0-0",
            count=self.unacknowledged_batch_size,
        )
        claimed = reply[1] if len(reply) > 1 else []
        for msg_id, fields in claimed:
            if fields:  # None: the entry was deleted meanwhile (Redis < 7 keeps such ids)
                logs.event("job_message_reclaimed", logging.WARNING, message_id=_text(msg_id))
                yield self._message(self.queue_name, msg_id, fields)

    def _message(self, stream: Any, msg_id: Any, fields: dict[bytes, bytes]) -> AckableMessage:
        return AckableMessage(data=fields[b"data"], ack=self._ack_generator(_text(msg_id), _text(stream)))

    async def backlog(self) -> int:
        """Messages not yet done (queued, running, or duplicates about to be skipped)."""
        async with Redis(connection_pool=self.connection_pool) as conn:
            return int(await conn.xlen(self.queue_name))
