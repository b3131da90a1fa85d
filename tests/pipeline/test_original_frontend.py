"""What the original frontend and its users send, answered the way the original did (issue 17).

The stitch ``audio_id`` alias (and its content: the song, alone, in every clip), uploads in the
field ``file``, the original's 400 ``ValidationError`` for refused values (422 stays for types and
shapes), every error naming its field, and info endpoints answering ``exists: false``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline.spectrum import tone_share

SONG_HZ = 1500  # far above the offline clips' own chords (110-700 Hz)


@pytest.fixture(scope="module")
def pipe(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Any, open_client: Any, make_pipeline: Any
) -> Any:
    root = tmp_path_factory.mktemp("original_frontend")
    with open_client(make_settings(root)) as client:
        yield make_pipeline(client, root)


@pytest.fixture(scope="module")
def made(pipe: Any) -> dict[str, Any]:
    """Two 1 s clips with their own sound, and a 4 s song of one pure frequency."""
    return {
        "clips": [pipe.video(1)["video_id"], pipe.video(1)["video_id"]],
        "song": pipe.song(4.0, freq=SONG_HZ)["audio_id"],
    }


def _song_shares(pipe: Any, body: dict[str, Any], clips: int) -> list[float]:
    path = pipe.fetch(body["video_url"])
    return [tone_share(path, SONG_HZ, index + 0.4, 0.2) for index in range(clips)]


@pytest.mark.parametrize(
    ("extra", "overlaid", "muted"),
    [
        ({"audio_id": "{song}"}, True, True),  # the original's re-stitch: song only
        ({"audio_id": "{song}", "suppress_video_audio": False}, True, False),  # told otherwise
        ({"audio_overlay_id": "{song}"}, True, False),  # the documented field keeps its default
        ({"audio_overlay_id": "{song}", "suppress_video_audio": True}, True, True),  # the first stitch
        ({"audio_id": "{song}", "audio_overlay_id": "{song}"}, True, False),  # alias not used alone
        ({}, False, False),
    ],
)
def test_stitch_audio_id_is_an_alias_that_mutes_the_clips_when_used_alone(
    pipe: Any, made: dict[str, Any], extra: dict[str, Any], overlaid: bool, muted: bool
) -> None:
    payload = {k: v.format(**made) if isinstance(v, str) else v for k, v in extra.items()}
    body = pipe.stitch(made["clips"], **payload)
    assert body["audio_overlay_applied"] is overlaid
    assert body["metadata"]["suppress_video_audio"] is muted
    assert body["metadata"]["audio_overlay_id"] == (made["song"] if overlaid else None)
    shares = _song_shares(pipe, body, len(made["clips"]))
    if not overlaid:
        assert max(shares) < 0.05, shares  # no song anywhere
    elif muted:
        assert min(shares) > 0.99, shares  # the song, and nothing else, in every clip (measured ~0.9998)
    else:
        assert all(0.05 < s < 0.98 for s in shares), shares  # the song mixed with the clips' chords (~0.9)


def test_stitch_with_two_different_songs_is_a_400_naming_audio_id(pipe: Any, made: dict[str, Any]) -> None:
    other = str(uuid.uuid4())
    response = pipe.client.post(
        "/api/mv/stitch-videos",
        json={"video_ids": made["clips"], "audio_id": made["song"], "audio_overlay_id": other},
    )
    assert pipe.detail(response, 400)["details"]["field"] == "audio_id"


def test_stitch_with_a_malformed_alias_names_the_alias(pipe: Any, made: dict[str, Any]) -> None:
    response = pipe.client.post(
        "/api/mv/stitch-videos", json={"video_ids": made["clips"], "audio_id": "../../etc/passwd"}
    )
    assert pipe.detail(response, 400)["details"]["field"] == "audio_id"  # ids in bodies are UUIDs


# ------------------------------------------------------------------------------------- uploads
@pytest.mark.parametrize("field", ["file", "data"])
def test_upload_takes_the_file_in_field_file_or_data(pipe: Any, field: str) -> None:
    song = pipe.kit.tone(f"via-{field}.wav", 1.0)
    response = pipe.client.post("/api/audio/upload", files={field: (song.name, song.read_bytes())})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filename"] == song.name and body["duration"] == pytest.approx(1.0, abs=0.1)


def test_a_file_name_without_extension_is_refused_naming_it(pipe: Any) -> None:
    song = pipe.kit.tone("typed.wav", 1.0)
    response = pipe.client.post(
        "/api/audio/upload", files={"file": ("recording", song.read_bytes(), "audio/wav")}
    )
    detail = pipe.detail(response, 400)
    assert "recording" in detail["message"] and "wav" in detail["details"]["valid"]


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({"file": ("My Holiday Song.mp3", b"this is not an mp3 at all\n" * 200)}, "My Holiday Song.mp3"),
        ({"file": ("notes.txt", b"hello")}, "notes.txt"),
        ({"data": ("../../secret/lyrics.mp3", b"\xff\xfb" + b"\x13\x37" * 300)}, "lyrics.mp3"),
    ],
)
def test_upload_errors_name_the_users_file(pipe: Any, files: dict[str, Any], says: str) -> None:
    detail = pipe.detail(pipe.client.post("/api/audio/upload", files=files), 400)
    assert says in detail["message"], detail
    assert "upload.mp3" not in detail["message"]


def test_upload_with_two_files_or_none_names_the_field(pipe: Any) -> None:
    two = pipe.client.post("/api/audio/upload", files={"file": ("a.mp3", b"x"), "data": ("b.mp3", b"y")})
    assert pipe.detail(two, 400)["details"]["field"] == "file"
    none = pipe.client.post("/api/audio/upload", files={"other": ("a.mp3", b"x")})
    assert pipe.detail(none, 400)["details"]["field"] == "file"


# ------------------------------------------------------------------------- the original's 400s
BLANKS = ["", "   ", "\n\t"]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        *[("/api/mv/create_scenes", {"idea": b, "character_description": "c"}, "idea") for b in BLANKS],
        *[
            ("/api/mv/create_scenes", {"idea": "i", "character_description": b}, "character_description")
            for b in BLANKS
        ],
        *[
            ("/api/mv/generate_character_reference", {"character_description": b}, "character_description")
            for b in BLANKS
        ],
        *[("/api/mv/generate_video", {"prompt": b}, "prompt") for b in BLANKS],
        (
            "/api/mv/lipsync",
            {"video_id": "{clip}", "audio_id": "{song}", "start_time": 2, "end_time": 2},
            "end_time",
        ),
        (
            "/api/mv/lipsync",
            {"video_id": "{clip}", "audio_id": "{song}", "start_time": 2.5, "end_time": 1},
            "end_time",
        ),
        ("/api/mv/lipsync", {"audio_id": "{song}"}, "video_id"),
        ("/api/mv/lipsync", {"video_id": "{clip}"}, "audio_id"),
        ("/api/mv/stitch-videos", {"video_ids": []}, "video_ids"),
        ("/api/audio/download", {"url": "  "}, "url"),
        (
            "/api/audio/download",
            {"url": "http://127.0.0.1:9/a.mp3", "start_time": 5, "end_time": 4},
            "end_time",
        ),
    ],
)
def test_refused_values_are_the_originals_400_naming_the_field(
    pipe: Any, made: dict[str, Any], path: str, payload: dict[str, Any], field: str
) -> None:
    values = {"clip": made["clips"][0], "song": made["song"]}
    body = {k: v.format(**values) if isinstance(v, str) and "{" in v else v for k, v in payload.items()}
    detail = pipe.detail(pipe.client.post(path, json=body), 400)
    assert detail["error"] == "ValidationError"
    assert detail["details"]["field"] == field
    assert field in detail["message"]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/mv/create_scenes", {"idea": 5, "character_description": "c"}, "idea"),
        ("/api/mv/create_scenes", {"character_description": "c"}, "idea"),
        ("/api/mv/generate_video", {"prompt": ["a"]}, "prompt"),
        ("/api/mv/generate_video", {"prompt": "p", "duration": "long"}, "duration"),
        ("/api/mv/stitch-videos", {"video_ids": "abc"}, "video_ids"),
        (
            "/api/mv/stitch-videos",
            {"video_ids": [str(uuid.uuid4())], "suppress_video_audio": "maybe"},
            "suppress_video_audio",
        ),
        (
            "/api/mv/lipsync",
            {"video_id": str(uuid.uuid4()), "audio_id": str(uuid.uuid4()), "end_time": "soon"},
            "end_time",
        ),
    ],
)
def test_type_and_shape_errors_stay_422_and_name_the_field(
    pipe: Any, path: str, payload: dict[str, Any], field: str
) -> None:
    detail = pipe.detail(pipe.client.post(path, json=payload), 422)
    assert [e["field"] for e in detail["details"]["errors"]] == [field], detail


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        (
            "/api/mv/generate_video",
            {"prompt": "p", "character_reference_id": "nope"},
            "character_reference_id",
        ),
        (
            "/api/mv/generate_video",
            {"prompt": "p", "character_reference_id": str(uuid.uuid4())},
            "character_reference_id",
        ),
        ("/api/mv/stitch-videos", {"video_ids": [str(uuid.uuid4())]}, "video_ids"),
        ("/api/mv/stitch-videos", {"video_ids": ["x"]}, "video_ids"),
        ("/api/mv/stitch-videos", {"video_ids": ["{clip}"], "audio_overlay_id": "x"}, "audio_overlay_id"),
        ("/api/mv/lipsync", {"video_id": str(uuid.uuid4()), "audio_id": "{song}"}, "video_id"),
        ("/api/mv/lipsync", {"video_id": "{clip}", "audio_id": str(uuid.uuid4())}, "audio_id"),
    ],
)
def test_unknown_ids_in_bodies_name_their_field(
    pipe: Any, made: dict[str, Any], path: str, payload: dict[str, Any], field: str
) -> None:
    values = {"clip": made["clips"][0], "song": made["song"]}

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value.format(**values) if isinstance(value, str) and "{" in value else value

    body = {k: fill(v) for k, v in payload.items()}
    named = body[field] if isinstance(body[field], list) else [body[field]]
    well_formed = all(_is_uuid(v) for v in named)
    # an id that is not a UUID is a bad value (400, as the original); a well-formed unknown one is a 404
    detail = pipe.detail(pipe.client.post(path, json=body), 404 if well_formed else 400)
    assert detail["details"]["field"].split("[")[0] == field, detail


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------- info
def test_info_of_known_and_unknown_ids_answers_exists(pipe: Any, made: dict[str, Any]) -> None:
    video = pipe.client.get(f"/api/mv/get_video/{made['clips'][0]}/info").json()
    assert video["exists"] is True and video["video_id"] == made["clips"][0] and video["metadata"]
    song = pipe.client.get(f"/api/audio/info/{made['song']}").json()
    assert song["exists"] is True and song["audio_id"] == made["song"] and song["duration"] > 3.5
    unknown = str(uuid.uuid4())
    assert pipe.client.get(f"/api/mv/get_video/{unknown}/info").json() == {
        "video_id": unknown,
        "exists": False,
    }
    assert pipe.client.get(f"/api/audio/info/{unknown}").json() == {"audio_id": unknown, "exists": False}
    upper = unknown.upper()  # ids are case-insensitive: the canonical form comes back
    assert pipe.client.get(f"/api/audio/info/{upper}").json()["audio_id"] == unknown


def test_kit_song_is_one_frequency(pipe: Any, tmp_path: Path) -> None:
    """The measuring stick itself: a pure tone reads ~1 at its frequency and ~0 elsewhere."""
    song = pipe.kit.tone("stick.wav", 1.0, freq=SONG_HZ)
    assert tone_share(song, SONG_HZ, 0.3, 0.2) > 0.95
    assert tone_share(song, 440, 0.3, 0.2) < 0.01


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"prompt": "p", "backend": "nosuch"}, "backend"),
        ({"prompt": "p", "video_rules_template": "{nope}"}, "video_rules_template"),
        ({"prompt": "p", "video_rules_template": "{aspect_ratio"}, "video_rules_template"),
    ],
)
def test_other_refused_values_name_their_field(pipe: Any, payload: dict[str, Any], field: str) -> None:
    detail = pipe.detail(pipe.client.post("/api/mv/generate_video", json=payload), 400)
    assert detail["details"]["field"] == field, detail
