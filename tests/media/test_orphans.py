"""A server killed with SIGKILL mid-render leaves no ffmpeg running and no scratch after a restart.

The server is a real ``python -m mvcore.cli serve`` subprocess with its own data dir and its own
``TMPDIR`` (so the ``/tmp/mvcore-render-*`` dirs it makes are this test's alone); the ffmpeg child
is found in ``/proc``.  The sweep rules are also tested directly, including the one that matters
most: never remove scratch that a *living* process is using.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mvcore.media.scratch import scratch_dir, sweep_scratch
from tests.reliability import ServerProcess

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux"
)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of the live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), comm))
    return found


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, MVCORE_OFFLINE_LONG_SIDE="1280")
    try:
        yield srv
    finally:
        srv.stop()


def _start_long_render(port: int) -> threading.Thread:
    def call() -> None:
        body = {"prompt": "a long pan over a city", "duration": 60, "aspect_ratio": "16:9"}
        with contextlib.suppress(httpx.HTTPError):  # the server dies under it: that is the point
            httpx.post(f"http://127.0.0.1:{port}/api/mv/generate_video", json=body, timeout=60)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_sigkill_mid_render_leaves_no_ffmpeg_and_a_restart_sweeps_the_scratch(
    server: ServerProcess, tmp_path: Path
) -> None:
    proc = server.start()
    caller = _start_long_render(server.port)
    ffmpegs: list[tuple[int, str]] = []

    def rendering() -> bool:
        ffmpegs[:] = [c for c in _children(proc.pid) if "ffmpeg" in c[1]]
        return bool(ffmpegs)

    _wait_for(rendering, 30, "the render's ffmpeg child")
    render_dirs = list((tmp_path / "systmp").glob(f"mvcore-render-{proc.pid}-*"))
    job_dirs = list((tmp_path / "data" / "tmp").iterdir())
    assert render_dirs and job_dirs, "the render should have scratch on disk while it runs"

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for pid, _ in ffmpegs:
        _wait_for(lambda pid=pid: not _alive(pid), 10, f"ffmpeg {pid} to die with its parent")
    caller.join(timeout=60)
    assert all(p.exists() for p in render_dirs + job_dirs), "nothing cleaned up after a SIGKILL"

    server.start()  # the restart sweeps what the dead process left
    assert not any(p.exists() for p in render_dirs + job_dirs)


# ------------------------------------------------------------------ the sweep rules


def _holder(data_tmp: Path) -> subprocess.Popen[str]:
    """Another live "mvcore process" using ``data_tmp``: it sweeps (takes the lock) and waits."""
    code = (
        "import sys, pathlib\n"
        "from mvcore.media.scratch import sweep_scratch\n"
        "sweep_scratch(pathlib.Path(sys.argv[1]), max_age_s=3600, temp_root=pathlib.Path(sys.argv[2]))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    empty = data_tmp.parent / "holder-temp"
    empty.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(data_tmp), str(empty)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout=30)
    assert line == ["ready\n"], "the holder process did not start"
    return proc


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_sweep_removes_temp_dirs_of_dead_processes_only(tmp_path: Path) -> None:
    temp, data_tmp = tmp_path / "temp", tmp_path / "data_tmp"
    temp.mkdir()
    dead = temp / f"mvcore-render-{_dead_pid()}-abc"
    mine = temp / f"mvcore-stitch-{os.getpid()}-def"
    foreign = temp / "other-program-xyz"
    untagged_new, untagged_old = temp / "mvcore-legacy-new", temp / "mvcore-legacy-old"
    for path in (dead, mine, foreign, untagged_new, untagged_old):
        path.mkdir()
    os.utime(untagged_old, (time.time() - 7200, time.time() - 7200))
    sweep_scratch(data_tmp, max_age_s=3600, temp_root=temp)
    assert sorted(p.name for p in temp.iterdir()) == sorted([mine.name, foreign.name, untagged_new.name])


def test_sweep_of_data_tmp_keeps_what_a_living_process_may_use(tmp_path: Path) -> None:
    temp, data_tmp = tmp_path / "temp", tmp_path / "data_tmp"
    temp.mkdir()
    data_tmp.mkdir()
    holder = _holder(data_tmp)
    try:
        (data_tmp / "live-job").mkdir()
        (data_tmp / "stale-job").mkdir()
        os.utime(data_tmp / "stale-job", (time.time() - 7200, time.time() - 7200))
        sweep_scratch(data_tmp, max_age_s=3600, temp_root=temp)
        assert sorted(p.name for p in data_tmp.iterdir()) == ["live-job"]
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def test_sweep_of_data_tmp_removes_everything_when_no_one_else_uses_it(tmp_path: Path) -> None:
    temp, data_tmp = tmp_path / "temp", tmp_path / "data_tmp"
    temp.mkdir()
    (data_tmp / "job-a" / "clip000").mkdir(parents=True)
    (data_tmp / ".x.mp4.0123.tmp.mp4").write_bytes(b"half")
    sweep_scratch(data_tmp, max_age_s=3600, temp_root=temp)
    assert list(data_tmp.iterdir()) == []


def test_scratch_dir_is_tagged_with_our_pid_and_removed_after_use() -> None:
    with scratch_dir("render") as path:
        assert path.name.startswith(f"mvcore-render-{os.getpid()}-") and path.is_dir()
    assert not path.exists()


_ENDLESS_SCRIPT = (
    "import asyncio, sys\n"
    "from mvcore.media import ffmpeg\n"
    "if sys.argv[1] == 'preexec':\n"
    "    ffmpeg._setpriv = lambda: None  # no setpriv on this machine: the preexec_fn path\n"
    "endless = ['-re', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=25', '-f', 'null', '-']\n"
    "asyncio.run(ffmpeg.run_ffmpeg(endless, timeout=120))\n"
)


@pytest.mark.parametrize("mode", ["setpriv", "preexec"])
def test_ffmpeg_started_by_run_ffmpeg_dies_with_a_sigkilled_parent(mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", _ENDLESS_SCRIPT, mode], env=env, cwd=REPO)
    try:
        found: list[int] = []

        def started() -> bool:
            found[:] = [pid for pid, comm in _children(parent.pid) if "ffmpeg" in comm]
            return bool(found)

        _wait_for(started, 30, "the ffmpeg child")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        _wait_for(lambda: not _alive(found[0]), 10, "ffmpeg to die with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
