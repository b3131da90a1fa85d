"""Jobs over Redis: taskiq-redis' ``RedisStreamBroker`` plus a Redis status store.

With ``MVCORE_REDIS_URL`` set, the API sends every job on a Redis stream read by a
consumer group (:mod:`mvcore.jobs.broker`), and ``mvcore worker`` processes -- on
this machine or others -- run them.  Job records are Redis hashes readable by every
API process, so jobs survive an API restart (and a Redis restart when Redis keeps
an append-only file).  Workers and API processes must share ``MVCORE_DATA_DIR`` (or
use the same ``STORAGE_BUCKET``) because results are files the API serves.

Keys (``prefix`` defaults to ``mvcore``, env ``MVCORE_REDIS_PREFIX``)::

    {prefix}:job:{id}         hash: the record (result/error as JSON, the taskiq message as
                              ``payload``), expires after MVCORE_JOB_TTL
    {prefix}:job:{id}:alive   string with a TTL of the heartbeat timeout, refreshed by the worker
    {prefix}:jobs             sorted set: job ids by creation time (listing)
    {prefix}:queued           sorted set: queued job ids (queue cap, reaper)
    {prefix}:running          sorted set: running job ids (reaper)
    {prefix}:stream           the taskiq stream (consumer group ``mvcore``)
    {prefix}:events           pub/sub channel: a job id each time a job becomes final
    {prefix}:worker:{id}      string with a TTL: what a live worker says about itself
    {prefix}:workers          sorted set: worker ids by last announcement (NO_WORKER checks)
    {prefix}:reaper           lock: one reaper pass at a time

Every transition (create, claim, heartbeat, finish, cancel, release, worker lost,
retry, resend) is one Lua script (:mod:`mvcore.jobs.redis_scripts`), so a cancel and
a claim, or a finish and a lost-worker verdict, never interleave.  A running job
whose ``alive`` key expired (its worker was killed or stalled past
``MVCORE_JOB_HEARTBEAT_TIMEOUT``) gets its verdict from the first reader, claimer
or reaper that sees it: requeued (safe kinds, attempts left) or failed.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import re
import time
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from taskiq.exceptions import SendTaskError

from mvcore import logs
from mvcore.generators.context import GenContext
from mvcore.jobs import redis_scripts as lua
from mvcore.jobs.broker import CREATE_LABEL, JobStreamBroker, reconnecting_retry
from mvcore.jobs.records import (
    ACTIVE,
    STATUSES,
    Claim,
    JobRecord,
    QueueFull,
    Redo,
    Status,
    cancelled_error,
    env_number,
    retry_after_s,
    worker_lost_error,
)
from mvcore.jobs.runner import kick
from mvcore.jobs.service import JobService

PREFIX_ENV = "MVCORE_REDIS_PREFIX"
TTL_ENV = "MVCORE_JOB_TTL"
DEFAULT_PREFIX = "mvcore"
DEFAULT_TTL = 7 * 24 * 3600.0
LIST_SCAN_MAX = 2000
WORKER_TTL_S = 10
REAP_BATCH = 500
POOL_SIZE = 64
POOL_WAIT_S = 10.0
SAFE_REF = re.compile(r"[^A-Za-z0-9_.:/-]")

# the reasons a lost job is not run again (placeholders filled in by the Lua verdict)
REASON_EXTERNAL = "a paid provider call had started (__REF__); running it again could pay twice"
REASON_UNSAFE = "this kind of job is not safe to run twice"
REASON_ATTEMPTS = "gave up after __ATTEMPTS__ attempts (MVCORE_JOB_MAX_ATTEMPTS=__MAX__)"


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
        status=status if status in STATUSES else "failed",  # type: ignore[arg-type]
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
        attempts=int(_num(data.get("attempts")) or 0),
        max_attempts=int(_num(data.get("max_attempts")) or 1),
        redo=data.get("redo") or Redo.NEVER.value,
        external_ref=data.get("external_ref", ""),
        retry_at=_num(data.get("retry_at")) or 0.0,
    )


def _strs(data: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (data or {}).items()}


def _s(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisJobStore:
    """Job records as Redis hashes; see the module docstring for the keys."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        ttl: float | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        self.url = url
        self.prefix = prefix or os.environ.get(PREFIX_ENV, "").strip() or DEFAULT_PREFIX
        self.ttl = int(ttl or env_number(TTL_ENV, DEFAULT_TTL, minimum=60))
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        # A blocking pool: past POOL_SIZE commands in flight wait for a connection (up to
        # POOL_WAIT_S) instead of failing -- redis-py's default pool raises "Too many connections"
        # at 100, which turned a burst of 100+ job requests into 503s.
        pool = BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            health_check_interval=30,
            retry=reconnecting_retry(),
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT_S,
        )
        self.redis: Redis = Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self.channel = f"{self.prefix}:events"
        self.index = f"{self.prefix}:jobs"
        self.queued_key, self.running_key = f"{self.prefix}:queued", f"{self.prefix}:running"
        self.stream = f"{self.prefix}:stream"
        self.workers_key = f"{self.prefix}:workers"
        self._scripts = {
            name: self.redis.register_script(getattr(lua, name))
            for name in (
                "CREATE",
                "CLAIM",
                "BEAT",
                "NOTE",
                "FINISH",
                "RELEASE",
                "LOST",
                "CANCEL",
                "RETRY",
                "RESEND",
            )
        }
        self._events: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def alive_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:alive"

    def keys(self, job_id: str) -> list[str]:
        return [self.key(job_id), self.alive_key(job_id), self.queued_key, self.running_key, self.stream]

    def _verdict_args(self, job_id: str, why: str) -> list[str]:
        error, _ = worker_lost_error("__WORKER__", "__REASON__", 0)
        error["detail"]["details"]["attempts"] = "__N__"
        cancelled, _ = cancelled_error()
        return [
            _s(time.time()),
            why,
            self.channel,
            job_id,
            _s(self.backoff_base),
            _s(self.backoff_cap),
            json.dumps(error),
            json.dumps(cancelled),
            REASON_EXTERNAL,
            REASON_UNSAFE,
            REASON_ATTEMPTS,
        ]

    async def _run(self, name: str, job_id: str, args: list[str]) -> Any:
        return await self._scripts[name](keys=self.keys(job_id), args=args)

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
    def fields_of(self, record: JobRecord) -> dict[str, str]:
        """The hash fields of a new job record."""
        return {
            "kind": record.kind,
            "status": record.status,
            "progress": _s(record.progress),
            "message": record.message or "queued",
            "created_at": _s(record.created_at),
            "queued_at": _s(record.created_at),
            "heartbeat_timeout": _s(record.heartbeat_timeout),
            "attempts": "0",
            "max_attempts": str(record.max_attempts),
            **({"config": json.dumps(record.config)} if record.config else {}),
        }

    async def create(self, record: JobRecord, *, queue_max: int | None = None) -> None:
        flat = [item for pair in self.fields_of(record).items() for item in pair]
        cap = queue_max if queue_max is not None else 2**62
        verdict = await self._scripts["CREATE"](
            keys=[*self.keys(record.job_id), self.index],
            args=[str(cap), str(self.ttl), record.job_id, _s(time.time()), *flat],
        )
        if verdict[0] == "full":
            raise QueueFull(int(verdict[1]), cap, retry_after=retry_after_s(int(verdict[1])))

    async def _lost_check(self, job_id: str) -> None:
        await self._run("LOST", job_id, self._verdict_args(job_id, "worker lost"))

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

    async def claim(self, job_id: str, worker: str, redo: str) -> Claim:
        verdict = await self._run("CLAIM", job_id, [worker, redo, *self._verdict_args(job_id, "worker lost")])
        head = str(verdict[0])
        if head == "wait":
            return Claim(None, "queued", wait=float(verdict[1]))
        if head != "running":
            return Claim(None, "" if head == "gone" else head)
        attempts, ttl, max_attempts, kind, created = (str(v) for v in verdict[1:6])
        record = JobRecord(
            job_id,
            kind,
            status="running",
            created_at=float(created),
            started_at=time.time(),
            worker=worker,
            heartbeat_timeout=float(ttl),
            attempts=int(attempts),
            max_attempts=int(max_attempts),
            redo=redo,
        )
        return Claim(record, "running")

    async def beat(self, job_id: str, worker: str, progress: float, message: str) -> str:
        args = [_s(time.time()), worker, _s(round(progress, 4)), message]
        return str(await self._run("BEAT", job_id, args))

    async def note_external(self, job_id: str, worker: str, ref: str) -> None:
        await self._run("NOTE", job_id, [worker, SAFE_REF.sub("_", ref)[:200] or "?"])

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
        verdict = await self._run(
            "FINISH", job_id, [_s(time.time()), worker or "", self.channel, job_id, *fields]
        )
        return verdict == "ok"

    async def release(self, job_id: str, worker: str, why: str) -> str:
        return str(await self._run("RELEASE", job_id, [worker, *self._verdict_args(job_id, why)]))

    async def retry(self, job_id: str) -> str | None:
        verdict = await self._run("RETRY", job_id, [_s(time.time()), job_id])
        return str(verdict) if verdict else None

    async def request_cancel(self, job_id: str) -> str | None:
        error, _ = cancelled_error()
        verdict = await self._run(
            "CANCEL", job_id, [_s(time.time()), json.dumps(error), self.channel, job_id]
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

    async def count(self, status: str) -> int:
        assert status in ACTIVE
        return int(await self.redis.zcard(self.queued_key if status == "queued" else self.running_key))

    async def wait_change(self, job_id: str, timeout: float) -> None:
        if self._listener is None or self._listener.done():
            await asyncio.sleep(timeout)
            return
        event = self._events.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    # ---- the reaper ----------------------------------------------------------------------------------
    async def reap(self, min_age: float) -> dict[str, int]:
        """One pass over the queued and running sets (one process at a time, by a Redis lock).

        A running job without a heartbeat gets its verdict (requeued or failed) -- whether or not
        its message is still pending somewhere; a queued job older than ``min_age`` whose message
        is no longer in the stream (Redis lost it, a sender died between record and message) is
        sent again from its stored payload, or failed when there is none.  Index entries of jobs
        that are no longer queued/running are dropped.
        """
        counts: dict[str, int] = {}
        lock = self.redis.lock(f"{self.prefix}:reaper", timeout=max(5.0, min_age), blocking=False)
        if not await lock.acquire():
            return counts
        try:
            for job_id in [str(i) for i in await self.redis.zrange(self.running_key, 0, REAP_BATCH - 1)]:
                data = await self.redis.hmget(self.key(job_id), ["status"])
                if data[0] != "running":
                    await self.redis.zrem(self.running_key, job_id)
                    continue
                verdict = await self._run("LOST", job_id, self._verdict_args(job_id, "worker lost (reaper)"))
                if verdict:
                    counts[str(verdict)] = counts.get(str(verdict), 0) + 1
            now = _s(time.time())
            for job_id in [str(i) for i in await self.redis.zrange(self.queued_key, 0, REAP_BATCH - 1)]:
                verdict = str(await self._run("RESEND", job_id, [now, job_id, _s(min_age)]))
                if verdict == "no-payload":
                    await self._fail_unsendable(job_id)
                if verdict in ("resent", "no-payload"):
                    counts[verdict] = counts.get(verdict, 0) + 1
        finally:
            with contextlib.suppress(Exception):
                await lock.release()
        if counts:
            logs.event("jobs_reaped", logging.WARNING, **counts)
        return counts

    async def _fail_unsendable(self, job_id: str) -> None:
        error = {
            "detail": {
                "error": "JOB_LOST",
                "message": "The job's message was lost before any worker took it",
                "details": {"hint": "Submit the request again."},
            }
        }
        await self.finish(job_id, None, "failed", error=error, error_status=503, message="message lost")

    # ---- workers -----------------------------------------------------------------------------------
    async def worker_beat(self, worker_id: str, info: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{self.prefix}:worker:{worker_id}", json.dumps(info), ex=WORKER_TTL_S)
            pipe.zadd(self.workers_key, {worker_id: time.time()})
            pipe.zremrangebyscore(self.workers_key, "-inf", time.time() - WORKER_TTL_S)
            await pipe.execute()

    async def worker_gone(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(f"{self.prefix}:worker:{worker_id}")
            pipe.zrem(self.workers_key, worker_id)
            await pipe.execute()

    async def workers(self) -> builtins.list[dict[str, Any]]:
        ids = await self.redis.zrangebyscore(self.workers_key, time.time() - WORKER_TTL_S, "+inf")
        if not ids:
            return []
        raws = await self.redis.mget([f"{self.prefix}:worker:{i!s}" for i in ids])
        out = []
        for raw in raws:
            if raw:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(raw))
        return sorted(out, key=lambda w: str(w.get("worker_id")))

    async def has_worker(self) -> bool:
        """A worker announced itself within WORKER_TTL_S (one ZCOUNT: no keyspace scan per wait)."""
        return bool(await self.redis.zcount(self.workers_key, time.time() - WORKER_TTL_S, "+inf"))


def make_broker(
    url: str, prefix: str, settings: Any = None, *, consumer: str | None = None, batch: int = 2
) -> JobStreamBroker:
    """The broker every API process and worker uses (see :mod:`mvcore.jobs.broker`)."""
    visibility = float(getattr(settings, "job_visibility_timeout_s", 45.0))
    return JobStreamBroker(
        url, prefix, visibility_timeout_s=visibility, claim_batch=batch, consumer_name=consumer
    )


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
        settings = ctx.settings
        store = RedisJobStore(
            redis_url,
            prefix=prefix,
            ttl=ttl,
            backoff_base=settings.job_retry_backoff_s,
            backoff_cap=settings.job_retry_backoff_max_s,
        )
        super().__init__(
            ctx,
            store=store,
            broker=make_broker(redis_url, store.prefix, settings),
            runner=None,
            heartbeat_timeout=heartbeat_timeout,
        )
        self.redis_store = store

    async def _enqueue(
        self, record: JobRecord, kind: str, request: dict[str, Any], bundle: dict[str, Any]
    ) -> None:
        """Record and message in one Lua call, made by the broker's kick (see mvcore.jobs.broker)."""
        spec = {
            "cap": str(self.queue_max),
            "ttl": str(self.redis_store.ttl),
            "fields": self.redis_store.fields_of(record),
        }
        try:
            await kick(self.broker, record.job_id, kind, request, bundle, {CREATE_LABEL: json.dumps(spec)})
        except SendTaskError as exc:  # taskiq wraps what kick raised: a full queue is the caller's 429
            if isinstance(exc.__cause__, QueueFull):
                raise exc.__cause__ from None
            raise

    async def workers(self) -> builtins.list[dict[str, Any]]:
        """The live ``mvcore worker`` processes (each refreshes its entry every 2 s)."""
        return await self.redis_store.workers()

    async def has_worker(self) -> bool:
        return await self.redis_store.has_worker()
