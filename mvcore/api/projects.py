"""``/api/mv/projects``: the original system's project routes, backed by a resumable pipeline.

Original routes and shapes: ``POST /api/mv/projects`` (multipart: ``mode``, ``prompt``,
``characterDescription``, ``characterReferenceImageId``, ``productDescription``, ``images``,
``audio``; ours: ``audioId``, ``configFlavor``) -> 201 ``{projectId, status: "pending", message}``;
``GET``/``PATCH /api/mv/projects/{id}`` -> ProjectResponse; ``POST .../compose`` ->
``{jobId, projectId, status, message}``; ``GET .../final-video`` ->
``{projectId, videoUrl, expiresInSeconds}``.  Ours: ``GET /api/mv/projects`` (list),
``DELETE .../{id}``, ``POST .../scenes/{sequence}/regenerate`` (``{"lipsync": true}`` redoes only
the lipsync), ``GET .../events`` (server-sent events) and ``GET .../files/...`` (the media).

Validation errors are 400 with the original's messages (``Prompt too short``...), code
``ValidationError`` and the field named in ``details.field``.

Registered on the app by :class:`ProjectsPlugin` (one line in ``create_app``), which also starts
the project service in the app's lifespan -- after the job service, so resuming can submit jobs.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from litestar import Controller, Litestar, Request, delete, get, patch, post
from litestar.config.app import AppConfig
from litestar.datastructures import UploadFile
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.plugins import InitPluginProtocol
from litestar.response import ServerSentEvent, ServerSentEventMessage

from mvcore.api import project_wire as pw
from mvcore.api import wire
from mvcore.api.media_links import PROJECT_FILE
from mvcore.api.media_response import serve_stored
from mvcore.errors import BadInput, MvcoreError, NotFound, PayloadTooLarge
from mvcore.projects.records import FINAL_STATUSES, MODES, PROJECT_STATUSES
from mvcore.projects.service import NewProject, ProjectService

__all__ = ["ProjectController", "ProjectsPlugin"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FILES = re.compile(rf"^{PROJECT_FILE}$")
_IMAGE_TYPES = {"image/jpeg": "jpg", "image/jpg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_IMAGE_BYTES = 10 * 1024 * 1024
EVENT_POLL_S = 0.5
EVENT_HEARTBEAT_S = 15.0


def invalid(field: str, message: str, reason: str, **details: Any) -> BadInput:
    """The original's 400: ``{"error": "ValidationError", "message": ..., "details": {...}}``."""
    return BadInput(message, code="ValidationError", details={"field": field, "reason": reason, **details})


def _svc(request: Request[Any, Any, Any]) -> ProjectService:
    service = request.app.state.get("projects")
    if service is None:
        raise MvcoreError("The project service is not running", code="SERVICE_UNAVAILABLE", status_code=503)
    return service


def _project_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid("project_id", "Invalid project ID format", "Project ID must be a valid UUID") from None


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    return _CONTROL.sub("", str(value).strip())


def _check_lengths(prompt: str | None, character: str | None, product: str | None) -> None:
    if not prompt or len(prompt) < 10:
        raise invalid("prompt", "Prompt too short", "Prompt must be at least 10 characters", min_length=10)
    if not character or len(character) < 20:
        raise invalid(
            "characterDescription",
            "Character description too short",
            "Character description must be at least 20 characters",
            min_length=20,
        )
    if len(prompt) > 2000:
        raise invalid("prompt", "Prompt too long", "Maximum length is 2000 characters", max_length=2000)
    if len(character) > 1000:
        raise invalid(
            "characterDescription",
            "Character description too long",
            "Maximum length is 1000 characters",
            max_length=1000,
        )
    if product and len(product) > 1000:
        raise invalid(
            "productDescription",
            "Product description too long",
            "Maximum length is 1000 characters",
            max_length=1000,
        )


async def _image(images: list[Any]) -> tuple[bytes, str]:
    first = images[0]
    data = await first.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise invalid(
            "images", "Image file too large", f"Maximum size is {MAX_IMAGE_BYTES // (1024 * 1024)}MB"
        )
    ext = _IMAGE_TYPES.get((first.content_type or "image/jpeg").lower())
    if ext is None:
        raise invalid("images", "Invalid image format", f"Allowed types: {', '.join(sorted(_IMAGE_TYPES))}")
    return data, ext


