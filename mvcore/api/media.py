"""Media GETs of the mv API: video files, their metadata, character reference images."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery

from mvcore.api import wire
from mvcore.api.deps import CtxDep, SettingsDep
from mvcore.api.media_response import serve_stored
from mvcore.errors import NotFound
from mvcore.generators.character_reference import find_character_reference
from mvcore.storage import keys

VIDEO_HINT = "Use a video_id returned by generate_video."
RedirectFlag = FromQuery[bool]


class MediaController(Controller):
    path = "/api/mv"
    tags = ["media"]

    @get(
        "/get_video/{video_id:str}",
        summary="The video file (cloud mode: 302 to its presigned URL, or JSON with redirect=false)",
        responses={200: ResponseSpec(wire.CloudVideoLink, description="Cloud mode, redirect=false")},
    )
    async def get_video(
        self,
        request: Request[Any, Any, Any],
        ctx: CtxDep,
        settings: SettingsDep,
        video_id: FromPath[str],
        redirect: RedirectFlag = True,
    ) -> Any:
        vid = keys.parse_id(video_id, "video", field="video_id")
        key = keys.video_key(vid)

        def cloud_answer(url: str) -> wire.CloudVideoLink:
            return {
                "video_id": vid,
                "video_url": url,
                "storage_backend": "s3",
                "expires_in_seconds": settings.presigned_url_expiry,
                "cloud_path": key,
            }

        missing = NotFound(f"Video {video_id!r} not found", hint=VIDEO_HINT, details={"field": "video_id"})
        return await serve_stored(
            request,
            ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=settings.serve_from_cloud,
            missing=missing,
            cloud_answer=cloud_answer,
        )

    @get("/get_video/{video_id:str}/info", summary="Metadata of a video (exists: false when unknown)")
    async def get_video_info(self, ctx: CtxDep, video_id: FromPath[str]) -> wire.VideoInfo:
        vid = keys.parse_id(video_id, "video", field="video_id")
        media = ctx.media
        if not await media.exists(keys.video_key(vid)):
            # the original answered 200 with exists=false, and its clients branch on it
            return {"video_id": vid, "exists": False}
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

    @get(
        "/get_character_reference/{image_id:str}",
        summary="A character reference image",
        responses={200: ResponseSpec(wire.CloudImageLink, description="Cloud mode, redirect=false")},
    )
    async def get_character_reference(
        self,
        request: Request[Any, Any, Any],
        ctx: CtxDep,
        settings: SettingsDep,
        image_id: FromPath[str],
        redirect: RedirectFlag = True,
    ) -> Any:
        key = await find_character_reference(ctx, image_id, field="image_id")

        def cloud_answer(url: str) -> wire.CloudImageLink:
            return {
                "image_id": keys.parse_id(image_id, "character reference"),
                "image_url": url,
                "storage_backend": "s3",
                "expires_in_seconds": settings.presigned_url_expiry,
                "cloud_path": key,
            }

        return await serve_stored(
            request,
            ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=settings.serve_from_cloud,
            missing=NotFound(f"Character reference {image_id!r} not found", details={"field": "image_id"}),
            cloud_answer=cloud_answer,
        )
