"""Fixtures for the reliability tests (helpers live in ``tests/reliability/__init__.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _quiet_client_logs() -> Iterator[None]:
    """httpx logs one INFO line per request; thousands of them only bury a failure's real log."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)