async def _save_upload(upload: UploadFile, folder: Path, limit: int) -> Path:
    target = folder / ("upload" + Path(upload.filename or "audio.mp3").suffix.lower()[:8])
    size = 0
    with open(target, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"Upload is larger than {limit} bytes",
                    hint="Use a smaller file or raise MVCORE_MAX_UPLOAD_BYTES.",
                    details={"field": "audio"},
                )
            out.write(chunk)
    return target


async def parse_form(form: Any) -> NewProject:
    """Check the creation form in the original's order; every refusal names its field."""
    mode = _text(form, "mode")
    prompt, character = _text(form, "prompt"), _text(form, "characterDescription")
    product = _text(form, "productDescription") or None
    _check_lengths(prompt, character, product)
    assert prompt is not None and character is not None
    if mode not in MODES:
        raise invalid(
            "mode", "Invalid mode", "mode must be 'ad-creative' or 'music-video'", valid=list(MODES)
        )
    images = [f for f in form.getall("images", []) if isinstance(f, UploadFile) and f.filename]
    audio = form.get("audio")
    audio = audio if isinstance(audio, UploadFile) and audio.filename else None
    audio_id = _text(form, "audioId") or None
    if mode == "ad-creative" and not images:
        raise invalid(
            "images",
            "Product images required for ad-creative mode",
            "At least one product image must be provided",
        )
    if mode == "music-video" and audio is None and not audio_id:
        raise invalid("audio", "Audio file required for music-video mode", "Music file must be provided")
    reference = _text(form, "characterReferenceImageId") or None
    if reference:
        try:
            reference = str(uuid.UUID(reference))
        except ValueError:
            raise invalid(
                "characterReferenceImageId",
                "Invalid character reference ID format",
                "Character reference ID must be a valid UUID",
            ) from None
    if audio_id:
        try:
            audio_id = str(uuid.UUID(audio_id))
        except ValueError:
            raise invalid("audioId", "Invalid audio ID format", "Audio ID must be a valid UUID") from None
    new = NewProject(
        mode, prompt, character, reference, product, _text(form, "configFlavor") or None, audio_id
    )
    if images:
        new.product_image, new.product_image_ext = await _image(images)
    new.audio_filename = audio.filename if audio is not None else None
    return new


