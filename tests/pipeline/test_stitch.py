"""Stitching clips that do not match, with songs that do not match the video's length."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest

from mvcore.media.ffmpeg import ffmpeg_exe


def _stitched(pipe: Any, body: dict[str, Any], parts: list[dict[str, Any]]) -> tuple[Any, Any]:
    path, info = pipe.probe(body["video_url"])
    expected = sum(pipe.probe(p["video_url"])[1].duration for p in parts)
    assert info.duration == pytest.approx(expected, abs=0.15)
    assert body["metadata"]["total_duration"] == pytest.approx(info.duration, abs=0.15)
    assert body["metadata"]["num_clips"] == len(parts)
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert pipe.kit.audio_seconds(path) == pytest.approx(info.duration, abs=0.15)
    return path, info


@pytest.mark.parametrize("first", ["16:9", "9:16"])
def test_landscape_and_portrait_clips_with_and_without_sound(pipe: Any, first: str) -> None:
    other = "9:16" if first == "16:9" else "16:9"
    clips = [
        pipe.video(2, first, audio=True),
        pipe.video(1, other, audio=False),
        pipe.video(2, first, audio=False),
    ]
    body = pipe.stitch([c["video_id"] for c in clips])
    assert body["audio_overlay_applied"] is False and body["audio_overlay_warning"] is None
    path, info = _stitched(pipe, body, clips)
    # the first clip sets the frame; the other orientation is letterboxed into it
    assert (info.width, info.height) == ((160, 90) if first == "16:9" else (90, 160))
    pipe.kit.assert_sound(path, 0.5, 1.0)  # the first clip's own sound is kept
    pipe.kit.assert_silence(path, 2.3, 0.5)  # the silent clip stays silent


@pytest.mark.parametrize("overlay", ["song.wav", "song.m4a", "song.ogg", "song.flac"])
def test_overlay_formats(pipe: Any, overlay: str) -> None:
    song = pipe.song(6.0, name=overlay, sample_rate=48000 if overlay.endswith("m4a") else 44100)
    clips = [pipe.video(2, "16:9", audio=True), pipe.video(2, "9:16", audio=False)]
    body = pipe.stitch([c["video_id"] for c in clips], audio_overlay_id=song["audio_id"])
    assert body["audio_overlay_applied"] is True
    path, info = _stitched(pipe, body, clips)
    for start in (0.2, 2.2, info.duration - 0.5):
        pipe.kit.assert_sound(path, start)


def test_song_shorter_than_the_video_ends_in_silence(pipe: Any) -> None:
    song = pipe.song(2.0, name="short.mp3")
    clips = [pipe.video(2, audio=True), pipe.video(2, audio=True)]
    body = pipe.stitch(
        [c["video_id"] for c in clips], audio_overlay_id=song["audio_id"], suppress_video_audio=True
    )
    assert body["audio_overlay_applied"] is True
    path, info = _stitched(pipe, body, clips)
    pipe.kit.assert_sound(path, 0.5, 1.0)
    pipe.kit.assert_silence(path, 2.5, 1.0)
    pipe.kit.assert_silence(path, info.duration - 0.5)


def test_song_longer_than_the_video_is_trimmed(pipe: Any) -> None:
    song = pipe.song(10.0, name="long.mp3")
    clips = [pipe.video(1, audio=False), pipe.video(2, audio=False)]
    body = pipe.stitch([c["video_id"] for c in clips], audio_overlay_id=song["audio_id"])
    path, info = _stitched(pipe, body, clips)
    assert info.duration == pytest.approx(3.0, abs=0.15)
    pipe.kit.assert_sound(path, info.duration - 0.5)


def test_missing_overlay_is_a_warning(pipe: Any) -> None:
    clips = [pipe.video(1), pipe.video(1)]
    missing = str(uuid.uuid4())
    body = pipe.stitch([c["video_id"] for c in clips], audio_overlay_id=missing, suppress_video_audio=False)
    assert body["audio_overlay_applied"] is False
    assert missing in body["audio_overlay_warning"]
    assert "without the audio overlay" in body["audio_overlay_warning"]
    _stitched(pipe, body, clips)


def test_suppressed_sound_without_overlay_is_silence(pipe: Any) -> None:
    clips = [pipe.video(1, audio=True), pipe.video(1, audio=True)]
    body = pipe.stitch([c["video_id"] for c in clips], suppress_video_audio=True)
    path, _ = _stitched(pipe, body, clips)
    pipe.kit.assert_silence(path, 0.0, 1.9)


def test_same_clip_twice_and_a_stitched_video_as_a_clip(pipe: Any) -> None:
    clip = pipe.video(1)
    once = pipe.stitch([clip["video_id"], clip["video_id"]])
    _stitched(pipe, once, [clip, clip])
    again = pipe.stitch([once["video_id"], clip["video_id"]])
    _stitched(pipe, again, [once, clip])


def test_unknown_video_id_is_a_404_naming_it(pipe: Any) -> None:
    clip = pipe.video(1)
    unknown = str(uuid.uuid4())
    response = pipe.client.post("/api/mv/stitch-videos", json={"video_ids": [clip["video_id"], unknown]})
    detail = pipe.detail(response, 404)
    assert unknown in detail["message"]
    assert detail["details"].get("video_id") == unknown


def test_legacy_stitch_paths(pipe: Any) -> None:
    clip = pipe.video(1)
    for path in ("/api/mv/stitch_video", "/api/mv/stitch_videos"):
        response = pipe.client.post(path, json={"video_ids": [clip["video_id"]]})
        assert response.status_code == 200, response.text
        assert response.json()["metadata"]["num_clips"] == 1


def test_clips_of_other_sizes_rates_and_audio_layouts(
    pipe: Any, settings: Any, open_client: Any, make_settings: Any, tmp_path: Any
) -> None:
    """A clip from a server with other offline settings and a hand-made odd one: all normalised."""
    with open_client(make_settings(tmp_path, offline_long_side=256, offline_fps=24)) as other:
        response = other.post(
            "/api/mv/generate_video", json={"prompt": "big", "duration": 1, "aspect_ratio": "4:3"}
        )
        assert response.status_code == 200, response.text
        big = response.json()
    # 25 fps, odd frame size, yuv444p video and mono 22.05 kHz mp3 sound, put straight into storage
    odd_id = str(uuid.uuid4())
    odd = settings.data_dir / "mv" / "jobs" / odd_id / "video.mp4"
    odd.parent.mkdir(parents=True)
    made = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=151x97:rate=25:duration=1.5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:sample_rate=22050:duration=1.5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv444p",
            "-c:a",
            "libmp3lame",
            "-ac",
            "1",
            "-shortest",
            str(odd),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-1500:]
    odd_clip = {"video_id": odd_id, "video_url": f"/api/mv/get_video/{odd_id}"}
    first = pipe.video(2, "16:9", audio=False)
    parts = [first, big, odd_clip]
    body = pipe.stitch([p["video_id"] for p in parts])
    path, info = _stitched(pipe, body, parts)
    assert (info.width, info.height, info.fps) == (160, 90, 12.0)
    assert info.pixel_format == "yuv420p" and info.audio_channels == 2
    assert body["metadata"]["stitch_path"] == "re-encode"
    pipe.kit.assert_sound(path, 3.2, 1.0)  # the odd clip's mono tone survives the layout change


def test_matching_clips_are_joined_by_stream_copy(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated and lipsynced clips share codec/size/rate/audio layout: the picture is never re-encoded."""
    from mvcore.media import ffmpeg

    song = pipe.song(4.0)
    clips = [pipe.video(1), pipe.video(2)]
    synced = pipe.lipsync(video_id=clips[1]["video_id"], audio_id=song["audio_id"], start_time=0, end_time=2)
    commands: list[list[str]] = []
    original = ffmpeg.run_ffmpeg

    async def recording(args: list[str], **kwargs: Any) -> None:
        commands.append(list(args))
        await original(args, **kwargs)

    monkeypatch.setattr(ffmpeg, "run_ffmpeg", recording)
    parts = [clips[0], synced, clips[1]]
    copied = pipe.stitch([p["video_id"] for p in parts])
    assert len(commands) == 1 and "copy" in commands[0] and "concat" in commands[0], commands
    _stitched(pipe, copied, parts)

    assert copied["metadata"]["stitch_path"] == "concat-copy"

    for suppress in (False, True):  # a song over the clips' sound, or instead of it: the picture is copied
        commands.clear()
        mixed = pipe.stitch(
            [p["video_id"] for p in parts], audio_overlay_id=song["audio_id"], suppress_video_audio=suppress
        )
        assert len(commands) == 1, commands
        assert "-c:v" in commands[0] and commands[0][commands[0].index("-c:v") + 1] == "copy"
        assert "libx264" not in commands[0]
        assert mixed["metadata"]["stitch_path"] == "copy-video"
        _stitched(pipe, mixed, parts)
