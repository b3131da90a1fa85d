"""Faults injected one at a time; each ends in a clear error body, nothing lost, ``/health`` 200.

* the flavors directory deleted and re-created (the real inotify watcher follows it);
* the flavors directory made unreadable -- ``chmod 000`` as a normal user; as root, whom permission
  bits do not stop, listing/stat/open under the directory are patched to raise PermissionError
  (``EACCES``), which is exactly what ``chmod 000`` makes them do for a normal user;
* the disk filling up while a video is stored -- a real 1 MiB tmpfs mounted over the media
  directory when the test may mount (root), else ``fsync`` patched to raise ENOSPC;
* S3 going away in the middle of an upload (the moto server is stopped from inside ``put_file``);
* ffmpeg killed (SIGKILL) in the middle of an encode, and ffmpeg over its deadline;
* a provider that never answers (``provider_timeout_s``);
* Redis killed and restarted under a running worker, with a synchronous request in flight;
* and, after every generator (and a failing one), no working file left in the scratch space.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.providers.base import ProviderResult, no_progress
from mvcore.settings import Settings

from . import ffmpeg_children, make_settings, settle

IS_ROOT = os.geteuid() == 0


def detail(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"detail"}, body
    assert set(body["detail"]) == {"error", "message", "details"}, body
    assert body["detail"]["message"], body
    assert "Traceback" not in response.text and "/tmp/" not in response.text, response.text
    return body["detail"]  # type: ignore[no-any-return]


def app_client(settings: Settings, **kwargs: Any) -> tuple[TestClient, FlavorStore]:
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    app = create_app(settings, store=store, **kwargs)
    return TestClient(app, raise_server_exceptions=False, timeout=60), store


def healthy(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    scenes = client.post("/api/mv/create_scenes", json={"idea": "after", "character_description": "me"})
    assert scenes.status_code == 200, scenes.text


def example_values(client: TestClient) -> dict[str, Any]:
    body = client.get("/api/mv/flavors/example", params={"type": "parameters"}).json()
    assert body["flavor_used"] == "example" and not body["fallback"], body
    return body["configs"]["parameters"]["values"]  # type: ignore[no-any-return]


def scratch_left(settings: Settings) -> list[Path]:
    """Working files and directories a generator left behind in its scratch space."""
    scratch = settings.data_dir / "tmp"
    return sorted(scratch.rglob("*")) if scratch.exists() else []


def test_no_generator_leaves_working_files_behind(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    client, _ = app_client(settings)
    with client:
        scenes = client.post("/api/mv/create_scenes", json={"idea": "i", "character_description": "c"})
        assert scenes.status_code == 200, scenes.text
        refs = client.post(
            "/api/mv/generate_character_reference", json={"character_description": "c", "num_images": 2}
        )
        assert refs.status_code == 200, refs.text
        ref_id = refs.json()["images"][0]["id"]
        videos = []
        for _ in range(2):
            request = {"prompt": "p", "duration": 1, "character_reference_id": ref_id}
            made = client.post("/api/mv/generate_video", json=request)
            assert made.status_code == 200, made.text
            videos.append(made.json()["video_id"])
        stitched = client.post("/api/mv/stitch-videos", json={"video_ids": videos})
        assert stitched.status_code == 200, stitched.text
        failed = client.post("/api/mv/stitch-videos", json={"video_ids": [videos[0], str(uuid.uuid4())]})
        assert failed.status_code == 404, failed.text
    assert not scratch_left(settings), scratch_left(settings)


# --------------------------------------------------------------------------- flavors directory
def test_flavors_directory_deleted_and_recreated(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, watch="inotify", debounce_ms=20)
    root = settings.flavors_dirs[0]
    backup = tmp_path / "backup"
    shutil.copytree(root, backup)
    client, store = app_client(settings)
    with client:
        before = example_values(client)
        names = client.get("/api/mv/get_config_flavors").json()["flavors"]

        shutil.rmtree(root)
        assert settle(lambda: not store.current.has("example"), timeout=10), "the deletion was not seen"
        status = client.get("/api/mv/flavors/status").json()
        assert any("does not exist" in w["message"] for w in status["warnings"]), status["warnings"]
        assert client.get("/api/mv/get_config_flavors").json()["flavors"] == ["default"]  # last good default
        fallback = client.get("/api/mv/flavors/example").json()
        assert fallback["fallback"] is True and fallback["flavor_used"] == "default"
        healthy(client)

        shutil.copytree(backup, root)
        assert settle(lambda: store.current.has("example"), timeout=10), "the re-creation was not seen"
        assert example_values(client) == before
        assert client.get("/api/mv/get_config_flavors").json()["flavors"] == names
        assert not client.get("/api/mv/flavors/status").json()["warnings"]
        healthy(client)


@contextlib.contextmanager
def unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Make ``path`` unreadable the way ``chmod 000`` does; yields how it was done."""
    if not IS_ROOT:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(0)
        try:
            yield "chmod 000"
        finally:
            path.chmod(mode)
        return
    # root ignores permission bits: make every listing, stat and open under ``path`` fail with EACCES
    prefix = os.path.realpath(path)

    def blocked(target: Any) -> bool:
        if isinstance(target, int):
            return False
        try:
            text = os.fsdecode(target)
        except TypeError:
            return False
        full = os.path.abspath(text)
        return full == prefix or full.startswith(prefix + os.sep)

    def deny(target: Any) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(target))

    real_scandir, real_stat, real_open, real_listdir = os.scandir, os.stat, builtins.open, os.listdir

    def scandir(target: Any = ".") -> Any:
        if blocked(target):
            raise deny(target)
        return real_scandir(target)

    def listdir(target: Any = ".") -> Any:
        if blocked(target):
            raise deny(target)
        return real_listdir(target)

    def stat_(target: Any, *args: Any, **kwargs: Any) -> Any:
        if blocked(target) and os.path.abspath(os.fsdecode(target)) != prefix:
            raise deny(target)  # the directory itself can be stat-ed, its entries cannot
        return real_stat(target, *args, **kwargs)

    def open_(target: Any, *args: Any, **kwargs: Any) -> Any:
        if blocked(target):
            raise deny(target)
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "stat", stat_)
    monkeypatch.setattr(builtins, "open", open_)
    try:
        yield "patched os.scandir/os.listdir/os.stat/open to raise EACCES (running as root)"
    finally:
        monkeypatch.undo()


