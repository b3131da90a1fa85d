"""The mv generator endpoints, media GETs and jobs (paths of the original API)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mvcore.api.media_response import serve_stored
from mvcore.api.services import Services
from mvcore.errors import BadInput, NotFound
from mvcore.generators.character_reference import find_character_reference
from mvcore.generators.requests import (
    CreateScenesRequest,
    GenerateCharacterReferenceRequest,
    GenerateVideoRequest,
    LipsyncRequest,
    StitchVideosRequest,
)
from mvcore.storage import keys

AsyncFlag = Annotated[bool, QueryParameter(name="async", description="Answer 202 with a job id at once")]
StrictFlag = Annotated[
    bool | None, QueryParameter(name="strict_flavor", description="404 instead of falling back to 'default'")
]


def mv_router(services: Services) -> Router:
    store = services.store

    async def dispatch(kind: str, data: Any, run_async: bool, strict: bool | None) -> Any:
        snapshot = store.current  # pinned for the whole request
        overrides = getattr(data, "config_overrides", None)
        bundle = services.bundle(snapshot, data.config_flavor, strict, overrides)
        request = data.model_dump(mode="json")
        if run_async:
            record = await services.jobs.submit(kind, request, bundle.to_dict())
            return Response(
                {"job_id": record.job_id, "status": "queued", "status_url": f"/api/mv/jobs/{record.job_id}"},
                status_code=202,
            )
        return await services.jobs.run(kind, request, bundle.to_dict())

    @post("/create_scenes", status_code=200, summary="Write scenes from the flavor's scene prompt")
    async def create_scenes(
        data: JSONBody[CreateScenesRequest], async_: AsyncFlag = False, strict: StrictFlag = None
    ) -> Any:
        return await dispatch("create_scenes", data, async_, strict)

    @post("/generate_character_reference", status_code=200, summary="Character reference images")
    async def generate_character_reference(
        data: JSONBody[GenerateCharacterReferenceRequest],
        async_: AsyncFlag = False,
        strict: StrictFlag = None,
    ) -> Any:
        return await dispatch("generate_character_reference", data, async_, strict)

    @post("/generate_video", status_code=200, summary="One video clip")
    async def generate_video(
        data: JSONBody[GenerateVideoRequest], async_: AsyncFlag = False, strict: StrictFlag = None
    ) -> Any:
        return await dispatch("generate_video", data, async_, strict)

    @post("/lipsync", status_code=200, summary="Put (a clip of) the song onto a video clip")
    async def lipsync(
        data: JSONBody[LipsyncRequest], async_: AsyncFlag = False, strict: StrictFlag = None
    ) -> Any:
        return await dispatch("lipsync", data, async_, strict)

    @post("/stitch-videos", status_code=200, summary="Concatenate clips, optionally with the song as overlay")
    async def stitch_videos(
        data: JSONBody[StitchVideosRequest], async_: AsyncFlag = False, strict: StrictFlag = None
    ) -> Any:
        return await dispatch("stitch_videos", data, async_, strict)

    @post(["/stitch_video", "/stitch_videos"], status_code=200, include_in_schema=False)
    async def stitch_videos_alias(
        data: JSONBody[StitchVideosRequest], async_: AsyncFlag = False, strict: StrictFlag = None
    ) -> Any:
        return await dispatch("stitch_videos", data, async_, strict)

    async def serve_media(
        request: Request[Any, Any, Any], key: str, redirect: bool, what: str, media_id: str
    ) -> Any:
        return await serve_stored(
            request,
            services.ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=services.settings.serve_from_cloud,
            missing=NotFound(f"{what} {media_id!r} not found"),
            url_body={"id": media_id, "expires_in": services.settings.presigned_url_expiry},
        )

    @get("/get_video/{video_id:str}", summary="The video file (or its presigned URL in cloud mode)")
    async def get_video(
        request: Request[Any, Any, Any], video_id: FromPath[str], redirect: FromQuery[bool] = True
    ) -> Any:
        key = keys.video_key(keys.parse_id(video_id, "video"))
        return await serve_media(request, key, redirect, "Video", video_id)

    @get("/get_video/{video_id:str}/info", summary="Metadata of a video")
    async def get_video_info(video_id: FromPath[str]) -> dict[str, Any]:
        vid = keys.parse_id(video_id, "video")
        media = services.ctx.media
        if not await media.exists(keys.video_key(vid)):
            raise NotFound(f"Video {video_id!r} not found", hint="Use a video_id returned by generate_video.")
        try:
            metadata = await media.load_json(keys.video_metadata_key(vid))
        except NotFound:
            metadata = {}
        info: dict[str, Any] = {
            "video_id": vid,
            "exists": True,
            "metadata": metadata,
            "video_url": f"/api/mv/get_video/{vid}",
        }
        if media.cloud is not None:
            info["cloud_url"] = await media.url_for(keys.video_key(vid))
        return info

    @get("/get_character_reference/{image_id:str}", summary="A character reference image")
    async def get_character_reference(
        request: Request[Any, Any, Any], image_id: FromPath[str], redirect: FromQuery[bool] = True
    ) -> Any:
        key = await find_character_reference(services.ctx, image_id)
        return await serve_media(request, key, redirect, "Character reference", image_id)

    @get("/jobs", summary="Recent jobs")
    async def list_jobs(status: FromQuery[str | None] = None) -> dict[str, Any]:
        if status is not None and status not in ("queued", "running", "succeeded", "failed", "cancelled"):
            raise BadInput(
                f"Unknown status {status!r}",
                alternatives=["queued", "running", "succeeded", "failed", "cancelled"],
            )
        jobs = await services.jobs.list(status)
        return {"jobs": [j.to_wire() for j in jobs]}

    @get("/jobs/{job_id:str}", summary="Status, progress and result of a job")
    async def get_job(job_id: FromPath[str]) -> dict[str, Any]:
        return (await services.jobs.get(keys.parse_id(job_id, "job"))).to_wire()

    @delete("/jobs/{job_id:str}", status_code=200, summary="Cancel a queued or running job")
    async def cancel_job(job_id: FromPath[str]) -> dict[str, Any]:
        return (await services.jobs.cancel(keys.parse_id(job_id, "job"))).to_wire()

    return Router(
        "/api/mv",
        route_handlers=[
            create_scenes,
            generate_character_reference,
            generate_video,
            lipsync,
            stitch_videos,
            stitch_videos_alias,
            get_video,
            get_video_info,
            get_character_reference,
            list_jobs,
            get_job,
            cancel_job,
        ],
        tags=["mv"],
    )
