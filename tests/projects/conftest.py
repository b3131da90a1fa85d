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
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=12",
         "-ac", "2", "-ar", "44100", "-b:a", "96k", str(path)],
        check=True,
        timeout=60,
    )
    return path
