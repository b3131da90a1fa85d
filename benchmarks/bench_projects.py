"""Projects: wall time of a whole offline music video, and the provider calls it made.

One ``POST /api/mv/projects`` (default flavor: 4 scenes of 8 s; tiny: 2 scenes of 1 s; 160 px /
12 fps offline media, a 40 s sine-tone song) until the project is ``completed`` -- scenes, a clip
per scene (2 at a time), the lipsync of each scene with its song segment, the final cut.

Baseline: what a client did before projects -- the same steps as the original API's calls, one
after the other (``create_scenes``, ``generate_video`` per scene, ``lipsync`` per scene with
``start_time``/``end_time``, ``stitch-videos`` with the song as overlay) through the same app.
``ratio`` is project time / client-orchestrated time (below 1: the pipeline's parallel clips win).
The line also carries ``provider_calls`` (from the offline provider's call log).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import FLAVORS_DIR, note, result, tiny

PROMPT = "a cat learns to surf at dawn and sings about it"
CHARACTER = "an orange tabby cat with a tiny red surfboard"


def _song(folder: Path) -> Path:
    from mvcore.media.ffmpeg import ffmpeg_exe

    path = folder / "song.mp3"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=40",
            "-ac",
            "2",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def _client(tmp: Path, flavor_dir: Path) -> Any:
    from litestar.testing import TestClient

    from mvcore.api.app import create_app
    from mvcore.settings import Settings

    settings = Settings(
        flavors_dirs=[flavor_dir],
        data_dir=tmp / "data",
        watch="off",
        provider="offline",
        offline_long_side=160,
        offline_fps=12,
        offline_call_log=tmp / "calls.jsonl",
    )
    return TestClient(create_app(settings), timeout=600)


def _project(client: Any, song: Path) -> float:
    started = time.perf_counter()
    data = {"mode": "music-video", "prompt": PROMPT, "characterDescription": CHARACTER}
    response = client.post("/api/mv/projects", data=data, files={"audio": ("song.mp3", song.read_bytes())})
    project_id = response.json()["projectId"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        body = client.get(f"/api/mv/projects/{project_id}").json()
        if body["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)
    if body["status"] != "completed":
        raise RuntimeError(f"project ended {body['status']}: {body.get('errorMessage')}")
    return time.perf_counter() - started


def _by_hand(client: Any, song: Path) -> float:
    started = time.perf_counter()
    audio_id = client.post("/api/audio/upload", files={"data": ("song.mp3", song.read_bytes())}).json()[
        "audio_id"
    ]
    scenes = client.post("/api/mv/create_scenes", json={"idea": PROMPT, "character_description": CHARACTER})
    clips, at = [], 0.0
    for scene in scenes.json()["scenes"]:
        video = client.post("/api/mv/generate_video", json={"prompt": scene["description"]}).json()
        length = float(
            client.get(f"/api/mv/get_video/{video['video_id']}/info").json()["metadata"]["parameters_used"][
                "duration"
            ]
        )
        synced = client.post(
            "/api/mv/lipsync",
            json={
                "video_id": video["video_id"],
                "audio_id": audio_id,
                "start_time": at,
                "end_time": at + length,
            },
        ).json()
        clips.append(synced["video_id"])
        at += length
    client.post("/api/mv/stitch-videos", json={"video_ids": clips, "audio_overlay_id": audio_id})
    return time.perf_counter() - started


def run(quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="mvcore-bench-projects-") as name:
        tmp = Path(name)
        flavors = tmp / "flavors"
        shutil.copytree(FLAVORS_DIR, flavors)
        if tiny():
            (flavors / "default" / "parameters.yaml").write_text("number_of_scenes: 2\n")
            (flavors / "default" / "image_params.yaml").write_text("video_duration: 1\n")
        song = _song(tmp)
        with _client(tmp, flavors) as client:
            note("projects: one project end to end")
            project_s = _project(client, song)
            calls = [json.loads(line) for line in (tmp / "calls.jsonl").read_text().splitlines()]
            note("projects: the same steps called one by one")
            by_hand_s = _by_hand(client, song)
    kinds: dict[str, int] = {}
    for entry in calls:
        kinds[entry["call"]] = kinds.get(entry["call"], 0) + 1
    scenes = kinds.get("generate_video", 0)
    return [
        result(
            f"projects:{scenes}_scene_offline_project",
            round(project_s, 3),
            "s",
            "the same calls made one by one by a client",
            round(by_hand_s, 3),
            target=("<=", 1.0),
            provider_calls=len(calls),
            provider_calls_by_kind=kinds,
        )
    ]
