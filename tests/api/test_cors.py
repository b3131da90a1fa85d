"""CORS: the original frontend's dev origin works out of the box; CORS_ORIGINS replaces the list.

Preflight (OPTIONS with Access-Control-Request-Method) and simple requests, from allowed and
refused origins, read from the environment exactly as a deployment sets it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings
from mvcore.testing.settings import offline_settings

REPO = Path(__file__).resolve().parents[2]
FLAVORS = "/api/mv/get_config_flavors"


@contextmanager
def app_with_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str | None) -> Iterator[TestClient]:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    settings = offline_settings(tmp_path, flavors_from=REPO / "flavors")
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
        yield client


def preflight(client: TestClient, origin: str, path: str = "/api/mv/create_scenes") -> object:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )


def test_the_default_is_the_original_frontends_dev_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    assert Settings().cors_origins == ["http://localhost:3000", "http://127.0.0.1:3000"]


@pytest.mark.parametrize(
    ("env", "origin", "allowed"),
    [
        (None, "http://localhost:3000", True),
        (None, "http://127.0.0.1:3000", True),
        (None, "http://localhost:3001", False),
        (None, "https://evil.example", False),
        ("https://app.example.com, http://localhost:5173", "https://app.example.com", True),
        ("https://app.example.com, http://localhost:5173", "http://localhost:5173", True),
        ("https://app.example.com, http://localhost:5173", "http://localhost:3000", False),
        ("https://app.example.com, http://localhost:5173", "https://app.example.com.evil.example", False),
        ("https://app.example.com, http://localhost:5173", "http://app.example.com", False),
    ],
)
def test_preflight_and_simple_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, origin: str, allowed: bool
) -> None:
    with app_with_env(tmp_path, monkeypatch, CORS_ORIGINS=env) as client:
        answer = preflight(client, origin)
        simple = client.get(FLAVORS, headers={"Origin": origin})
    assert simple.status_code == 200  # the server answers; the browser enforces the header
    if allowed:
        assert answer.status_code in (200, 204), answer.text
        assert answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "x-api-key" in answer.headers["access-control-allow-headers"].lower()
        assert simple.headers["access-control-allow-origin"] == origin
    else:
        assert answer.headers.get("access-control-allow-origin") in (None, "null"), dict(answer.headers)
        assert "access-control-allow-origin" not in simple.headers, dict(simple.headers)


def test_preflight_needs_no_key_but_the_request_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    origin = "http://localhost:3000"
    with app_with_env(tmp_path, monkeypatch, CORS_ORIGINS=None, API_KEY="cors-key-123") as client:
        answer = preflight(client, origin)
        assert answer.status_code in (200, 204) and answer.headers["access-control-allow-origin"] == origin
        refused = client.get(FLAVORS, headers={"Origin": origin})
        assert refused.status_code == 401
        assert refused.headers.get("access-control-allow-origin") == origin  # the page can read the 401
        accepted = client.get(FLAVORS, headers={"Origin": origin, "X-API-Key": "cors-key-123"})
        assert accepted.status_code == 200 and accepted.headers["access-control-allow-origin"] == origin


def test_an_empty_setting_turns_cors_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with app_with_env(tmp_path, monkeypatch, CORS_ORIGINS="") as client:
        answer = preflight(client, "http://localhost:3000")
        simple = client.get(FLAVORS, headers={"Origin": "http://localhost:3000"})
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in simple.headers