class ProjectController(Controller):
    path = "/api/mv/projects"
    tags = ["projects"]

    @post(
        "/",
        status_code=201,
        summary="Create a project: idea + character + song -> music video",
        opt={"takes_form": True},
    )
    async def create(self, request: Request[Any, Any, Any]) -> pw.ProjectCreated:
        service = _svc(request)
        services = request.app.state["services"]
        form = await request.form()
        new = await parse_form(form)
        snapshot = services.store.current  # the flavor snapshot is fixed here, for the whole project
        bundle = services.bundle(snapshot, new.config_flavor, None)
        audio = form.get("audio")
        with tempfile.TemporaryDirectory(dir=service.ctx.scratch) as tmp:
            if isinstance(audio, UploadFile) and audio.filename and not new.audio_id:
                new.audio_file = await _save_upload(audio, Path(tmp), service.settings.max_upload_bytes)
            project = await service.create(new, bundle)
        return {
            "projectId": project.projectId,
            "status": "pending",
            "message": "Project created successfully",
        }

    @get("/", summary="Recent projects (newest first)")
    async def list_projects(
        self, request: Request[Any, Any, Any], limit: FromQuery[int] = 50
    ) -> pw.ProjectList:
        service = _svc(request)
        rows = await service.store.list(max(1, min(limit, 200)))
        return {
            "projects": [
                {
                    "projectId": p.projectId,
                    "status": p.status,
                    "mode": p.mode,
                    "conceptPrompt": p.conceptPrompt,
                    "sceneCount": p.sceneCount,
                    "completedScenes": p.completedScenes,
                    "failedScenes": p.failedScenes,
                    "configFlavor": p.configFlavor,
                    "createdAt": p.createdAt,
                    "updatedAt": p.updatedAt,
                }
                for p in rows
            ]
        }

    @get("/{project_id:str}", summary="A project with its scenes (the original's ProjectResponse)")
    async def get_project(
        self, request: Request[Any, Any, Any], project_id: FromPath[str]
    ) -> pw.ProjectResponse:
        service = _svc(request)
        return cast(pw.ProjectResponse, await service.wire(await service.load(_project_id(project_id))))

    @patch("/{project_id:str}", summary="Update status / final output key (the original's PATCH)")
    async def update_project(
        self, request: Request[Any, Any, Any], project_id: FromPath[str]
    ) -> pw.ProjectResponse:
        service = _svc(request)
        project = await service.load(_project_id(project_id))
        body = await _json_body(request)
        fields: dict[str, Any] = {}
        status = body.get("status")
        if status is not None:
            if status not in ("pending", "processing", "completed", "failed"):
                raise invalid(
                    "status",
                    "Invalid status value",
                    "status must be pending, processing, completed or failed",
                    valid=list(PROJECT_STATUSES),
                )
            fields["status"] = status
        key = body.get("finalOutputS3Key")
        if key is not None:
            if not isinstance(key, str) or "://" in key or key.startswith("/") or ".." in key.split("/"):
                raise invalid(
                    "finalOutputS3Key",
                    "Invalid S3 key",
                    "finalOutputS3Key must be an S3 object key, not a URL",
                )
            fields["finalOutputS3Key"] = key
        if fields:
            await service.store.set_project(project.projectId, **fields)
        return cast(pw.ProjectResponse, await service.wire(await service.load(project.projectId)))

    @delete("/{project_id:str}", status_code=200, summary="Delete a project, its scenes and its media")
    async def delete_project(
        self, request: Request[Any, Any, Any], project_id: FromPath[str]
    ) -> pw.ProjectDeleted:
        service = _svc(request)
        project = await service.load(_project_id(project_id))
        await service.delete(project)
        return {"projectId": project.projectId, "status": "deleted", "message": "Project deleted"}

    @post("/{project_id:str}/compose", status_code=200, summary="Compose the final video (again)")
    async def compose(self, request: Request[Any, Any, Any], project_id: FromPath[str]) -> pw.ComposeStarted:
        service = _svc(request)
        project = await service.load(_project_id(project_id))
        if project.completedScenes < project.sceneCount or not project.sceneCount:
            raise invalid(
                "projectId",
                "Cannot compose video: not all scenes are completed",
                f"Completed: {project.completedScenes}/{project.sceneCount}",
            )
        if project.failedScenes > 0:
            raise invalid(
                "projectId",
                "Cannot compose video: some scenes failed",
                f"Failed scenes: {project.failedScenes}",
            )
        _not_busy(project.status)
        job_id = await service.pipeline.compose(project)
        return {
            "jobId": job_id,
            "projectId": project.projectId,
            "status": "composing",
            "message": "Video composition started",
        }

    @get("/{project_id:str}/final-video", summary="URL of the final video")
    async def final_video(self, request: Request[Any, Any, Any], project_id: FromPath[str]) -> pw.FinalVideo:
        service = _svc(request)
        project = await service.load(_project_id(project_id))
        if not project.finalOutputS3Key:
            raise NotFound(
                "Final video not yet available",
                hint="Wait for status 'completed' (or POST .../compose).",
                details={"projectId": project.projectId, "status": project.status},
            )
        url = await service.urls.url(project.finalOutputS3Key)
        return {
            "projectId": project.projectId,
            "videoUrl": url,
            "expiresInSeconds": service.settings.presigned_url_expiry,
        }

    @post(
        "/{project_id:str}/scenes/{sequence:int}/regenerate",
        status_code=202,
        summary="Regenerate one scene, then re-compose",
    )
    async def regenerate(
        self, request: Request[Any, Any, Any], project_id: FromPath[str], sequence: FromPath[int]
    ) -> pw.RegenerateStarted:
        service = _svc(request)
        project = await service.load(_project_id(project_id))
        body = await _json_body(request)
        lipsync = body.get("lipsync", False)
        if not isinstance(lipsync, bool):
            raise invalid("lipsync", "Invalid lipsync flag", "lipsync must be true or false")
        scene = project.scene(sequence)
        if scene is None:
            raise NotFound(
                f"Scene {sequence} not found in project {project.projectId}",
                details={"field": "sequence", "sceneCount": project.sceneCount},
            )
        if lipsync and (project.mode != "music-video" or not scene.videoClipS3Key):
            raise invalid(
                "lipsync",
                "Cannot redo the lipsync of this scene",
                "Only a music-video scene that has a clip can be lipsynced again; "
                "regenerate its video instead",
            )
        _not_busy(project.status)
        await service.pipeline.regenerate(project, sequence, lipsync_only=lipsync)
        what = "lipsync" if lipsync else "video"
        return {
            "projectId": project.projectId,
            "sequence": sequence,
            "status": "processing",
            "message": f"Scene {sequence} {what} regeneration started; the project will be re-composed",
        }

    @get(
        "/{project_id:str}/events",
        summary="Server-sent events: the project each time it changes",
        responses={
            200: ResponseSpec(
                wire.EventMessage, media_type="text/event-stream", description="the project, then each change"
            )
        },
    )
    async def events(self, request: Request[Any, Any, Any], project_id: FromPath[str]) -> ServerSentEvent:
        service = _svc(request)
        pid = _project_id(project_id)
        await service.load(pid)  # 404 before the stream starts
        return ServerSentEvent(_project_events(service, pid))

    @get(
        "/{project_id:str}/files/{path:path}",
        summary="A project's media (clips, lipsynced clips, final video)",
        responses={200: ResponseSpec(wire.CloudVideoLink, description="Cloud mode, redirect=false")},
    )
    async def project_file(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[str],
        path: FromPath[str],
        redirect: FromQuery[bool] = True,
    ) -> Any:
        service = _svc(request)
        pid = _project_id(project_id)
        rest = path.lstrip("/")
        if not _FILES.match(rest):
            raise NotFound(f"No project file {rest[:80]!r}", details={"field": "path"})
        key = f"mv/projects/{pid}/{rest}"
        return await serve_stored(
            request,
            service.ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=service.settings.serve_from_cloud,
            missing=NotFound(f"Project file {rest!r} not found", details={"projectId": pid}),
            cloud_answer=lambda url: {
                "projectId": pid,
                "url": url,
                "expires_in": service.settings.presigned_url_expiry,
            },
        )


