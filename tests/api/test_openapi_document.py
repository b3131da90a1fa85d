"""The OpenAPI document says what the API does: typed answers, the key scheme, one error schema."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from openapi_spec_validator import validate


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/schema/openapi.json").json()
    return doc


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert len(operations(document)) >= 22


def test_every_success_answer_has_a_named_schema(document: dict[str, Any]) -> None:
    untyped = []
    for method, path, op in operations(document):
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert ok, (method, path)
        for code, response in ok.items():
            for media, content in (response.get("content") or {}).items():
                schema = content.get("schema") or {}
                if media == "application/json" and "$ref" not in schema:
                    untyped.append(f"{method} {path} {code} {media}: {schema}")
    assert not untyped, "\n".join(untyped)


def test_every_error_status_is_the_problem_schema(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["detail"]
    assert set(problem["properties"]["detail"]["required"]) == {"error", "message", "details"}
    for method, path, op in operations(document):
        errors = {c: r for c, r in op["responses"].items() if c == "default" or c[0] in "45"}
        assert {"400", "401", "404", "422", "default"} <= set(errors), (method, path, sorted(errors))
        for code, response in errors.items():
            if code == "416":
                continue  # a range past the end of a media file: an empty media body
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)


def test_the_api_key_scheme_is_declared_and_applied(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {
        "type": "apiKey",
        "name": "X-API-Key",
        "in": "header",
        "description": schemes["ApiKeyHeader"]["description"],
    }
    assert schemes["MediaToken"]["in"] == "query" and schemes["MediaToken"]["name"] == "token"
    assert document["security"] == [{"ApiKeyHeader": []}]
    by_path = {(m, p): op for m, p, op in operations(document)}
    assert by_path[("GET", "/health")]["security"] == [{}]
    media = by_path[("GET", "/api/mv/get_video/{video_id}")]
    assert {"MediaToken": []} in media["security"] and {"ApiKeyHeader": []} in media["security"]
    assert "security" not in by_path[("POST", "/api/mv/create_scenes")]  # the document-wide key


def test_media_answers_are_documented_as_bytes_or_the_cloud_link(document: dict[str, Any]) -> None:
    video = document["paths"]["/api/mv/get_video/{video_id}"]["get"]["responses"]
    assert set(video["200"]["content"]) == {"video/mp4", "application/json"}
    assert video["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CloudVideoLink"
    }
    assert {"206", "302", "416"} <= set(video)
    link = document["components"]["schemas"]["CloudVideoLink"]
    assert set(link["required"]) == {
        "video_id",
        "video_url",
        "storage_backend",
        "expires_in_seconds",
        "cloud_path",
    }


def test_the_stitch_request_documents_the_audio_id_alias(document: dict[str, Any]) -> None:
    stitch = document["components"]["schemas"]["StitchVideosRequest"]["properties"]
    assert "audio_id" in stitch and "alias" in stitch["audio_id"]["description"].lower()
