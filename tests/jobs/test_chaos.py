"""The heavy ones: Redis restarted under queued and running jobs; 500 jobs through killed workers.

Both bounded (well under a minute each on a quiet machine): every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from mvcore.api.app import build_services, create_app
from mvcore.testing.redis import RedisServer

from .conftest import SCENES, VIDEO, Api, Workers, make_settings, wait_until, worker_pool


@pytest.fixture
def own_redis(redis_server: RedisServer, tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with an fsync-always append-only file (survives a SIGKILL)."""
    del redis_server  # the session fixture applies the skip/CI policy
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_jobs_queued_and_running_survive_a_redis_restart(
    own_redis: RedisServer, tmp_path: Path, slow_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVCORE_JOB_HEARTBEAT_TIMEOUT", "4")  # the restart is shorter than this
    pool = worker_pool(own_redis.url, tmp_path, slow_plugin)
    try:
        worker = pool.start(concurrency=1)
        app = create_app(make_settings(tmp_path, redis_url=own_redis.url))
        with TestClient(app, raise_server_exceptions=False) as client:
            api = Api(client)
            running = api.submit("/api/mv/generate_video", {**VIDEO, "backend": "slow"})
            wait_until(lambda: pool.started_by(worker) == 1, what="the render to start")
            queued = [api.submit("/api/mv/create_scenes", {**SCENES, "idea": f"q{i}"}) for i in range(3)]
            assert [api.job(j)["status"] for j in queued] == ["queued"] * 3
            own_redis.restart(kill=True)  # SIGKILL: only what the append-only file has survives
            pool.release()
            for job_id in [running, *queued]:
                job = api.wait_status(job_id, "succeeded", "failed", "cancelled", timeout=40)
                assert job["status"] == "succeeded", job
                assert job["attempts"] == 1  # none was lost and redone
            assert worker.process.poll() is None, worker.log_text()
            again = client.post("/api/mv/create_scenes", json=SCENES)
            assert again.status_code == 200, again.text
    finally:
        pool.stop_all()


# ------------------------------------------------------------------------------------- 500 jobs
JOBS = 500
KILLS = 4


async def _submit_all(settings: Any, count: int) -> list[str]:
    services = build_services(settings)
    bundle = services.bundle(services.store.current, None, None).to_dict()
    await services.jobs.start()
    try:
        ids: list[str] = []
        for start in range(0, count, 25):  # 25 requests in flight, like a busy API process
            batch = [
                services.jobs.submit(
                    "generate_video", {**VIDEO, "prompt": f"job{i} in the rain", "backend": "count"}, bundle
                )
                for i in range(start, min(count, start + 25))
            ]
            ids.extend(record.job_id for record in await asyncio.gather(*batch))
        return ids
    finally:
        await services.jobs.stop()


def _records(url: str, ids: list[str]) -> dict[str, dict[str, str]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        with client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(f"mvcore:job:{job_id}", ["status", "attempts", "error"])
            rows = pipe.execute()
    finally:
        client.close()
    return {
        job_id: dict(zip(("status", "attempts", "error"), row, strict=True))
        for job_id, row in zip(ids, rows, strict=True)
    }


def test_500_jobs_through_3_workers_with_random_kills_each_end_once(
    workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a worker starved of CPU for longer than this loses its jobs to the verdict: keep it well
    # above what a loaded CI machine stalls, well below the deadline
    monkeypatch.setenv("MVCORE_JOB_HEARTBEAT_TIMEOUT", "8")
    settings = make_settings(tmp_path, redis_url=workers.url, job_queue_max=JOBS)
    workers.start_many(3, concurrency=2, MVCORE_TEST_COUNT_SLEEP="0.01")
    ids = asyncio.run(_submit_all(settings, JOBS))
    rng = random.Random(22)
    kills = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        records = _records(workers.url, ids)
        final = sum(1 for r in records.values() if r["status"] in ("succeeded", "failed", "cancelled"))
        if final == JOBS:
            break
        if kills < KILLS and final > (kills + 1) * JOBS // (KILLS + 2):
            live = [w for w in workers.started if w.process.poll() is None]
            rng.choice(live).kill()  # SIGKILL, mid-whatever
            kills += 1
            workers.start(concurrency=2, wait=False, MVCORE_TEST_COUNT_SLEEP="0.01")
        time.sleep(0.2)
    records = _records(workers.url, ids)
    statuses = collections.Counter(r["status"] for r in records.values())
    assert statuses["queued"] == statuses["running"] == 0, statuses  # every job ended
    assert kills == KILLS
    runs = workers.control / "runs"
    starts = collections.Counter(p.name.split("-")[1] for p in runs.glob("start-*"))
    dones = collections.Counter(p.name.split("-")[1] for p in runs.glob("done-*"))
    for i, job_id in enumerate(ids):
        record, tag = records[job_id], f"job{i}"
        attempts = int(record["attempts"] or 0)
        assert starts[tag] <= attempts, (tag, record, starts[tag])  # no run without its own claim
        if record["status"] == "succeeded":
            assert 1 <= dones[tag] <= attempts, (tag, record, dones[tag])
            if attempts == 1:
                assert starts[tag] == dones[tag] == 1, (tag, record)  # untouched by a kill: exactly once
        else:  # only a job killed on every attempt may fail, and it says so
            assert record["status"] == "failed", record
            assert json.loads(record["error"])["detail"]["error"] == "WORKER_LOST"
    redone = sum(1 for r in records.values() if int(r["attempts"] or 0) > 1)
    assert redone <= KILLS * 2  # only jobs running on a killed worker (concurrency 2) ran again
    assert sum(dones.values()) - statuses["succeeded"] <= KILLS * 2
    client = redis.Redis.from_url(workers.url, decode_responses=True)
    try:  # nothing left behind: every message acked and deleted, duplicates included
        wait_until(lambda: client.xlen("mvcore:stream") == 0, timeout=20, what="the stream to drain")
    finally:
        client.close()
