"""An app over a tmp copy of the shipped flavors, local storage in tmp, offline provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings
from mvcore.testing.settings import offline_settings
from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[2]


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return offline_settings(tmp_path, flavors_from=SHIPPED_FLAVORS, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    app = create_app(settings, store=store)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
