"""Fixtures for the security tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

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
