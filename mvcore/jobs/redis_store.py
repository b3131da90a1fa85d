"""Jobs over Redis: taskiq-redis' ListQueueBroker plus a Redis status store.

With ``MVCORE_REDIS_URL`` set, the API enqueues every job on a Redis list
(taskiq-redis ``ListQueueBroker``) and ``mvcore worker`` processes -- on this
machine or others -- run them.  Job records are Redis hashes readable by every
API process, so jobs survive an API restart.  Workers and API processes must
share ``MVCORE_DATA_DIR`` (or use the same ``STORAGE_BUCKET``) because results
are files the API serves.

Keys (``prefix`` defaults to ``mvcore``, env ``MVCORE_REDIS_PREFIX``)::

    {prefix}:job:{id}         hash: the record (result/error as JSON), expires after MVCORE_JOB_TTL
    {prefix}:job:{id}:alive   string with a TTL of the heartbeat timeout, refreshed by the worker
    {prefix}:jobs             sorted set: job ids by creation time (listing)
    {prefix}:queue            list: the taskiq queue
    {prefix}:events           pub/sub channel: a job id each time a job becomes final
    {prefix}:worker:{id}      string with a TTL: the live workers

Every transition (claim, heartbeat, finish, cancel, worker lost) is one Lua
script, so a cancel and a claim, or a finish and a lost-worker verdict, never
interleave.  A running job whose ``alive`` key expired (its worker was killed or
stalled past ``MVCORE_JOB_HEARTBEAT_TIMEOUT``) is marked failed ``WORKER_LOST``
by the first reader that sees it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from mvcore import logs
from mvcore.generators.context import GenContext
from mvcore.jobs.records import JobRecord, Status, cancelled_error, env_number, worker_lost_error
from mvcore.jobs.service import JobService

PREFIX_ENV = "MVCORE_REDIS_PREFIX"
TTL_ENV = "MVCORE_JOB_TTL"
DEFAULT_PREFIX = "mvcore"
DEFAULT_TTL = 7 * 24 * 3600.0
LIST_SCAN_MAX = 2000
WORKER_BEAT_S = 2.0
WORKER_TTL_S = 10
BRPOP_TIMEOUT_S = 2

_CLAIM = """
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' then return st end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'heartbeat_timeout')) or 30
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1], 'heartbeat_at', ARGV[1],
           'worker', ARGV[2], 'message', 'started')
redis.call('SET', KEYS[2], ARGV[2], 'PX', math.floor(ttl * 1000))
return redis.call('HGETALL', KEYS[1])
"""

_BEAT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then
  return 'gone'
end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'heartbeat_timeout')) or 30
redis.call('SET', KEYS[2], ARGV[2], 'PX', math.floor(ttl * 1000))
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[1], 'progress', ARGV[3])
  return 'cancel'
end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[1], 'progress', ARGV[3], 'message', ARGV[4])
return 'ok'
"""

# ARGV: now, worker ('' = anyone), channel, job id, then field/value pairs to set
_FINISH = """
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' and st ~= 'running' then return st end
if ARGV[2] ~= '' and st == 'running' and redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then
  return 'gone'
end
local fields = {'finished_at', ARGV[1]}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
"""

# ARGV: now, cancelled error JSON, channel, job id
_CANCEL = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return false end
if st == 'queued' or (st == 'running' and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1], 'error', ARGV[2],
             'error_status', '409', 'message', 'cancelled')
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 'cancelled'
end
if st == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'message', 'cancelling')
  return 'running'
end
return st
"""

# ARGV: now, channel, job id, error_status; the error JSON is built per worker
_LOST = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
local worker = redis.call('HGET', KEYS[1], 'worker') or ''
local err = string.gsub(ARGV[5], '__WORKER__', worker)
redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[1], 'error', err,
           'error_status', ARGV[4], 'message', 'worker lost')
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 'lost'
"""


