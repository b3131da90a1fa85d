"""Fixtures for the jobs tests.

* ``make_settings`` -- Settings over a tmp copy of the shipped flavors, small offline media.
* ``GateProvider`` -- an offline provider whose ``generate_scenes`` holds ideas starting with
  ``hold`` until the test releases them (an asyncio.Event per idea, set from the test thread
  through the TestClient's portal) and fails ideas starting with ``fail`` with the original
  system's ``CONTENT_POLICY_VIOLATION`` (400).
* ``redis_url`` -- a real ``redis-server`` (session-wide, flushed before each test).  Skipped
  with a reason when the binary is missing and ``CI`` is unset; under ``CI=true`` a missing
  binary fails the tests instead.
* ``workers`` -- starts ``python -m mvcore.cli worker`` subprocesses against that Redis and
  always terminates them; ``slow_plugin`` is a plugin (installed on the worker's PYTHONPATH as
  a dist-info with an ``mvcore`` entry point) whose ``slow`` provider renders a video only once
  a release file exists, reporting progress meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.errors import ProviderError
from mvcore.jobs.redis_store import RedisJobService
from mvcore.providers.base import Progress, Scene, no_progress
from mvcore.providers.offline import OfflineProvider
from mvcore.settings import Settings
from mvcore.testing.redis import RedisServer, redis_available
from mvcore.testing.settings import offline_settings
from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[2]
SCENES = {"idea": "a cat learns to surf", "character_description": "an orange tabby cat"}
VIDEO = {"prompt": "a neon city at night", "duration": 1, "seed": 3}
WAIT_S = 30.0
START_S = 60.0  # a worker process imports mvcore and builds its providers: slow on a loaded machine


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings: short drain grace and no-worker wait so a stuck job ends a test fast."""
    overrides.setdefault("job_drain_grace_s", 2.0)
    overrides.setdefault("job_no_worker_wait_s", 3.0)
    overrides.setdefault("job_retry_backoff_s", 0.1)
    overrides.setdefault("job_visibility_timeout_s", 2.0)
    return offline_settings(tmp_path, flavors_from=SHIPPED_FLAVORS, **overrides)


def wait_until(
    check: Callable[[], Any], timeout: float = WAIT_S, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what or check}")
        time.sleep(interval)


class GateProvider(OfflineProvider):
    name = "gate"

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: list[str] = []

    def gate(self, key: str) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    def release(self, key: str) -> None:
        """Call on the app's loop (``client.blocking_portal.call(provider.release, key)``)."""
        self.gate(key).set()

    async def generate_scenes(
        self,
        *,
        prompt: str,
        inputs: dict[str, Any],
        number_of_scenes: int,
        model: str,
        progress: Progress = no_progress,
    ) -> list[Scene]:
        idea = str(inputs.get("idea", ""))
        self.entered.append(idea)
        if idea.startswith("hold"):
            progress(0.5, "held")
            await asyncio.wait_for(self.gate(idea).wait(), WAIT_S)
        if idea.startswith("fail"):
            raise ProviderError(
                "The model refused the input (flagged as sensitive)",
                code="CONTENT_POLICY_VIOLATION",
                status_code=400,
                details={"model": "gate", "hint": "Rephrase the idea."},
            )
        return await super().generate_scenes(
            prompt=prompt, inputs=inputs, number_of_scenes=number_of_scenes, model=model, progress=progress
        )


# ------------------------------------------------------------------------------------------- redis
def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not redis_available():
        if _ci():
            pytest.fail("CI is set but the redis-server binary is missing (apt-get install redis-server)")
        pytest.skip("redis-server binary not found (Debian package redis-server); under CI=true this fails")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


def live_workers(url: str, prefix: str = "mvcore", pid: int | None = None) -> int:
    """Announced workers (``{prefix}:worker:{host}:{pid}:{hex}``), or only those of process ``pid``."""
    import redis

    pattern = f"{prefix}:worker:*" if pid is None else f"{prefix}:worker:*:{pid}:*"
    client = redis.Redis.from_url(url)
    try:
        return len(list(client.scan_iter(match=pattern)))
    finally:
        client.close()


