"""The flavor editor API: off by default, validate without writing, refuse invalid saves
(file byte-identical), history with restore, writes only inside the flavor roots."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings

from .conftest import make_settings


def open_client(settings: Settings) -> TestClient[Any]:
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    return TestClient(create_app(settings, store=store), raise_server_exceptions=False)


@pytest.fixture
def editing(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, flavor_editing=True, flavor_history=3)


@pytest.fixture
def client(editing: Settings) -> Iterator[TestClient[Any]]:
    with open_client(editing) as test_client:
        yield test_client


def tree_state(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes (to prove nothing changed)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_editing_is_off_by_default(tmp_path: Path) -> None:
    with open_client(make_settings(tmp_path)) as client:
        assert client.get("/api/mv/flavors/editor").json()["enabled"] is False
        for method, path, body in [
            ("GET", "/api/mv/flavors/example/files", None),
            ("POST", "/api/mv/flavors/example/validate", {"files": {"parameters.yaml": ""}}),
            ("PUT", "/api/mv/flavors/example/files/parameters.yaml", {"content": "camera_angle: x\n"}),
        ]:
            response = client.request(method, path, json=body)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["detail"]["error"] == "FLAVOR_EDITING_DISABLED"
            assert "MVCORE_FLAVOR_EDITING=true" in response.text


def test_validate_answers_file_line_errors_and_writes_nothing(
    client: TestClient[Any], editing: Settings
) -> None:
    root = editing.flavors_dirs[0]
    before = tree_state(root.parent)
    response = client.post(
        "/api/mv/flavors/example/validate",
        json={"files": {"parameters.yaml": "camera_angle: wide\nnumber_of_scnes: 3\n"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["errors"][0]["text"].startswith("flavors/example/parameters.yaml:2: number_of_scnes:")
    assert "did you mean 'number_of_scenes'" in body["errors"][0]["text"]
    assert tree_state(root.parent) == before
    ok = client.post(
        "/api/mv/flavors/example/validate", json={"files": {"parameters.yaml": "camera_angle: x\n"}}
    )
    assert ok.json()["ok"] is True and ok.json()["status"] == "ok"


def test_validate_checks_the_extends_chain_too(client: TestClient[Any]) -> None:
    response = client.post(
        "/api/mv/flavors/example/validate", json={"files": {"flavor.yaml": "extends: test_flavr\n"}}
    )
    body = response.json()
    assert body["ok"] is False
    assert (
        "parent flavor 'test_flavr' does not exist; did you mean 'test_flavor'?" in body["errors"][0]["text"]
    )
    assert body["errors"][0]["text"].startswith("flavors/example/flavor.yaml:1:")


@pytest.mark.parametrize(
    "content",
    [
        "camera_angle: [unclosed\n",
        "number_of_scenes: many\n",
        "camera_angle: 3\n",
        "extra_key: 1\n",
        "- a list\n",
    ],
)
def test_an_invalid_save_is_refused_and_the_file_stays_byte_identical(
    client: TestClient[Any], editing: Settings, content: str
) -> None:
    path = editing.flavors_dirs[0] / "example" / "parameters.yaml"
    before, stat_before = path.read_bytes(), path.stat()
    generation = client.get("/api/mv/flavors/status").json()["generation"]
    response = client.put("/api/mv/flavors/example/files/parameters.yaml", json={"content": content})
    assert response.status_code == 422, response.text
    assert "was not saved" in response.json()["detail"]["message"]
    assert response.json()["detail"]["details"]["errors"][0]["file"] == "flavors/example/parameters.yaml"
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stat_before.st_mtime_ns and path.stat().st_ino == stat_before.st_ino
    assert client.get("/api/mv/flavors/status").json()["generation"] == generation
    history = client.get("/api/mv/flavors/example/files/parameters.yaml/history").json()["entries"]
    assert history == []
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_valid_save_is_live_at_once_and_history_restores_the_previous_version(
    client: TestClient[Any], editing: Settings
) -> None:
    path = editing.flavors_dirs[0] / "example" / "parameters.yaml"
    original = path.read_text()
    generation = client.get("/api/mv/flavors/status").json()["generation"]
    saved = client.put(
        "/api/mv/flavors/example/files/parameters.yaml", json={"content": "camera_angle: tilted\n"}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["generation"] == generation + 1
    assert path.read_text() == "camera_angle: tilted\n"
    shown = client.get("/api/mv/flavors/example").json()["configs"]["parameters"]["values"]
    assert shown["camera_angle"] == "tilted"
    [entry] = client.get("/api/mv/flavors/example/files/parameters.yaml/history").json()["entries"]
    version = client.get(f"/api/mv/flavors/example/files/parameters.yaml/history/{entry['id']}").json()
    assert version["content"] == original
    restored = client.post(f"/api/mv/flavors/example/files/parameters.yaml/history/{entry['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert path.read_text() == original
    entries = client.get("/api/mv/flavors/example/files/parameters.yaml/history").json()["entries"]
    assert len(entries) == 2  # restoring is a save too: the tilted version can come back


def test_history_keeps_the_last_n_saves(client: TestClient[Any]) -> None:
    for index in range(6):
        response = client.put(
            "/api/mv/flavors/example/files/parameters.yaml", json={"content": f"camera_angle: a{index}\n"}
        )
        assert response.status_code == 200, response.text
    entries = client.get("/api/mv/flavors/example/files/parameters.yaml/history").json()["entries"]
    assert len(entries) == 3  # MVCORE_FLAVOR_HISTORY=3
    contents = [
        client.get(f"/api/mv/flavors/example/files/parameters.yaml/history/{e['id']}").json()["content"]
        for e in entries
    ]
    assert contents == ["camera_angle: a4\n", "camera_angle: a3\n", "camera_angle: a2\n"]  # newest first


def test_a_new_file_can_be_created_in_a_flavor(client: TestClient[Any], editing: Settings) -> None:
    path = editing.flavors_dirs[0] / "test_flavor" / "lipsync_params.yaml"
    assert not path.exists()
    response = client.put(
        "/api/mv/flavors/test_flavor/files/lipsync_params.yaml", json={"content": "temperature: 0.1\n"}
    )
    assert response.status_code == 200, response.text
    assert path.read_text() == "temperature: 0.1\n"


@pytest.mark.parametrize(
    ("flavor", "filename"),
    [
        ("example", "..%2F..%2Fevil.yaml"),
        ("example", "..%2Fdefault%2Fparameters.yaml"),
        ("example", "%2Fetc%2Fpasswd"),
        ("example", ".parameters.yaml"),
        ("example", "parameters.yaml%00.txt"),
        ("example", "parameters.yml"),
        ("example", "notes.txt"),
        ("example", "PARAMETERS.yaml"),
        ("..", "parameters.yaml"),
        ("%2E%2E", "parameters.yaml"),
        ("example%2F..%2F..", "parameters.yaml"),
        ("Example", "parameters.yaml"),
        ("no-such-flavor", "parameters.yaml"),
    ],
)
def test_writes_stay_inside_the_flavor_roots(
    client: TestClient[Any], editing: Settings, tmp_path: Path, flavor: str, filename: str
) -> None:
    before = tree_state(tmp_path)
    response = client.put(f"/api/mv/flavors/{flavor}/files/{filename}", json={"content": "camera_angle: x\n"})
    assert response.status_code in (400, 404), response.text
    assert response.json()["detail"]["message"]
    after = tree_state(tmp_path)
    assert after == before


def test_builtin_default_without_a_directory_is_not_editable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, flavor_editing=True)
    empty = tmp_path / "empty-root"
    empty.mkdir()
    settings = settings.model_copy(update={"flavors_dirs": [empty]})
    with open_client(settings) as client:
        response = client.put(
            "/api/mv/flavors/default/files/parameters.yaml", json={"content": "camera_angle: x\n"}
        )
        assert response.status_code == 404
        assert "not an editable flavor directory" in response.text
    assert list(empty.iterdir()) == []


def test_with_auth_on_the_editor_needs_the_api_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, flavor_editing=True, api_key="s3cret-key")
    with open_client(settings) as client:
        body = {"content": "camera_angle: x\n"}
        assert client.put("/api/mv/flavors/example/files/parameters.yaml", json=body).status_code == 401
        assert client.post("/api/mv/flavors/example/validate", json={"files": {}}).status_code == 401
        ok = client.put(
            "/api/mv/flavors/example/files/parameters.yaml", json=body, headers={"X-API-Key": "s3cret-key"}
        )
        assert ok.status_code == 200, ok.text


def test_the_preview_of_a_draft_shows_the_draft_values_and_its_errors(client: TestClient[Any]) -> None:
    body = {
        "idea": "x",
        "character_description": "y",
        "files": {"parameters.yaml": "camera_angle: upside down\n"},
    }
    response = client.post("/api/mv/flavors/example/render", json=body)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert "upside down" in preview["generators"]["create_scenes"]["prompt"]
    assert preview["draft"]["ok"] is True
    body["files"] = {"parameters.yaml": "camera_angle: ok\nnumber_of_scenes: many\n"}
    broken = client.post("/api/mv/flavors/example/render", json=body).json()
    assert broken["draft"]["ok"] is False and broken["draft"]["errors"][0]["line"] == 2
    # an invalid draft is judged like a reload: the preview shows the values still served
    assert "upside down" not in broken["generators"]["create_scenes"]["prompt"]
