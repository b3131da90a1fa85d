"""Limits and clear errors (issue 16): each case was a 200 with the wrong result, or a 5xx, before.

* a form posted to a JSON endpoint is a 415 before its body is read (it was parsed: +230 MB RSS);
* 1,100 levels of nested JSON is a 400 (RecursionError in msgspec: 500);
* ``number_of_scenes: true`` / ``"3"`` are 422s naming the field (they gave 1 and 3 scenes);
* ids in bodies must be UUIDs: 400 naming the field (``project_id: "x/scenes.json"`` made folders);
* ``REPLICATE_API_TOKEN=`` (empty) is unset (it crashed startup);
* query credentials in caller URLs are scrubbed from responses, ``/info``, metadata.json, job results;
* HEAD of pages and media is 200 with headers and no body (405); multi-range and unknown range
  units are ignored, 200 (416);
* audio longer than MVCORE_MAX_AUDIO_SECONDS (a 363 KB FLAC of an hour of silence) is a 400 and a
  converted song over MVCORE_MAX_AUDIO_STORED_BYTES a 413, naming the limit.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from litestar.testing import TestClient
from reliability import Listener, LiveServer, make_settings

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings

SCENES = {"idea": "i", "character_description": "c"}
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def open_client(settings: Settings) -> TestClient:
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    return TestClient(create_app(settings, store=store), raise_server_exceptions=False, timeout=60)


def tone(path: Path, seconds: float, *, codec: str = "pcm_s16le", silent: bool = False) -> Path:
    source = "anullsrc=r=8000:cl=mono" if silent else "sine=frequency=440:sample_rate=22050"
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-f", "lavfi", "-t", str(seconds), "-i", source]
    subprocess.run([*cmd, "-c:a", codec, str(path)], capture_output=True, timeout=60, check=True)
    return path


# --------------------------------------------------------------------------- content types and depth
def test_a_form_to_a_json_endpoint_is_415_before_the_body_is_read(tmp_path: Path) -> None:
    """Over a raw socket: 40 MB announced, 1 KB sent -- the 415 comes back without waiting for more."""
    with LiveServer(create_app(make_settings(tmp_path))) as server:
        head = (
            "POST /api/mv/create_scenes HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {40 * 1024 * 1024}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head.encode() + b"--xyz\r\n" + b"a" * 1024)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 415"), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["detail"]["error"] == "UNSUPPORTED_MEDIA_TYPE"


def test_the_upload_still_takes_its_form(client: TestClient, tmp_path: Path) -> None:
    song = tone(tmp_path / "a.wav", 1.0)
    response = client.post("/api/audio/upload", files={"data": ("a.wav", song.read_bytes(), "audio/wav")})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("depth", [65, 1_100, 100_000])
def test_deeply_nested_json_is_400(client: TestClient, depth: int) -> None:
    body = '{"idea": ' + "[" * depth + "]" * depth + ', "character_description": "c"}'
    response = client.post(
        "/api/mv/create_scenes", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "MVCORE_MAX_JSON_DEPTH" in response.json()["detail"]["details"]["hint"]


def test_brackets_inside_strings_are_not_nesting(client: TestClient) -> None:
    body = json.dumps({"idea": "[" * 5000 + '\\"{' * 100, "character_description": "c"})
    response = client.post(
        "/api/mv/create_scenes", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- strict types
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/mv/create_scenes", {**SCENES, "number_of_scenes": True}, "number_of_scenes"),
        ("/api/mv/create_scenes", {**SCENES, "number_of_scenes": "3"}, "number_of_scenes"),
        ("/api/mv/create_scenes", {**SCENES, "number_of_scenes": 2.5}, "number_of_scenes"),
        (
            "/api/mv/generate_character_reference",
            {"character_description": "c", "num_images": "2"},
            "num_images",
        ),
        ("/api/mv/generate_character_reference", {"character_description": "c", "seed": "7"}, "seed"),
        ("/api/mv/generate_video", {"prompt": "p", "duration": "5"}, "duration"),
        ("/api/mv/generate_video", {"prompt": "p", "duration": True}, "duration"),
        ("/api/mv/generate_video", {"prompt": "p", "generate_audio": "true"}, "generate_audio"),
        ("/api/mv/generate_video", {"prompt": "p", "generate_audio": 1}, "generate_audio"),
        (
            "/api/mv/stitch-videos",
            {"video_ids": ["00000000-0000-0000-0000-000000000001"], "suppress_video_audio": "yes"},
            "suppress_video_audio",
        ),
        ("/api/audio/download", {"url": "https://youtu.be/x", "start_time": "1"}, "start_time"),
        ("/api/audio/download", {"url": "https://youtu.be/x", "end_time": False}, "end_time"),
    ],
)
def test_no_type_coercion_422_naming_the_field(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]["details"]["errors"]
    assert [e["field"] for e in errors] == [field], errors


def test_an_integer_is_a_valid_number(client: TestClient) -> None:
    response = client.post("/api/mv/create_scenes", json={**SCENES, "number_of_scenes": 2})
    assert response.status_code == 200 and len(response.json()["scenes"]) == 2, response.text


# --------------------------------------------------------------------------- ids in bodies
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/mv/create_scenes", {**SCENES, "project_id": "x/scenes.json"}, "project_id"),
        ("/api/mv/create_scenes", {**SCENES, "project_id": "../../pwned"}, "project_id"),
        ("/api/mv/create_scenes", {**SCENES, "project_id": "project-1"}, "project_id"),
        (
            "/api/mv/generate_video",
            {"prompt": "p", "character_reference_id": "a/b"},
            "character_reference_id",
        ),
        (
            "/api/mv/lipsync",
            {"video_id": "a/b", "audio_id": "00000000-0000-0000-0000-000000000001"},
            "video_id",
        ),
        (
            "/api/mv/stitch-videos",
            {"video_ids": ["00000000-0000-0000-0000-000000000001", "x"]},
            "video_ids[1]",
        ),
        (
            "/api/mv/stitch-videos",
            {"video_ids": ["00000000-0000-0000-0000-000000000001"], "audio_overlay_id": "y"},
            "audio_overlay_id",
        ),
    ],
)
def test_ids_in_bodies_must_be_uuids(
    client: TestClient, settings: Settings, path: str, body: dict[str, Any], field: str
) -> None:
    before = sorted(settings.data_dir.rglob("*"))
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["error"] == "INVALID_ID" and detail["details"]["field"] == field, detail
    assert sorted(settings.data_dir.rglob("*")) == before


def test_a_uuid_project_id_names_the_scenes_folder(client: TestClient) -> None:
    project = "3f2b8c4e-1d2a-4b5c-9e8f-0a1b2c3d4e5f"
    response = client.post("/api/mv/create_scenes", json={**SCENES, "project_id": project.upper()})
    assert response.status_code == 200, response.text
    assert response.json()["output_files"]["json"] == f"mv/scenes/{project}/scenes.json"


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_replicate_token_means_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", value)
    monkeypatch.setenv("API_KEY", value)
    settings = Settings(data_dir=tmp_path / "data", flavors_dirs=[tmp_path], watch="off")
    assert settings.replicate_api_token is None and not settings.auth_enabled
    assert settings.effective_provider == "offline"
    with open_client(settings) as client:
        assert client.get("/health").json()["provider"] == "offline"


# --------------------------------------------------------------------------- query secrets
SECRET_A, SECRET_B = "sEcReT-aaaa-1111", "sEcReT-bbbb-2222"


def test_query_secrets_in_caller_urls_are_scrubbed_everywhere(tmp_path: Path) -> None:
    wav = tone(tmp_path / "v.wav", 1.5)
    files = Listener(respond=lambda path: (200, {}, wav.read_bytes()))
    host = f"127.0.0.1:{files.port}"
    settings = make_settings(tmp_path, fetch_dangerously_allow_private=[host], fetch_allow_hosts=[host])
    try:
        with open_client(settings) as client:
            clip = client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 1}).json()
            audio_url = f"http://{host}/v.wav?api_key={SECRET_A}&x=1&token={SECRET_B}"
            sync = client.post("/api/mv/lipsync", json={"video_id": clip["video_id"], "audio_url": audio_url})
            assert sync.status_code == 200, sync.text
            queued = client.post(
                "/api/mv/lipsync",
                params={"async": "true"},
                json={"video_id": clip["video_id"], "audio_url": audio_url},
            )
            job_url = queued.json()["status_url"]
            deadline = time.monotonic() + 30
            while (job := client.get(job_url).json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
            song = client.post("/api/audio/download", json={"url": audio_url})
            assert song.status_code == 200, song.text
            seen = {
                "response": sync.text,
                "job": json.dumps(job),
                "info": client.get(f"/api/mv/get_video/{sync.json()['video_id']}/info").text,
                "song": song.text,
                "song info": client.get(f"/api/audio/info/{song.json()['audio_id']}").text,
                "metadata files": " ".join(p.read_text() for p in settings.data_dir.rglob("*.json")),
            }
    finally:
        files.close()
    assert files.paths.count(f"/v.wav?api_key={SECRET_A}&x=1&token={SECRET_B}") == 3  # fetched as given
    for where, text in seen.items():
        assert SECRET_A not in text and SECRET_B not in text, where
    assert "api_key=***&x=1&token=***" in seen["response"] and "token=***" in seen["song info"]


# --------------------------------------------------------------------------- HEAD and ranges
def test_head_of_pages_and_media_is_the_get_without_its_body(client: TestClient, tmp_path: Path) -> None:
    clip = client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 1}).json()
    song = client.post(
        "/api/audio/upload",
        files={"data": ("a.wav", tone(tmp_path / "a.wav", 1.0).read_bytes(), "audio/wav")},
    ).json()
    image = client.post(
        "/api/mv/generate_character_reference", json={"character_description": "c", "num_images": 1}
    )
    urls = ["/", "/create", "/quick-gen", "/flavors", clip["video_url"], song["audio_url"]]
    urls.append(image.json()["images"][0]["url"])
    for url in urls:
        get, head = client.get(url), client.head(url)
        assert head.status_code == 200, (url, head.status_code, head.text)
        assert head.content == b"", url
        assert head.headers["content-type"] == get.headers["content-type"], url
        assert head.headers["content-length"] == str(len(get.content)), url
    assert client.head("/api/mv/get_video/00000000-0000-0000-0000-000000000001").status_code == 404


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=0-0, -1", "items=0-5", "pages=1", "lines 1-2"])
def test_multi_ranges_and_unknown_units_are_ignored(client: TestClient, header: str) -> None:
    clip = client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 1}).json()
    whole = client.get(clip["video_url"]).content
    response = client.get(clip["video_url"], headers={"Range": header})
    assert response.status_code == 200, (header, response.status_code)
    assert response.content == whole and "content-range" not in response.headers


# --------------------------------------------------------------------------- audio caps
def test_an_hour_of_silence_is_refused_before_it_is_converted(client: TestClient, tmp_path: Path) -> None:
    flac = tone(tmp_path / "silence.flac", 3600, codec="flac", silent=True)
    assert flac.stat().st_size < 2_000_000
    response = client.post(
        "/api/audio/upload", files={"data": ("silence.flac", flac.read_bytes(), "audio/flac")}
    )
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["details"]["limit"] == "MVCORE_MAX_AUDIO_SECONDS", detail
    assert "3600 s" in detail["message"]


def test_a_converted_song_over_the_stored_size_cap_is_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_audio_stored_bytes=20_000)
    song = tone(tmp_path / "long.wav", 4.0)
    with open_client(settings) as client:
        response = client.post(
            "/api/audio/upload", files={"data": ("long.wav", song.read_bytes(), "audio/wav")}
        )
        assert response.status_code == 413, response.text
        assert response.json()["detail"]["details"]["limit"] == "MVCORE_MAX_AUDIO_STORED_BYTES"
        assert list(settings.data_dir.rglob("*.mp3")) == []
        short = tone(tmp_path / "short.wav", 0.5)
        ok = client.post("/api/audio/upload", files={"data": ("short.wav", short.read_bytes(), "audio/wav")})
        assert ok.status_code == 200, ok.text
