"""A throw-away ``redis-server`` for tests and benchmarks.

``RedisServer(tmp_dir).start()`` runs the real binary (Debian package ``redis-server``)
on a free 127.0.0.1 port with persistence off (``--save "" --appendonly no``) and its
working directory and log in ``tmp_dir``, waits until ``PING`` answers and returns
itself; ``stop()`` terminates it (SIGTERM, then SIGKILL after a bounded wait).
``RedisServer(tmp_dir, persistent=True)`` keeps an append-only file fsynced on every
write (what a production Redis behind a job queue should do), and ``restart(kill=True)``
kills it with SIGKILL and starts it again on the same port with the same data.
``redis_available()`` says whether the binary is there at all.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

BINARY_ENV = "MVCORE_REDIS_SERVER"  # optional: path of the redis-server binary to use
START_TIMEOUT_S = 15.0


def redis_binary() -> str | None:
    """The redis-server executable: $MVCORE_REDIS_SERVER, then PATH, then /usr/bin/redis-server."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("redis-server")
    if found:
        return found
    fallback = "/usr/bin/redis-server"
    return fallback if os.access(fallback, os.X_OK) else None


def redis_available() -> bool:
    return redis_binary() is not None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout: float = 0.5) -> bool:
    """A raw RESP PING (no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, directory: Path | str, *, persistent: bool = False) -> None:
        self.directory = Path(directory)
        self.persistent = persistent
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT_S) -> RedisServer:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server not found (install the Debian package 'redis-server')")
        self.directory.mkdir(parents=True, exist_ok=True)
        last_error = ""
        fixed = self.port  # restart(): the same port again
        for _attempt in range(3):  # a free port can be taken between probing and binding: retry
            self.port = fixed or free_port()
            args = [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.log_path),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ]
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if _ping(self.port):
                    return self
                time.sleep(0.02)
            last_error = self.log_tail()
            self.stop()
        raise RuntimeError(f"redis-server did not answer PING; log:\n{last_error}")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self, *, kill: bool = True, timeout: float = START_TIMEOUT_S) -> RedisServer:
        """Stop the server (SIGKILL by default: no chance to save anything more) and start it again
        on the same port; with ``persistent=True`` it comes back with its data."""
        process = self.process
        if process is not None and process.poll() is None:
            if kill:
                process.kill()
                process.wait(timeout)
            else:
                self.stop()
        self.process = None
        return self.start(timeout)

    def __enter__(self) -> RedisServer:
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def redis_server(directory: Path | str) -> Iterator[RedisServer]:
    """``with redis_server(tmp) as server: server.url``"""
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
