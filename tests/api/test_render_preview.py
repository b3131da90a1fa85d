"""The prompt preview shows exactly what the generators send: compared with what a fake
Replicate server receives from the real ``replicate`` client for the same inputs."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.hookspecs import hookimpl
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.providers.catalogue import register
from mvcore.testing.replicate_server import FakeReplicateServer

from .conftest import make_settings
from .test_replicate_backend import TOKEN, _mp4, fake  # noqa: F401  (fixture)

FILE_URL = re.compile(r"^http://127\.0\.0\.1:\d+/v1/files/[^/]+$")
OVERRIDES = {"parameters": {"camera_angle": "from the ceiling"}, "lipsync_params": {"temperature": 0.25}}


def _mp3(tmp: Path) -> Path:
    path = tmp / "song.mp3"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=3", str(path)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture
def client(tmp_path: Path, fake: FakeReplicateServer) -> Iterator[TestClient[Any]]:  # noqa: F811
    fake.add_model("sync/lipsync-2-pro", lambda inp: fake.add_asset("lip.mp4", _mp4(tmp_path), "video/mp4"))
    settings = make_settings(
        tmp_path,
        replicate_api_token=TOKEN,
        replicate_base_url=fake.base_url,
        replicate_poll_interval_s=0.01,
        provider="auto",
    )
    root = settings.flavors_dirs[0]
    (root / "child").mkdir()
    (root / "child" / "flavor.yaml").write_text("description: a child of example\nextends: example\n")
    (root / "child" / "image_params.yaml").write_text("video_duration: 8\naspect_ratio: '3:4'\n")
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as test_client:
        yield test_client


def render(client: TestClient[Any], **body: Any) -> dict[str, Any]:
    response = client.post("/api/mv/flavors/child/render", json=body)
    assert response.status_code == 200, response.text
    generators: dict[str, Any] = response.json()["generators"]
    return generators


def sent(server: FakeReplicateServer, since: int) -> list[tuple[str, dict[str, Any]]]:
    """(model, input) of every prediction created after the first ``since`` requests."""
    out = []
    for request in server.requests[since:]:
        match = re.fullmatch(r"/v1/models/([^/]+/[^/]+)/predictions", request.path)
        if request.method == "POST" and match:
            out.append((match.group(1), request.json["input"]))
    return out


def same_with_files(preview: dict[str, Any], received: dict[str, Any]) -> None:
    """Equal, where each file placeholder of the preview is an uploaded file's URL on the wire."""
    assert set(preview) == set(received)
    for key, value in preview.items():
        if isinstance(value, str) and value.startswith("<file: "):
            assert FILE_URL.match(received[key]), (key, received[key])
        elif isinstance(value, list) and value and str(value[0]).startswith("<file: "):
            assert all(FILE_URL.match(v) for v in received[key]), (key, received[key])
        else:
            assert received[key] == value, key


