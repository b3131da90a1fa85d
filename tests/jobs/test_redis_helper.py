"""The redis-server fixture helper: a real server on a free port, gone after stop()."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mvcore.testing import redis as redis_helper
from mvcore.testing.redis import RedisServer


def test_missing_binary_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(redis_helper.BINARY_ENV, str(tmp_path / "no-such-redis-server"))
    assert redis_helper.redis_available() is False
    with pytest.raises(RuntimeError, match="redis-server not found"):
        RedisServer(tmp_path).start()


def test_server_starts_answers_and_stops(redis_server: RedisServer, tmp_path: Path) -> None:
    # redis_server (the session fixture) enforces the skip/CI policy; start a second, private one
    with RedisServer(tmp_path / "own") as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert redis_helper._ping(server.port)
        process = server.process
        assert process is not None and process.poll() is None
        assert not list((tmp_path / "own").glob("*.rdb"))
    assert process.poll() is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
        pass
