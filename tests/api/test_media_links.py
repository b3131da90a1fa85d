"""Signed media links: with auth on, the URLs we return play as given, for that object only, briefly.

Driven through the app like a browser would: answers' ``video_url``/``audio_url``/image ``url``
are fetched without ``X-API-Key``; tokens moved to another object, tampered with, expired, used on
a JSON route or with another method are refused; and no token reaches a log line.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.api.media_links import MediaLinks
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings
from mvcore.testing.settings import offline_settings

REPO = Path(__file__).resolve().parents[2]

KEY = "media-key-" + uuid.uuid4().hex
HEADERS = {"X-API-Key": KEY}
TOKEN = re.compile(r"\?token=(\d+)\.([A-Za-z0-9_-]{43})$")


def make_song(tmp_path: Path) -> bytes:
    path = tmp_path / "song.wav"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            str(path),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return path.read_bytes()


def secured_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return offline_settings(tmp_path, flavors_from=REPO / "flavors", api_key=KEY, **overrides)


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[TestClient]:
    secured = secured_settings(tmp_path)
    store = FlavorStore(list(secured.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(secured, store=store), raise_server_exceptions=False) as client:
        yield client


def _video(client: TestClient, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/mv/generate_video", json={"prompt": "x", "duration": 1, **extra}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_returned_urls_carry_a_token_and_play_without_the_key(auth: TestClient, tmp_path: Path) -> None:
    video = _video(auth)
    assert TOKEN.search(video["video_url"]), video["video_url"]
    assert video["video_url"].startswith(f"/api/mv/get_video/{video['video_id']}?token=")
    played = auth.get(video["video_url"], headers={"Range": "bytes=0-99"})
    assert played.status_code == 206 and len(played.content) == 100

    song = auth.post(
        "/api/audio/upload", files={"file": ("s.wav", make_song(tmp_path))}, headers=HEADERS
    ).json()
    assert auth.get(song["audio_url"]).headers["content-type"].startswith("audio/mpeg")
    info = auth.get(f"/api/audio/info/{song['audio_id']}", headers=HEADERS).json()
    assert auth.get(info["audio_url"]).status_code == 200  # info hands out a fresh link too

    images = auth.post(
        "/api/mv/generate_character_reference",
        json={"character_description": "c", "num_images": 1},
        headers=HEADERS,
    ).json()["images"]
    assert auth.get(images[0]["url"]).content[:4] == b"\x89PNG"
    # metadata links are signed as well; stored records are not changed by signing
    assert TOKEN.search(video["metadata"]["local_video_url"])
    stored = auth.get(f"/api/mv/get_video/{video['video_id']}/info", headers=HEADERS).json()
    assert TOKEN.search(stored["video_url"]) and stored["metadata"]["local_video_url"].count("?token=") == 1


def test_job_results_carry_signed_links(auth: TestClient) -> None:
    queued = auth.post(
        "/api/mv/generate_video?async=true", json={"prompt": "x", "duration": 1}, headers=HEADERS
    ).json()
    deadline = time.monotonic() + 60
    while True:
        job = auth.get(queued["status_url"], headers=HEADERS).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert auth.get(job["result"]["video_url"]).status_code == 200


def test_a_token_opens_only_its_own_object(auth: TestClient) -> None:
    first, second = _video(auth), _video(auth)
    token = first["video_url"].split("?", 1)[1]
    moved = auth.get(f"/api/mv/get_video/{second['video_id']}?{token}")
    assert moved.status_code == 401 and moved.json()["detail"]["error"] == "UNAUTHORIZED"
    # not the same id in another media route, nor the JSON info of the same video
    assert auth.get(f"/api/mv/get_character_reference/{first['video_id']}?{token}").status_code == 401
    assert auth.get(f"/api/mv/get_video/{first['video_id']}/info?{token}").status_code == 401
    # a token is no key for anything that is not a media GET
    assert auth.delete(f"/api/mv/jobs/{uuid.uuid4()}?{token}").status_code == 401
    assert auth.post(f"{first['video_url']}", json={}).status_code in (401, 405)
    assert auth.get(first["video_url"]).status_code == 200  # the owner still plays


def test_a_projects_media_urls_play_without_the_key_each_for_its_own_file(tmp_path: Path) -> None:
    secured = secured_settings(tmp_path)
    tiny = secured.flavors_dirs[0] / "tiny"
    tiny.mkdir()
    (tiny / "parameters.yaml").write_text("number_of_scenes: 2\n")
    (tiny / "image_params.yaml").write_text("video_duration: 1\n")
    store = FlavorStore(list(secured.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(secured, store=store), raise_server_exceptions=False) as auth:
        form = {
            "mode": "music-video",
            "prompt": "a fox crosses a snowy field",
            "characterDescription": "a red fox with a white-tipped tail",
            "configFlavor": "tiny",
        }
        created = auth.post(
            "/api/mv/projects", data=form, files={"audio": ("s.wav", make_song(tmp_path))}, headers=HEADERS
        )
        assert created.status_code == 201, created.text
        url = f"/api/mv/projects/{created.json()['projectId']}"
        deadline = time.monotonic() + 90
        while (project := auth.get(url, headers=HEADERS).json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, project
            time.sleep(0.1)
        assert project["status"] == "completed", project
        links = [project["finalOutputUrl"]] + [
            s[key]
            for s in project["scenes"]
            for key in ("videoClipUrl", "audioClipUrl", "lipSyncedVideoClipUrl")
            if s[key] is not None  # a scene may need no lipsync
        ]
        assert len(links) >= 5, project
        for link in links:
            assert TOKEN.search(link), link
            played = auth.get(link)  # no key: what <video src> / <audio src> does
            assert played.status_code == 200, (link, played.text[:200])
            assert played.headers["content-type"].split(";")[0] in ("video/mp4", "audio/mpeg")
        final, clip = project["finalOutputUrl"], project["scenes"][0]["videoClipUrl"]
        moved = f"{clip.split('?')[0]}?{final.split('?')[1]}"
        assert auth.get(moved).status_code == 401  # final.mp4's token opens nothing else
        assert auth.get(final.split("?")[0]).status_code == 401  # and no token, no key: refused
        assert auth.get(f"{url}?{final.split('?')[1]}").status_code == 401  # nor the project's JSON


@pytest.mark.parametrize(
    "mangle",
    [
        lambda exp, sig: f"{exp}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",  # one character off
        lambda exp, sig: f"{int(exp) + 10}.{sig}",  # a later expiry with the old signature
        lambda exp, sig: f"{exp}.",
        lambda exp, sig: f".{sig}",
        lambda exp, sig: sig,
        lambda exp, sig: f"{exp}.{sig}x",
        lambda exp, sig: "",
        lambda exp, sig: f"-{exp}.{sig}",
        lambda exp, sig: f"{'9' * 40}.{sig}",
    ],
)
def test_tampered_tokens_are_refused(auth: TestClient, mangle: Any) -> None:
    video = _video(auth)
    path, _, _ = video["video_url"].partition("?")
    match = TOKEN.search(video["video_url"])
    assert match
    response = auth.get(path, params={"token": mangle(match.group(1), match.group(2))})
    assert response.status_code == 401, response.text
    assert set(response.json()["detail"]) == {"error", "message", "details"}


def test_expired_tokens_are_refused(auth: TestClient) -> None:
    video = _video(auth)
    path = video["video_url"].partition("?")[0]
    links = MediaLinks(KEY.encode(), 3600)  # the server's secret is derived from API_KEY
    assert auth.get(path, params={"token": links.token(path)}).status_code == 200
    expired = links.token(path, expiry=int(time.time()) - 1)
    assert auth.get(path, params={"token": expired}).status_code == 401


def test_the_lifetime_is_the_setting(settings: Any, tmp_path: Path) -> None:
    secured = secured_settings(tmp_path, media_token_ttl_s=42)
    links = MediaLinks.from_settings(secured)
    assert links is not None
    before = int(time.time())
    expiry = int(links.token("/api/audio/get/x").split(".")[0])
    assert before + 42 <= expiry <= int(time.time()) + 42
    assert MediaLinks.from_settings(settings) is None  # auth off: no tokens at all


def test_auth_off_answers_plain_urls(client: TestClient) -> None:
    body = client.post("/api/mv/generate_video", json={"prompt": "x", "duration": 1}).json()
    assert body["video_url"] == f"/api/mv/get_video/{body['video_id']}"


def test_tokens_never_reach_the_log(tmp_path: Path) -> None:
    """A real ``mvcore serve`` with uvicorn's access log on: the log shows ``token=***`` only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "flavors").mkdir()
    env = {
        **os.environ,
        "API_KEY": KEY,
        "MVCORE_ACCESS_LOG": "1",
        "MVCORE_DATA_DIR": str(tmp_path / "data"),
        "MVCORE_FLAVORS_DIR": str(tmp_path / "flavors"),
        "MVCORE_PROVIDER": "offline",
        "MVCORE_OFFLINE_LONG_SIDE": "160",
        "MVCORE_OFFLINE_FPS": "12",
    }
    command = [sys.executable, "-m", "mvcore.cli", "serve", "--port", str(port), "--no-reload-flavors"]
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=60) as http:
            body = http.post(
                "/api/mv/generate_video", json={"prompt": "x", "duration": 1}, headers=HEADERS
            ).json()
            token = body["video_url"].split("token=", 1)[1]
            assert http.get(body["video_url"]).status_code == 200
            assert http.get(f"/api/mv/get_video/{uuid.uuid4()}", params={"token": token}).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = log.read_text(errors="replace")
    assert "GET /api/mv/get_video/" in text, text[-2000:]  # the access log is really on
    assert token not in text and token.split(".")[1] not in text
    assert "token=***" in text


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.uuids().map(str), min_size=2, max_size=2, unique=True),
    kinds=st.lists(
        st.sampled_from(["mv/get_video", "mv/get_character_reference", "audio/get"]), min_size=2, max_size=2
    ),
)
def test_a_token_verifies_for_its_path_and_no_other(ids: list[str], kinds: list[str]) -> None:
    links = MediaLinks(b"secret", 60)
    own, other = f"/api/{kinds[0]}/{ids[0]}", f"/api/{kinds[1]}/{ids[1]}"
    token = links.token(own)
    assert links.verify(own, token)
    assert not links.verify(other, token)
    assert not MediaLinks(b"other secret", 60).verify(own, token)
