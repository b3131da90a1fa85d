"""Every user mistake is a 4xx with the original error body, never a 500."""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import TestClient


def _detail(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail"}, body
    assert set(body["detail"]) == {"error", "message", "details"}
    return body["detail"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/api/mv/create_scenes", {"idea": "x"}, 422),
        ("/api/mv/create_scenes", {"idea": "x", "character_description": "y", "number_of_scenes": 0}, 422),
        ("/api/mv/create_scenes", {"idea": "", "character_description": "y"}, 400),
        ("/api/mv/generate_character_reference", {"character_description": "y", "num_images": 5}, 422),
        ("/api/mv/generate_character_reference", {"character_description": "y", "output_format": "gif"}, 422),
        ("/api/mv/generate_video", {"prompt": "p", "duration": 0}, 422),
        ("/api/mv/generate_video", {"prompt": "p", "aspect_ratio": "wide"}, 422),
        ("/api/mv/generate_video", {"prompt": "p", "backend": "nosuch"}, 400),
        ("/api/mv/generate_video", {"prompt": "p", "video_rules_template": "{nope}"}, 400),
        ("/api/mv/generate_video", {"prompt": "p", "video_rules_template": "{aspect_ratio"}, 400),
        ("/api/mv/generate_video", {"prompt": "p", "character_reference_id": "../../etc/passwd"}, 400),
        ("/api/mv/generate_video", {"prompt": "p", "character_reference_id": str(uuid.uuid4())}, 404),
    ],
)
def test_bad_generator_requests(
    client: TestClient, path: str, payload: dict[str, object], status: int
) -> None:
    response = client.post(path, json=payload)
    assert response.status_code == status, response.text
    detail = _detail(response)
    assert detail["message"]
    assert "Traceback" not in response.text and "/work/" not in response.text


def test_validation_error_names_the_field(client: TestClient) -> None:
    detail = _detail(client.post("/api/mv/create_scenes", json={"idea": "x"}))
    assert detail["error"] == "VALIDATION_ERROR"
    fields = [e["field"] for e in detail["details"]["errors"]]  # type: ignore[index]
    assert "character_description" in fields


@pytest.mark.parametrize(
    "path",
    [
        "/api/mv/get_video/not-a-uuid",
        "/api/mv/get_video/..%2f..%2fetc%2fpasswd",
        f"/api/mv/get_video/{uuid.uuid4()}",
        "/api/mv/get_character_reference/abc",
        f"/api/mv/get_character_reference/{uuid.uuid4()}",
        f"/api/audio/get/{uuid.uuid4()}",
        "/api/audio/info/zzz",
        f"/api/mv/jobs/{uuid.uuid4()}",
        "/api/mv/nope",
    ],
)
def test_unknown_ids_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    _detail(response)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"idea=x", "application/x-www-form-urlencoded"),
        (b"[]", "application/json"),
    ],
)
def test_unreadable_bodies_are_4xx(client: TestClient, body: bytes, content_type: str) -> None:
    response = client.post("/api/mv/create_scenes", content=body, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500, response.text
    _detail(response)


def test_oversized_json_is_413(tmp_path: object) -> None:
    from mvcore.api.app import create_app

    from .conftest import make_settings

    settings = make_settings(tmp_path, max_json_bytes=1000)  # type: ignore[arg-type]
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        response = test_client.post(
            "/api/mv/create_scenes", json={"idea": "x" * 5000, "character_description": "y"}
        )
        assert response.status_code == 413
        assert _detail(response)["error"] == "PAYLOAD_TOO_LARGE"


def test_auth_rejects_missing_and_wrong_keys(tmp_path: object) -> None:
    from mvcore.api.app import create_app

    from .conftest import make_settings

    settings = make_settings(tmp_path, api_key="k1,k2")  # type: ignore[arg-type]
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        assert test_client.get("/health").status_code == 200
        assert test_client.get("/api/mv/get_config_flavors").status_code == 401
        wrong = test_client.get("/api/mv/get_config_flavors", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and _detail(wrong)["error"] == "UNAUTHORIZED"
        assert test_client.get("/api/mv/get_config_flavors", headers={"X-API-Key": "k2"}).status_code == 200
        # the query parameter only works on media GETs
        assert test_client.get("/api/mv/get_config_flavors", params={"api_key": "k1"}).status_code == 401
        media = test_client.get(f"/api/mv/get_video/{uuid.uuid4()}", params={"api_key": "k1"})
        assert media.status_code == 404