def test_unreadable_flavors_directory_keeps_serving_the_last_good_flavors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    root = settings.flavors_dirs[0]
    client, store = app_client(settings)
    with client:
        before = example_values(client)
        names = client.get("/api/mv/get_config_flavors").json()["flavors"]
        generation = store.current.generation
        with unreadable(root, monkeypatch) as how:
            store.rebuild(reason=f"unreadable ({how})")
            status = client.get("/api/mv/flavors/status").json()
            messages = [e["message"] for e in status["errors"]]
            assert any("Permission denied" in m for m in messages), (how, status["errors"])
            # nothing lost: every flavor keeps serving its last good version
            assert client.get("/api/mv/get_config_flavors").json()["flavors"] == names, how
            assert example_values(client) == before
            assert status["flavors"]["example"]["serving"] is True
            healthy(client)
        store.rebuild(reason="readable again")
        assert store.current.generation > generation
        assert example_values(client) == before
        assert not client.get("/api/mv/flavors/status").json()["errors"]
        healthy(client)


def test_unreadable_flavor_files_keep_their_last_good_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    client, store = app_client(settings)
    with client:
        before = example_values(client)
        with unreadable(settings.flavors_dirs[0] / "example", monkeypatch):
            store.rebuild(reason="one flavor unreadable")
            status = client.get("/api/mv/flavors/status").json()
            assert status["flavors"]["example"]["status"] == "error"
            assert example_values(client) == before
            healthy(client)
        store.rebuild(reason="readable again")
        assert client.get("/api/mv/flavors/status").json()["flavors"]["example"]["status"] == "ok"


# --------------------------------------------------------------------------- disk full
def _try_mount_tmpfs(target: Path, size: str) -> bool:
    if not IS_ROOT or shutil.which("mount") is None:
        return False
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return result.returncode == 0


