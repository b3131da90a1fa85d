"""The ProjectStore contract, on SQLite and on DynamoDB (moto server over HTTP)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from mvcore.projects.records import Project
from mvcore.projects.store import ProjectStore

from .conftest import make_store, new_project, new_scenes


async def test_a_created_project_reads_back_with_its_flavor_snapshot(store: ProjectStore) -> None:
    project = new_project()
    await store.create(project)
    got = await store.get(project.projectId)
    assert got is not None
    assert got.conceptPrompt == project.conceptPrompt and got.status == "pending"
    assert got.config == project.config and got.generation == 3
    assert got.sceneCount == got.completedScenes == got.failedScenes == 0
    assert await store.get("00000000-0000-4000-8000-000000000000") is None


async def test_scenes_are_added_once_with_the_scene_count(store: ProjectStore) -> None:
    project = new_project()
    await store.create(project)
    assert await store.add_scenes(project.projectId, new_scenes(project.projectId, 3))
    assert not await store.add_scenes(project.projectId, new_scenes(project.projectId, 5))
    got = await store.get(project.projectId)
    assert got is not None and got.sceneCount == 3 and got.status == "processing"
    assert [s.sequence for s in got.scenes] == [1, 2, 3]
    assert got.scenes[0].prompt == "scene 1" and got.scenes[0].duration == 1.0


async def test_fields_are_set_and_removed(store: ProjectStore) -> None:
    project = new_project()
    await store.create(project)
    await store.add_scenes(project.projectId, new_scenes(project.projectId, 1))
    assert await store.set_scene(project.projectId, 1, videoClipS3Key="k/video.mp4", duration=2.5)
    assert await store.set_project(project.projectId, errorMessage="boom", finalOutputS3Key="k/final.mp4")
    assert await store.set_project(project.projectId, errorMessage=None)
    got = await store.get(project.projectId)
    assert got is not None and got.errorMessage is None and got.finalOutputS3Key == "k/final.mp4"
    assert got.scenes[0].videoClipS3Key == "k/video.mp4" and got.scenes[0].duration == 2.5
    assert not await store.set_project("00000000-0000-4000-8000-000000000000", status="failed")


async def test_a_scene_finishes_once_and_counts_once(store: ProjectStore) -> None:
    project = new_project()
    await store.create(project)
    await store.add_scenes(project.projectId, new_scenes(project.projectId, 2))
    assert await store.finish_scene(project.projectId, 1, "completed", lipSyncedVideoClipS3Key="k")
    assert not await store.finish_scene(project.projectId, 1, "completed")
    assert not await store.finish_scene(project.projectId, 1, "failed")
    assert await store.finish_scene(project.projectId, 2, "failed", errorMessage="nope")
    got = await store.get(project.projectId)
    assert got is not None and (got.completedScenes, got.failedScenes) == (1, 1)
    assert await store.reopen_scene(project.projectId, 2, errorMessage=None)
    assert await store.reopen_scene(project.projectId, 1)
    assert not await store.reopen_scene(project.projectId, 1)
    got = await store.get(project.projectId)
    assert got is not None and (got.completedScenes, got.failedScenes) == (0, 0)
    assert {s.status for s in got.scenes} == {"processing"} and got.scenes[1].errorMessage is None


async def test_retry_count_is_incremented_in_the_store(store: ProjectStore) -> None:
    project = new_project()
    await store.create(project)
    await store.add_scenes(project.projectId, new_scenes(project.projectId, 1))
    counts = await asyncio.gather(*(store.bump_retry(project.projectId, 1) for _ in range(8)))
    assert sorted(counts) == list(range(1, 9))


async def test_the_driver_lease_has_one_owner_until_it_expires(store: ProjectStore) -> None:
    project = new_project()
    await store.create(project)
    assert await store.claim(project.projectId, "a", ttl=60)
    assert not await store.claim(project.projectId, "b", ttl=60)
    assert await store.claim(project.projectId, "a", ttl=0.3)  # the owner renews (here: shortens) it
    await asyncio.sleep(0.5)  # however slow the machine, the lease has now expired
    assert await store.claim(project.projectId, "b", ttl=5)
    await store.release(project.projectId, "a")  # not a's any more: no effect
    assert not await store.claim(project.projectId, "a", ttl=5)
    await store.release(project.projectId, "b")
    assert await store.claim(project.projectId, "a", ttl=5)


async def test_listing_unfinished_and_delete(store: ProjectStore) -> None:
    done, running = new_project(status="completed"), new_project()
    for project in (done, running):
        await store.create(project)
    await store.add_scenes(running.projectId, new_scenes(running.projectId, 2))
    assert await store.unfinished() == [running.projectId]
    assert {p.projectId for p in await store.list()} == {done.projectId, running.projectId}
    assert await store.delete(running.projectId)
    assert await store.get(running.projectId) is None
    assert not await store.delete(running.projectId)


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
def test_concurrent_scene_completions_never_lose_a_counter_update(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Many writers (threads, each with its own store object = own connections), one project."""
    dynamo = request.getfixturevalue("dynamo") if backend == "dynamodb" else None
    scenes, writers = 24, 8
    setup = make_store(backend, tmp_path, dynamo)
    project = new_project()
    asyncio.run(setup.create(project))
    asyncio.run(setup.add_scenes(project.projectId, new_scenes(project.projectId, scenes)))
    barrier = threading.Barrier(writers)
    results: list[bool] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        own = make_store(backend, tmp_path, dynamo)
        barrier.wait(10)
        # every writer tries every scene: each scene must count exactly once
        for seq in range(1, scenes + 1):
            status = "completed" if seq % 3 else "failed"
            done = own.finish_scene_sync(project.projectId, seq, status, {"errorMessage": f"w{index}"})
            with lock:
                results.append(done)
        own.close_sync()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    got = setup.get_sync(project.projectId)
    assert isinstance(got, Project)
    failed = sum(1 for seq in range(1, scenes + 1) if seq % 3 == 0)
    assert results.count(True) == scenes
    assert (got.completedScenes, got.failedScenes) == (scenes - failed, failed)
    assert all(s.status in ("completed", "failed") for s in got.scenes)
    setup.close_sync()
