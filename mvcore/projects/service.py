"""What the API process holds for projects: the store, the driver, and the operations behind routes.

Built once per API process (``ProjectService.from_services``) and started in the app's
lifespan, after the job service: ``start`` resumes every unfinished project.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvcore import logs
from mvcore.errors import BadInput, MvcoreError, NotFound
from mvcore.generators.audio_library import upload_audio
from mvcore.generators.character_reference import find_character_reference
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.projects.jobs_adapter import StepJobs
from mvcore.projects.pipeline import ProjectPipeline
from mvcore.projects.records import Project, final_key, scene_key
from mvcore.projects.store import ProjectStore, open_store
from mvcore.projects.wire import ProjectUrls, project_wire
from mvcore.storage import keys

__all__ = ["NewProject", "ProjectService"]


@dataclass
class NewProject:
    """A checked creation request (the API validated the form)."""

    mode: str
    prompt: str
    character_description: str
    character_reference_image_id: str | None = None
    product_description: str | None = None
    config_flavor: str | None = None
    audio_id: str | None = None
    audio_file: Path | None = None
    audio_filename: str | None = None
    product_image: bytes | None = None
    product_image_ext: str | None = None


class ProjectService:
    def __init__(self, store: ProjectStore, ctx: GenContext, jobs: Any, settings: Any) -> None:
        self.store = store
        self.ctx = ctx
        self.settings = settings
        self.pipeline = ProjectPipeline(store, StepJobs(jobs), settings)
        self.urls = ProjectUrls(ctx.media, serve_from_cloud=settings.serve_from_cloud)

    @classmethod
    def from_services(cls, services: Any) -> ProjectService:
        return cls(open_store(services.settings), services.ctx, services.jobs, services.settings)

    async def start(self) -> None:
        await self.pipeline.resume_all()

    async def stop(self) -> None:
        await self.pipeline.stop()
        await self.store.close()

    # --- reads ------------------------------------------------------------------
    async def load(self, project_id: str) -> Project:
        project = await self.store.get(project_id)
        if project is None:
            raise NotFound(
                f"Project {project_id} not found",
                hint="Use a projectId returned by POST /api/mv/projects.",
                details={"field": "project_id", "projectId": project_id},
            )
        return project

    async def wire(self, project: Project) -> dict[str, Any]:
        return await project_wire(project, self.urls)

    # --- create -------------------------------------------------------------------
    async def create(self, new: NewProject, bundle: ConfigBundle) -> Project:
        """Store the inputs, fix the flavor snapshot, write the record and start the pipeline."""
        project_id = str(uuid.uuid4())
        params = bundle.values.get("parameters", {})
        wanted = int(params.get("number_of_scenes") or 0)
        if wanted > self.settings.project_max_scenes:
            raise BadInput(
                f"The flavor asks for {wanted} scenes; this server allows at most "
                f"{self.settings.project_max_scenes} per project",
                hint="Pick a flavor with fewer scenes, or raise MVCORE_PROJECT_MAX_SCENES.",
                details={"field": "configFlavor", "limit": "MVCORE_PROJECT_MAX_SCENES"},
            )
        character_key = None
        if new.character_reference_image_id:
            character_key = await find_character_reference(self.ctx, new.character_reference_image_id)
        audio_id = await self._song(new)
        product_key = None
        if new.product_image is not None:
            product_key = f"mv/projects/{project_id}/product.{new.product_image_ext or 'png'}"
            await self.ctx.media.save(new.product_image, product_key)
        project = Project(
            projectId=project_id,
            mode=new.mode,
            conceptPrompt=new.prompt,
            characterDescription=new.character_description,
            characterImageS3Key=character_key,
            characterReferenceImageId=new.character_reference_image_id,
            productDescription=new.product_description,
            productImageS3Key=product_key,
            audioBackingTrackS3Key=keys.audio_key(audio_id) if audio_id else None,
            audioId=audio_id,
            configFlavor=new.config_flavor,
            config=bundle.to_dict(),
            generation=bundle.meta.get("generation"),
        )
        await self.store.create(project)
        logs.event(
            "project_created",
            logging.INFO,
            project_id=project_id,
            mode=new.mode,
            flavor=bundle.meta.get("flavor_used"),
            generation=project.generation,
        )
        self.pipeline.kick(project_id)
        return project

    async def _song(self, new: NewProject) -> str | None:
        if new.audio_id:
            audio_id = keys.parse_id(new.audio_id, "audio")
            if not await self.ctx.media.exists(keys.audio_key(audio_id)):
                raise BadInput(
                    f"Audio {new.audio_id!r} not found",
                    hint="Use an audio_id returned by /api/audio/upload or /api/audio/download.",
                    details={"field": "audioId"},
                )
            return audio_id
        if new.audio_file is not None:
            try:
                stored = await upload_audio(self.ctx, new.audio_file, new.audio_filename or "audio.mp3")
            except MvcoreError as exc:
                exc.details.setdefault("field", "audio")
                raise
            return str(stored["audio_id"])
        return None

    # --- changes ---------------------------------------------------------------------
    async def delete(self, project: Project) -> None:
        task = self.pipeline.tasks.get(project.projectId)
        if task is not None:
            task.cancel()
        await self.store.delete(project.projectId)
        media = [final_key(project.projectId)]
        for scene in project.scenes:
            media += [
                scene_key(project.projectId, scene.sequence, n)
                for n in ("video.mp4", "lipsynced.mp4", "audio.mp3")
            ]
        if project.productImageS3Key:
            media.append(project.productImageS3Key)
        for key in media:
            try:
                await self.ctx.media.delete(key)
            except MvcoreError as exc:  # the record is gone; a stray file is only space
                logs.event("project_media_delete_failed", logging.WARNING, key=key, error=exc.message)
