"""Media GETs of the mv API: video files, their metadata, character reference images."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery

from mvcore.api import wire
from mvcore.api.deps import CtxDep, SettingsDep
from mvcore.api.media_response import serve_stored
from mvcore.errors import NotFound
from mvcore.generators.character_reference import find_character_reference
from mvcore.storage import keys

VIDEO_HINT = "Use a video_id returned by generate_video."


class MediaController(Controller):
    path = "/api/mv"
    tags = ["media"]

    @get("/get_video/{video_id:str}", summary="The video file (or its presigned URL in cloud mode)")
    async def get_video(
        self,
        request: Request[Any, Any, Any],
        ctx: CtxDep,
        settings: SettingsDep,
        video_id: FromPath[str],
        redirect: FromQuery[bool] = True,
    ) -> Any:
        key = keys.video_key(keys.parse_id(video_id, "video"))
        return await serve_stored(
            request,
            ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=settings.serve_from_cloud,
            missing=NotFound(f"Video {video_id!r} not found", hint=VIDEO_HINT),
            url_body={"id": video_id, "expires_in": settings.presigned_url_expiry},
        )

    @get("/get_video/{video_id:str}/info", summary="Metadata of a video")
    async def get_video_info(self, ctx: CtxDep, video_id: FromPath[str]) -> wire.VideoInfo:
        vid = keys.parse_id(video_id, "video")
        media = ctx.media
        if not await media.exists(keys.video_key(vid)):
            raise NotFound(f"Video {video_id!r} not found", hint=VIDEO_HINT)
        try:
            metadata = await media.load_json(keys.video_metadata_key(vid))
        except NotFound:
            metadata = {}
        info: wire.VideoInfo = {
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
        self,
        request: Request[Any, Any, Any],
        ctx: CtxDep,
        settings: SettingsDep,
        image_id: FromPath[str],
        redirect: FromQuery[bool] = True,
    ) -> Any:
        key = await find_character_reference(ctx, image_id)
        return await serve_stored(
            request,
            ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=settings.serve_from_cloud,
            missing=NotFound(f"Character reference {image_id!r} not found"),
            url_body={"id": image_id, "expires_in": settings.presigned_url_expiry},
        )
