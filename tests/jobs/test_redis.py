"""Jobs over a real redis-server: the API enqueues, `mvcore worker` subprocesses run the tasks."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mvcore.jobs.service import JobFailed

from .conftest import SCENES, VIDEO, Api, Workers, wait_until
from .test_memory import shape

__all__ = ["Api"]  # tests/jobs/test_reload.py imports it from here


def test_a_worker_process_runs_the_job_and_the_api_serves_the_result(api: Api, workers: Workers) -> None:
    workers.start()
    job_id = api.submit("/api/mv/generate_video", VIDEO)
    job = api.wait_status(job_id, "succeeded", "failed")
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["started_at"] and job["finished_at"]
    video_id = job["result"]["video_id"]
    video = api.client.get(f"/api/mv/get_video/{video_id}")  # written by the worker in the shared data dir
    assert video.status_code == 200
    assert video.headers["content-type"].startswith("video/mp4") and len(video.content) > 1000
    sync = api.client.post("/api/mv/generate_video", json=VIDEO)  # the same task, waited for
    assert sync.status_code == 200, sync.text
    assert shape(sync.json()) == shape(job["result"])
    scenes_async = api.wait_status(api.submit("/api/mv/create_scenes", SCENES), "succeeded")["result"]
    scenes_sync = api.client.post("/api/mv/create_scenes", json=SCENES).json()
    assert shape(scenes_sync) == shape(scenes_async)
    listed = api.client.get("/api/mv/jobs?status=succeeded").json()["jobs"]
    assert job_id in {j["job_id"] for j in listed}


def test_the_error_body_comes_back_from_the_worker(api: Api, workers: Workers) -> None:
    workers.start()
    payload = {**VIDEO, "backend": "no-such-backend"}
    job = api.wait_status(api.submit("/api/mv/generate_video", payload), "failed", "succeeded")
    assert job["status"] == "failed"
    assert job["error"]["detail"]["error"] == "INVALID_INPUT"
    sync = api.client.post("/api/mv/generate_video", json=payload)
    assert sync.status_code == 400
    assert sync.json() == job["error"]


def test_jobs_survive_an_api_restart(api_factory: Any, workers: Workers) -> None:
    with api_factory() as first:
        job_id = first.submit("/api/mv/create_scenes", SCENES)  # no worker yet: stays queued
        assert first.job(job_id)["status"] == "queued"
    workers.start()
    with api_factory() as second:  # a fresh app (and Redis connections) on the same Redis
        job = second.wait_status(job_id, "succeeded", "failed")
        assert job["status"] == "succeeded"
        assert len(job["result"]["scenes"]) == 4
        assert [j["job_id"] for j in second.client.get("/api/mv/jobs").json()["jobs"]] == [job_id]
    with api_factory() as third:
        assert third.job(job_id) == job


def test_cancel_a_queued_and_a_running_job(api: Api, workers: Workers) -> None:
    queued = api.submit("/api/mv/create_scenes", SCENES)
    cancelled = api.client.delete(f"/api/mv/jobs/{queued}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    worker = workers.start()
    running = api.submit("/api/mv/generate_video", {**VIDEO, "backend": "slow"})
    wait_until(lambda: api.job(running)["progress"] > 0.02, what="the slow job to report progress")
    started = time.monotonic()
    stopped = api.client.delete(f"/api/mv/jobs/{running}")
    assert stopped.status_code == 200
    job = api.wait_status(running, "cancelled", "failed", "succeeded", timeout=10)
    assert job["status"] == "cancelled", job
    assert job["error"]["detail"]["error"] == "JOB_CANCELLED"
    assert time.monotonic() - started < 10
    # the worker skipped the cancelled queued job and is still healthy
    after = api.wait_status(api.submit("/api/mv/create_scenes", SCENES), "succeeded", "failed")
    assert after["status"] == "succeeded"
    assert api.job(queued)["status"] == "cancelled"
    assert worker.process.poll() is None
    assert worker.stop() == 0  # SIGTERM: drains and exits cleanly


def test_a_killed_worker_fails_a_job_unsafe_to_redo_worker_lost(api: Api, workers: Workers) -> None:
    """A paid call (provider ``redo = "never"``) is not run twice: the job fails with the reason."""
    worker = workers.start(concurrency=2)
    paid = {**VIDEO, "backend": "paid"}
    job_id = api.submit("/api/mv/generate_video", paid)
    # the synchronous path waits on the same kind of job from the API's event loop
    services = api.client.app.state["services"]
    bundle = services.bundle(services.store.current, None, None).to_dict()
    sync_call = api.client.blocking_portal.start_task_soon(services.jobs.run, "generate_video", paid, bundle)
    running = api.wait_status(job_id, "running")
    assert running["started_at"] is not None and running["attempts"] == 1
    wait_until(lambda: len(list(workers.control.glob("started-*"))) >= 1, what="the paid provider to start")
    first = api.job(job_id)["progress"]
    wait_until(lambda: api.job(job_id)["progress"] > first, what="progress to move")
    wait_until(
        lambda: len(api.client.get("/api/mv/jobs?status=running").json()["jobs"]) == 2,
        what="both jobs to run",
    )
    worker.kill()  # SIGKILL mid-task: no chance to write anything
    started = time.monotonic()
    job = api.wait_status(job_id, "failed", "succeeded", "cancelled", timeout=20)
    assert time.monotonic() - started < 20
    assert job["status"] == "failed", job
    detail = job["error"]["detail"]
    assert detail["error"] == "WORKER_LOST"
    assert detail["message"] == "the worker running this job stopped; retry the request"
    assert detail["details"]["not_retried_because"] == "this kind of job is not safe to run twice"
    assert detail["details"]["attempts"] == 1 and job["attempts"] == 1
    assert job["finished_at"] is not None
    with pytest.raises(JobFailed) as failed:
        sync_call.result(timeout=20)
    assert failed.value.code == "WORKER_LOST" and failed.value.status_code == 503
    # a new worker takes the next job; the failed one is not run again
    (workers.control / "release").write_text("go")
    workers.start()
    again = api.wait_status(api.submit("/api/mv/generate_video", paid), "succeeded", "failed")
    assert again["status"] == "succeeded"
    assert api.job(job_id)["status"] == "failed"
    assert len(list(workers.control.glob("started-*"))) == 3  # two killed runs + the new job, no redo
