"""The original's 400 cases for POST /api/mv/projects (same messages, field named), and the other
routes' refusals: bad ids, unknown projects, busy projects, hostile paths."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from PIL import Image

from mvcore.api.app import create_app
from mvcore.testing.settings import offline_settings

from .conftest import form, tiny_flavors, wait_for

LONG = "x" * 2001


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    tiny_flavors(tmp_path, scenes=2)
    with TestClient(create_app(offline_settings(tmp_path)), raise_server_exceptions=False) as made:
        yield made


def song_file(song: Path) -> dict[str, Any]:
    return {"audio": ("song.mp3", song.read_bytes(), "audio/mpeg")}


def post_form(client: TestClient[Any], fields: dict[str, str], files: dict[str, Any] | None = None) -> Any:
    """POST every field as a multipart part, files or not (what a browser's FormData sends; the
    server takes uploads as multipart only -- other bodies must be JSON)."""
    built = httpx.Request(
        "POST", "http://x/", files={**{k: (None, v) for k, v in fields.items()}, **(files or {})}
    )
    return client.post(
        "/api/mv/projects", content=built.read(), headers={"content-type": built.headers["content-type"]}
    )


@pytest.mark.parametrize(
    ("fields", "with_audio", "field", "message"),
    [
        ({"prompt": None}, True, "prompt", "Prompt too short"),
        ({"prompt": "too short"}, True, "prompt", "Prompt too short"),
        ({"prompt": "  \x00\x01 short \x7f "}, True, "prompt", "Prompt too short"),  # control chars stripped
        ({"prompt": LONG}, True, "prompt", "Prompt too long"),
        ({"characterDescription": None}, True, "characterDescription", "Character description too short"),
        (
            {"characterDescription": "a small cat"},
            True,
            "characterDescription",
            "Character description too short",
        ),
        (
            {"characterDescription": "y" * 1001},
            True,
            "characterDescription",
            "Character description too long",
        ),
        ({"productDescription": "z" * 1001}, True, "productDescription", "Product description too long"),
        ({"mode": "podcast"}, True, "mode", "Invalid mode"),
        ({"mode": None}, True, "mode", "Invalid mode"),
        ({"mode": "ad-creative"}, False, "images", "Product images required for ad-creative mode"),
        ({}, False, "audio", "Audio file required for music-video mode"),
        (
            {"characterReferenceImageId": "../../etc/passwd"},
            True,
            "characterReferenceImageId",
            "Invalid character reference ID format",
        ),
        ({"audioId": "not-a-uuid"}, False, "audioId", "Invalid audio ID format"),
    ],
)
def test_creation_refusals_are_the_originals_400s_naming_the_field(
    client: TestClient[Any], song: Path, fields: dict[str, Any], with_audio: bool, field: str, message: str
) -> None:
    response = post_form(client, form(**fields), song_file(song) if with_audio else None)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["error"] == "ValidationError" and detail["message"] == message
    assert detail["details"]["field"] == field and detail["details"]["reason"]
    assert client.get("/api/mv/projects").json()["projects"] == []  # nothing was created


def test_an_unknown_audio_id_or_character_reference_is_refused(client: TestClient[Any]) -> None:
    missing = str(uuid.uuid4())
    response = post_form(client, form(audioId=missing))
    assert response.status_code == 400 and response.json()["detail"]["details"]["field"] == "audioId"
    both = form(audioId=missing, characterReferenceImageId=missing)
    response = post_form(client, both)
    assert response.status_code == 404, response.text


def test_a_song_that_is_not_audio_is_a_400_naming_the_field(client: TestClient[Any]) -> None:
    response = client.post(
        "/api/mv/projects", data=form(), files={"audio": ("song.mp3", b"definitely not audio", "audio/mpeg")}
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"]["details"]["field"] == "audio"


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("GET", "/api/mv/projects/not-a-uuid", 400, "project_id"),
        ("PATCH", "/api/mv/projects/not-a-uuid", 400, "project_id"),
        ("DELETE", "/api/mv/projects/not-a-uuid", 400, "project_id"),
        ("GET", "/api/mv/projects/not-a-uuid/final-video", 400, "project_id"),
        ("POST", "/api/mv/projects/not-a-uuid/compose", 400, "project_id"),
        ("GET", f"/api/mv/projects/{uuid.uuid4()}", 404, "project_id"),
        ("GET", f"/api/mv/projects/{uuid.uuid4()}/events", 404, "project_id"),
        ("POST", f"/api/mv/projects/{uuid.uuid4()}/scenes/1/regenerate", 404, "project_id"),
        ("GET", f"/api/mv/projects/{uuid.uuid4()}/files/..%2F..%2Fprojects.sqlite3", 404, "path"),
        ("GET", f"/api/mv/projects/{uuid.uuid4()}/files/scenes/001/other.mp4", 404, "path"),
    ],
)
def test_bad_ids_and_paths_are_refused(
    client: TestClient[Any], method: str, path: str, status: int, field: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status, response.text
    assert response.json()["detail"]["details"].get("field") == field


def test_patch_compose_and_regenerate_check_their_inputs(client: TestClient[Any], song: Path) -> None:
    created = client.post("/api/mv/projects", data=form(), files=song_file(song))
    assert created.status_code == 201
    project_id = created.json()["projectId"]
    base = f"/api/mv/projects/{project_id}"
    busy = client.post(f"{base}/scenes/1/regenerate")
    assert busy.status_code in (409, 404)  # scenes may not exist yet; never a 5xx
    wait_for(lambda: client.get(base).json()["status"] == "completed", 60, "the project")
    for body, field in (
        ({"status": "done"}, "status"),
        ({"finalOutputS3Key": "https://x/y.mp4"}, "finalOutputS3Key"),
    ):
        response = client.patch(base, json=body)
        assert response.status_code == 400 and response.json()["detail"]["details"]["field"] == field
    assert client.post(f"{base}/scenes/9/regenerate").status_code == 404
    bad = client.post(f"{base}/scenes/1/regenerate", json={"lipsync": "yes"})
    assert bad.status_code == 400 and bad.json()["detail"]["details"]["field"] == "lipsync"
    garbage = client.post(
        f"{base}/scenes/1/regenerate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400
    patched = client.patch(base, json={"status": "failed"})
    assert patched.status_code == 200 and patched.json()["status"] == "failed"
    composed = client.post(f"{base}/compose")
    assert composed.status_code == 200, composed.text  # all scenes completed: the original composes
    assert composed.json()["status"] == "composing" and composed.json()["jobId"]
    wait_for(lambda: client.get(base).json()["status"] == "completed", 60, "the re-composed project")
    assert client.delete(base).status_code == 200
    assert client.get(base).status_code == 404


def test_an_ad_creative_project_needs_no_song_and_skips_lipsync(client: TestClient[Any]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, "PNG")
    response = client.post(
        "/api/mv/projects",
        data=form(mode="ad-creative", productDescription="a red can of soda"),
        files={"images": ("can.png", buffer.getvalue(), "image/png")},
    )
    assert response.status_code == 201, response.text
    base = f"/api/mv/projects/{response.json()['projectId']}"
    body = wait_for(lambda: (b := client.get(base).json())["status"] in ("completed", "failed") and b, 60)
    assert isinstance(body, dict) and body["status"] == "completed", body
    assert all(not s["needsLipSync"] and s["lipSyncedVideoClipUrl"] is None for s in body["scenes"])
    assert client.get(body["productImageUrl"]).content == buffer.getvalue()
    assert client.get(body["finalOutputUrl"]).status_code == 200
