"""Every user mistake in lipsync/stitch is a 4xx with the original error body, never a 500."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def pipe(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Any, open_client: Any, make_pipeline: Any
) -> Iterator[Any]:
    """One app for the whole module: bad requests leave nothing behind that could matter."""
    root = tmp_path_factory.mktemp("bad_input")
    with open_client(make_settings(root)) as client:
        yield make_pipeline(client, root)


@pytest.fixture(scope="module")
def made(pipe: Any) -> dict[str, str]:
    """One clip and one 6 s song to point bad requests at."""
    return {"video_id": pipe.video(1)["video_id"], "audio_id": pipe.song(6.0)["audio_id"]}


def _post(pipe: Any, path: str, payload: dict[str, Any]) -> Any:
    return pipe.client.post(path, json=payload)


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ({"video_ids": []}, 400, "video_ids"),
        ({}, 422, "video_ids"),
        ({"video_ids": "not-a-list"}, 422, "video_ids"),
        ({"video_ids": ["not-a-uuid"]}, 400, "not-a-uuid"),
        ({"video_ids": ["../../etc/passwd"]}, 400, "../../etc/passwd"),
        ({"video_ids": ["{video_id}", "12345"]}, 400, "video_ids[1]"),
        ({"video_ids": ["{video_id}"], "audio_overlay_id": "../../etc/passwd"}, 400, "audio_overlay_id"),
        ({"video_ids": [str(uuid.UUID(int=7))]}, 404, str(uuid.UUID(int=7))),
        ({"video_ids": ["{video_id}"] * 65}, 422, "video_ids"),
    ],
)
def test_bad_stitch_requests(
    pipe: Any, made: dict[str, str], payload: dict[str, Any], status: int, says: str
) -> None:
    if isinstance(payload.get("video_ids"), list):
        payload = dict(payload, video_ids=[v.format(**made) for v in payload["video_ids"]])
    detail = pipe.detail(_post(pipe, "/api/mv/stitch-videos", payload), status)
    assert says in detail["message"] or says in str(detail["details"])


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ({"audio_id": "{audio_id}"}, 400, "video_id"),
        ({"video_id": "{video_id}"}, 400, "audio_id"),
        ({}, 400, "video_id"),
        (
            {"video_id": "{video_id}", "audio_id": "{audio_id}", "start_time": 3, "end_time": 3},
            400,
            "end_time",
        ),
        (
            {"video_id": "{video_id}", "audio_id": "{audio_id}", "start_time": 4, "end_time": 2},
            400,
            "end_time",
        ),
        ({"video_id": "{video_id}", "audio_id": "{audio_id}", "start_time": -1}, 422, "start_time"),
        ({"video_id": "{video_id}", "audio_id": "{audio_id}", "start_time": 4, "end_time": 9}, 400, "6.00 s"),
        ({"video_id": "{video_id}", "audio_id": "{audio_id}", "start_time": 7}, 400, "6.00 s"),
        ({"video_id": "{video_id}", "audio_id": "{audio_id}", "end_time": 60}, 400, "6.00 s"),
        (
            {
                "video_id": "{video_id}",
                "audio_url": "http://127.0.0.1:9/song.mp3",
                "start_time": 1,
                "end_time": 2,
            },
            400,
            "audio_id",
        ),
        (
            {"video_id": "{video_id}", "audio_url": "http://127.0.0.1:9/song.mp3", "end_time": 2},
            400,
            "audio_id",
        ),
        ({"video_id": "../../etc/passwd", "audio_id": "{audio_id}"}, 400, "video_id"),
        ({"video_id": "{video_id}", "audio_id": "../../etc/passwd"}, 400, "audio_id"),
        ({"video_id": "not-a-uuid", "audio_id": "{audio_id}"}, 400, "not-a-uuid"),
        ({"video_id": str(uuid.UUID(int=9)), "audio_id": "{audio_id}"}, 404, str(uuid.UUID(int=9))),
        ({"video_id": "{video_id}", "audio_id": str(uuid.UUID(int=9))}, 404, str(uuid.UUID(int=9))),
        ({"video_url": "file:///etc/passwd", "audio_id": "{audio_id}"}, 400, "URL"),
        ({"video_url": "../../etc/passwd", "audio_id": "{audio_id}"}, 400, "URL"),
        ({"video_url": "/api/mv/get_video/../../etc/passwd", "audio_id": "{audio_id}"}, 400, "URL"),
        (
            {"video_id": "{video_id}", "audio_url": "http://127.0.0.1:9/nothing-listens.mp3"},
            400,
            "cannot be fetched",
        ),
        ({"video_id": "{video_id}", "audio_id": "{audio_id}", "temperature": 2}, 422, "temperature"),
    ],
)
def test_bad_lipsync_requests(
    pipe: Any, made: dict[str, str], payload: dict[str, Any], status: int, says: str
) -> None:
    payload = {k: v.format(**made) if isinstance(v, str) else v for k, v in payload.items()}
    detail = pipe.detail(_post(pipe, "/api/mv/lipsync", payload), status)
    assert says in detail["message"] or says in str(detail["details"])


def test_lipsync_with_a_silent_video_as_the_audio(
    pipe: Any, made: dict[str, str], local_fetch_pipe: Any, http_files: tuple[str, Path]
) -> None:
    base, root = http_files
    shutil.copy(pipe.fetch(pipe.video(1, audio=False)["video_url"]), root / "silent.mp4")
    local = local_fetch_pipe
    response = _post(
        local, "/api/mv/lipsync", {"video_id": local.video(1)["video_id"], "audio_url": f"{base}/silent.mp4"}
    )
    assert "no audio stream" in local.detail(response, 400)["message"]
    # our own video URL is not an audio URL
    response = _post(
        pipe,
        "/api/mv/lipsync",
        {"video_id": made["video_id"], "audio_url": f"/api/mv/get_video/{made['video_id']}"},
    )
    pipe.detail(response, 400)


@pytest.mark.parametrize("body", ["not json", "[]", '{"video_ids": [1, 2]}'])
def test_unreadable_stitch_bodies(pipe: Any, body: str) -> None:
    response = pipe.client.post(
        "/api/mv/stitch-videos", content=body, headers={"content-type": "application/json"}
    )
    pipe.detail(response, (400, 404, 422))


@pytest.mark.parametrize("video_id", ["not-a-uuid", str(uuid.UUID(int=3)), "..%2F..%2Fetc%2Fpasswd"])
def test_get_video_of_unknown_ids(pipe: Any, video_id: str) -> None:
    pipe.detail(pipe.client.get(f"/api/mv/get_video/{video_id}"), 404)
    info = pipe.client.get(f"/api/mv/get_video/{video_id}/info")
    if video_id == str(uuid.UUID(int=3)):  # a well-formed unknown id: the original's 200 exists=false
        assert info.status_code == 200 and info.json() == {"video_id": video_id, "exists": False}
    else:
        pipe.detail(info, 404)
