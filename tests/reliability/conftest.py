"""Fixtures for the reliability tests (helpers live in ``tests/reliability/__init__.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from . import Listener


@pytest.fixture(autouse=True)
def _quiet_client_logs() -> Iterator[None]:
    """httpx logs one INFO line per request; thousands of them only bury a failure's real log."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def make_listener() -> Iterator[Any]:
    """``make_listener(respond=None, body=b"ok")``: a :class:`Listener` closed after the test."""
    made: list[Listener] = []

    def make(respond: Any = None, body: bytes = b"ok") -> Listener:
        made.append(Listener(respond, body))
        return made[-1]

    try:
        yield make
    finally:
        for listener in made:
            listener.close()