PLUGIN_SOURCE = '''
"""Test plugin: providers whose videos wait for a release file, or count their runs (jobs tests)."""
import asyncio, dataclasses, os, shutil, time, uuid
from pathlib import Path

import mvcore
from mvcore.providers.offline import OfflineProvider


class SlowProvider(OfflineProvider):
    name = "slow"

    async def generate_video(self, *, prompt, negative_prompt, params, reference_image, seed, out_path,
                             progress=lambda f, m: None):
        control = Path(os.environ["MVCORE_TEST_SLOW_DIR"])
        (control / f"started-{os.getpid()}-{uuid.uuid4().hex[:6]}").write_text(prompt)
        deadline = time.monotonic() + 60
        step = 0
        while not (control / "release").exists() and time.monotonic() < deadline:
            step += 1
            progress(min(0.9, step / 100), "waiting for release")
            await asyncio.sleep(0.05)
        return await super().generate_video(
            prompt=prompt, negative_prompt=negative_prompt, params=params, reference_image=reference_image,
            seed=seed, out_path=out_path, progress=progress)


class PaidProvider(SlowProvider):
    """Like ``slow``, but says it is a paid call that must never run twice."""

    name = "paid"
    redo = "never"


class ExternalProvider(OfflineProvider):
    """A paid-API stand-in: redone only until it has "created a prediction" (file ``pay`` exists)."""

    name = "external"
    redo = "until_external"

    async def generate_video(self, *, prompt, negative_prompt, params, reference_image, seed, out_path,
                             progress=lambda f, m: None):
        from mvcore.jobs.attempt import note_external

        control = Path(os.environ["MVCORE_TEST_SLOW_DIR"])
        (control / f"started-{os.getpid()}-{uuid.uuid4().hex[:6]}").write_text(prompt)
        deadline = time.monotonic() + 60
        noted = False
        while not (control / "release").exists() and time.monotonic() < deadline:
            if not noted and (control / "pay").exists():
                await note_external("fake:prediction-1")
                noted = True
                (control / f"paid-{os.getpid()}").touch()
            progress(0.5, "waiting")
            await asyncio.sleep(0.05)
        return await super().generate_video(
            prompt=prompt, negative_prompt=negative_prompt, params=params, reference_image=reference_image,
            seed=seed, out_path=out_path, progress=progress)


class CountProvider(OfflineProvider):
    """Records each run as files ``start-<tag>-*`` and ``done-<tag>-*`` (tag = first prompt word)."""

    name = "count"
    clip = None

    async def generate_video(self, *, prompt, negative_prompt, params, reference_image, seed, out_path,
                             progress=lambda f, m: None):
        runs = Path(os.environ["MVCORE_TEST_SLOW_DIR"]) / "runs"
        runs.mkdir(exist_ok=True)
        tag, run = prompt.split()[0], uuid.uuid4().hex[:8]
        (runs / f"start-{tag}-{os.getpid()}-{run}").touch()
        if CountProvider.clip is None:
            result = await super().generate_video(
                prompt="clip", negative_prompt=None, params=params, reference_image=None, seed=1,
                out_path=out_path, progress=progress)
            keep = out_path.parent.parent / f"count-clip-{os.getpid()}.mp4"
            shutil.copyfile(out_path, keep)
            CountProvider.clip = dataclasses.replace(result, paths=[keep])
        else:
            shutil.copyfile(CountProvider.clip.paths[0], out_path)
        await asyncio.sleep(float(os.environ.get("MVCORE_TEST_COUNT_SLEEP", "0.02")))
        (runs / f"done-{tag}-{os.getpid()}-{run}").touch()
        return dataclasses.replace(CountProvider.clip, paths=[out_path])


@mvcore.hookimpl
def mvcore_providers():
    return {"slow": SlowProvider, "paid": PaidProvider, "external": ExternalProvider, "count": CountProvider}
'''


