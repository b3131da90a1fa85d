"""kill -9 mid-pipeline, then restart: the project finishes and no finished step is paid for twice.

* Redis mode: the API (in process) drives, real ``python -m mvcore.cli worker`` subprocesses run
  the steps against a real redis-server; the worker is SIGKILLed while clips render.
* In-process mode: a real ``mvcore serve`` subprocess (jobs in its own memory) is SIGKILLed while
  clips render and started again on the same data dir; it resumes from the SQLite record.

"Paid" calls are counted by the offline provider's call log (``MVCORE_OFFLINE_CALL_LOG``, one
line per call, appended by every process).  The steps finished at the moment of the kill are
read from the store after the process is dead: each of them must have exactly one call in the
whole run; steps that were in flight may run again (nothing of theirs was kept).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.projects.records import Project
from mvcore.projects.sqlite_store import SqliteProjectStore
from mvcore.testing.redis import RedisServer, free_port, redis_available
from mvcore.testing.settings import offline_settings

from .conftest import CALL_LOG, REPO, calls, form, per_scene, tiny_flavors, wait_for

LATENCY = "0.6"  # seconds each offline "model" call takes: long enough to kill mid-step


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if not redis_available():
        if _ci():
            pytest.fail("CI is set but redis-server is missing")
        pytest.skip("redis-server not found; under CI=true this fails")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MVCORE_", "DYNAMODB_", "REPLICATE_"))}
    env.update(
        MVCORE_DATA_DIR=str(tmp_path / "data"),
        MVCORE_FLAVORS_DIR=str(tmp_path / "flavors"),
        MVCORE_OFFLINE_LONG_SIDE="160",
        MVCORE_OFFLINE_FPS="12",
        MVCORE_PROVIDER="offline",
        MVCORE_WATCH="off",
        MVCORE_OFFLINE_LATENCY=LATENCY,
        MVCORE_OFFLINE_CALL_LOG=str(tmp_path / CALL_LOG),
        MVCORE_PROJECT_LEASE="2",
        MVCORE_JOB_HEARTBEAT_TIMEOUT="2",
        MVCORE_PROJECT_UNCLAIMED_AFTER="6",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    log: Path

    def kill9(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            child.stop()


def spawn(children: list[Child], tmp_path: Path, args: list[str], env: dict[str, str]) -> Child:
    log = tmp_path / f"child-{len(children)}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mvcore.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    child = Child(process, log)
    children.append(child)
    return child


def record(tmp_path: Path, project_id: str) -> Project:
    store = SqliteProjectStore(tmp_path / "data" / "projects.sqlite3")
    try:
        project = asyncio.run(store.get(project_id))
    finally:
        store.close_sync()
    assert project is not None
    return project


def mid_clips(tmp_path: Path, project_id: str) -> bool:
    """At least one clip recorded and at least one still to do: the moment to kill."""
    try:
        project = record(tmp_path, project_id)
    except AssertionError:
        return False
    done = [s for s in project.scenes if s.clip_done]
    return bool(done) and len(done) < len(project.scenes)


def finished_steps(project: Project) -> tuple[set[int], set[int]]:
    clips = {s.sequence for s in project.scenes if s.clip_done}
    lipsyncs = {s.sequence for s in project.scenes if s.lipSyncedVideoClipS3Key}
    return clips, lipsyncs


def assert_nothing_finished_ran_twice(tmp_path: Path, before: tuple[set[int], set[int]], scenes: int) -> None:
    log = calls(tmp_path)
    videos, lipsyncs = per_scene(log, "generate_video"), per_scene(log, "lipsync")
    assert [e["call"] for e in log].count("generate_scenes") == 1
    assert set(videos) == set(lipsyncs) == set(range(1, scenes + 1))
    for seq in before[0]:
        assert videos[seq] == 1, (seq, videos)
    for seq in before[1]:
        assert lipsyncs[seq] == 1, (seq, lipsyncs)
    pids = {e["pid"] for e in log}
    assert len(pids) >= 2  # the work really was split across the killed and the new process


def post_project(base: str, song: Path) -> str:
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.post(
            "/api/mv/projects", data=form(), files={"audio": ("song.mp3", song.read_bytes(), "audio/mpeg")}
        )
    assert response.status_code == 201, response.text
    return str(response.json()["projectId"])


def test_a_worker_killed_mid_pipeline_is_replaced_and_the_project_finishes(
    tmp_path: Path, song: Path, redis_url: str, children: list[Child], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_flavors(tmp_path)
    monkeypatch.setenv("MVCORE_JOB_HEARTBEAT_TIMEOUT", "2")
    env = child_env(tmp_path, MVCORE_REDIS_URL=redis_url)
    first = spawn(children, tmp_path, ["worker", "--concurrency", "2"], env)
    settings = offline_settings(tmp_path, redis_url=redis_url, project_lease_s=2, project_unclaimed_s=6)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.app.state["projects"].pipeline.backoff_s = 0.05
        response = client.post(
            "/api/mv/projects", data=form(), files={"audio": ("song.mp3", song.read_bytes(), "audio/mpeg")}
        )
        assert response.status_code == 201, response.text
        project_id = response.json()["projectId"]
        wait_for(lambda: mid_clips(tmp_path, project_id), 60, "a clip to finish", 0.02)
        first.kill9()
        before = finished_steps(record(tmp_path, project_id))
        spawn(children, tmp_path, ["worker", "--concurrency", "2"], env)

        def done() -> Any:
            body = client.get(f"/api/mv/projects/{project_id}").json()
            return body if body["status"] in ("completed", "failed") else None

        try:
            body = wait_for(done, 90, "the project to finish after the worker was replaced")
        except pytest.fail.Exception:
            state = record(tmp_path, project_id)
            scenes = [(s.sequence, s.status, s.videoGenerationJobId, s.lipsyncJobId) for s in state.scenes]
            pytest.fail(f"not finished: {state.status} {scenes}\n{children[-1].tail()}")
    assert isinstance(body, dict) and body["status"] == "completed", body
    assert body["completedScenes"] == 4 and body["finalOutputUrl"]
    assert_nothing_finished_ran_twice(tmp_path, before, 4)


def test_a_server_killed_mid_pipeline_resumes_after_restart(
    tmp_path: Path, song: Path, children: list[Child]
) -> None:
    tiny_flavors(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(tmp_path)
    args = ["serve", "--port", str(port), "--no-reload-flavors"]

    def healthy() -> bool:
        current = children[-1]
        if current.process.poll() is not None:
            pytest.fail(f"mvcore serve exited with {current.process.returncode}:\n{current.tail()}")
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    server = spawn(children, tmp_path, args, env)
    wait_for(healthy, 60, "the server to start")
    project_id = post_project(base, song)
    wait_for(lambda: mid_clips(tmp_path, project_id), 60, "a clip to finish", 0.02)
    server.kill9()
    before = finished_steps(record(tmp_path, project_id))
    assert record(tmp_path, project_id).status == "processing"
    restarted = spawn(children, tmp_path, args, env)
    wait_for(healthy, 60, "the restarted server")

    def done() -> Any:
        body = httpx.get(f"{base}/api/mv/projects/{project_id}", timeout=5).json()
        return body if body["status"] in ("completed", "failed") else None

    body = wait_for(done, 90, "the resumed project to finish")
    assert isinstance(body, dict) and body["status"] == "completed", (body, restarted.tail())
    assert body["completedScenes"] == 4 and body["failedScenes"] == 0
    assert_nothing_finished_ran_twice(tmp_path, before, 4)


def test_a_step_taken_off_the_queue_and_never_run_is_submitted_again(
    tmp_path: Path, song: Path, redis_url: str, children: list[Child], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job ``queued`` whose message is gone (what a lost delivery leaves): simulated exactly by
    deleting the entry from the Redis stream the broker reads, so no worker ever sees it."""
    import redis

    tiny_flavors(tmp_path, scenes=2)
    monkeypatch.setenv("MVCORE_JOB_HEARTBEAT_TIMEOUT", "2")
    settings = offline_settings(tmp_path, redis_url=redis_url, project_unclaimed_s=3, offline_call_log=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        queue = client.app.state["services"].jobs.broker.queue_name
        response = client.post(
            "/api/mv/projects", data=form(), files={"audio": ("song.mp3", song.read_bytes(), "audio/mpeg")}
        )
        assert response.status_code == 201, response.text
        project_id = response.json()["projectId"]
        raw = redis.Redis.from_url(redis_url)

        def take() -> Any:
            for entry_id, fields in raw.xrange(queue):
                if any(b"project_scenes" in bytes(v) for v in fields.values()):
                    raw.xdel(queue, entry_id)
                    return fields
            return None

        try:
            popped = wait_for(take, 30, "the scenes job to be queued", 0.01)
        finally:
            raw.close()
        assert popped
        spawn(
            children,
            tmp_path,
            ["worker", "--concurrency", "2"],
            child_env(tmp_path, MVCORE_REDIS_URL=redis_url),
        )

        def done() -> Any:
            body = client.get(f"/api/mv/projects/{project_id}").json()
            return body if body["status"] in ("completed", "failed") else None

        body = wait_for(done, 90, "the project to finish after its lost step was resubmitted")
    assert isinstance(body, dict) and body["status"] == "completed", body
    log = calls(tmp_path)
    assert [e["call"] for e in log].count("generate_scenes") == 1  # the lost job never ran
