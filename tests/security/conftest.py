"""Fixtures for the security tests: an app client, and listeners on 127.0.0.1 that count connections."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from reliability import Listener, make_settings

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