def _umount(target: Path) -> None:
    for args in (["umount", str(target)], ["umount", "-l", str(target)]):
        if subprocess.run(args, capture_output=True, timeout=10, check=False).returncode == 0:
            return


def _fill(directory: Path) -> Path:
    """Write a filler file until the filesystem is full."""
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as out:
        chunk = b"\0" * 4096
        try:
            for _ in range(100_000):
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def test_disk_full_while_storing_a_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    media_dir = settings.data_dir / "mv"
    mounted = _try_mount_tmpfs(media_dir, "1m")
    try:
        client, _ = app_client(settings)
        with client:
            first = client.post("/api/mv/generate_video", json={"prompt": "before it fills", "duration": 1})
            assert first.status_code == 200, first.text
            first_id = first.json()["video_id"]
            first_bytes = client.get(f"/api/mv/get_video/{first_id}").content
            assert first_bytes[4:8] == b"ftyp"

            if mounted:
                filler = _fill(media_dir)
                how = "tmpfs"
            else:
                import mvcore.storage.local as local_module

                def no_space(fd: int) -> None:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

                monkeypatch.setattr(local_module.os, "fsync", no_space)
                how = "patched fsync"
            files_before = sorted(p for p in media_dir.rglob("*") if p.is_file())

            full = client.post("/api/mv/generate_video", json={"prompt": "no room", "duration": 2})
            assert full.status_code == 507, (how, full.text)
            body = detail(full)
            assert body["error"] == "DISK_FULL" and "disk full" in body["message"], body
            assert "hint" in body["details"]

            # no partial file under a final name, no temp file left, nothing else touched
            files_after = sorted(p for p in media_dir.rglob("*") if p.is_file())
            assert files_after == files_before, (how, set(files_after) ^ set(files_before))
            assert not scratch_left(settings), scratch_left(settings)
            # the previous state is intact
            assert client.get(f"/api/mv/get_video/{first_id}").content == first_bytes
            assert client.get(f"/api/mv/get_video/{first_id}/info").status_code == 200
            assert client.get("/health").status_code == 200

            # space comes back: the same request succeeds
            if mounted:
                filler.unlink()
            else:
                monkeypatch.undo()
            again = client.post("/api/mv/generate_video", json={"prompt": "room again", "duration": 1})
            assert again.status_code == 200, again.text
            healthy(client)
    finally:
        if mounted:
            _umount(media_dir)


# --------------------------------------------------------------------------- S3 unreachable
def test_s3_unreachable_mid_upload_keeps_the_result_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mvcore.storage.media_store import MediaStore
    from mvcore.storage.s3 import S3Storage
    from mvcore.testing.s3 import MotoS3Server

    with MotoS3Server() as s3:
        settings = make_settings(tmp_path, **s3.settings_overrides())
        client, _ = app_client(settings)
        services = client.app.state["services"]
        # fail fast once the store is gone (one attempt, short connect timeout)
        services.ctx.media = MediaStore.from_settings(settings, max_attempts=1, connect_timeout=2.0)
        real_put_file = S3Storage.put_file
        stopped = threading.Event()

        async def put_file_then_vanish(self: S3Storage, local: Path, key: str, ctype: Any = None) -> None:
            if not stopped.is_set():
                stopped.set()
                s3.stop()  # the store goes away in the middle of the upload
            await real_put_file(self, local, key, ctype)

        monkeypatch.setattr(S3Storage, "put_file", put_file_then_vanish)
        with client:
            response = client.post("/api/mv/generate_video", json={"prompt": "upload me", "duration": 1})
            assert response.status_code == 200, response.text
            body = response.json()
            video_id = body["video_id"]
            assert stopped.is_set()
            assert body["video_url"] == f"/api/mv/get_video/{video_id}"
            assert "storage_warning" in body and "local" in body["storage_warning"]
            assert s3.secret_access_key not in response.text and s3.access_key_id not in response.text
            served = client.get(f"/api/mv/get_video/{video_id}")
            assert served.status_code == 200 and served.content[4:8] == b"ftyp"
            assert client.get("/health").status_code == 200

            s3.start()  # back on the same port: the next upload works again
            again = client.post("/api/mv/generate_video", json={"prompt": "upload me again", "duration": 1})
            assert again.status_code == 200, again.text
            assert again.json()["metadata"].get("cloud_url") and "storage_warning" not in again.json()
            assert f"mv/jobs/{again.json()['video_id']}/video.mp4" in s3.keys("mv/")
            healthy(client)