def test_the_preview_equals_what_replicate_receives_for_every_generator(
    client: TestClient[Any],
    fake: FakeReplicateServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    inputs = {"idea": "a heist at a bakery", "character_description": "a raccoon in a cap"}
    common = {"config_flavor": "child", "config_overrides": OVERRIDES}
    requests = {
        "generate_character_reference": {"num_images": 2, "seed": 7, "negative_prompt": "blurry"},
        "generate_video": {"seed": 3, "negative_prompt": "text"},
        "lipsync": {"temperature": None, "active_speaker_detection": True},
    }
    preview = render(client, **inputs, video_prompt="the raccoon sneaks in", config_overrides=OVERRIDES,
                     requests=requests)  # fmt: skip

    mark = len(fake.requests)
    response = client.post("/api/mv/create_scenes", json={**inputs, **common})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["config"]["overrides"] == OVERRIDES
    [(model, received)] = sent(fake, mark)
    scenes = preview["create_scenes"]
    assert (model, received) == (scenes["replicate"]["model"], scenes["replicate"]["inputs"][0])
    assert "from the ceiling" in received["prompt"]  # the override reached the prompt

    mark = len(fake.requests)
    body = {
        "character_description": inputs["character_description"],
        **requests["generate_character_reference"],
    }
    response = client.post("/api/mv/generate_character_reference", json={**body, **common})
    assert response.status_code == 200, response.text
    reference_id = response.json()["images"][0]["id"]
    images = sent(fake, mark)
    character = preview["generate_character_reference"]
    assert sorted(images, key=lambda r: r[1]["prompt"] + str(r[1].get("seed"))) == sorted(
        ((character["replicate"]["model"], i) for i in character["replicate"]["inputs"]),
        key=lambda r: r[1]["prompt"] + str(r[1].get("seed")),
    )
    assert {i["aspect_ratio"] for _, i in images} == {"3:4"}  # from the child's own file

    mark = len(fake.requests)
    video_body = {"prompt": "the raccoon sneaks in", "character_reference_id": reference_id}
    response = client.post(
        "/api/mv/generate_video", json={**video_body, **requests["generate_video"], **common}
    )
    assert response.status_code == 200, response.text
    video_id = response.json()["video_id"]
    [(model, received)] = sent(fake, mark)
    with_reference = render(
        client, **inputs, video_prompt="the raccoon sneaks in", config_overrides=OVERRIDES,
        requests={"generate_video": {**requests["generate_video"], "character_reference_id": reference_id}},
    )["generate_video"]  # fmt: skip
    assert model == with_reference["replicate"]["model"]
    same_with_files(with_reference["replicate"]["inputs"][0], received)
    assert received["prompt"] == with_reference["prompt"]

    song = _mp3(tmp_path)
    upload = client.post("/api/audio/upload", files={"data": ("song.mp3", song.read_bytes(), "audio/mpeg")})
    assert upload.status_code == 200, upload.text
    mark = len(fake.requests)
    lipsync_body = {
        "video_id": video_id,
        "audio_id": upload.json()["audio_id"],
        "active_speaker_detection": True,
    }
    response = client.post("/api/mv/lipsync", json={**lipsync_body, **common})
    assert response.status_code == 200, response.text
    [(model, received)] = sent(fake, mark)
    lipsync = preview["lipsync"]
    assert model == lipsync["replicate"]["model"]
    same_with_files(lipsync["replicate"]["inputs"][0], received)
    assert received["temperature"] == 0.25


def test_the_preview_names_where_every_template_and_value_came_from(client: TestClient[Any]) -> None:
    preview = render(client, idea="x", character_description="y", config_overrides=OVERRIDES)
    scenes = preview["create_scenes"]["provenance"]
    assert scenes["idea"]["layer"] == "input"
    assert scenes["camera_angle"] == {"source": "parameters.camera_angle", "layer": "request", "file": None,
                                      "line": None}  # fmt: skip
    assert scenes["template"]["layer"] == "flavor:example"
    assert scenes["template"]["file"].endswith("flavors/example/scene_prompts.yaml")
    video = preview["generate_video"]["provenance"]
    assert video["duration"]["layer"] == "flavor" and video["duration"]["file"].endswith(
        "child/image_params.yaml"
    )
    assert video["template"]["source"] == "image_params.video_rules_template"
    for generator in preview.values():
        for name, prov in generator["provenance"].items():
            if prov["file"]:
                text = Path(prov["file"]).read_text()
                assert prov["source"].partition(".")[2].split(".")[0] + ":" in text, (name, prov)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"parameters": {"camera_angel": "x"}}, 422, "did you mean 'camera_angle'"),
        ({"paramters": {"camera_angle": "x"}}, 422, "did you mean 'parameters'"),
        ({"parameters": {"number_of_scenes": "many"}}, 422, "config_overrides.parameters.number_of_scenes"),
        ({"parameters": {"number_of_scenes": 99}}, 422, "greater than the maximum of 32"),
        ({"image_params": {"video_model": "someone/expensive"}}, 400, "does not allow overriding"),
        ({"parameters": "wide"}, 422, "config_overrides"),
    ],
)
def test_config_overrides_that_the_schema_or_the_server_refuses_are_named(
    client: TestClient[Any], body: Any, status: int, words: str
) -> None:
    response = client.post(
        "/api/mv/create_scenes", json={"idea": "a", "character_description": "b", "config_overrides": body}
    )
    assert response.status_code == status, response.text
    assert words in response.text


def test_unknown_flavors_are_404_in_the_preview_with_did_you_mean(client: TestClient[Any]) -> None:
    response = client.post("/api/mv/flavors/exampel/render", json={"idea": "a", "character_description": "b"})
    assert response.status_code == 404
    assert response.json()["detail"]["details"]["did_you_mean"] == "example"


def test_the_preview_filters_inputs_by_a_plugins_model_as_the_provider_does(tmp_path: Path) -> None:
    """A model a plugin adds is in the preview's catalogue too (it was the shipped one only)."""

    class AcmeClip:
        @hookimpl
        def mvcore_models(self) -> list[dict[str, Any]]:
            properties = {"prompt": {"type": "string"}, "duration": {"type": "integer", "enum": [3]}}
            schema = {"type": "object", "properties": properties}
            return [{"name": "acme/clip", "input_schema": schema, "source": "t", "retrieved": "2026-12-01"}]

    settings = make_settings(tmp_path, flavor_editing=True)
    root = settings.flavors_dirs[0]
    (root / "acme").mkdir()
    (root / "acme" / "image_params.yaml").write_text("video_model: acme/clip\nvideo_duration: 3\n")
    host = PluginHost(entry_points=False)
    host.register(AcmeClip(), "acme")
    store = FlavorStore(list(settings.flavors_dirs), register(host))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
        body = {"idea": "a fox", "character_description": "red"}
        response = client.post("/api/mv/flavors/acme/render", json=body)
    assert response.status_code == 200, response.text
    video = response.json()["generators"]["generate_video"]["replicate"]
    assert video["model"] == "acme/clip"
    assert set(video["inputs"][0]) == {"prompt", "duration"}, video["inputs"][0]
