"""Requests are checked against the selected model before any provider call.

On the replicate backend a value the model refuses is a 400 naming the field, the model and the
accepted values, and not a single request reaches the (fake) Replicate server.  On the offline
backend the same request works and says in ``metadata.warnings`` what production would refuse.
The whole quick-gen sequence runs against the fake server with its schema checks on.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.providers.catalogue import register
from mvcore.testing.replicate_server import FakeReplicateServer

from .conftest import make_settings
from .test_replicate_backend import _mp4, _png

TOKEN = "r8_model_request_token"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
TEXT_INPUTS = {"prompt", "negative_prompt", "system_prompt", "video", "audio", "image"}


def _song(tmp: Path) -> bytes:
    path = tmp / "song.mp3"
    subprocess.run(
        [FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(path)],
        check=True,
    )
    return path.read_bytes()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(api_token=TOKEN, default_polls=1) as server:  # schema checks on (default)
        png = server.add_asset("out.png", _png(tmp_path), "image/png")
        mp4 = server.add_asset("out.mp4", _mp4(tmp_path), "video/mp4")

        def scenes(inp: dict[str, Any]) -> list[str]:
            body = {
                "scenes": [{"description": f"scene {i}", "negative_description": "blur"} for i in range(4)]
            }
            return [json.dumps(body)]

        server.add_model("openai/gpt-4o-mini", scenes)
        server.add_model("google/imagen-4", lambda inp: png)
        server.add_model("google/veo-3.1", lambda inp: mp4)
        server.add_model("sync/lipsync-2-pro", lambda inp: mp4)
        yield server


def _add_flavors(root: Path) -> None:
    """Two flavors with values the models refuse (reported by validation, served anyway)."""
    (root / "five").mkdir()
    (root / "five" / "image_params.yaml").write_text("video_model: google/veo-3.1\nvideo_duration: 5\n")
    (root / "webp").mkdir()
    (root / "webp" / "image_params.yaml").write_text("output_format: webp\n")


def _client(tmp_path: Path, **overrides: Any) -> TestClient[Any]:
    settings = make_settings(tmp_path, **overrides)
    _add_flavors(Path(settings.flavors_dirs[0]))
    store = FlavorStore(list(settings.flavors_dirs), register(PluginHost(entry_points=False)))
    return TestClient(create_app(settings, store=store), raise_server_exceptions=False)


@pytest.fixture
def api(tmp_path: Path, fake: FakeReplicateServer) -> Iterator[TestClient[Any]]:
    with _client(
        tmp_path,
        replicate_api_token=TOKEN,
        replicate_base_url=fake.base_url,
        replicate_poll_interval_s=0.01,
        provider="auto",
    ) as client:
        yield client


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[TestClient[Any]]:
    with _client(tmp_path) as client:
        yield client


def replicate_calls(fake: FakeReplicateServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.path.startswith("/v1/")]


# endpoint, body, field, model, accepted values
REFUSED = [
    ("generate_video", {"prompt": "x", "duration": 5}, "duration", "google/veo-3.1", [4, 6, 8]),
    ("generate_video", {"prompt": "x", "duration": 1}, "duration", "google/veo-3.1", [4, 6, 8]),
    ("generate_video", {"prompt": "x", "duration": 10}, "duration", "google/veo-3.1", [4, 6, 8]),
    (
        "generate_video",
        {"prompt": "x", "aspect_ratio": "1:1"},
        "aspect_ratio",
        "google/veo-3.1",
        ["16:9", "9:16"],
    ),
    (
        "generate_video",
        {"prompt": "x", "config_flavor": "five"},
        "image_params.video_duration",
        "google/veo-3.1",
        [4, 6, 8],
    ),
    (
        "generate_character_reference",
        {"character_description": "a fox", "output_format": "webp"},
        "output_format",
        "google/imagen-4",
        ["jpg", "png"],
    ),
    (
        "generate_character_reference",
        {"character_description": "a fox", "output_format": "jpeg"},
        "output_format",
        "google/imagen-4",
        ["jpg", "png"],
    ),
    (
        "generate_character_reference",
        {"character_description": "a fox", "aspect_ratio": "21:9"},
        "aspect_ratio",
        "google/imagen-4",
        ["1:1", "9:16", "16:9", "3:4", "4:3"],
    ),
    (
        "generate_character_reference",
        {"character_description": "a fox", "safety_filter_level": "block_none"},
        "safety_filter_level",
        "google/imagen-4",
        ["block_low_and_above", "block_medium_and_above", "block_only_high"],
    ),
    (
        "generate_character_reference",
        {"character_description": "a fox", "config_flavor": "webp"},
        "image_params.output_format",
        "google/imagen-4",
        ["jpg", "png"],
    ),
]


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("endpoint", "body", "field", "model", "accepted"), REFUSED)
def test_a_value_the_model_refuses_is_a_400_and_nothing_reaches_replicate(
    api: TestClient[Any],
    fake: FakeReplicateServer,
    endpoint: str,
    body: dict[str, Any],
    field: str,
    model: str,
    accepted: list[Any],
    run_async: bool,
) -> None:
    response = api.post(f"/api/mv/{endpoint}", json=body, params={"async": "true"} if run_async else None)
    assert response.status_code == 400, response.text
    assert api.get("/api/mv/jobs").json()["jobs"] == []  # refused before a job existed, also with ?async
    detail = response.json()["detail"]
    assert detail["error"] == "INVALID_INPUT"
    assert detail["details"]["field"] == field
    assert detail["details"]["model"] == model
    assert detail["details"]["accepted"] == accepted
    assert detail["message"].startswith(f"{field}: ")
    assert f"is not accepted by {model} ({', '.join(map(str, accepted))})" in detail["message"]
    assert replicate_calls(fake) == []  # zero calls: no upload, no create


ACCEPTED = [
    *[("generate_video", {"prompt": "x", "duration": d}) for d in (4, 6, 8)],
    ("generate_video", {"prompt": "x", "aspect_ratio": "9:16", "duration": 6}),
    ("generate_video", {"prompt": "x", "generate_audio": False}),
    *[
        ("generate_character_reference", {"character_description": "a fox", "output_format": f})
        for f in ("png", "jpg")
    ],
    *[
        ("generate_character_reference", {"character_description": "a fox", "aspect_ratio": r})
        for r in ("3:4", "9:16")
    ],
    (
        "generate_character_reference",
        {"character_description": "a fox", "safety_filter_level": "block_only_high"},
    ),
]


@pytest.mark.parametrize(("endpoint", "body"), ACCEPTED)
def test_a_value_the_model_accepts_goes_through_and_parameters_used_is_what_was_sent(
    api: TestClient[Any], fake: FakeReplicateServer, endpoint: str, body: dict[str, Any]
) -> None:
    response = api.post(
        f"/api/mv/{endpoint}", json={**body, "num_images": 1} if "character" in endpoint else body
    )
    assert response.status_code == 200, response.text
    sent = fake.create_requests[-1].json["input"]  # type: ignore[index]
    used = response.json()["metadata"]["parameters_used"]
    assert {k: v for k, v in used.items() if k != "model"} == {
        k: v for k, v in sent.items() if k not in TEXT_INPUTS
    }
    for key, value in body.items():
        if key in sent and key not in TEXT_INPUTS:
            assert used[key] == value


def test_keys_the_model_has_no_input_for_are_reported_not_silently_dropped(
    api: TestClient[Any], fake: FakeReplicateServer
) -> None:
    video = api.post("/api/mv/generate_video", json={"prompt": "x", "seed": 7}).json()
    sent = fake.create_requests[-1].json["input"]  # type: ignore[index]
    assert "person_generation" not in sent
    meta = video["metadata"]
    assert meta["parameters_not_sent"] == {"person_generation": "allow_all"}
    assert "person_generation" not in meta["parameters_used"]
    assert meta["parameters_used"]["seed"] == 7 == sent["seed"]


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        ({"prompt": "x", "duration": 1}, "duration: 1 is not accepted by google/veo-3.1 (4, 6, 8)"),
        (
            {"prompt": "x", "aspect_ratio": "1:1", "duration": 4},
            "aspect_ratio: 1:1 is not accepted by google/veo-3.1",
        ),
        (
            {"prompt": "x", "config_flavor": "five"},
            "image_params.video_duration: 5 is not accepted by google/veo-3.1",
        ),
    ],
)
def test_offline_works_for_any_value_and_warns_what_the_real_model_would_refuse(
    offline: TestClient[Any], body: dict[str, Any], warning: str
) -> None:
    response = offline.post("/api/mv/generate_video", json=body)
    assert response.status_code == 200, response.text
    meta = response.json()["metadata"]
    assert meta["model_used"] == "offline/ffmpeg"
    assert any(w.startswith(warning) and "the real model would refuse" in w for w in meta["warnings"])


def test_offline_has_no_warnings_for_values_the_models_accept(offline: TestClient[Any]) -> None:
    video = offline.post("/api/mv/generate_video", json={"prompt": "x", "duration": 4}).json()
    assert "warnings" not in video["metadata"]
    image = offline.post(
        "/api/mv/generate_character_reference", json={"character_description": "a fox", "num_images": 1}
    ).json()
    assert "warnings" not in image["metadata"]


def test_quick_gen_runs_against_the_fake_server_with_schema_checks_on(
    api: TestClient[Any], fake: FakeReplicateServer, tmp_path: Path
) -> None:
    assert fake.validate_inputs and fake.reject_unknown_inputs
    scenes = api.post("/api/mv/create_scenes", json={"idea": "a heist", "character_description": "a raccoon"})
    assert scenes.status_code == 200, scenes.text
    ref = api.post(
        "/api/mv/generate_character_reference", json={"character_description": "a raccoon", "num_images": 1}
    )
    assert ref.status_code == 200, ref.text
    ref_id = ref.json()["images"][0]["id"]
    clips = []
    for scene in scenes.json()["scenes"][:2]:
        clip = api.post(
            "/api/mv/generate_video",
            json={"prompt": scene["description"], "character_reference_id": ref_id, "duration": 8},
        )
        assert clip.status_code == 200, clip.text
        clips.append(clip.json())
    assert fake.create_requests[-1].json["input"]["reference_images"]  # type: ignore[index]
    song = api.post("/api/audio/upload", files={"data": ("song.mp3", _song(tmp_path), "audio/mpeg")})
    assert song.status_code == 200, song.text
    synced = api.post(
        "/api/mv/lipsync",
        json={"video_id": clips[0]["video_id"], "audio_id": song.json()["audio_id"], "start_time": 0.5,
              "end_time": 1.5, "temperature": 0.3},
    )  # fmt: skip
    assert synced.status_code == 200, synced.text
    meta = synced.json()["metadata"]
    lipsync_input = fake.create_requests[-1].json["input"]  # type: ignore[index]
    assert set(lipsync_input) == {"video", "audio", "temperature", "active_speaker"}
    assert meta["parameters_used"]["temperature"] == 0.3 == lipsync_input["temperature"]
    assert meta["parameters_not_sent"] == {"occlusion_detection_enabled": False}
    stitched = api.post(
        "/api/mv/stitch-videos", json={"video_ids": [synced.json()["video_id"], clips[1]["video_id"]]}
    )
    assert stitched.status_code == 200, stitched.text
    models = [r.path.split("/")[3] + "/" + r.path.split("/")[4] for r in fake.create_requests]
    assert models == [
        "openai/gpt-4o-mini",
        "google/imagen-4",
        "google/veo-3.1",
        "google/veo-3.1",
        "sync/lipsync-2-pro",
    ]
    assert all(p["status"] == "succeeded" for p in fake.predictions)  # not one 422 on the way
    assert all("cancel-after" in r.headers for r in fake.create_requests)
