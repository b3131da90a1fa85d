"""The project driver: submits each step as a job, in order, and picks up where it stopped.

Order: scenes -> one clip per scene (at most ``MVCORE_PROJECT_CLIP_CONCURRENCY`` at once) ->
lipsync of each scene with the song segment under it in the final cut (it starts once the real
durations of the scenes before it are known) -> compose.  The driver keeps no state of its own:
every decision is made from the project record, which the steps themselves write.  So after a
crash -- of a worker, or of the API process that ran the driver -- a new driver reads the record,
reuses every recorded result, waits for jobs that are still running (their ids are on the record)
and submits only what is missing.

One driver per project at a time, across processes: the driver holds a lease in the store
(``claim``, a conditional write renewed every third of ``MVCORE_PROJECT_LEASE``).  A driver that
died leaves a lease that expires; the next process to start (or the same one, restarted) takes
over then.

Retries: a step that fails with a retryable error (worker lost, timeout, 5xx) is submitted again,
up to ``MVCORE_PROJECT_STEP_RETRIES`` times (``retryCount`` on the scene); a scene that still
fails is marked failed, the other scenes finish, and the project ends ``failed`` with that
scene's error.  ``regenerate`` reopens one scene and drives the project again, which re-composes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from mvcore import logs
from mvcore.errors import MvcoreError, NotFound
from mvcore.projects.jobs_adapter import StepJobs, StepOutcome
from mvcore.projects.records import FINAL_STATUSES, Project, Scene
from mvcore.projects.steps import segment_of
from mvcore.projects.store import ProjectStore
from mvcore.settings import Settings

__all__ = ["ProjectPipeline", "StepFailed"]

_JOB_FIELD = {
    "project_scenes": "scenesJobId",
    "project_clip": "videoGenerationJobId",
    "project_lipsync": "lipsyncJobId",
    "project_compose": "composeJobId",
}
_LIPSYNC_RESET = {
    "lipSyncedVideoClipS3Key": None,
    "lipsyncJobId": None,
    "audioClipS3Key": None,
    "lipSyncSegment": None,
}
_SEGMENT_SLACK = 0.05


class StepFailed(MvcoreError):
    """A step failed for good (retries used up, or not retryable)."""

    code = "STEP_FAILED"
    status_code = 502


class ProjectPipeline:
    def __init__(
        self, store: ProjectStore, jobs: StepJobs, settings: Settings, *, owner: str | None = None
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.backoff_s = 0.2

    # --- lifecycle ------------------------------------------------------------------
    async def resume_all(self) -> list[str]:
        """Drive every unfinished project (called at startup): what a crash left half-done."""
        ids = await self.store.unfinished()
        for project_id in ids:
            self.kick(project_id)
        if ids:
            logs.event("projects_resumed", logging.INFO, count=len(ids), owner=self.owner)
        return ids

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def kick(self, project_id: str) -> None:
        """Make sure a driver runs for the project in this process (no-op when one does)."""
        running = self.tasks.get(project_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._drive(project_id), name=f"project:{project_id}")
        self.tasks[project_id] = task
        task.add_done_callback(lambda t: self._forget(project_id, t))

    def _forget(self, project_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(project_id) is task:
            del self.tasks[project_id]
        if not task.cancelled() and task.exception() is not None:
            logs.event(
                "project_driver_crashed",
                logging.ERROR,
                project_id=project_id,
                error=repr(task.exception())[:300],
            )

    async def wait_idle(self, project_id: str, timeout: float) -> None:
        task = self.tasks.get(project_id)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)

    # --- the lease ------------------------------------------------------------------
    async def _drive(self, project_id: str) -> None:
        ttl = self.settings.project_lease_s
        while not await self.store.claim(project_id, self.owner, ttl):
            project = await self.store.get(project_id)
            if project is None or project.status in FINAL_STATUSES:
                return
            await asyncio.sleep(min(ttl / 2, 2.0))  # someone else drives, or a dead driver's lease runs out
        work = asyncio.create_task(self._settle(project_id))
        renew = asyncio.create_task(self._renew(project_id, work))
        try:
            await work
        finally:
            renew.cancel()
            with contextlib.suppress(BaseException):
                await renew
            with contextlib.suppress(Exception):
                await self.store.release(project_id, self.owner)

    async def _renew(self, project_id: str, work: asyncio.Task[None]) -> None:
        ttl = self.settings.project_lease_s
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                held = await self.store.claim(project_id, self.owner, ttl)
            except Exception as exc:  # a store blip: try again next period
                logs.event(
                    "project_lease_renew_failed",
                    logging.WARNING,
                    project_id=project_id,
                    error=repr(exc)[:200],
                )
                continue
            if not held:
                logs.event("project_lease_lost", logging.WARNING, project_id=project_id, owner=self.owner)
                work.cancel()
                return

    # --- the pipeline ----------------------------------------------------------------
    async def _settle(self, project_id: str, rounds: int = 20) -> None:
        """Advance until the project is final: a regenerate that landed while this driver was
        finishing (``kick`` saw it still running) is picked up here instead of being left waiting."""
        for _ in range(rounds):
            await self._advance(project_id)
            project = await self.store.get(project_id)
            if project is None or project.status in FINAL_STATUSES:
                return
            await asyncio.sleep(self.backoff_s)

    async def _advance(self, project_id: str) -> None:
        project = await self.store.get(project_id)
        if project is None or project.status in FINAL_STATUSES:
            return
        logs.event(
            "project_driving", logging.INFO, project_id=project_id, status=project.status, owner=self.owner
        )
        try:
            if not project.sceneCount:
                await self.store.set_project(project_id, status="processing")
                await self._run_step(project, "project_scenes", None)
            project = await self._reload(project_id)
            await self._scenes_phase(project)
            project = await self._reload(project_id)
            failed = [s for s in project.scenes if s.status == "failed"]
            if failed or not project.scenes:
                first = failed[0] if failed else None
                message = (
                    f"Scene {first.sequence} failed: {first.errorMessage}"
                    if first
                    else "No scenes were written"
                )
                await self.store.set_project(project_id, status="failed", errorMessage=message)
                logs.event("project_failed", logging.WARNING, project_id=project_id, error=message)
                return
            await self.store.set_project(project_id, status="composing")
            await self._run_step(project, "project_compose", None)
            logs.event("project_completed", logging.INFO, project_id=project_id)
        except StepFailed as exc:
            await self.store.set_project(project_id, status="failed", errorMessage=exc.message)
            logs.event("project_failed", logging.WARNING, project_id=project_id, error=exc.message)
        except NotFound:
            logs.event("project_gone", logging.INFO, project_id=project_id)  # deleted while running

    async def _reload(self, project_id: str) -> Project:
        project = await self.store.get(project_id)
        if project is None:
            raise NotFound(f"Project {project_id!r} not found")
        return project

    async def _scenes_phase(self, project: Project) -> None:
        slots = asyncio.Semaphore(self.settings.project_clip_concurrency)
        ready = {s.sequence: asyncio.Event() for s in project.scenes}
        for scene in project.scenes:
            if scene.clip_done or scene.status == "failed":
                ready[scene.sequence].set()

        async def one(sequence: int) -> None:
            try:
                await self._scene(project.projectId, sequence, slots, ready)
            except StepFailed as exc:
                await self.store.finish_scene(project.projectId, sequence, "failed", errorMessage=exc.message)
            finally:
                ready[sequence].set()

        await asyncio.gather(*(one(s.sequence) for s in project.scenes))

    async def _scene(
        self, project_id: str, sequence: int, slots: asyncio.Semaphore, ready: dict[int, asyncio.Event]
    ) -> None:
        scene = await self._current(project_id, sequence)
        if scene.status == "failed":
            return
        if not scene.clip_done:
            async with slots:
                await self._run_step(await self._reload(project_id), "project_clip", sequence)
        ready[sequence].set()
        for earlier, event in ready.items():
            if earlier < sequence:
                await event.wait()
        project = await self._reload(project_id)
        latest = project.scene(sequence)
        if latest is None or not latest.needsLipSync or latest.status == "failed":
            return
        if any(not s.clip_done for s in project.scenes if s.sequence < sequence):
            return  # an earlier clip failed: this scene's place in the cut is unknown
        if latest.status == "completed":
            if _segment_matches(project, latest):
                return
            # an earlier scene was regenerated with another length: this scene's song segment moved
            await self.store.reopen_scene(project_id, sequence, **_LIPSYNC_RESET)
        async with slots:
            await self._run_step(project, "project_lipsync", sequence)

    async def _current(self, project_id: str, sequence: int) -> Scene:
        scene = (await self._reload(project_id)).scene(sequence)
        if scene is None:
            raise NotFound(f"Scene {sequence} not found")
        return scene

    # --- one step, with its job and its retries ---------------------------------------
    async def _run_step(self, project: Project, kind: str, sequence: int | None) -> dict[str, Any]:
        field = _JOB_FIELD[kind]
        holder: Any = project.scene(sequence) if sequence is not None else project
        job_id: str | None = getattr(holder, field, None)
        attempts = 0
        while True:
            outcome = await self._existing(job_id) if job_id else None
            if outcome is None:
                outcome = await self._submit_and_wait(project, kind, sequence, field)
            if outcome.status == "succeeded":
                return outcome.result or {}
            if outcome.code == "NOT_CLAIMED":
                job_id = None  # lost between a worker's pop and its claim: submit again, not a failure
                logs.event(
                    "project_step_resubmitted",
                    logging.WARNING,
                    project_id=project.projectId,
                    kind=kind,
                    sequence=sequence,
                )
                continue
            message = outcome.message or f"{kind} failed"
            if outcome.retryable and attempts < self.settings.project_step_retries:
                attempts += 1
                if sequence is not None:
                    await self.store.bump_retry(project.projectId, sequence)
                logs.event(
                    "project_step_retry",
                    logging.WARNING,
                    project_id=project.projectId,
                    kind=kind,
                    sequence=sequence,
                    attempt=attempts,
                    code=outcome.code,
                )
                await asyncio.sleep(self.backoff_s * attempts)
                job_id = None
                continue
            raise StepFailed(message, details={"kind": kind, "sequence": sequence, "cause": outcome.code})

    async def _existing(self, job_id: str) -> StepOutcome | None:
        """A job recorded by an earlier driver: wait for it if it runs; None if it is gone (resubmit)."""
        outcome = await self.jobs.get(job_id)
        if outcome.status in ("queued", "running"):
            outcome = await self.jobs.wait(job_id, self.settings.project_step_timeout_s, self._unclaimed)
        return None if outcome.status == "lost" else outcome

    async def _submit_and_wait(
        self, project: Project, kind: str, sequence: int | None, field: str
    ) -> StepOutcome:
        request = {"project_id": project.projectId, "sequence": sequence}
        try:
            job_id = await self.jobs.submit(kind, request, project.config)
        except MvcoreError as exc:
            return StepOutcome("", "lost", exc.code, exc.message, exc.status_code)
        if sequence is None:
            await self.store.set_project(project.projectId, **{field: job_id})
        else:
            await self.store.set_scene(project.projectId, sequence, **{field: job_id})
        outcome = await self.jobs.wait(job_id, self.settings.project_step_timeout_s, self._unclaimed)
        if outcome.status == "lost" and outcome.code == "TIMEOUT":
            await self.jobs.cancel(job_id)
        return outcome

    @property
    def _unclaimed(self) -> float:
        return self.settings.project_unclaimed_s

    # --- what the API asks for -----------------------------------------------------------
    async def regenerate(self, project: Project, sequence: int, *, lipsync_only: bool) -> None:
        reset: dict[str, Any] = dict(_LIPSYNC_RESET)
        if not lipsync_only:
            reset.update(videoClipS3Key=None, durationMeasured=False, videoGenerationJobId=None)
        reset.update(errorMessage=None, needsLipSync=project.mode == "music-video")
        if not await self.store.reopen_scene(project.projectId, sequence, **reset):
            await self.store.set_scene(project.projectId, sequence, **reset, status="processing")
        await self.store.set_project(
            project.projectId, status="processing", errorMessage=None, composeJobId=None
        )
        self.kick(project.projectId)

    async def compose(self, project: Project) -> str:
        """Re-compose now (the original's POST .../compose); the compose job's id."""
        await self.store.set_project(project.projectId, status="composing", errorMessage=None)
        job_id = await self.jobs.submit(
            "project_compose", {"project_id": project.projectId, "sequence": None}, project.config
        )
        await self.store.set_project(project.projectId, composeJobId=job_id)
        self.kick(project.projectId)
        return job_id


def _segment_matches(project: Project, scene: Scene) -> bool:
    recorded = getattr(scene, "lipSyncSegment", None)
    if not recorded:
        return True  # lipsynced before segments were recorded, or skipped: leave it
    start, end = segment_of(project, scene.sequence)
    return abs(recorded[0] - start) <= _SEGMENT_SLACK and abs(recorded[1] - end) <= _SEGMENT_SLACK
