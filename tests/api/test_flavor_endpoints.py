"""The flavor side of the API: the original list, debug info, and the flavor API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import TestClient


def test_get_config_flavors_lists_shipped_flavors_default_first(client: TestClient) -> None:
    response = client.get("/api/mv/get_config_flavors")
    assert response.status_code == 200
    flavors = response.json()["flavors"]
    assert flavors[0] == "default"
    assert {"default", "example", "test_flavor"} <= set(flavors)


def test_flavor_show_matches_cli_json(client: TestClient, settings: object) -> None:
    api = client.get("/api/mv/flavors/test_flavor").json()
    root = settings.flavors_dirs[0]  # type: ignore[attr-defined]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "mvcore.cli",
            "flavors",
            "show",
            "test_flavor",
            "--json",
            "--flavors-dir",
            str(root),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"MVCORE_PLUGINS": "", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(cli.stdout) == api


def test_flavor_show_reports_every_layer(client: TestClient) -> None:
    body = client.get("/api/mv/flavors/test_flavor").json()
    assert body["flavor_used"] == "test_flavor" and body["fallback"] is False
    prov = body["configs"]["parameters"]["provenance"]
    assert prov["number_of_scenes"]["layer"] == "flavor"
    assert prov["video_type"]["layer"] == "default"
    assert body["configs"]["scene_prompts"]["provenance"]["scene_model"]["layer"] == "builtin"
    for config in body["configs"].values():
        for entry in config["provenance"].values():
            assert entry["file"] is None or Path(entry["file"]).name.endswith(".yaml")


@pytest.mark.parametrize("name", ["nosuch", "Bad Name", "x" * 300])
def test_unknown_flavor_falls_back_to_default(client: TestClient, name: str) -> None:
    body = client.get(f"/api/mv/flavors/{name}").json()
    assert body["flavor_used"] == "default"
    assert body["fallback"] is True


def test_strict_flavor_answers_404_with_did_you_mean(client: TestClient) -> None:
    response = client.get("/api/mv/flavors/exampel", params={"strict_flavor": "true"})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail["error"] == "FLAVOR_NOT_FOUND"
    assert detail["details"]["did_you_mean"] == "example"
    assert "default" in detail["details"]["valid"]


def test_flavor_show_single_type_and_unknown_type(client: TestClient) -> None:
    body = client.get("/api/mv/flavors/example", params={"type": "parameters"}).json()
    assert list(body["configs"]) == ["parameters"]
    assert body["configs"]["parameters"]["values"]["number_of_scenes"] == 6
    response = client.get("/api/mv/flavors/example", params={"type": "nope"})
    assert response.status_code == 404
    assert "parameters" in response.json()["detail"]["details"]["valid"]


def test_flavor_list_and_status(client: TestClient) -> None:
    rows = client.get("/api/mv/flavors").json()["flavors"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["example"]["status"] == "ok"
    assert by_name["example"]["description"]
    status = client.get("/api/mv/flavors/status").json()
    assert status["generation"] >= 1
    assert status["errors"] == []
    assert "loaded_at" in status and "last_reload_seconds" in status


def test_status_shows_file_line_for_a_broken_flavor(client: TestClient, settings: object) -> None:
    root = settings.flavors_dirs[0]  # type: ignore[attr-defined]
    (root / "example" / "parameters.yaml").write_text("number_of_scenes: many\n")
    client.app.state["services"].store.rebuild()
    status = client.get("/api/mv/flavors/status").json()
    texts = [e["text"] for e in status["errors"]]
    assert any("example/parameters.yaml:1: number_of_scenes:" in t for t in texts), texts
    # last good version keeps serving
    assert (
        client.get("/api/mv/flavors/example").json()["configs"]["parameters"]["values"]["number_of_scenes"]
        == 6
    )


def test_config_debug_has_no_secrets(tmp_path: Path) -> None:
    from mvcore.api.app import create_app

    from .conftest import make_settings

    settings = make_settings(
        tmp_path,
        replicate_api_token="r8_supersecrettoken",
        api_key="letmein-key",
        aws_secret_access_key="aws-secret-value-123",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        response = test_client.get("/api/mv/config/debug", headers={"X-API-Key": "letmein-key"})
        assert response.status_code == 200
        text = response.text
        for secret in ("r8_supersecrettoken", "letmein-key", "aws-secret-value-123"):
            assert secret not in text
        assert response.json()["replicate_token_configured"] is True


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    spec = client.get("/schema/openapi.json").json()
    assert "/api/mv/create_scenes" in spec["paths"]
    assert "/api/mv/stitch-videos" in spec["paths"]