# --------------------------------------------------------------------------- ffmpeg
def test_ffmpeg_killed_mid_encode(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, offline_long_side=640, offline_fps=24)
    client, _ = app_client(settings)
    with client:
        result: dict[str, Any] = {}

        def request() -> None:
            result["response"] = client.post(
                "/api/mv/generate_video", json={"prompt": "a long take", "duration": 60}
            )

        worker = threading.Thread(target=request, daemon=True)
        worker.start()
        killed: list[int] = []
        deadline = time.monotonic() + 30
        while not killed and worker.is_alive() and time.monotonic() < deadline:
            for pid in ffmpeg_children():
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if b"libx264" in handle.read():
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        break
            time.sleep(0.005)
        worker.join(60)
        assert killed, "never saw the encoding ffmpeg"
        response = result["response"]
        assert response.status_code == 500, response.text
        body = detail(response)
        assert body["error"] == "MEDIA_ERROR" and "killed by signal 9" in body["message"], body
        assert not list((settings.data_dir / "mv").rglob("*.mp4")), "a video was stored anyway"
        assert not scratch_left(settings), scratch_left(settings)
        assert settle(lambda: not ffmpeg_children(), timeout=5), "an ffmpeg was left running"
        healthy(client)


def test_ffmpeg_over_its_deadline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, media_timeout_s=0.3, offline_long_side=640, offline_fps=24)
    client, _ = app_client(settings)
    with client:
        started = time.monotonic()
        response = client.post("/api/mv/generate_video", json={"prompt": "too slow", "duration": 60})
        assert time.monotonic() - started < 20
        assert response.status_code == 504, response.text
        assert detail(response)["error"] == "TIMEOUT"
        assert settle(lambda: not ffmpeg_children(), timeout=5), "an ffmpeg was left running"
        assert not scratch_left(settings), scratch_left(settings)
        assert client.get("/health").status_code == 200


# --------------------------------------------------------------------------- provider timeout
class NeverAnswers:
    """A provider whose every call hangs (bounded, so a broken test cannot hang forever)."""

    name = "slow"

    def __init__(self) -> None:
        self.calls = 0

    async def _hang(self) -> None:
        import asyncio

        self.calls += 1
        await asyncio.sleep(30)

    async def generate_scenes(self, **kwargs: Any) -> list[Any]:
        await self._hang()
        return []

    async def generate_images(self, **kwargs: Any) -> ProviderResult:
        await self._hang()
        return ProviderResult([], "slow")

    async def generate_video(self, *, progress: Any = no_progress, **kwargs: Any) -> ProviderResult:
        await self._hang()
        return ProviderResult([], "slow")

    async def lipsync(self, **kwargs: Any) -> ProviderResult:
        await self._hang()
        return ProviderResult([], "slow")


def test_provider_timing_out_is_a_504(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, provider_timeout_s=0.5)
    slow = NeverAnswers()
    client, _ = app_client(settings, extra_providers={"slow": slow})
    with client:
        started = time.monotonic()
        request = {"prompt": "p", "duration": 1, "backend": "slow"}
        response = client.post("/api/mv/generate_video", json=request)
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.text
        body = detail(response)
        assert body["error"] == "TIMEOUT" and "slow" in body["message"], body
        assert slow.calls == 1 and elapsed < 10, elapsed
        assert not scratch_left(settings), scratch_left(settings)
        # the async path reports the same error in the job record
        queued = client.post(
            "/api/mv/generate_video", params={"async": "true"}, json={"prompt": "p", "backend": "slow"}
        )
        assert queued.status_code == 202
        job_url = queued.json()["status_url"]
        assert settle(lambda: client.get(job_url).json()["status"] == "failed", timeout=10)
        assert client.get(job_url).json()["error"]["detail"]["error"] == "TIMEOUT"
        healthy(client)  # the default provider is unaffected


