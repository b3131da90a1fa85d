"""The original frontend's exact request sequence, auth on, and the song in every second of the result.

Replays what the original Next.js pages send (very-bad-apples/mvp-1, the create and quick-gen
pages): the same paths, bodies and headers -- ``X-API-Key`` on fetch() calls, none on media GETs
(``<video src>``, ``<audio src>`` use the URLs the API returned), ``character_reference_id: ""``
when no reference image was picked, the first stitch with ``audio_overlay_id`` and
``suppress_video_audio: true``, the lipsync of one clip with ``video_id``/``audio_id`` and its
song range, and the automatic re-stitch with only ``{"video_ids": [...], "audio_id": ...}``.
The song is one pure frequency; a Goertzel filter on the decoded sound of every segment of the
re-stitched video shows it is there, and alone (the clips' own chords are muted).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pipeline.spectrum import tone_share

KEY = "replay-key-" + uuid.uuid4().hex
FETCH = {"X-API-Key": KEY, "Content-Type": "application/json"}  # what the pages' fetch() calls send
SONG_HZ = 1500
FLAVOR = "test_flavor"  # two scenes; clips of the flavor's 8 s


@pytest.fixture
def frontend(tmp_path: Any, make_settings: Any, open_client: Any) -> Any:
    with open_client(make_settings(tmp_path, api_key=KEY)) as client:
        yield client


def post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=FETCH)
    assert response.status_code == 200, (path, response.text)
    answer: dict[str, Any] = response.json()
    return answer


def play(client: Any, url: str) -> bytes:
    """What a media element does with a URL: no header, a Range request first, then the bytes."""
    assert client.get(url, headers={"Range": "bytes=0-"}).status_code == 206
    whole = client.get(url)
    assert whole.status_code == 200, whole.text[:300]
    return bytes(whole.content)


def create_page(client: Any, kit: Any) -> dict[str, Any]:
    """The create page: the flavor list, the song (upload), and the page's check of it."""
    flavors = client.get("/api/mv/get_config_flavors", headers={"X-API-Key": KEY}).json()["flavors"]
    assert FLAVOR in flavors
    song_file = kit.tone("My Song.mp3", 20.0, freq=SONG_HZ)
    song: dict[str, Any] = client.post(
        "/api/audio/upload",
        files={"file": (song_file.name, song_file.read_bytes())},
        headers={"X-API-Key": KEY},
    ).json()
    assert client.get(f"/api/audio/info/{song['audio_id']}", headers=FETCH).json()["exists"] is True
    assert play(client, song["audio_url"])[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")  # <audio src>
    return song


def quick_gen_clips(client: Any) -> list[dict[str, Any]]:
    """The quick-gen page: scenes, then one clip per scene (no reference image picked: "")."""
    scenes = post(
        client,
        "/api/mv/create_scenes",
        {"idea": "a fox dances in the rain", "character_description": "a red fox", "config_flavor": FLAVOR},
    )["scenes"]
    clips = []
    for scene in scenes:
        body = {
            "prompt": scene["description"],
            "negative_prompt": scene["negative_description"],
            "character_reference_id": "",
            "config_flavor": FLAVOR,
        }
        clip = post(client, "/api/mv/generate_video", body)
        play(client, clip["video_url"])  # <video src> of the scene card
        clips.append(clip)
    return clips


def assert_song_alone_everywhere(path: Any, seconds: list[float]) -> None:
    """Start, middle and end of every segment: the song's frequency, and nothing else."""
    offset = 0.0
    for index, length in enumerate(seconds):
        for at in (0.5, length / 2, length - 0.7):
            share = tone_share(path, SONG_HZ, offset + at, 0.2)
            assert share > 0.99, f"segment {index} at {at:.1f}s: song share {share:.3f}"
        offset += length


def test_the_original_frontend_keeps_the_song_with_auth_on(frontend: Any, kit: Any, tmp_path: Any) -> None:
    client = frontend
    song = create_page(client, kit)
    clips = quick_gen_clips(client)
    ids = [c["video_id"] for c in clips]
    seconds = [float(c["metadata"]["parameters_used"]["duration"]) for c in clips]

    first = post(
        client,
        "/api/mv/stitch-videos",
        {"video_ids": ids, "audio_overlay_id": song["audio_id"], "suppress_video_audio": True},
    )
    play(client, first["video_url"])

    # "Regenerate with lipsync" on the second clip: its range of the song
    lipsync = {"video_id": ids[1], "audio_id": song["audio_id"], "start_time": seconds[0]}
    synced = post(client, "/api/mv/lipsync", {**lipsync, "end_time": seconds[0] + seconds[1]})
    play(client, synced["video_url"])

    # the automatic re-stitch: only video_ids and audio_id
    restitch = {"video_ids": [ids[0], synced["video_id"]], "audio_id": song["audio_id"]}
    final = post(client, "/api/mv/stitch-videos", restitch)
    assert final["audio_overlay_applied"] is True and final["metadata"]["suppress_video_audio"] is True
    path = tmp_path / "final.mp4"
    path.write_bytes(play(client, final["video_url"]))
    assert_song_alone_everywhere(path, seconds)
