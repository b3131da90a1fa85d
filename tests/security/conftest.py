"""Fixtures for the security tests: an app client, and listeners on 127.0.0.1 that count connections."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from reliability import make_settings

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings


@pytest.fixture(autouse=True)
def _quiet_client_logs() -> Iterator[None]:
    """httpx logs one INFO line per request: noise that only buries a failure's real log."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as test_client:
        yield test_client


# --------------------------------------------------------------------------- listeners on 127.0.0.1
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


@pytest.fixture
def canary() -> Iterator[Listener]:
    """A listener nothing may reach: tests assert ``canary.connections == 0``."""
    listener = Listener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def make_listener() -> Iterator[Any]:
    made: list[Listener] = []

    def make(respond: Any = None, body: bytes = b"ok") -> Listener:
        made.append(Listener(respond, body))
        return made[-1]

    try:
        yield make
    finally:
        for listener in made:
            listener.close()
