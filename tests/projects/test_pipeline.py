"""The whole project pipeline offline, in process, on both stores: create -> scenes -> clips ->
lipsync -> compose; regenerate; failures and retries; the flavor snapshot; the event stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.errors import ProviderError
from mvcore.media.ffmpeg import probe_sync
from mvcore.providers.offline import OfflineProvider
from mvcore.testing.dynamodb import MotoDynamoServer
from mvcore.testing.settings import offline_settings

from .conftest import CALL_LOG, calls, form, per_scene, tiny_flavors, wait_for

Client = TestClient[Any]


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return {}
    dynamo: MotoDynamoServer = request.getfixturevalue("dynamo")
    return dynamo.settings_overrides()


@pytest.fixture
def make_client(tmp_path: Path, backend: dict[str, Any]) -> Callable[..., Any]:
    tiny_flavors(tmp_path)

    @contextmanager
    def make(provider: OfflineProvider | None = None, **overrides: Any) -> Iterator[Client]:
        settings = offline_settings(
            tmp_path, offline_call_log=tmp_path / CALL_LOG, project_lease_s=5, **{**backend, **overrides}
        )
        app = create_app(settings)
        if provider is not None:
            app.state["services"].ctx.providers["offline"] = provider
        with TestClient(app, raise_server_exceptions=False) as client:
            client.app.state["projects"].pipeline.backoff_s = 0.01
            yield client

    return make


def create(client: Client, song: Path, **fields: str) -> str:
    response = client.post(
        "/api/mv/projects",
        data=form(**fields),
        files={"audio": ("song.mp3", song.read_bytes(), "audio/mpeg")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["message"] == "Project created successfully"
    return str(body["projectId"])


def finished(client: Client, project_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> Any:
        body = client.get(f"/api/mv/projects/{project_id}").json()
        return body if body["status"] in ("completed", "failed") else None

    return dict(wait_for(done, timeout, f"project {project_id} to finish"))  # type: ignore[call-overload]


def test_a_four_scene_project_becomes_a_music_video_with_one_call_per_step(
    make_client: Callable[..., Any], song: Path, tmp_path: Path
) -> None:
    with make_client() as client:
        generation = client.app.state["services"].store.current.generation
        project_id = create(client, song)
        body = finished(client, project_id)
        assert body["status"] == "completed", body
        assert (body["sceneCount"], body["completedScenes"], body["failedScenes"]) == (4, 4, 0)
        assert body["metadata"]["config"] == {
            "flavor_requested": "tiny",
            "flavor_used": "tiny",
            "fallback": False,
            "generation": generation,
        }
        assert body["progress"]["fraction"] == 1.0 and body["configFlavor"] == "tiny"
        start = 0.0
        for scene in body["scenes"]:
            assert scene["status"] == "completed" and scene["needsLipSync"] and scene["retryCount"] == 0
            clip = client.get(scene["videoClipUrl"])
            assert clip.status_code == 200 and clip.headers["content-type"].startswith("video/mp4")
            segment = client.get(scene["audioClipUrl"])
            assert segment.status_code == 200
            seg = tmp_path / f"seg{scene['sequence']}.mp3"
            seg.write_bytes(segment.content)
            # the song segment under the scene is as long as the scene's real clip
            assert abs(probe_sync(seg).duration - scene["duration"]) < 0.15
            start += scene["duration"]
        final = client.get(f"/api/mv/projects/{project_id}/final-video").json()
        assert final["projectId"] == project_id and final["expiresInSeconds"] == 3600
        video = client.get(final["videoUrl"])
        assert video.status_code == 200
        out = tmp_path / "final.mp4"
        out.write_bytes(video.content)
        info = probe_sync(out)
        assert info.has_video and info.has_audio and abs(info.duration - start) < 0.3
    log = calls(tmp_path)
    assert [e["call"] for e in log].count("generate_scenes") == 1
    assert per_scene(log, "generate_video") == {1: 1, 2: 1, 3: 1, 4: 1}
    assert per_scene(log, "lipsync") == {1: 1, 2: 1, 3: 1, 4: 1}
    assert len(log) == 9


def test_dynamodb_items_use_the_original_key_schema(
    tmp_path: Path, song: Path, dynamo: MotoDynamoServer
) -> None:
    tiny_flavors(tmp_path, scenes=2)
    settings = offline_settings(tmp_path, **dynamo.settings_overrides())
    with TestClient(create_app(settings)) as client:
        project_id = create(client, song)
        assert finished(client, project_id)["status"] == "completed"
    items = dynamo.dynamodb_client().query(
        TableName=dynamo.table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PROJECT#{project_id}"}},
    )["Items"]
    assert sorted(i["SK"]["S"] for i in items) == ["METADATA", "SCENE#001", "SCENE#002"]
    meta = next(i for i in items if i["SK"]["S"] == "METADATA")
    assert meta["completedScenes"] == {"N": "2"} and meta["GSI1PK"] == {"S": "completed"}
    scene = next(i for i in items if i["SK"]["S"] == "SCENE#001")
    assert scene["videoClipS3Key"]["S"] == f"mv/projects/{project_id}/scenes/001/video.mp4"
    assert scene["lipSyncedVideoClipS3Key"]["S"] == f"mv/projects/{project_id}/scenes/001/lipsynced.mp4"


class Flaky(OfflineProvider):
    """Fails ``generate_video`` for scenes listed in ``failing`` (``times`` attempts each, 502 or 400)."""

    def __init__(self, settings: Any, failing: dict[int, int], status: int = 502) -> None:
        super().__init__(settings)
        self.failing = failing
        self.status = status

    async def generate_video(self, **kwargs: Any) -> Any:
        prompt = str(kwargs["prompt"])
        for seq, left in self.failing.items():
            if prompt.startswith(f"Scene {seq} of") and left > 0:
                self.failing[seq] = left - 1
                raise ProviderError(
                    "the model is overloaded", code="MODEL_OVERLOADED", status_code=self.status
                )
        return await super().generate_video(**kwargs)


@pytest.mark.parametrize(
    ("failures", "status", "outcome", "retries"),
    [
        (1, 502, "completed", 1),  # a transient failure is retried and the project finishes
        (5, 502, "failed", 2),  # retries used up: the scene fails, the project fails
        (5, 400, "failed", 0),  # a refusal of the input is not retried
    ],
)
def test_a_failing_scene_is_retried_then_fails_the_project_while_others_keep_their_videos(
    make_client: Callable[..., Any],
    song: Path,
    tmp_path: Path,
    failures: int,
    status: int,
    outcome: str,
    retries: int,
) -> None:
    settings = offline_settings(tmp_path, offline_call_log=tmp_path / CALL_LOG)
    with make_client(Flaky(settings, {3: failures}, status)) as client:
        project_id = create(client, song)
        body = finished(client, project_id)
    assert body["status"] == outcome, body
    scene3 = body["scenes"][2]
    assert scene3["retryCount"] == retries
    others = [s for s in body["scenes"] if s["sequence"] != 3]
    if outcome == "failed":
        assert scene3["status"] == "failed" and "overloaded" in scene3["errorMessage"]
        assert body["errorMessage"].startswith("Scene 3 failed") and body["failedScenes"] == 1
        assert all(s["videoClipUrl"] for s in others) and body["finalOutputUrl"] is None
        refused = client_post_compose(make_client, project_id)
        assert refused["detail"]["message"] == "Cannot compose video: not all scenes are completed"
    else:
        assert body["completedScenes"] == 4 and body["finalOutputUrl"]


def client_post_compose(make_client: Callable[..., Any], project_id: str) -> dict[str, Any]:
    with make_client() as client:
        response = client.post(f"/api/mv/projects/{project_id}/compose")
        assert response.status_code == 400
        return dict(response.json())


def test_regenerate_redoes_one_scene_and_recomposes(
    make_client: Callable[..., Any], song: Path, tmp_path: Path
) -> None:
    with make_client() as client:
        project_id = create(client, song)
        before = finished(client, project_id)
        assert before["status"] == "completed"
        response = client.post(f"/api/mv/projects/{project_id}/scenes/2/regenerate")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "processing"
        after = finished(client, project_id)
        assert after["status"] == "completed" and after["completedScenes"] == 4
        again = client.post(f"/api/mv/projects/{project_id}/scenes/3/regenerate", json={"lipsync": True})
        assert again.status_code == 202
        assert finished(client, project_id)["status"] == "completed"
    log = calls(tmp_path)
    assert per_scene(log, "generate_video") == {1: 1, 2: 2, 3: 1, 4: 1}
    assert per_scene(log, "lipsync") == {1: 1, 2: 2, 3: 2, 4: 1}


def test_a_reload_after_creation_does_not_change_a_running_project(
    make_client: Callable[..., Any], song: Path, tmp_path: Path
) -> None:
    with make_client(offline_latency_s=0.3) as client:
        services = client.app.state["services"]
        generation = services.store.current.generation
        project_id = create(client, song)
        (tmp_path / "flavors" / "tiny" / "image_params.yaml").write_text("video_duration: 3\n")
        (tmp_path / "flavors" / "tiny" / "parameters.yaml").write_text("number_of_scenes: 2\n")
        services.store.rebuild("test")
        assert services.store.current.generation > generation
        body = finished(client, project_id)
    assert body["status"] == "completed" and body["sceneCount"] == 4
    assert body["metadata"]["config"]["generation"] == generation
    assert all(abs(s["duration"] - 1.0) < 0.1 for s in body["scenes"])


def test_the_event_stream_follows_the_project_to_the_end(make_client: Callable[..., Any], song: Path) -> None:
    with make_client() as client:
        project_id = create(client, song)
        seen: list[str] = []
        with client.stream("GET", f"/api/mv/projects/{project_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "project":
                    body = json.loads(line.split(":", 1)[1])
                    seen.append(body["progress"]["stage"])
                    if body["status"] in ("completed", "failed"):
                        break
                assert len(seen) < 500
    assert seen[-1] == "completed"
    assert len(set(seen)) >= 2  # it saw the project move, not just its end
