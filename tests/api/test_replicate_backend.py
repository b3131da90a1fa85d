"""The API on the replicate provider: the real client against a local fake Replicate server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from litestar.testing import TestClient
from PIL import Image

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.testing.replicate_server import FakeReplicateServer, PredictionFailure

from .conftest import make_settings

TOKEN = "r8_fake_token_for_tests"


def _png(tmp: Path) -> bytes:
    path = tmp / "x.png"
    Image.new("RGB", (64, 64), (200, 40, 90)).save(path)
    return path.read_bytes()


def _mp4(tmp: Path) -> bytes:
    path = tmp / "x.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=64x36:d=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path.read_bytes()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(api_token=TOKEN, default_polls=1) as server:
        png = server.add_asset("out.png", _png(tmp_path), "image/png")
        mp4 = server.add_asset("out.mp4", _mp4(tmp_path), "video/mp4")

        def scenes(inp: dict[str, Any]) -> list[str]:
            count = 6 if "6 scenes" in inp["prompt"] or "exactly 6" in inp["prompt"] else 4
            body = {
                "scenes": [
                    {"description": f"scene {i}", "negative_description": "blur"} for i in range(count)
                ]
            }
            text = json.dumps(body)
            return [text[i : i + 7] for i in range(0, len(text), 7)]  # token stream, like Replicate LLMs

        server.add_model("openai/gpt-4o-mini", scenes)
        server.add_model("google/imagen-4", lambda inp: png)
        server.add_model("google/veo-3.1", lambda inp: mp4)
        yield server


@pytest.fixture
def replicate_client(tmp_path: Path, fake: FakeReplicateServer) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        replicate_api_token=TOKEN,
        replicate_base_url=fake.base_url,
        replicate_poll_interval_s=0.01,
        provider="auto",
    )
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
        yield client


def test_scenes_come_from_the_llm_with_the_flavor_prompt(
    replicate_client: TestClient, fake: FakeReplicateServer
) -> None:
    response = replicate_client.post(
        "/api/mv/create_scenes",
        json={"idea": "a heist", "character_description": "a raccoon", "config_flavor": "example"},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["scenes"]) == 6
    sent = fake.create_requests[-1].json["input"]["prompt"]  # type: ignore[index]
    assert "Write exactly 6 scenes of a short film about: a heist" in sent
    assert "a raccoon" in sent


def test_images_and_video_are_stored_and_the_reference_is_uploaded(
    replicate_client: TestClient, fake: FakeReplicateServer
) -> None:
    images = replicate_client.post(
        "/api/mv/generate_character_reference", json={"character_description": "a raccoon", "num_images": 2}
    ).json()
    assert len(images["images"]) == 2
    assert images["metadata"]["model_used"].startswith("google/imagen-4")
    ref = images["images"][0]["id"]
    assert replicate_client.get(f"/api/mv/get_character_reference/{ref}").content[:4] == b"\x89PNG"
    video = replicate_client.post(
        "/api/mv/generate_video", json={"prompt": "dance", "character_reference_id": ref}
    )
    assert video.status_code == 200, video.text
    body = video.json()
    assert body["metadata"]["backend"] == "replicate"
    assert replicate_client.get(body["video_url"]).content == fake.file_bytes(
        f"{fake.base_url}/assets/out.mp4"
    )
    assert fake.uploads, "the reference image travels as an uploaded file"


def test_content_policy_failure_keeps_the_original_error_code(
    replicate_client: TestClient, fake: FakeReplicateServer
) -> None:
    def refuse(inp: dict[str, Any]) -> Any:
        raise PredictionFailure("NSFW content detected")

    fake.add_model("google/veo-3.1", refuse)
    response = replicate_client.post("/api/mv/generate_video", json={"prompt": "x"})
    assert response.status_code == 400
    assert response.json()["detail"]["error"] == "CONTENT_POLICY_VIOLATION"
    assert TOKEN not in response.text


def test_offline_backend_can_still_be_chosen_per_request(replicate_client: TestClient) -> None:
    response = replicate_client.post(
        "/api/mv/generate_video", json={"prompt": "x", "backend": "offline", "duration": 1}
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["model_used"] == "offline/ffmpeg"
