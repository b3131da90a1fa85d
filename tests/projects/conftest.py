"""Fixtures for the projects tests.

* ``dynamo`` -- moto's server mode on 127.0.0.1 (session-wide); each test gets its own table.
* ``store`` -- a ProjectStore, parametrized over both backends (``sqlite`` in tmp, ``dynamodb``
  over HTTP to moto), so every contract test runs on both.
* ``song`` -- a real mp3 (sine tone) made with the ffmpeg of imageio-ffmpeg.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mvcore.media.ffmpeg import ffmpeg_exe
from mvcore.projects.records import Project, Scene
from mvcore.projects.store import ProjectStore
from mvcore.testing.dynamodb import MotoDynamoServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dynamo_server() -> Iterator[MotoDynamoServer]:
    with MotoDynamoServer() as server:
        yield server


@pytest.fixture
def dynamo(dynamo_server: MotoDynamoServer) -> MotoDynamoServer:
    dynamo_server.table = f"mvcore-projects-{uuid.uuid4().hex[:10]}"
    return dynamo_server


def make_store(kind: str, tmp_path: Path, dynamo: MotoDynamoServer | None) -> ProjectStore:
    if kind == "sqlite":
        from mvcore.projects.sqlite_store import SqliteProjectStore

        return SqliteProjectStore(tmp_path / "projects.sqlite3")
    from mvcore.projects.dynamo_store import DynamoProjectStore

    assert dynamo is not None
    return DynamoProjectStore(dynamo.table, dynamo.dynamodb_client())


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProjectStore]:
    dynamo = request.getfixturevalue("dynamo") if request.param == "dynamodb" else None
    made = make_store(request.param, tmp_path, dynamo)
    try:
        yield made
    finally:
        made.close_sync()


def new_project(**overrides: object) -> Project:
    values: dict[str, object] = {
        "projectId": str(uuid.uuid4()),
        "mode": "music-video",
        "conceptPrompt": "a cat learns to surf at dawn",
        "characterDescription": "an orange tabby cat with a tiny red surfboard",
        "config": {"meta": {"generation": 3, "flavor_used": "default"}, "values": {"parameters": {"x": 1.5}}},
        "generation": 3,
    }
    values.update(overrides)
    return Project(**values)  # type: ignore[arg-type]


def new_scenes(project_id: str, count: int) -> list[Scene]:
    return [Scene(project_id, seq, f"scene {seq}", "blurry", duration=1.0) for seq in range(1, count + 1)]


@pytest.fixture(scope="session")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("song") / "song.mp3"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=12",
            "-ac",
            "2",
            "-ar",
            "44100",
            "-b:a",
            "96k",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


# ------------------------------------------------------------------------------------- the app
WAIT_S = 60.0
CALL_LOG = "calls.jsonl"


def tiny_flavors(tmp_path: Path, scenes: int = 4, seconds: int = 1) -> Path:
    """``flavors/tiny``: ``scenes`` scenes of ``seconds`` s (small, fast offline media)."""
    root = tmp_path / "flavors"
    (root / "tiny").mkdir(parents=True, exist_ok=True)
    (root / "tiny" / "parameters.yaml").write_text(f"number_of_scenes: {scenes}\n")
    (root / "tiny" / "image_params.yaml").write_text(f"video_duration: {seconds}\n")
    return root


def calls(tmp_path: Path) -> list[dict[str, object]]:
    """The offline provider's call log (MVCORE_OFFLINE_CALL_LOG): one line per paid call."""
    import json

    path = tmp_path / CALL_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def per_scene(entries: list[dict[str, object]], call: str) -> dict[int, int]:
    """How many ``call``s each scene got (video: by its prompt "Scene N of"; lipsync: by its clip path)."""
    import re

    counts: dict[int, int] = {}
    for entry in entries:
        if entry["call"] != call:
            continue
        text = str(entry.get("prompt") or entry.get("video") or "")
        match = re.search(r"Scene (\d+) of|scenes/(\d{3})/", text)
        assert match, entry
        seq = int(match.group(1) or match.group(2))
        counts[seq] = counts.get(seq, 0) + 1
    return counts


def form(**overrides: str) -> dict[str, str]:
    values = {
        "mode": "music-video",
        "prompt": "a cat learns to surf at dawn",
        "characterDescription": "an orange tabby cat with a tiny red surfboard",
        "configFlavor": "tiny",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def wait_for(check: object, timeout: float = WAIT_S, what: str = "", interval: float = 0.1) -> object:
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what or check}")
        time.sleep(interval)