@pytest.fixture(scope="session")
def slow_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    (root / "mvcore_jobs_testplugin.py").write_text(PLUGIN_SOURCE)
    info = root / "mvcore_jobs_testplugin-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mvcore-jobs-testplugin\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[mvcore]\njobs_slow = mvcore_jobs_testplugin\n")
    return root


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_exit(self, timeout: float = 20.0) -> int:
        """The exit code; fail with the worker's log (and kill it) if it is still up after ``timeout``."""
        try:
            return int(self.process.wait(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the worker did not exit within {timeout:g}s:\n{self.log_text()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


@dataclass
class Workers:
    url: str
    tmp: Path
    plugin: Path
    started: list[WorkerProcess] = field(default_factory=list)

    @property
    def control(self) -> Path:
        path = self.tmp / "slow-control"
        path.mkdir(exist_ok=True)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("MVCORE_") and k != "REPLICATE_API_TOKEN"
        }
        env.update(
            MVCORE_REDIS_URL=self.url,
            MVCORE_DATA_DIR=str(self.tmp / "data"),
            MVCORE_FLAVORS_DIR=str(self.tmp / "flavors"),
            MVCORE_OFFLINE_LONG_SIDE="160",
            MVCORE_OFFLINE_FPS="12",
            MVCORE_PROVIDER="offline",
            MVCORE_WATCH="off",
            MVCORE_TEST_SLOW_DIR=str(self.control),
            MVCORE_JOB_VISIBILITY_TIMEOUT="2",
            MVCORE_JOB_REAPER_INTERVAL="0.5",
            MVCORE_JOB_RETRY_BACKOFF="0.1",
            MVCORE_JOB_DRAIN_GRACE="5",
            PYTHONPATH=os.pathsep.join([str(self.plugin), str(REPO), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
        )
        env.update(extra)
        return env

    def start(self, concurrency: int = 2, wait: bool = True, **extra_env: str) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "mvcore.cli", "worker", "--concurrency", str(concurrency)],
                env=self.env(**extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.tmp,
            )
        worker = WorkerProcess(process, log)
        self.started.append(worker)
        if wait:

            def ready() -> bool:  # its own key: a killed worker's key may expire meanwhile
                if process.poll() is not None:
                    pytest.fail(f"worker exited with {process.returncode}:\n{worker.log_text()}")
                return live_workers(self.url, pid=process.pid) > 0

            wait_until(ready, timeout=START_S, what="the worker to announce itself in Redis")
        return worker

    def start_many(self, count: int, concurrency: int = 2, **extra_env: str) -> list[WorkerProcess]:
        """Start ``count`` workers at once (they import in parallel) and wait until all announced."""
        started = [self.start(concurrency, wait=False, **extra_env) for _ in range(count)]

        def ready() -> bool:
            for worker in started:
                if worker.process.poll() is not None:
                    pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log_text()}")
            return all(live_workers(self.url, pid=w.pid) for w in started)

        wait_until(ready, timeout=START_S, what=f"{count} workers to announce themselves in Redis")
        return started

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def started_by(self, worker: WorkerProcess) -> int:
        """How many slow/paid provider runs this worker process has started."""
        return len(list(self.control.glob(f"started-{worker.pid}-*")))

    def release(self) -> None:
        (self.control / "release").write_text("go")


def worker_pool(url: str, tmp_path: Path, plugin: Path) -> Workers:
    (tmp_path / "data").mkdir(exist_ok=True)
    if not (tmp_path / "flavors").exists():
        shutil.copytree(SHIPPED_FLAVORS, tmp_path / "flavors")
    return Workers(url, tmp_path, plugin)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path, slow_plugin: Path) -> Iterator[Workers]:
    pool = worker_pool(redis_url, tmp_path, slow_plugin)
    try:
        yield pool
    finally:
        pool.stop_all()


# ------------------------------------------------------------------------------------------- api
class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def submit(self, path: str, payload: dict[str, Any]) -> str:
        response = self.client.post(f"{path}?async=true", json=payload)
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/mv/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (j := self.job(job_id))["status"] in statuses and j,
                timeout=timeout,
                what=f"job {job_id} to reach {statuses}",
            )
        )


@pytest.fixture
def api_factory(workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``with api_factory(**settings) as api:`` an app on the test Redis (heartbeat timeout 2 s)."""
    monkeypatch.setenv("MVCORE_JOB_HEARTBEAT_TIMEOUT", "2")

    @contextmanager
    def make(**overrides: Any) -> Iterator[Api]:
        app = create_app(make_settings(tmp_path, redis_url=workers.url, **overrides))
        assert isinstance(app.state["services"].jobs, RedisJobService)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client)

    return make


@pytest.fixture
def api(api_factory: Any) -> Iterator[Api]:
    with api_factory() as made:
        yield made
