"""The song library: uploads in every accepted format become mp3s of the right length."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from mvcore.media.ffmpeg import probe_sync

INFO_KEYS = {"audio_id", "audio_url", "filename", "format", "title", "duration", "file_size_bytes"}


@pytest.mark.parametrize(
    ("name", "seconds", "rate", "channels"),
    [
        ("track.mp3", 3.0, 44100, 2),
        ("track.wav", 2.5, 48000, 1),
        ("track.m4a", 3.0, 44100, 2),
        ("track.ogg", 2.0, 22050, 1),
        ("track.flac", 2.0, 96000, 2),  # 96 kHz is not an mp3 rate: resampled, not refused
    ],
)
def test_upload_formats_become_mp3(
    pipe: Any, kit: Any, name: str, seconds: float, rate: int, channels: int
) -> None:
    body = pipe.upload(kit.tone(name, seconds, sample_rate=rate, channels=channels))
    assert set(body) >= INFO_KEYS
    audio_id = body["audio_id"]
    assert uuid.UUID(audio_id)
    assert body["audio_url"] == f"/api/audio/get/{audio_id}"
    assert body["filename"] == name
    assert body["format"] == Path(name).suffix.lstrip(".")
    assert body["title"] == "track"
    assert body["duration"] == pytest.approx(seconds, abs=0.1)

    got = pipe.client.get(body["audio_url"])
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("audio/mpeg")
    mp3 = pipe.downloads / f"{audio_id}.mp3"
    mp3.write_bytes(got.content)
    info = probe_sync(mp3)
    assert info.audio_codec == "mp3" and not info.has_video
    assert info.duration == pytest.approx(seconds, abs=0.1)
    assert body["file_size_bytes"] == len(got.content)
    kit.assert_sound(mp3, seconds / 2)

    info_response = pipe.client.get(f"/api/audio/info/{audio_id}")
    assert info_response.status_code == 200
    assert {k: info_response.json()[k] for k in INFO_KEYS} == {k: body[k] for k in INFO_KEYS}


def test_upload_keeps_no_scratch_copies(pipe: Any, kit: Any, settings: Any) -> None:
    pipe.upload(kit.tone("a.wav", 1.0))
    clip = pipe.video(duration=1)
    pipe.lipsync(video_id=clip["video_id"], audio_url=pipe.upload(kit.tone("b.mp3", 2.0))["audio_url"])
    scratch = Path(settings.data_dir) / "tmp"
    assert [p.name for p in scratch.rglob("*") if p.is_file()] == []


def test_a_file_that_is_not_audio_is_a_400(pipe: Any, tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"this is not an mp3 at all\n" * 200)
    response = pipe.client.post(
        "/api/audio/upload", files={"data": ("fake.mp3", fake.read_bytes(), "audio/mpeg")}
    )
    detail = pipe.detail(response, 400)
    assert "fake.mp3" in detail["message"] or "upload" in detail["message"]


def test_a_video_without_sound_is_not_a_song(pipe: Any) -> None:
    clip = pipe.video(duration=1, audio=False)
    data = pipe.client.get(clip["video_url"]).content
    response = pipe.client.post("/api/audio/upload", files={"data": ("clip.mp4", data, "video/mp4")})
    assert "no audio stream" in pipe.detail(response, 400)["message"]


def test_a_video_with_sound_gives_its_soundtrack(pipe: Any) -> None:
    clip = pipe.video(duration=2, audio=True)
    body = pipe.upload(pipe.fetch(clip["video_url"]), "clip.mp4")
    assert body["duration"] == pytest.approx(2.0, abs=0.1)
    assert body["format"] == "mp4"


@pytest.mark.parametrize(
    ("filename", "status"),
    [("notes.txt", 400), ("noextension", 400), ("song.exe", 400)],
)
def test_unsupported_upload_names(pipe: Any, kit: Any, filename: str, status: int) -> None:
    data = kit.tone("ok.mp3", 1.0).read_bytes()
    response = pipe.client.post("/api/audio/upload", files={"data": (filename, data, "audio/mpeg")})
    detail = pipe.detail(response, status)
    assert "mp3" in detail["details"].get("valid", [])


def test_upload_without_a_file(pipe: Any) -> None:
    response = pipe.client.post("/api/audio/upload", data={"title": "no file here"})
    pipe.detail(response, (400, 415, 422))  # a form without a file part is the wrong media type
    empty = pipe.client.post("/api/audio/upload", files={"data": ("empty.mp3", b"", "audio/mpeg")})
    pipe.detail(empty, 400)


@pytest.mark.parametrize(
    ("audio_id", "reaches"),
    [
        # the client resolves the dots: /api/audio/get/../../etc/passwd is sent as /api/etc/passwd
        ("../../etc/passwd", "/api/etc/passwd"),
        # encoded slashes are sent as they are and decoded by the router: more segments, no route
        ("..%2F..%2Fetc%2Fpasswd", None),
        ("..", None),  # resolved by the client to the parent path
        ("%2e%2e", "handler"),
        ("not-a-uuid", "handler"),
        (str(uuid.uuid4()), "handler"),
    ],
)
def test_unknown_audio_ids_are_404(pipe: Any, audio_id: str, reaches: str | None) -> None:
    for path in (f"/api/audio/get/{audio_id}", f"/api/audio/info/{audio_id}"):
        response = pipe.client.get(path)
        if path.startswith("/api/audio/info/") and reaches == "handler" and audio_id.count("-") == 4:
            # a well-formed unknown id: the original's 200 with exists=false
            assert response.status_code == 200 and response.json() == {"audio_id": audio_id, "exists": False}
            continue
        detail = pipe.detail(response, 404)
        assert "root:" not in response.text
        if reaches == "handler":  # our own answer, naming the id
            assert detail["error"] in ("NOT_FOUND", "INVALID_ID"), detail
            assert detail["message"].startswith("Audio "), detail
            assert "upload" in detail["details"]["hint"]
        else:  # never a handler, never a file: the router's 404
            assert detail["message"].startswith("No route for GET "), detail
            if reaches is not None:
                assert response.request.url.path == reaches


def test_audio_redirect_false_without_cloud_serves_the_file(pipe: Any) -> None:
    song = pipe.song(1.0)
    response = pipe.client.get(f"{song['audio_url']}?redirect=false")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("audio/mpeg")
