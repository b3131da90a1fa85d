"""The pipeline on a real S3 endpoint (moto's server on 127.0.0.1, the real boto3 client)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvcore.media.ffmpeg import probe_sync
from mvcore.settings import Settings
from mvcore.testing.s3 import MotoS3Server


@pytest.fixture
def settings(tmp_path: Path, s3: MotoS3Server, make_settings: Any) -> Settings:
    settings: Settings = make_settings(tmp_path, **s3.settings_overrides())
    return settings


def _local(settings: Settings, key: str) -> Path:
    return Path(settings.data_dir) / key


def _presigned(url: str) -> bytes:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return response.content


def _assert_in_bucket(s3: MotoS3Server, settings: Settings, body: dict[str, Any]) -> bytes:
    """The result's video and metadata are in the bucket; its URLs follow the v3.1 rules."""
    video_id = body["video_id"]
    key = f"mv/jobs/{video_id}/video.mp4"
    listing = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"mv/jobs/{video_id}/")
    assert sorted(item["Key"] for item in listing["Contents"]) == [f"mv/jobs/{video_id}/metadata.json", key]
    meta = body["metadata"]
    assert meta["cloud_urls"] == {"video": meta["cloud_url"]}
    assert meta["local_video_url"] == f"/api/mv/get_video/{video_id}"
    assert body["video_url"] == meta["cloud_url"]
    assert "storage_warning" not in body and "storage_warning" not in meta
    local = _local(settings, key).read_bytes()
    assert _presigned(meta["cloud_url"]) == local == s3.get(key)
    assert meta["file_size_bytes"] == len(local)
    return local


def test_generate_video_lands_in_the_bucket(pipe: Any, s3: MotoS3Server, settings: Settings) -> None:
    body = pipe.video(duration=1)
    local = _assert_in_bucket(s3, settings, body)
    response = pipe.client.get(body["metadata"]["local_video_url"])  # not in cloud-serving mode: local
    assert response.status_code == 200 and response.content == local
    stored_meta = s3.get(f"mv/jobs/{body['video_id']}/metadata.json")
    assert body["video_id"].encode() in stored_meta

    song = pipe.song(2.0)
    assert s3.keys(f"audio/{song['audio_id']}") == [
        f"audio/{song['audio_id']}.json",
        f"audio/{song['audio_id']}.mp3",
    ]
    assert _presigned(song["cloud_url"]) == s3.get(f"audio/{song['audio_id']}.mp3")


def test_lipsync_and_stitch_results_land_in_the_bucket(
    pipe: Any, s3: MotoS3Server, settings: Settings
) -> None:
    song = pipe.song(6.0)
    clips = [pipe.video(duration=1), pipe.video(duration=2)]
    synced = pipe.lipsync(video_id=clips[1]["video_id"], audio_id=song["audio_id"], start_time=1, end_time=3)
    assert synced["metadata"]["model_used"] == "offline/mux"
    _assert_in_bucket(s3, settings, synced)
    stitched = pipe.stitch(
        [clips[0]["video_id"], synced["video_id"]],
        audio_overlay_id=song["audio_id"],
        suppress_video_audio=True,
    )
    assert stitched["audio_overlay_applied"] is True
    data = _assert_in_bucket(s3, settings, stitched)
    out = pipe.downloads / "stitched.mp4"
    out.write_bytes(data)
    assert probe_sync(out).duration == pytest.approx(3.0, abs=0.15)


def test_serve_from_cloud_redirects_to_presigned_urls(
    tmp_path: Path, s3: MotoS3Server, make_settings: Any, open_client: Any, kit: Any
) -> None:
    settings = make_settings(tmp_path, serve_from_cloud=True, **s3.settings_overrides())
    with open_client(settings) as client:
        body = client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 1}).json()
        video_id = body["video_id"]
        local = _local(settings, f"mv/jobs/{video_id}/video.mp4").read_bytes()

        redirect = client.get(f"/api/mv/get_video/{video_id}", follow_redirects=False)
        assert redirect.status_code == 302
        location = redirect.headers["location"]
        assert location.startswith(s3.endpoint_url) and f"mv/jobs/{video_id}/video.mp4" in location
        assert _presigned(location) == local

        plain = client.get(f"/api/mv/get_video/{video_id}", params={"redirect": "false"})
        assert plain.status_code == 200
        answer = plain.json()
        # exactly the original's keys (its clients read video_url / image_url)
        assert set(answer) == {"video_id", "video_url", "storage_backend", "expires_in_seconds", "cloud_path"}
        assert answer["video_id"] == video_id and answer["storage_backend"] == "s3"
        assert answer["cloud_path"] == f"mv/jobs/{video_id}/video.mp4"
        assert answer["video_url"].startswith(s3.endpoint_url)
        assert answer["expires_in_seconds"] == settings.presigned_url_expiry
        assert _presigned(answer["video_url"]) == local

        image = client.post(
            "/api/mv/generate_character_reference", json={"character_description": "c", "num_images": 1}
        ).json()["images"][0]
        linked = client.get(f"/api/mv/get_character_reference/{image['id']}", params={"redirect": "false"})
        image_answer = linked.json()
        assert set(image_answer) == {
            "image_id",
            "image_url",
            "storage_backend",
            "expires_in_seconds",
            "cloud_path",
        }
        assert image_answer["image_id"] == image["id"] and image_answer["cloud_path"] == image["path"]
        assert _presigned(image_answer["image_url"]) == s3.get(image["path"])

        song_file = kit.tone("cloud.mp3", 1.0)
        song = client.post("/api/audio/upload", files={"data": ("cloud.mp3", song_file.read_bytes())}).json()
        audio = client.get(song["audio_url"], follow_redirects=False)
        assert audio.status_code == 302
        assert _presigned(audio.headers["location"]) == s3.get(f"audio/{song['audio_id']}.mp3")
        audio_answer = client.get(song["audio_url"], params={"redirect": "false"}).json()
        assert audio_answer["audio_url"].startswith("http") and audio_answer["audio_id"] == song["audio_id"]

        unknown = str(uuid.uuid4())
        missing = client.get(f"/api/mv/get_video/{unknown}", follow_redirects=False)
        assert missing.status_code == 404 and unknown in missing.json()["detail"]["message"]
        assert client.get(f"/api/audio/get/{unknown}", follow_redirects=False).status_code == 404


