"""Jobs are never lost: acknowledged delivery, redo of safe work, drain, and nothing waits forever.

Real ``redis-server``, real ``mvcore worker`` subprocesses killed with SIGKILL or stopped with
SIGTERM, the real app answering over the TestClient.  Workers run with a 2 s visibility
timeout, a 0.5 s reaper and a 0.1 s retry backoff (``Workers.env``); the API's jobs have a 2 s
heartbeat timeout (``api_factory``).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import redis

from .conftest import SCENES, VIDEO, Api, WorkerProcess, Workers, wait_until

SLOW = {**VIDEO, "backend": "slow"}  # an offline render: safe to redo
PAID = {**VIDEO, "backend": "paid"}  # a provider that says it must never run twice


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def _blocked_reader(client: redis.Redis) -> bool:
    return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in client.client_list())


def _pending_for(client: redis.Redis, worker: WorkerProcess) -> int:
    """Messages this worker process has read and not acked (its consumer is ``host:pid:...``)."""
    summary = client.xpending("mvcore:stream", "mvcore")
    return sum(int(c["pending"]) for c in summary["consumers"] or [] if f":{worker.pid}:" in c["name"])


def test_a_worker_killed_after_taking_a_message_before_claiming_it_loses_nothing(
    api: Api, workers: Workers
) -> None:
    doomed = workers.start(concurrency=1)
    client = _redis(workers.url)
    for _ in range(5):
        wait_until(lambda: _blocked_reader(client), timeout=10, what="the worker to wait in XREADGROUP")
        os.kill(doomed.pid, signal.SIGSTOP)  # frozen inside its read: Redis still hands it the message
        job_id = api.submit("/api/mv/create_scenes", SCENES)
        deadline = time.monotonic() + 2
        while _pending_for(client, doomed) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        if _pending_for(client, doomed) == 1:
            break
        os.kill(doomed.pid, signal.SIGCONT)  # its read had just timed out: let it run this one, again
        api.wait_status(job_id, "succeeded")
    else:
        pytest.fail("the frozen worker never took a message")
    taken = api.job(job_id)
    assert taken["status"] == "queued" and taken["attempts"] == 0  # taken, never claimed
    doomed.kill()
    rescuer = workers.start(concurrency=1)
    job = api.wait_status(job_id, "succeeded", "failed", timeout=30)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1  # the dead worker never started it
    assert rescuer.process.poll() is None
    wait_until(lambda: client.xlen("mvcore:stream") == 0, timeout=10, what="the stream to be empty")
    assert client.xpending("mvcore:stream", "mvcore")["pending"] == 0


def test_a_worker_killed_mid_job_of_a_safe_kind_is_redone_by_another_worker(
    api: Api, workers: Workers
) -> None:
    first = workers.start(concurrency=1)
    job_id = api.submit("/api/mv/generate_video", SLOW)
    wait_until(lambda: workers.started_by(first) == 1, what="the first worker to start the render")
    assert api.job(job_id)["attempts"] == 1
    second = workers.start(concurrency=1)
    first.kill()  # SIGKILL mid-render
    wait_until(lambda: workers.started_by(second) == 1, timeout=30, what="the second worker to redo it")
    running = api.job(job_id)
    assert running["status"] == "running" and running["attempts"] == 2
    workers.release()
    job = api.wait_status(job_id, "succeeded", "failed", timeout=30)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2 and job["error"] is None
    assert workers.started_by(second) == 1  # redone once, not twice
    assert api.client.get(f"/api/mv/get_video/{job['result']['video_id']}").status_code == 200


def test_a_job_killed_on_every_attempt_fails_after_max_attempts(api: Api, workers: Workers) -> None:
    job_id = api.submit("/api/mv/generate_video", SLOW)
    current = workers.start(concurrency=1)
    for attempt in (1, 2, 3):
        wait_until(lambda w=current: workers.started_by(w) == 1, timeout=30, what=f"attempt {attempt}")
        assert api.job(job_id)["attempts"] == attempt
        successor = workers.start(concurrency=1) if attempt < 3 else None  # idle until the kill
        current.kill()
        current = successor  # type: ignore[assignment]
    job = api.wait_status(job_id, "failed", "succeeded", timeout=20)
    assert job["status"] == "failed" and job["attempts"] == 3
    details = job["error"]["detail"]["details"]
    assert job["error"]["detail"]["error"] == "WORKER_LOST"
    assert details["not_retried_because"] == "gave up after 3 attempts (MVCORE_JOB_MAX_ATTEMPTS=3)"


def test_sigterm_during_a_job_lets_it_finish_then_exits(api: Api, workers: Workers) -> None:
    worker = workers.start(concurrency=1)
    job_id = api.submit("/api/mv/generate_video", SLOW)
    wait_until(lambda: workers.started_by(worker) == 1, what="the render to start")
    worker.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert worker.process.poll() is None  # draining, not gone
    queued = api.submit("/api/mv/create_scenes", SCENES)  # sent while it drains: not taken by it
    workers.release()
    job = api.wait_status(job_id, "succeeded", "failed", timeout=20)
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert worker.wait_exit() == 0
    assert api.job(queued)["status"] == "queued"
    workers.start()
    assert api.wait_status(queued, "succeeded", "failed")["status"] == "succeeded"


def test_sigterm_past_the_grace_requeues_a_safe_job_for_another_worker(api: Api, workers: Workers) -> None:
    leaving = workers.start(concurrency=1, MVCORE_JOB_DRAIN_GRACE="1")
    job_id = api.submit("/api/mv/generate_video", SLOW)
    wait_until(lambda: workers.started_by(leaving) == 1, what="the render to start")
    staying = workers.start(concurrency=1)
    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.wait_exit() == 0
    wait_until(lambda: workers.started_by(staying) == 1, timeout=20, what="the other worker to take it")
    workers.release()
    job = api.wait_status(job_id, "succeeded", "failed", timeout=20)
    assert job["status"] == "succeeded" and job["attempts"] == 2


def test_sigterm_past_the_grace_fails_an_unsafe_job_worker_lost_not_cancelled(
    api: Api, workers: Workers
) -> None:
    leaving = workers.start(concurrency=1, MVCORE_JOB_DRAIN_GRACE="1")
    job_id = api.submit("/api/mv/generate_video", PAID)
    wait_until(lambda: workers.started_by(leaving) == 1, what="the paid call to start")
    started = time.monotonic()
    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.wait_exit() == 0
    assert time.monotonic() - started < 10  # the grace (1 s) is what it waited, not the job
    job = api.wait_status(job_id, "failed", "cancelled", "succeeded", timeout=10)
    assert job["status"] == "failed", job
    detail = job["error"]["detail"]
    assert detail["error"] == "WORKER_LOST" and job["message"] == "worker lost: the worker stopped"
    assert detail["details"]["not_retried_because"] == "this kind of job is not safe to run twice"


def test_a_sync_call_without_a_live_worker_answers_503_no_worker_with_the_job_id(
    api: Api, workers: Workers
) -> None:
    started = time.monotonic()
    response = api.client.post("/api/mv/create_scenes", json=SCENES)
    waited = time.monotonic() - started
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail["error"] == "NO_WORKER"
    job_id = detail["details"]["job_id"]
    assert detail["details"]["status_url"] == f"/api/mv/jobs/{job_id}"
    assert 3.0 <= waited < 15  # MVCORE_JOB_NO_WORKER_WAIT = 3 in the test settings
    assert api.job(job_id)["status"] == "queued"  # kept: it runs once a worker is up
    workers.start()
    assert api.wait_status(job_id, "succeeded", "failed")["status"] == "succeeded"


def test_a_full_queue_answers_429_with_retry_after_async_and_sync(api_factory: Any, workers: Workers) -> None:
    with api_factory(job_queue_max=3) as api:
        queued = [api.submit("/api/mv/create_scenes", SCENES) for _ in range(3)]
        for path in ("/api/mv/create_scenes?async=true", "/api/mv/create_scenes"):
            full = api.client.post(path, json=SCENES)
            assert full.status_code == 429, full.text
            assert int(full.headers["retry-after"]) >= 1
            detail = full.json()["detail"]
            assert detail["error"] == "QUEUE_FULL"
            assert detail["details"]["limit"] == 3 and detail["details"]["queued"] == 3
            assert "MVCORE_JOB_QUEUE_MAX" in detail["details"]["hint"]
        assert len(api.client.get("/api/mv/jobs").json()["jobs"]) == 3  # the refused ones left nothing
        workers.start()
        for job_id in queued:
            assert api.wait_status(job_id, "succeeded", "failed")["status"] == "succeeded"
        assert api.client.post("/api/mv/create_scenes", json=SCENES).status_code == 200


def test_the_reaper_resends_a_queued_job_whose_message_is_gone(api: Api, workers: Workers) -> None:
    job_id = api.submit("/api/mv/create_scenes", SCENES)
    client = _redis(workers.url)
    assert client.xlen("mvcore:stream") == 1
    client.xtrim("mvcore:stream", maxlen=0)  # the message is lost (a Redis that forgot it, a bad trim)
    workers.start()
    job = api.wait_status(job_id, "succeeded", "failed", timeout=20)
    assert job["status"] == "succeeded" and job["attempts"] == 1


def test_listing_jobs_by_status_shows_attempts(api: Api, workers: Workers) -> None:
    queued = api.submit("/api/mv/create_scenes", SCENES)
    listed = api.client.get("/api/mv/jobs?status=queued").json()["jobs"]
    assert [(j["job_id"], j["attempts"], j["max_attempts"]) for j in listed] == [(queued, 0, 3)]
    assert api.client.get("/api/mv/jobs?status=succeeded").json()["jobs"] == []
    bad = api.client.get("/api/mv/jobs?status=done")
    assert bad.status_code == 400 and bad.json()["detail"]["error"] == "INVALID_INPUT"


@pytest.mark.parametrize("paid_before_the_kill", [False, True], ids=["before-the-prediction", "after-it"])
def test_a_paid_call_is_redone_only_until_it_created_a_prediction(
    api: Api, workers: Workers, paid_before_the_kill: bool
) -> None:
    first = workers.start(concurrency=1)
    job_id = api.submit("/api/mv/generate_video", {**VIDEO, "backend": "external"})
    wait_until(lambda: workers.started_by(first) == 1, what="the call to start")
    if paid_before_the_kill:
        (workers.control / "pay").touch()
        wait_until(lambda: (workers.control / f"paid-{first.pid}").exists(), what="the prediction")
        client = _redis(workers.url)
        assert client.hget(f"mvcore:job:{job_id}", "external_ref") == "fake:prediction-1"
    second = workers.start(concurrency=1)
    first.kill()
    if paid_before_the_kill:
        job = api.wait_status(job_id, "failed", "succeeded", timeout=20)
        assert job["status"] == "failed" and job["attempts"] == 1
        assert job["error"]["detail"]["details"]["not_retried_because"] == (
            "a paid provider call had started (fake:prediction-1); running it again could pay twice"
        )
        assert workers.started_by(second) == 0
        return
    wait_until(lambda: workers.started_by(second) == 1, timeout=30, what="the redo before any payment")
    workers.release()
    job = api.wait_status(job_id, "succeeded", "failed", timeout=20)
    assert job["status"] == "succeeded" and job["attempts"] == 2
