"""A client generated from ``/schema/openapi.json`` (openapi-python-client) drives the quick-gen flow.

If the document drifts from what the server does -- a field renamed, a shape changed, an
operation missing -- the generated, typed client fails to build, to call, or to parse an answer.
The flow is the quick-gen page's: flavors, a song, scenes, one clip per scene (with the page's
``character_reference_id: ""``), the stitch with the song, and the stitched video's bytes,
with auth on (the client sends ``X-API-Key``; the media GET uses the signed URL it was given).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import imageio_ffmpeg
import pytest
from litestar.testing import TestClient
from litestar.testing.transport import TestClientTransport as InProcessTransport

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.media.ffmpeg import probe_sync
from mvcore.testing.settings import offline_settings

REPO = Path(__file__).resolve().parents[2]
KEY = "client-key-" + uuid.uuid4().hex


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = offline_settings(tmp_path / "server", flavors_from=REPO / "flavors", api_key=KEY)
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False, timeout=120) as client:
        yield client


def generate_client(document: dict[str, Any], folder: Path) -> ModuleType:
    """Run the generator on the served document and import the package it writes."""
    package = f"mvcore_client_{uuid.uuid4().hex[:8]}"
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "config.yaml").write_text(f"package_name_override: {package}\npost_hooks: []\n")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json"),
            *("--output-path", str(folder / package), "--meta", "none", "--config", "config.yaml"),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # every JSON operation made it into the client (only the binary media bodies are skipped)
    skipped = [line for line in result.stdout.splitlines() if line.startswith("Cannot parse response")]
    assert all(("video/mp4" in s or "audio/mpeg" in s or "image/png" in s) for s in skipped), skipped
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(folder))


def _api(client_package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{client_package.__name__}.{name}")


def typed_client(package: ModuleType, app_client: TestClient) -> Any:
    """The generated client, building its own httpx.Client (and X-API-Key header).

    Only the transport is Litestar's, so requests reach the app in-process, lifespan and all.
    """
    transport = InProcessTransport(client=app_client, raise_server_exceptions=False)
    return package.AuthenticatedClient(
        base_url=str(app_client.base_url),
        token=KEY,
        prefix="",
        auth_header_name="X-API-Key",
        httpx_args={"transport": transport},
        timeout=httpx.Timeout(120),
    )


def upload_song(package: ModuleType, client: Any, folder: Path) -> Any:
    song_path = folder / "song.mp3"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:d=3",
            str(song_path),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    models = _api(package, "models")
    upload = models.AudioUpload(file=package.types.File(payload=song_path.open("rb"), file_name="song.mp3"))
    song = _api(package, "api.audio.upload_audio").sync(client=client, body=upload)
    assert isinstance(song, models.AudioRecord) and song.duration == pytest.approx(3.0, abs=0.2)
    return song


def clips_for(package: ModuleType, client: Any, scenes: Any) -> list[str]:
    """One clip per scene, with the quick-gen page's body (no reference image: "")."""
    models = _api(package, "models")
    generate_video = _api(package, "api.mv.generate_video")
    clips = []
    for scene in scenes.scenes:
        clip = generate_video.sync(
            client=client,
            body=models.GenerateVideoRequest(
                prompt=scene.description,
                negative_prompt=scene.negative_description,
                character_reference_id="",
                config_flavor="test_flavor",
                duration=1,
            ),
        )
        assert isinstance(clip, models.VideoResult), clip
        clips.append(clip.video_id)
    return clips


def test_a_generated_client_runs_the_quick_gen_flow(app_client: TestClient, tmp_path: Path) -> None:
    document = app_client.get("/schema/openapi.json", headers={"X-API-Key": KEY}).json()
    package = generate_client(document, tmp_path)
    models = _api(package, "models")
    client = typed_client(package, app_client)

    flavors = _api(package, "api.flavors.get_config_flavors").sync(client=client)
    assert isinstance(flavors, models.FlavorNames) and "default" in flavors.flavors
    song = upload_song(package, client, tmp_path)
    scenes = _api(package, "api.mv.create_scenes").sync(
        client=client,
        body=models.CreateScenesRequest(
            idea="a robot learns to dance",
            character_description="a silver robot",
            config_flavor="test_flavor",
        ),
    )
    assert isinstance(scenes, models.ScenesResult), scenes
    assert len(scenes.scenes) == 2 and scenes.metadata.config.flavor_used == "test_flavor"
    clips = clips_for(package, client, scenes)

    stitched = _api(package, "api.mv.stitch_videos").sync(
        client=client,
        body=models.StitchVideosRequest(
            video_ids=clips, audio_overlay_id=song.audio_id, suppress_video_audio=True
        ),
    )
    assert isinstance(stitched, models.StitchResult), stitched
    assert stitched.audio_overlay_applied is True and stitched.metadata.num_clips == 2

    # typed errors: the one Problem schema, naming the field
    refused = _api(package, "api.mv.generate_video").sync(
        client=client, body=models.GenerateVideoRequest(prompt=" ")
    )
    assert isinstance(refused, models.Problem) and refused.detail.error == "ValidationError"

    info = _api(package, "api.media.get_video_info").sync(client=client, video_id=stitched.video_id)
    assert isinstance(info, models.VideoInfo) and info.exists is True
    video = app_client.get(stitched.video_url)  # the signed URL, as a <video src> would fetch it
    assert video.status_code == 200
    path = tmp_path / "final.mp4"
    path.write_bytes(video.content)
    assert probe_sync(path).duration == pytest.approx(2.0, abs=0.3)
