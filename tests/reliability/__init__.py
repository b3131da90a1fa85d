"""Reliability tests: a live server under load and reloads, and faults injected one at a time.

Helpers shared by ``tests/reliability`` and ``tests/security``:

* :func:`make_settings` -- Settings over a tmp copy of the shipped flavors, local storage in tmp,
  the offline provider at 160 px / 12 fps (fast media).
* :class:`LiveServer` -- uvicorn serving an app from a thread on a free 127.0.0.1 port
  (lifespan on, so the reloader and the job service really run); ``stop()`` is bounded.
* :class:`ServerProcess` -- ``python -m mvcore.cli serve`` as a real subprocess, for tests whose
  subject is the process itself (a SIGKILL) or whose timing must not share the test process's heap.
* :func:`steady_gc` -- collect, then freeze the heap for a timed window, so a full collection of
  the whole suite's objects cannot land inside a measured request.
* :func:`fd_count` / :func:`thread_count` -- what leak checks compare before and after.
* :func:`ffmpeg_children` -- ffmpeg processes started by this process (a ``/proc`` scan, no psutil).
* :class:`Listener` -- an HTTP server on 127.0.0.1 that counts the connections it accepts (fixtures
  ``canary`` / ``make_listener`` in both conftests).
"""

from __future__ import annotations

import contextlib
import gc
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from mvcore.settings import Settings
from mvcore.testing.settings import offline_settings
from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[2]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return offline_settings(tmp_path, flavors_from=SHIPPED_FLAVORS, **overrides)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_count() -> int:
    return threading.active_count()


def settle(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (for counts that drop asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def ffmpeg_children() -> list[int]:
    """Pids of live ffmpeg processes whose parent is this process."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("latin-1")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(me) and fields[0] not in ("Z", "X") and b"ffmpeg" in cmdline:
            found.append(int(entry))
    return found


class LiveServer:
    """``with LiveServer(app) as server: httpx.get(server.url + "/health")``"""

    def __init__(self, app: Any, *, graceful_s: int = 2) -> None:
        self.app = app
        self.graceful_s = graceful_s
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=self.graceful_s,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="live-uvicorn", daemon=True
        )
        self._thread.start()
        if not settle(lambda: self._server is not None and self._server.started, timeout):
            self.stop()
            raise RuntimeError("the live server did not start")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the live server did not stop in time"
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def steady_gc() -> Iterator[None]:
    """Keep the test process's collector out of a timed window.

    Late in the suite this process holds millions of objects from earlier tests; one full
    collection of them takes about a second on CI's 2 cores.  Freezing moves the survivors out of
    the collector's view, so collections inside the window only scan what the window allocates.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class ServerProcess:
    """``python -m mvcore.cli serve`` on a free port, with its own data dir and ``TMPDIR``.

    ``env`` adds or overrides ``MVCORE_*`` variables; the default is the offline provider, no
    flavor watching, and the shipped flavors of the checkout.
    """

    def __init__(self, root: Path, **env: str) -> None:
        self.port = free_port()
        (root / "systmp").mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "MVCORE_DATA_DIR": str(root / "data"),
            "MVCORE_PROVIDER": "offline",
            "TMPDIR": str(root / "systmp"),
            "MVCORE_WATCH": "off",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "mvcore.cli", "serve", "--port", str(self.port), "--no-reload-flavors"]
        self.proc = subprocess.Popen(
            cmd, env=self.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not settle(self._healthy, timeout, step=0.05):
            self.stop()
            raise AssertionError(f"the server did not answer /health within {timeout:g} s")
        return self.proc

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited with {self.proc.returncode}")
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Listener:
    """An HTTP server on 127.0.0.1 that counts every TCP connection it accepts.

    ``respond(path) -> (status, headers, body)`` decides the answer (default: 200 with ``body``).
    Connections are counted at ``accept``, before any byte is read, so "zero connections" means the
    server under test never even opened a socket to it.
    """

    def __init__(self, respond: Any = None, body: bytes = b"canary") -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.hosts: list[str] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with listener._lock:
                    listener.paths.append(self.path)
                    listener.hosts.append(self.headers.get("Host", ""))
                status, headers, payload = (respond or (lambda _p: (200, {}, body)))(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                request = super().get_request()
                with listener._lock:
                    listener.connections += 1
                return request

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="listener", daemon=True)
        self.thread.start()

    @property
    def requests(self) -> int:
        return len(self.paths)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
