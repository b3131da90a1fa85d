"""Song → clips → lipsync one clip → stitch everything with the song, all through the HTTP API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mvcore.media.ffmpeg import probe_sync

LIPSYNC_METADATA = {
    "model_used",
    "parameters_used",
    "generation_timestamp",
    "processing_time_seconds",
    "file_size_bytes",
    "local_video_url",
    "source_video_id",
    "source_audio_id",
}


def test_song_clips_lipsync_stitch(pipe: Any, kit: Any) -> None:
    song = pipe.song(12.0)
    assert song["duration"] == pytest.approx(12.0, abs=0.1)
    clips = [pipe.video(duration=2, prompt=f"scene {i} of the fox video") for i in range(3)]

    synced = pipe.lipsync(
        video_id=clips[1]["video_id"], audio_id=song["audio_id"], start_time=2.0, end_time=4.0
    )
    new_id = synced["video_id"]
    assert new_id not in {c["video_id"] for c in clips}
    assert synced["video_path"] == f"mv/jobs/{new_id}/video.mp4"
    assert synced["video_url"] == f"/api/mv/get_video/{new_id}"
    meta = synced["metadata"]
    assert set(meta) >= LIPSYNC_METADATA
    assert meta["model_used"] == "offline/mux"
    assert meta["source_video_id"] == clips[1]["video_id"]
    assert meta["source_audio_id"] == song["audio_id"]
    assert meta["local_video_url"] == synced["video_url"]
    assert meta["parameters_used"]["start_time"] == 2.0
    assert meta["parameters_used"]["end_time"] == 4.0
    assert meta["processing_time_seconds"] >= 0
    assert "cloud_url" not in meta and "storage_warning" not in synced  # no bucket configured
    synced_file, synced_info = pipe.probe(synced["video_url"])
    assert meta["file_size_bytes"] == synced_file.stat().st_size
    assert synced_info.duration == pytest.approx(2.0, abs=0.1)
    assert synced_info.has_video and synced_info.has_audio
    kit.assert_sound(synced_file, 1.4)

    stitched = pipe.stitch(
        [clips[0]["video_id"], new_id, clips[2]["video_id"]],
        audio_overlay_id=song["audio_id"],
        suppress_video_audio=True,
    )
    assert stitched["audio_overlay_applied"] is True
    assert stitched["audio_overlay_warning"] is None
    assert stitched["metadata"]["num_clips"] == 3
    assert stitched["metadata"]["video_ids"] == [clips[0]["video_id"], new_id, clips[2]["video_id"]]
    path, info = pipe.probe(stitched["video_url"])
    parts = [probe_sync(pipe.fetch(c["video_url"])).duration for c in (clips[0], synced, clips[2])]
    assert info.duration == pytest.approx(sum(parts), abs=0.15)
    assert stitched["metadata"]["total_duration"] == pytest.approx(info.duration, abs=0.15)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (160, 90)
    assert kit.audio_seconds(path) == pytest.approx(info.duration, abs=0.15)
    for start in (0.0, 2.0, 4.0, info.duration - 0.5):  # the song plays over every clip, to the end
        kit.assert_sound(path, start)
    banner = _streams(path)
    assert banner.count("Video:") == 1 and banner.count("Audio:") == 1

    info_response = pipe.client.get(f"/api/mv/get_video/{stitched['video_id']}/info").json()
    assert info_response["metadata"]["num_clips"] == 3


def _streams(path: Path) -> str:
    import subprocess

    from mvcore.media.ffmpeg import ffmpeg_exe

    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
    )
    return "\n".join(line for line in result.stderr.splitlines() if "Stream #" in line)


def test_lipsync_clips_the_requested_range(pipe: Any, kit: Any) -> None:
    song = pipe.song(6.0, name="late.mp3", silent_until=3.0)  # silent for 3 s, then a tone
    clip = pipe.video(duration=2, audio=False)
    loud = pipe.lipsync(video_id=clip["video_id"], audio_id=song["audio_id"], start_time=3.5, end_time=5.5)
    quiet = pipe.lipsync(video_id=clip["video_id"], audio_id=song["audio_id"], start_time=0.5, end_time=2.5)
    loud_file, quiet_file = pipe.fetch(loud["video_url"]), pipe.fetch(quiet["video_url"])
    kit.assert_sound(loud_file, 0.2, 1.5)
    kit.assert_silence(quiet_file, 0.2, 1.5)
    # a range shorter than the clip ends in silence; the clip keeps its length
    short = pipe.lipsync(video_id=clip["video_id"], audio_id=song["audio_id"], start_time=4.0, end_time=5.0)
    short_file = pipe.fetch(short["video_url"])
    assert probe_sync(short_file).duration == pytest.approx(2.0, abs=0.1)
    kit.assert_sound(short_file, 0.2, 0.6)
    kit.assert_silence(short_file, 1.3, 0.6)
    # no range: the song from its start
    whole = pipe.lipsync(video_id=clip["video_id"], audio_id=song["audio_id"])
    kit.assert_silence(pipe.fetch(whole["video_url"]), 0.2, 1.5)
    assert whole["metadata"]["parameters_used"]["start_time"] is None


def test_lipsync_with_our_own_urls(pipe: Any, kit: Any) -> None:
    song = pipe.song(4.0)
    clip = pipe.video(duration=2)
    body = pipe.lipsync(video_url=clip["video_url"], audio_url=song["audio_url"])
    assert body["metadata"]["source_video_id"] == clip["video_id"]
    assert body["metadata"]["source_audio_id"] == song["audio_id"]
    absolute = pipe.lipsync(
        video_url=f"http://testserver.local{clip['video_url']}",
        audio_url=f"http://testserver.local{song['audio_url']}?redirect=false",
    )
    assert absolute["metadata"]["source_video_id"] == clip["video_id"]
    # an audio_url of ours may carry a clip range: it names a stored song
    ranged = pipe.lipsync(video_id=clip["video_id"], audio_url=song["audio_url"], start_time=1, end_time=3)
    assert ranged["metadata"]["source_audio_id"] == song["audio_id"]
    kit.assert_sound(pipe.fetch(ranged["video_url"]), 0.2, 1.5)


def test_lipsync_with_http_urls(local_fetch_pipe: Any, kit: Any, http_files: tuple[str, Path]) -> None:
    pipe = local_fetch_pipe
    base, root = http_files
    clip = pipe.video(duration=2)
    shutil.copy(pipe.fetch(clip["video_url"]), root / "clip.mp4")
    kit.tone("voice.wav", 3.0)
    shutil.copy(kit.root / "voice.wav", root / "voice.wav")

    body = pipe.lipsync(video_url=f"{base}/clip.mp4", audio_url=f"{base}/voice.wav")
    meta = body["metadata"]
    assert meta["model_used"] == "offline/mux"
    assert meta["source_video_id"] is None and meta["source_audio_id"] is None
    assert meta["source_video_url"] == f"{base}/clip.mp4"
    assert meta["source_audio_url"] == f"{base}/voice.wav"
    assert body["video_url"] == f"/api/mv/get_video/{body['video_id']}"
    path, info = pipe.probe(body["video_url"])
    assert info.duration == pytest.approx(2.0, abs=0.1)
    kit.assert_sound(path, 0.5, 1.0)

    # ids win over URLs when both are given
    song = pipe.song(3.0)
    both = pipe.lipsync(
        video_id=clip["video_id"],
        video_url=f"{base}/clip.mp4",
        audio_id=song["audio_id"],
        audio_url=f"{base}/voice.wav",
    )
    assert both["metadata"]["source_video_id"] == clip["video_id"]
    assert both["metadata"]["source_audio_id"] == song["audio_id"]

    missing = pipe.client.post(
        "/api/mv/lipsync", json={"video_url": f"{base}/nope.mp4", "audio_url": f"{base}/voice.wav"}
    )
    assert "404" in pipe.detail(missing, 400)["message"]
    not_video = pipe.client.post(
        "/api/mv/lipsync", json={"video_url": f"{base}/voice.wav", "audio_url": f"{base}/voice.wav"}
    )
    pipe.detail(not_video, 400)
