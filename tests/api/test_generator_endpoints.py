"""Generator endpoints on the offline provider: original fields, flavor metadata, real media."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from PIL import Image

from mvcore.media.ffmpeg import probe_sync

SCENES = {"idea": "a cat learns to surf", "character_description": "an orange tabby cat"}


def _config(body: dict[str, Any]) -> dict[str, Any]:
    return body["metadata"]["config"]


@pytest.mark.parametrize(
    ("flavor", "used", "fallback", "scenes"),
    [
        (None, "default", False, 4),
        ("example", "example", False, 6),
        ("test_flavor", "test_flavor", False, 2),
        ("nosuch", "default", True, 4),
    ],
)
def test_create_scenes_uses_the_flavor(
    client: TestClient, flavor: str | None, used: str, fallback: bool, scenes: int
) -> None:
    payload = dict(SCENES, **({"config_flavor": flavor} if flavor else {}))
    response = client.post("/api/mv/create_scenes", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["scenes"]) == scenes
    for scene in body["scenes"]:
        assert scene["description"] and scene["negative_description"]
    config = _config(body)
    assert config["flavor_requested"] == flavor
    assert config["flavor_used"] == used
    assert config["fallback"] is fallback
    assert config["generation"] >= 1
    assert body["metadata"]["parameters_used"]["number_of_scenes"] == scenes
    assert set(body["output_files"]) == {"json", "markdown"}


def test_create_scenes_request_values_win_over_flavor(client: TestClient) -> None:
    body = client.post(
        "/api/mv/create_scenes",
        json=dict(SCENES, config_flavor="example", number_of_scenes=3, camera_angle="top"),
    ).json()
    assert len(body["scenes"]) == 3
    assert "top angle" in body["scenes"][0]["description"]
    assert body["metadata"]["parameters_used"]["video_type"] == "short film"


@pytest.mark.parametrize(
    ("aspect", "fmt", "ratio"), [("1:1", "png", 1.0), ("16:9", "jpeg", 16 / 9), ("9:16", "webp", 9 / 16)]
)
def test_character_reference_images_decode_with_right_aspect(
    client: TestClient, aspect: str, fmt: str, ratio: float
) -> None:
    response = client.post(
        "/api/mv/generate_character_reference",
        json={
            "character_description": "a robot bard",
            "num_images": 2,
            "aspect_ratio": aspect,
            "output_format": fmt,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["images"]) == 2
    for image in body["images"]:
        assert set(image) >= {"id", "path", "cloud_url"}
        got = client.get(f"/api/mv/get_character_reference/{image['id']}")
        assert got.status_code == 200
        decoded = Image.open(io.BytesIO(got.content))
        decoded.load()
        assert decoded.width / decoded.height == pytest.approx(ratio, rel=0.02)
    assert _config(body)["flavor_used"] == "default"


def test_character_reference_defaults_to_four_images(client: TestClient) -> None:
    body = client.post("/api/mv/generate_character_reference", json={"character_description": "x"}).json()
    assert len(body["images"]) == 4


@pytest.mark.parametrize(("aspect", "audio"), [("16:9", True), ("9:16", False)])
def test_generate_video_is_a_real_mp4(client: TestClient, settings: Any, aspect: str, audio: bool) -> None:
    response = client.post(
        "/api/mv/generate_video",
        json={
            "prompt": "a cat surfing",
            "duration": 2,
            "aspect_ratio": aspect,
            "generate_audio": audio,
            "character_reference_id": "",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["video_url"] == f"/api/mv/get_video/{body['video_id']}"
    assert body["video_path"] == f"mv/jobs/{body['video_id']}/video.mp4"
    assert body["metadata"]["parameters_used"]["duration"] == 2
    got = client.get(body["video_url"])
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("video/mp4")
    path = Path(settings.data_dir) / "local_probe.mp4"
    path.write_bytes(got.content)
    info = probe_sync(path)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.has_audio is audio
    assert info.width is not None and info.height is not None
    expected = 16 / 9 if aspect == "16:9" else 9 / 16
    assert info.width / info.height == pytest.approx(expected, rel=0.03)
    meta = client.get(f"{body['video_url']}/info").json()
    assert meta["metadata"]["video_id"] == body["video_id"]


def test_generate_video_with_reference_and_flavor_duration(client: TestClient) -> None:
    images = client.post(
        "/api/mv/generate_character_reference", json={"character_description": "x", "num_images": 1}
    ).json()["images"]
    body = client.post(
        "/api/mv/generate_video",
        json={
            "prompt": "p",
            "character_reference_id": images[0]["id"],
            "config_flavor": "example",
            "generate_audio": False,
        },
    ).json()
    assert body["metadata"]["parameters_used"]["duration"] == 6  # example's video_duration
    assert body["metadata"]["character_reference_id"] == images[0]["id"]
    assert "Frame for a 16:9" in body["metadata"]["full_prompt"]


def test_original_frontend_sequence_runs_end_to_end(client: TestClient) -> None:
    flavors = client.get("/api/mv/get_config_flavors").json()["flavors"]
    flavor = "test_flavor" if "test_flavor" in flavors else "default"
    images = client.post(
        "/api/mv/generate_character_reference",
        json={"character_description": "a fox", "num_images": 1, "config_flavor": flavor},
    ).json()
    ref = images["images"][0]["id"]
    scenes = client.post(
        "/api/mv/create_scenes",
        json={"idea": "a fox in the city", "character_description": "a fox", "config_flavor": flavor},
    ).json()["scenes"]
    assert len(scenes) == 2
    for scene in scenes:
        video = client.post(
            "/api/mv/generate_video",
            json={
                "prompt": scene["description"],
                "negative_prompt": scene["negative_description"],
                "character_reference_id": ref,
                "config_flavor": flavor,
                "duration": 1,
            },
        ).json()
        assert video["metadata"]["config"]["flavor_used"] == flavor
        assert client.get(video["video_url"]).status_code == 200
