"""MV_DEBUG_MODE: the original's debug events (discovered, selected, full config values, fallback)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore import logs
from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from tests.api.conftest import make_settings

SECRET = "sk-debug-secret-0123456789"


def _events(caplog: pytest.LogCaptureFixture, name: str, level: int = logging.INFO) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mvcore" and r.levelno == level and getattr(r, "event", None) == name
    ]


@pytest.fixture
def debug_client(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[TestClient]:
    caplog.set_level(logging.DEBUG, logger="mvcore")
    settings = make_settings(tmp_path, debug_mode=True, api_key=SECRET)
    # a flavor value that happens to hold the secret must reach the log scrubbed
    example = settings.flavors_dirs[0] / "example" / "parameters.yaml"
    lines = [ln for ln in example.read_text().splitlines() if not ln.startswith("camera_angle:")]
    example.write_text("\n".join([*lines, f"camera_angle: 'close-up {SECRET}'", ""]))
    logs.configure(debug_mode=True, secrets=settings.secrets())  # as the CLI does before the store exists
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    try:
        with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
            client.headers["X-API-Key"] = SECRET
            yield client
    finally:
        logs.configure(debug_mode=False)


def _post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_discovered_flavors_are_logged_at_startup(
    debug_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    setup = caplog.get_records("setup")  # the app (and its store) started in the fixture
    (line,) = [r.getMessage() for r in setup if getattr(r, "event", None) == "config_flavors_discovered"]
    assert [r.levelno for r in setup if getattr(r, "event", None) == "config_flavors_discovered"] == [20]
    assert line == 'config_flavors_discovered flavors=["default", "example", "test_flavor"]'


def test_scene_prompt_time_logs_the_flavor_and_the_full_template_text(
    debug_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    body = {
        "idea": "a cat learns to surf",
        "character_description": "a tabby cat",
        "config_flavor": "example",
    }
    _post(debug_client, "/api/mv/create_scenes", body)
    selected = _events(caplog, "config_flavor_selected")
    assert "config_flavor_selected flavor=example config_type=scene_prompts" in selected
    loaded = "\n".join(_events(caplog, "flavor_config_loaded"))
    template = debug_client.get("/api/mv/flavors/example?type=scene_prompts").json()
    prompt = template["configs"]["scene_prompts"]["values"]["scene_generation_prompt"]
    assert "scene_prompts_config={" in loaded
    assert prompt.splitlines()[0].replace('"', '\\"') in loaded  # the whole text, not only key names
    parameters = re.search(r"parameters_config=(\{.*\})", loaded)
    assert parameters and "close-up ***" in parameters.group(1) and SECRET not in loaded


def test_model_parameters_reach_the_log_for_image_and_video(
    debug_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    _post(debug_client, "/api/mv/generate_character_reference", {"character_description": "a tabby cat"})
    _post(debug_client, "/api/mv/generate_video", {"prompt": "waves at dusk", "duration": 4})
    loaded = "\n".join(_events(caplog, "flavor_config_loaded"))
    for fragment in (
        '"model": "google/imagen-4"',
        '"aspect_ratio": "1:1"',
        '"safety_filter_level": ',
        '"video_model": "google/veo-3.1"',
        '"video_duration": ',
    ):
        assert fragment in loaded


def test_an_unknown_flavor_logs_a_fallback_warning_naming_it(
    debug_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    body = {"idea": "a cat learns to surf", "character_description": "a tabby cat", "config_flavor": "nosuch"}
    assert _post(debug_client, "/api/mv/create_scenes", body)["metadata"]["config"]["fallback"] is True
    (warning,) = _events(caplog, "config_flavor_fallback", logging.WARNING)
    assert warning.startswith("config_flavor_fallback requested_flavor=nosuch fallback=default reason=")


def test_without_debug_mode_the_debug_events_stay_at_debug_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mvcore")
    settings = make_settings(tmp_path)
    logs.configure(debug_mode=False)
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store)) as client:
        _post(
            client,
            "/api/mv/create_scenes",
            {"idea": "a cat learns to surf", "character_description": "a cat"},
        )
    debug_names = {"config_flavors_discovered", "config_flavor_selected", "flavor_config_loaded"}
    records = [r for r in caplog.records if getattr(r, "event", None) in debug_names]
    assert records and all(r.levelno == logging.DEBUG for r in records)