def _not_busy(status: str) -> None:
    if status in ("pending", "processing", "composing"):
        raise MvcoreError(
            f"Project is in '{status}' status",
            code="PROJECT_BUSY",
            status_code=409,
            hint="Wait until the project is completed or failed (follow GET .../events).",
            details={"status": status},
        )


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadInput(
            "The body is not valid JSON", code="ValidationError", details={"field": "body"}
        ) from None
    if not isinstance(body, dict):
        raise BadInput("The body must be a JSON object", code="ValidationError", details={"field": "body"})
    return body


async def _project_events(
    service: ProjectService, project_id: FromPath[str]
) -> AsyncIterator[ServerSentEventMessage]:
    """``project`` with the full ProjectResponse whenever it changes; ``ping`` meanwhile; ``deleted``.

    The stream ends after the event that shows the project completed or failed (a client that
    starts a regenerate or compose opens a new stream), so no connection idles forever.
    """
    last = None
    quiet = 0.0
    while True:
        project = await service.store.get(project_id)
        if project is None:
            yield ServerSentEventMessage(data=json.dumps({"projectId": project_id}), event="deleted")
            return
        body = json.dumps(await service.wire(project))
        if body != last:
            last, quiet = body, 0.0
            yield ServerSentEventMessage(data=body, event="project")
            if project.status in FINAL_STATUSES:
                return  # nothing more will happen until a regenerate / compose, which the client re-follows
        elif quiet >= EVENT_HEARTBEAT_S:
            quiet = 0.0
            yield ServerSentEventMessage(data="{}", event="ping")
        await asyncio.sleep(EVENT_POLL_S)
        quiet += EVENT_POLL_S


class ProjectsPlugin(InitPluginProtocol):
    """Adds the project routes and runs the project service inside the app's lifespan."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(ProjectController)

        @asynccontextmanager
        async def projects_lifespan(app: Litestar) -> AsyncIterator[None]:
            service = ProjectService.from_services(app.state["services"])
            app.state["projects"] = service
            await service.start()
            try:
                yield
            finally:
                await service.stop()
                app.state["projects"] = None

        app_config.lifespan.append(projects_lifespan)
        return app_config
