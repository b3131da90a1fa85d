"""In-process jobs (no Redis): taskiq's InMemoryBroker, the same task the workers run."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.jobs.memory_store import MemoryJobStore
from mvcore.jobs.records import JobRecord, Redo
from mvcore.jobs.service import JobService

from .conftest import SCENES, GateProvider, make_settings, wait_until

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VOLATILE = {"generation_timestamp", "processing_time_seconds", "file_size_bytes"}


def shape(value: Any) -> Any:
    """The body with ids and timings blanked: what must be equal between two runs of one request."""
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, str):
        return UUID.sub("<id>", value)
    return value


class App:
    def __init__(self, client: TestClient, provider: GateProvider) -> None:
        self.client = client
        self.provider = provider

    def release(self, idea: str) -> None:
        self.client.blocking_portal.call(self.provider.release, idea)

    def submit(self, idea: str, path: str = "/api/mv/create_scenes", **extra: Any) -> str:
        response = self.client.post(f"{path}?async=true", json={**SCENES, "idea": idea, **extra})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "queued" and body["status_url"] == f"/api/mv/jobs/{body['job_id']}"
        return str(body["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/mv/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, job_id: str, *statuses: str) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (j := self.job(job_id))["status"] in statuses and j,
                what=f"job {job_id} to reach {statuses}",
            )
        )


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("MVCORE_JOB_CONCURRENCY", "1")
    settings = make_settings(tmp_path)
    provider = GateProvider(settings)
    litestar_app = create_app(settings, extra_providers={"gate": provider})
    services = litestar_app.state["services"]
    services.ctx.default_provider = "gate"
    assert type(services.jobs) is JobService
    with TestClient(litestar_app, raise_server_exceptions=False) as client:
        yield App(client, provider)
        for key in list(provider.gates):  # never leave a held job behind
            client.blocking_portal.call(provider.release, key)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/mv/create_scenes", {**SCENES, "config_flavor": "example"}),
        (
            "/api/mv/generate_video",
            {"prompt": "a neon city at night", "duration": 1, "seed": 7, "backend": "offline"},
        ),
    ],
)
def test_async_and_sync_give_the_same_body(app: App, path: str, payload: dict[str, Any]) -> None:
    sync = app.client.post(path, json=payload)
    assert sync.status_code == 200, sync.text
    queued = app.client.post(f"{path}?async=true", json=payload)
    assert queued.status_code == 202
    job = app.wait_status(queued.json()["job_id"], "succeeded", "failed")
    assert job["status"] == "succeeded", job
    assert job["error"] is None and job["progress"] == 1.0
    assert shape(job["result"]) == shape(sync.json())
    assert job["result"]["metadata"]["config"] == sync.json()["metadata"]["config"]


def test_status_moves_queued_running_succeeded(app: App) -> None:
    first = app.submit("hold-first")
    app.wait_status(first, "running")
    second = app.submit("hold-second")  # concurrency 1: waits behind the first
    seen = [app.job(second)["status"]]
    assert seen == ["queued"]
    app.release("hold-first")
    assert app.wait_status(first, "succeeded")["result"]["scenes"]
    running = app.wait_status(second, "running")
    seen.append(running["status"])
    assert running["started_at"] is not None and running["finished_at"] is None
    wait_until(lambda: app.job(second)["progress"] >= 0.1, what="progress of the held job")
    app.release("hold-second")
    done = app.wait_status(second, "succeeded")
    seen.append(done["status"])
    assert seen == ["queued", "running", "succeeded"]
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    assert done["progress"] == 1.0 and done["message"] == "done"
    assert set(done) == {
        "job_id",
        "kind",
        "status",
        "progress",
        "message",
        "created_at",
        "started_at",
        "finished_at",
        "result",
        "error",
        "config",
        "attempts",
        "max_attempts",
        "status_url",
    }
    assert done["config"]["digest"].startswith("sha256:")  # the exact config the job ran with


def test_a_failing_provider_fails_the_job_with_its_own_error(app: App) -> None:
    job_id = app.submit("fail: something the model refuses")
    job = app.wait_status(job_id, "failed", "succeeded")
    assert job["status"] == "failed" and job["result"] is None
    detail = job["error"]["detail"]
    assert detail["error"] == "CONTENT_POLICY_VIOLATION"
    assert detail["message"] == "The model refused the input (flagged as sensitive)"
    assert detail["details"]["hint"] == "Rephrase the idea."
    refused = {**SCENES, "idea": "fail: something the model refuses"}
    sync = app.client.post("/api/mv/create_scenes", json=refused)
    assert sync.status_code == 400
    assert sync.json() == job["error"]


def test_cancel_a_queued_and_a_running_job(app: App) -> None:
    running = app.submit("hold-running")
    app.wait_status(running, "running")
    queued = app.submit("hold-queued")
    assert app.job(queued)["status"] == "queued"

    cancelled = app.client.delete(f"/api/mv/jobs/{queued}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["detail"]["error"] == "JOB_CANCELLED"

    stopped = app.client.delete(f"/api/mv/jobs/{running}")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "cancelled"
    assert stopped.json()["finished_at"] is not None

    after = app.submit("after the cancels")  # the slot is free again
    assert app.wait_status(after, "succeeded")["result"]["scenes"]
    assert app.job(queued)["status"] == "cancelled"
    assert "hold-queued" not in app.provider.entered  # the cancelled job never ran
    again = app.client.delete(f"/api/mv/jobs/{after}")  # cancelling a finished job changes nothing
    assert again.status_code == 200 and again.json()["status"] == "succeeded"


def test_list_jobs_by_status(app: App) -> None:
    ok = [app.submit(f"listed {i}") for i in range(3)]
    bad = app.submit("fail listed")
    for job_id in ok:
        app.wait_status(job_id, "succeeded")
    app.wait_status(bad, "failed")
    everything = app.client.get("/api/mv/jobs").json()["jobs"]
    assert [j["job_id"] for j in everything[:4]] == [bad, *reversed(ok)]  # newest first
    succeeded = app.client.get("/api/mv/jobs?status=succeeded").json()["jobs"]
    assert {j["job_id"] for j in succeeded} == set(ok)
    failed = app.client.get("/api/mv/jobs?status=failed").json()["jobs"]
    assert [j["job_id"] for j in failed] == [bad]
    assert app.client.get("/api/mv/jobs?status=running").json()["jobs"] == []
    wrong = app.client.get("/api/mv/jobs?status=done")
    assert wrong.status_code == 400
    assert wrong.json()["detail"]["error"] == "INVALID_INPUT"


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-job-id"])
def test_unknown_job_is_404(app: App, job_id: str) -> None:
    for response in (app.client.get(f"/api/mv/jobs/{job_id}"), app.client.delete(f"/api/mv/jobs/{job_id}")):
        assert response.status_code == 404, response.text
        detail = response.json()["detail"]
        assert detail["error"] in ("NOT_FOUND", "INVALID_ID")
        assert detail["message"]


# ------------------------------------------------------------------ stale records, stop, queue cap
def _record(**fields: Any) -> JobRecord:
    return JobRecord(str(uuid.uuid4()), "create_scenes", **fields)


@pytest.mark.parametrize(
    ("redo", "attempts", "verdict", "reason"),
    [
        (Redo.NEVER, 1, "failed", "this kind of job is not safe to run twice"),
        (Redo.SAFE, 3, "failed", "gave up after 3 attempts (MVCORE_JOB_MAX_ATTEMPTS=3)"),
        (Redo.SAFE, 1, "queued", None),
        (Redo.UNTIL_EXTERNAL, 1, "queued", None),
    ],
)
def test_memory_load_gives_a_stale_running_job_its_worker_lost_verdict(
    redo: Redo, attempts: int, verdict: str, reason: str | None
) -> None:
    resent: list[str] = []

    async def requeue(record: JobRecord) -> None:
        resent.append(record.job_id)

    async def scenario() -> JobRecord | None:
        store = MemoryJobStore(requeue=requeue, backoff_base=0.0)
        record = _record(heartbeat_timeout=0.05, max_attempts=3, attempts=attempts - 1, payload=("k", {}, {}))
        await store.create(record)
        claimed = await store.claim(record.job_id, "w1", redo.value)
        assert claimed.record is not None and claimed.record.attempts == attempts
        assert (await store.load(record.job_id)).status == "running"  # type: ignore[union-attr]
        await asyncio.sleep(0.1)  # no heartbeat for longer than the timeout
        return await store.load(record.job_id)

    loaded = asyncio.run(scenario())
    assert loaded is not None and loaded.status == verdict
    if verdict == "failed":
        assert loaded.error is not None and loaded.error["detail"]["error"] == "WORKER_LOST"
        assert loaded.error["detail"]["details"]["not_retried_because"] == reason
        assert loaded.error_status == 503 and resent == []
    else:
        assert loaded.error is None and resent == [loaded.job_id]
        assert loaded.message.startswith("requeued: heartbeat stopped")


def test_memory_store_refuses_to_redo_after_a_paid_call_started() -> None:
    async def scenario() -> JobRecord | None:
        store = MemoryJobStore(requeue=lambda r: asyncio.sleep(0))
        record = _record(heartbeat_timeout=0.05, max_attempts=3, payload=("k", {}, {}))
        await store.create(record)
        await store.claim(record.job_id, "w1", Redo.UNTIL_EXTERNAL.value)
        await store.note_external(record.job_id, "w1", "prediction-abc")
        await asyncio.sleep(0.1)
        return await store.load(record.job_id)

    loaded = asyncio.run(scenario())
    assert loaded is not None and loaded.status == "failed" and loaded.error is not None
    assert "prediction-abc" in loaded.error["detail"]["details"]["not_retried_because"]


def test_stopping_the_server_mid_job_ends_it_worker_lost_not_cancelled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, job_drain_grace_s=0.5)
    provider = GateProvider(settings)
    litestar_app = create_app(settings, extra_providers={"gate": provider})
    services = litestar_app.state["services"]
    services.ctx.default_provider = "gate"
    with TestClient(litestar_app, raise_server_exceptions=False) as client:
        running = App(client, provider).submit("hold-forever")
        App(client, provider).wait_status(running, "running")
        started = time.monotonic()
    assert time.monotonic() - started < 10  # the drain grace, not the held job, bounds the shutdown
    record = asyncio.run(services.jobs.store.load(running))
    assert record.status == "failed", record
    assert record.error["detail"]["error"] == "WORKER_LOST"
    assert record.error_status == 503


def test_a_full_in_process_queue_answers_429_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVCORE_JOB_CONCURRENCY", "1")
    settings = make_settings(tmp_path, job_queue_max=2)
    provider = GateProvider(settings)
    litestar_app = create_app(settings, extra_providers={"gate": provider})
    litestar_app.state["services"].ctx.default_provider = "gate"
    with TestClient(litestar_app, raise_server_exceptions=False) as client:
        app = App(client, provider)
        app.wait_status(app.submit("hold-running"), "running")
        queued = [app.submit("hold-q1"), app.submit("hold-q2")]
        for path in ("/api/mv/create_scenes?async=true", "/api/mv/create_scenes"):
            full = client.post(path, json={**SCENES, "idea": "one too many"})
            assert full.status_code == 429, full.text
            assert full.headers["retry-after"] == "5"
            detail = full.json()["detail"]
            assert detail["error"] == "QUEUE_FULL" and detail["details"]["limit"] == 2
        for key in ("hold-running", "hold-q1", "hold-q2"):
            app.release(key)
        for job_id in queued:
            assert app.wait_status(job_id, "succeeded", "failed")["status"] == "succeeded"
        assert client.post("/api/mv/create_scenes", json=SCENES).status_code == 200


def test_the_replicate_provider_notes_the_prediction_before_and_after_creating_it() -> None:
    from mvcore.jobs.attempt import current_attempt
    from mvcore.providers.replicate import ReplicateProvider
    from mvcore.providers.replicate_call import PredictionCall
    from mvcore.testing.replicate_server import FakeReplicateServer

    notes: list[str] = []

    class Recorder(MemoryJobStore):
        async def note_external(self, job_id: str, worker: str, ref: str) -> None:
            notes.append(ref)

    async def scenario(provider: ReplicateProvider) -> Any:
        token = current_attempt.set((Recorder(), "job-1", "w1"))
        try:
            async with PredictionCall(provider.policy, lambda f, m: None) as call:
                return await call.predict("acme/echo", {"prompt": "hi"}, label="echo")
        finally:
            current_attempt.reset(token)

    with FakeReplicateServer(api_token="r8_test", default_polls=1) as fake:
        fake.add_model("acme/echo", lambda inp: "done")
        provider = ReplicateProvider("r8_test", base_url=fake.base_url, poll_interval_s=0.01)
        assert asyncio.run(scenario(provider)) == "done"
        created = fake.predictions
    assert len(created) == 1
    assert notes == ["replicate:acme/echo:creating", f"replicate:{created[0]['id']}"]
    assert ReplicateProvider.redo == Redo.UNTIL_EXTERNAL.value
