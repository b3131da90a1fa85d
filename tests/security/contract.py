"""Known-good requests for every operation of the OpenAPI document (the contract test's first pass).

Fuzzed inputs rarely name an object that exists, so without these most 200 bodies (a video's
info, a job, a stitch) would never be checked against their schema.  ``KnownGood`` creates real
objects through the API itself (a song, an image, clips, a job, a saved flavor file, a project run
to its end) and then answers, for each operation, one request that must succeed; its response is
validated like every fuzzed one.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imageio_ffmpeg

Operation = Any
Check = Callable[[Any, Any], None]
JSON = "application/json"


def make_song(folder: Path, seconds: float = 2.0) -> Path:
    path = folder / "song.mp3"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=660:d={seconds}",
            str(path),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 for ``folder`` (what /api/audio/download fetches)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, name="contract-files", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class KnownGood:
    """Runs one must-succeed request per operation, in dependency order, validating each answer."""

    def __init__(self, operations: list[Operation], check: Check, folder: Path, base_url: str) -> None:
        self.ops = {f"{o.method.upper()} {o.path}": o for o in operations}
        self.check = check
        self.song = make_song(folder)
        self.base_url = base_url
        self.answered: dict[str, int] = {}

    def call(self, label: str, **case: Any) -> Any:
        operation = self.ops[label]
        built = operation.Case(**case)
        response = built.call(timeout=120)
        self.answered[label] = response.status_code
        self.check(built, response)
        assert 200 <= response.status_code < 300, (label, response.status_code, response.text[:500])
        return response.json() if "json" in response.headers.get("content-type", [""])[0] else None

    def run(self) -> dict[str, int]:
        song = self.call(
            "POST /api/audio/upload", body={"file": self.song.read_bytes()}, media_type="multipart/form-data"
        )
        aid = song["audio_id"]
        self.call(
            "POST /api/audio/download",
            body={"url": f"{self.base_url}/{self.song.name}"},
            media_type="application/json",
        )
        image = self.call(
            "POST /api/mv/generate_character_reference",
            body={"character_description": "a fox", "num_images": 1},
            media_type="application/json",
        )["images"][0]
        clip = self.call(
            "POST /api/mv/generate_video",
            body={"prompt": "a fox", "duration": 1, "character_reference_id": ""},
            media_type="application/json",
        )
        vid = clip["video_id"]
        self.call(
            "POST /api/mv/create_scenes",
            body={"idea": "a fox", "character_description": "red"},
            media_type="application/json",
        )
        job = self.call(
            "POST /api/mv/create_scenes",
            body={"idea": "a fox", "character_description": "red"},
            query={"async": True},
            media_type="application/json",
        )
        self.call(
            "POST /api/mv/lipsync",
            body={"video_id": vid, "audio_id": aid, "start_time": 0, "end_time": 1},
            media_type="application/json",
        )
        self.call(
            "POST /api/mv/stitch-videos",
            body={"video_ids": [vid, vid], "audio_id": aid},
            media_type="application/json",
        )
        self.call("GET /api/mv/get_video/{video_id}", path_parameters={"video_id": vid})
        self.call("GET /api/mv/get_video/{video_id}/info", path_parameters={"video_id": vid})
        self.call("GET /api/mv/get_character_reference/{image_id}", path_parameters={"image_id": image["id"]})
        self.call("GET /api/audio/get/{audio_id}", path_parameters={"audio_id": aid})
        self.call("GET /api/audio/info/{audio_id}", path_parameters={"audio_id": aid})
        self.call("GET /api/mv/jobs/{job_id}", path_parameters={"job_id": job["job_id"]})
        self.call("DELETE /api/mv/jobs/{job_id}", path_parameters={"job_id": job["job_id"]})
        self.call("GET /api/mv/jobs")
        self.call("GET /api/mv/flavors/{name}", path_parameters={"name": "example"})
        self.run_editor()
        self.run_project(aid)
        for label in (
            "GET /health",
            "GET /api/mv/get_config_flavors",
            "GET /api/mv/config/debug",
            "GET /api/mv/flavors",
            "GET /api/mv/flavors/status",
        ):
            self.call(label)
        return self.answered

    def run_editor(self) -> None:
        """The flavor editor (the app must run with ``flavor_editing=True``)."""
        name = {"name": "example"}
        file = {**name, "filename": "parameters.yaml"}
        self.call("GET /api/mv/flavors/{name}/files", path_parameters=name)
        draft = {"files": {"parameters.yaml": 'camera_angle: "from the contract test"\n'}}
        self.call("POST /api/mv/flavors/{name}/validate", path_parameters=name, body=draft, media_type=JSON)
        preview = {**draft, "idea": "a fox", "character_description": "red"}
        self.call("POST /api/mv/flavors/{name}/render", path_parameters=name, body=preview, media_type=JSON)
        content = {"content": 'camera_angle: "saved by the contract test"\n'}
        self.call(
            "PUT /api/mv/flavors/{name}/files/{filename}", path_parameters=file, body=content, media_type=JSON
        )
        history = self.call("GET /api/mv/flavors/{name}/files/{filename}/history", path_parameters=file)
        entry = {**file, "entry": history["entries"][0]["id"]}
        self.call("GET /api/mv/flavors/{name}/files/{filename}/history/{entry}", path_parameters=entry)
        self.call(
            "POST /api/mv/flavors/{name}/files/{filename}/history/{entry}/restore", path_parameters=entry
        )

    def run_project(self, audio_id: str) -> None:
        """A one-scene project through its whole pipeline, then every project operation on it
        (needs the ``tiny`` flavor: one 1 s scene)."""
        form = {
            "mode": "music-video",
            "prompt": "a fox crosses a snowy field",
            "characterDescription": "a red fox with a white-tipped tail",
            "audioId": audio_id,
            "configFlavor": "tiny",
        }
        created = self.call("POST /api/mv/projects", body=form, media_type="multipart/form-data")
        pid = {"project_id": created["projectId"]}
        project = self.finished(pid)
        self.call("GET /api/mv/projects")
        self.call("GET /api/mv/projects/{project_id}/final-video", path_parameters=pid)
        path = project["finalOutputUrl"].split("?")[0].split("/files/", 1)[1]
        self.call("GET /api/mv/projects/{project_id}/files/{path}", path_parameters={**pid, "path": path})
        self.call("GET /api/mv/projects/{project_id}/events", path_parameters=pid)
        self.call(
            "PATCH /api/mv/projects/{project_id}",
            path_parameters=pid,
            body={"status": "completed"},
            media_type=JSON,
        )
        scene = {**pid, "sequence": project["scenes"][0]["sequence"]}
        self.call("POST /api/mv/projects/{project_id}/scenes/{sequence}/regenerate", path_parameters=scene)
        self.finished(pid)
        self.call("POST /api/mv/projects/{project_id}/compose", path_parameters=pid)
        self.finished(pid)
        self.call("DELETE /api/mv/projects/{project_id}", path_parameters=pid)

    def finished(self, pid: dict[str, str], timeout: float = 120.0) -> Any:
        """``GET`` the project until its pipeline is done (the last answer is validated)."""
        deadline = time.monotonic() + timeout
        while True:
            project = self.call("GET /api/mv/projects/{project_id}", path_parameters=pid)
            if project["status"] == "completed":
                return project
            assert project["status"] != "failed", project
            assert time.monotonic() < deadline, f"project not done after {timeout:g} s: {project}"
            time.sleep(0.1)