def _num(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _json(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        loaded = json.loads(value)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def record_from_hash(job_id: str, data: dict[str, str]) -> JobRecord:
    status = data.get("status", "queued")
    error_status = _num(data.get("error_status"))
    return JobRecord(
        job_id=job_id,
        kind=data.get("kind", ""),
        status=status if status in ("queued", "running", "succeeded", "failed", "cancelled") else "failed",  # type: ignore[arg-type]
        progress=_num(data.get("progress")) or 0.0,
        message=data.get("message", ""),
        created_at=_num(data.get("created_at")) or 0.0,
        started_at=_num(data.get("started_at")),
        finished_at=_num(data.get("finished_at")),
        result=_json(data.get("result")),
        error=_json(data.get("error")),
        error_status=int(error_status) if error_status is not None else None,
        config=_json(data.get("config")),
        worker=data.get("worker") or None,
        heartbeat_at=_num(data.get("heartbeat_at")),
        heartbeat_timeout=_num(data.get("heartbeat_timeout")) or 30.0,
        cancel_requested=data.get("cancel_requested") == "1",
    )


def _strs(data: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (data or {}).items()}


def _s(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisJobStore:
    """Job records as Redis hashes; see the module docstring for the keys."""

    def __init__(self, url: str, *, prefix: str | None = None, ttl: float | None = None) -> None:
        self.url = url
        self.prefix = prefix or os.environ.get(PREFIX_ENV, "").strip() or DEFAULT_PREFIX
        self.ttl = int(ttl or env_number(TTL_ENV, DEFAULT_TTL, minimum=60))
        self.redis: Redis = Redis.from_url(
            url, decode_responses=True, health_check_interval=30, retry=reconnecting_retry()
        )
        self.channel = f"{self.prefix}:events"
        self.index = f"{self.prefix}:jobs"
        self._claim = self.redis.register_script(_CLAIM)
        self._beat = self.redis.register_script(_BEAT)
        self._finish = self.redis.register_script(_FINISH)
        self._cancel = self.redis.register_script(_CANCEL)
        self._lost = self.redis.register_script(_LOST)
        self._events: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def alive_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:alive"

    # ---- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen for "job final" notifications so waiters wake at once (polling still backs them up)."""
        if self._listener is None:
            self._closing = False
            self._listener = asyncio.create_task(self._listen())

    async def close(self) -> None:
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()  # redis-py can swallow a cancel while connecting: the flag ends the loop too
            await asyncio.wait({listener}, timeout=3.0)
        await self.redis.aclose()

    async def _listen(self) -> None:
        while not self._closing:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        event = self._events.pop(str(message["data"]), None)
                        if event is not None:
                            event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; waiters poll meanwhile
                if not self._closing:
                    logs.event("jobs_listener_error", logging.WARNING, error=repr(exc)[:300])
                    await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # ---- records -----------------------------------------------------------------------------------
    async def create(self, record: JobRecord) -> None:
        key = self.key(record.job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "kind": record.kind,
                    "status": record.status,
                    "progress": _s(record.progress),
                    "message": record.message or "queued",
                    "created_at": _s(record.created_at),
                    "heartbeat_timeout": _s(record.heartbeat_timeout),
                    **({"config": json.dumps(record.config)} if record.config else {}),
                },
            )
            pipe.expire(key, self.ttl)
            pipe.zadd(self.index, {record.job_id: record.created_at})
            pipe.zremrangebyscore(self.index, "-inf", time.time() - self.ttl)
            await pipe.execute()

    async def _lost_check(self, job_id: str) -> None:
        error, status = worker_lost_error("__WORKER__")
        await self._lost(
            keys=[self.key(job_id), self.alive_key(job_id)],
            args=[_s(time.time()), self.channel, job_id, str(status), json.dumps(error)],
        )

    async def load(self, job_id: str) -> JobRecord | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(job_id))
            pipe.exists(self.alive_key(job_id))
            raw, alive = await pipe.execute()
        data = _strs(raw)
        if not data:
            return None
        if data.get("status") == "running" and not alive:
            await self._lost_check(job_id)
            data = _strs(await self.redis.hgetall(self.key(job_id)))
            if not data:
                return None
        return record_from_hash(job_id, data)

    async def claim(self, job_id: str, worker: str) -> JobRecord | None:
        verdict = await self._claim(
            keys=[self.key(job_id), self.alive_key(job_id)], args=[_s(time.time()), worker]
        )
        if not isinstance(verdict, list) or not verdict:  # not queued: cancelled, already taken or gone
            return None
        data = {str(verdict[i]): str(verdict[i + 1]) for i in range(0, len(verdict) - 1, 2)}
        return record_from_hash(job_id, data)

    async def beat(self, job_id: str, worker: str, progress: float, message: str) -> str:
        verdict = await self._beat(
            keys=[self.key(job_id), self.alive_key(job_id)],
            args=[_s(time.time()), worker, _s(round(progress, 4)), message],
        )
        return str(verdict)

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
        fields = [
            "status",
            status,
            "message",
            message,
            "result",
            json.dumps(result) if result is not None else "",
            "error",
            json.dumps(error) if error is not None else "",
            "error_status",
            str(error_status) if error_status is not None else "",
        ]
        if progress is not None:
            fields += ["progress", _s(progress)]
        verdict = await self._finish(
            keys=[self.key(job_id), self.alive_key(job_id)],
            args=[_s(time.time()), worker or "", self.channel, job_id, *fields],
        )
        return verdict == "ok"

    async def request_cancel(self, job_id: str) -> str | None:
        error, _ = cancelled_error()
        verdict = await self._cancel(
            keys=[self.key(job_id), self.alive_key(job_id)],
            args=[_s(time.time()), json.dumps(error), self.channel, job_id],
        )
        return str(verdict) if verdict else None

    async def list(self, status: str | None, limit: int) -> list[JobRecord]:
        out: list[JobRecord] = []
        start, batch = 0, max(limit, 50) if status else limit
        while len(out) < limit and start < LIST_SCAN_MAX:
            ids = [str(i) for i in await self.redis.zrevrange(self.index, start, start + batch - 1)]
            if not ids:
                break
            start += len(ids)
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self.key(job_id))
                    pipe.exists(self.alive_key(job_id))
                rows = await pipe.execute()
            expired = []
            for index, job_id in enumerate(ids):
                data, alive = _strs(rows[2 * index]), rows[2 * index + 1]
                if not data:
                    expired.append(job_id)
                    continue
                if data.get("status") == "running" and not alive:
                    await self._lost_check(job_id)
                    data = _strs(await self.redis.hgetall(self.key(job_id))) or data
                record = record_from_hash(job_id, data)
                if status is None or record.status == status:
                    out.append(record)
                    if len(out) >= limit:
                        break
            if expired:
                await self.redis.zrem(self.index, *expired)
        return out

    async def wait_change(self, job_id: str, timeout: float) -> None:
        if self._listener is None or self._listener.done():
            await asyncio.sleep(timeout)
            return
        event = self._events.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    # ---- workers -----------------------------------------------------------------------------------
    async def worker_beat(self, worker_id: str, info: dict[str, Any]) -> None:
        await self.redis.set(f"{self.prefix}:worker:{worker_id}", json.dumps(info), ex=WORKER_TTL_S)

    async def worker_gone(self, worker_id: str) -> None:
        await self.redis.delete(f"{self.prefix}:worker:{worker_id}")

    async def workers(self) -> builtins.list[dict[str, Any]]:
        out = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}:worker:*", count=200):
            raw = await self.redis.get(key)
            if raw:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(raw))
        return sorted(out, key=lambda w: str(w.get("worker_id")))