# --------------------------------------------------------------------------- Redis
def _skip_or_fail_without_redis() -> None:
    """Skip with the reason when the Redis job service or redis-server is missing (fail under CI=true)."""
    import importlib.util

    for module in ("mvcore.testing.redis", "mvcore.jobs.redis_store", "mvcore.jobs.worker"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"Redis job service not available: {module} does not exist")
    from mvcore.testing.redis import redis_available

    if not redis_available():
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("CI is set but the redis-server binary is missing (apt-get install redis-server)")
        pytest.skip("redis-server binary not found (Debian package redis-server)")


@pytest.mark.redis
@pytest.mark.slow
def test_redis_killed_and_restarted_under_a_running_worker(tmp_path: Path) -> None:
    _skip_or_fail_without_redis()
    run_redis_restart_scenario(tmp_path)


def _start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    from mvcore.testing.redis import _ping, redis_binary

    binary = redis_binary()
    assert binary is not None
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--logfile", str(directory / "redis.log")]  # fmt: skip
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(args, stdin=quiet, stdout=quiet, stderr=quiet)
    assert settle(lambda: _ping(port), timeout=10), "redis-server did not start"
    return process


def run_redis_restart_scenario(tmp_path: Path) -> None:
    import asyncio

    from mvcore.jobs.worker import Worker
    from mvcore.testing.redis import free_port

    port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    process = _start_redis(port, redis_dir)
    url = f"redis://127.0.0.1:{port}/0"
    settings = make_settings(tmp_path, redis_url=url, offline_long_side=640, offline_fps=24)
    stop_worker = threading.Event()
    worker_errors: list[BaseException] = []

    def run_worker() -> None:
        async def main() -> None:
            worker = Worker(settings, concurrency=1)
            task = asyncio.ensure_future(worker.serve())
            while not stop_worker.is_set() and not task.done():
                await asyncio.sleep(0.05)
            worker.stop()
            await asyncio.wait_for(task, 15)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the test
            worker_errors.append(exc)

    thread = threading.Thread(target=run_worker, daemon=True)
    thread.start()
    client, _ = app_client(settings)
    try:
        with client:
            body = {"idea": "redis", "character_description": "me"}
            first = client.post("/api/mv/create_scenes", json=body)
            assert first.status_code == 200, first.text

            # a synchronous request in flight: its job is running in the worker when Redis dies
            in_flight: dict[str, Any] = {}

            def long_request() -> None:
                video = {"prompt": "p", "duration": 30}
                in_flight["response"] = client.post("/api/mv/generate_video", json=video)

            waiter = threading.Thread(target=long_request, daemon=True)
            waiter.start()
            time.sleep(0.5)
            process.kill()  # Redis dies under the running worker and API
            process.wait(10)
            down = client.post("/api/mv/create_scenes", json=body)
            assert down.status_code == 503, down.text
            assert detail(down)["error"] == "QUEUE_UNAVAILABLE"
            assert client.get("/health").status_code == 200

            process = _start_redis(port, redis_dir)  # back on the same port, empty
            waiter.join(60)
            assert not waiter.is_alive(), "the in-flight request hangs"
            answer = in_flight["response"]
            if answer.status_code != 200:  # done before Redis died, or a clear error -- never a hang
                assert answer.status_code == 503, answer.text
                assert detail(answer)["error"] in ("QUEUE_UNAVAILABLE", "JOB_LOST"), answer.text
            deadline = time.monotonic() + 30
            while True:
                again = client.post("/api/mv/create_scenes", json=body)
                if again.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert again.status_code == 200, again.text
            assert thread.is_alive(), f"the worker died: {worker_errors}"
            healthy(client)
    finally:
        stop_worker.set()
        thread.join(20)
        process.kill()
        process.wait(10)
    assert not worker_errors, worker_errors