def test_stitch_and_lipsync_read_their_inputs_from_the_bucket(
    pipe: Any, s3: MotoS3Server, settings: Settings, tmp_path: Path, make_settings: Any, open_client: Any
) -> None:
    song = pipe.song(6.0)
    clips = [pipe.video(duration=1), pipe.video(duration=2, aspect="9:16", audio=False)]
    for clip in clips:  # this instance's disk loses the clips and the song: only the bucket has them
        for name in ("video.mp4", "metadata.json"):
            _local(settings, f"mv/jobs/{clip['video_id']}/{name}").unlink()
    _local(settings, f"audio/{song['audio_id']}.mp3").unlink()

    stitched = pipe.stitch([c["video_id"] for c in clips], audio_overlay_id=song["audio_id"])
    assert stitched["audio_overlay_applied"] is True, stitched["audio_overlay_warning"]
    _assert_in_bucket(s3, settings, stitched)
    path, info = pipe.probe(stitched["metadata"]["local_video_url"])
    assert info.duration == pytest.approx(3.0, abs=0.15)
    pipe.kit.assert_sound(path, 2.4)  # the song (fetched from the bucket) plays over the silent clip

    synced = pipe.lipsync(video_id=clips[0]["video_id"], audio_id=song["audio_id"], start_time=0, end_time=1)
    _assert_in_bucket(s3, settings, synced)
    info_response = pipe.client.get(f"/api/mv/get_video/{clips[0]['video_id']}/info").json()
    assert info_response["metadata"]["video_id"] == clips[0]["video_id"]  # metadata read from the bucket

    # a second instance with an empty disk works from the same bucket
    other_dir = tmp_path / "other"
    with open_client(make_settings(other_dir, **s3.settings_overrides())) as other:
        response = other.post(
            "/api/mv/stitch-videos", json={"video_ids": [stitched["video_id"], synced["video_id"]]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["metadata"]["num_clips"] == 2
        got = other.get(f"/api/mv/get_video/{clips[1]['video_id']}")
        assert got.status_code == 200 and got.content == s3.get(f"mv/jobs/{clips[1]['video_id']}/video.mp4")


def test_upload_failure_keeps_the_result_local(
    tmp_path: Path, make_settings: Any, open_client: Any, kit: Any
) -> None:
    """Every step succeeds with the bucket down (default retries: this test takes ~15 s)."""
    with MotoS3Server() as server:
        settings = make_settings(tmp_path, serve_from_cloud=True, **server.settings_overrides())
        with open_client(settings) as client:
            song_file = kit.tone("song.mp3", 3.0)
            server.stop()  # the bucket is unreachable from here on (connection refused)
            try:
                response = client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 1})
                assert response.status_code == 200, response.text
                body = response.json()
                video_id = body["video_id"]
                local_url = f"/api/mv/get_video/{video_id}"
                assert body["video_url"] == local_url
                assert body["metadata"]["local_video_url"] == local_url
                assert "cloud_url" not in body["metadata"] and "cloud_urls" not in body["metadata"]
                warning = body["storage_warning"]
                assert warning == body["metadata"]["storage_warning"]
                assert f"mv/jobs/{video_id}/video.mp4" in warning and "local" in warning
                assert server.secret_access_key not in response.text
                assert str(tmp_path) not in response.text

                got = client.get(local_url, follow_redirects=False)
                assert got.status_code == 200
                assert got.content == _local(settings, f"mv/jobs/{video_id}/video.mp4").read_bytes()

                song = client.post("/api/audio/upload", files={"data": ("song.mp3", song_file.read_bytes())})
                assert song.status_code == 200, song.text
                assert song.json()["cloud_url"] is None and song.json()["storage_warning"]
                synced = client.post(
                    "/api/mv/lipsync",
                    json={
                        "video_id": video_id,
                        "audio_id": song.json()["audio_id"],
                        "start_time": 0,
                        "end_time": 1,
                    },
                )
                assert synced.status_code == 200, synced.text
                assert synced.json()["video_url"] == f"/api/mv/get_video/{synced.json()['video_id']}"
                assert synced.json()["storage_warning"]
                stitched = client.post(
                    "/api/mv/stitch-videos", json={"video_ids": [video_id, synced.json()["video_id"]]}
                )
                assert stitched.status_code == 200, stitched.text
                assert stitched.json()["storage_warning"]
                assert client.get(stitched.json()["video_url"], follow_redirects=False).status_code == 200
            finally:
                server.start()
            # back up, but the bucket never got the object: still served from the local copy
            again = client.get(local_url, follow_redirects=False)
            assert again.status_code == 200 and again.content == got.content