def reconnecting_retry() -> Retry:
    """Retry a command a few times (reconnecting) on ConnectionError/TimeoutError, ~1.5 s in all.

    A pool built by ``from_url`` retries nothing by default, so after Redis restarts the first
    command on each pooled (now dead) connection failed -- a worker lost the job it had just
    popped, an API process answered 503 to a request that could simply have reconnected.
    """
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 5)


def _raise_if_cancelling() -> None:
    """redis-py may swallow a CancelledError while (re)connecting; honour the pending cancel anyway."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def make_broker(url: str, prefix: str) -> Any:
    """The taskiq-redis broker every API process and worker uses (one Redis list, at-most-once).

    ``ListQueueBroker.listen`` blocks in ``BRPOP`` with no timeout, which redis-py 8's default
    5 s socket timeout turns into a crash of an idle worker (taskiq-redis issue #127); this
    subclass pops with a short server-side timeout instead and rides out connection errors.
    """
    from collections.abc import AsyncGenerator

    from redis import exceptions as redis_errors
    from taskiq_redis import ListQueueBroker

    class PollingListQueueBroker(ListQueueBroker):
        async def listen(self) -> AsyncGenerator[bytes, None]:
            while True:
                _raise_if_cancelling()
                try:
                    async with Redis(connection_pool=self.connection_pool) as conn:
                        popped = await conn.brpop([self.queue_name], timeout=BRPOP_TIMEOUT_S)
                except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                    logs.event("worker_queue_error", logging.WARNING, error=repr(exc)[:300])
                    await asyncio.sleep(1.0)
                    continue
                if popped is not None:
                    data = popped[1]
                    yield data if isinstance(data, bytes) else str(data).encode()

    return PollingListQueueBroker(url, queue_name=f"{prefix}:queue", retry=reconnecting_retry())


class RedisJobService(JobService):
    """JobService whose tasks run in ``mvcore worker`` processes (nothing runs in the API process)."""

    def __init__(
        self,
        ctx: GenContext,
        redis_url: str,
        *,
        prefix: str | None = None,
        ttl: float | None = None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        store = RedisJobStore(redis_url, prefix=prefix, ttl=ttl)
        super().__init__(
            ctx,
            store=store,
            broker=make_broker(redis_url, store.prefix),
            runner=None,
            heartbeat_timeout=heartbeat_timeout,
        )
        self.redis_store = store

    async def workers(self) -> builtins.list[dict[str, Any]]:
        """The live ``mvcore worker`` processes (each refreshes its entry every 2 s)."""
        return await self.redis_store.workers()
