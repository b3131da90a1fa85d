"""Stitching clips into one video, optionally with the song laid over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mvcore.errors import NotFound
from mvcore.generators.common import Timer, base_metadata, new_id, store_video, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.inputs import audio_file, video_file
from mvcore.generators.requests import StitchVideosRequest
from mvcore.media import video
from mvcore.storage import keys


async def stitch_videos(
    request: StitchVideosRequest, bundle: ConfigBundle, ctx: GenContext
) -> dict[str, Any]:
    timer = Timer()
    for video_id in request.video_ids:
        keys.parse_id(video_id, "video", field="video_ids")  # every id checked before any work
    if request.audio_overlay_id:
        # malformed is an error; unknown is a warning
        keys.parse_id(request.audio_overlay_id, "audio", field=_song_field(request))
    out_id = new_id()
    with working_dir(ctx, out_id) as work:
        return await _stitch(request, bundle, ctx, timer, out_id, work)


async def _stitch(
    request: StitchVideosRequest, bundle: ConfigBundle, ctx: GenContext, timer: Timer, out_id: str, work: Path
) -> dict[str, Any]:
    clips = []
    for index, video_id in enumerate(request.video_ids):
        clip_dir = work / f"clip{index:03d}"
        clip_dir.mkdir(exist_ok=True)
        clips.append(await video_file(ctx, video_id, clip_dir, field="video_ids"))
    overlay = None
    warning = None
    if request.audio_overlay_id:
        try:
            overlay = await audio_file(ctx, request.audio_overlay_id, work, field=_song_field(request))
        except NotFound as exc:
            warning = f"{exc.message}; stitched without the audio overlay"
    ctx.progress(0.1, "stitching")
    info = await video.stitch(
        clips,
        work / "stitched.mp4",
        audio_overlay=overlay,
        suppress_video_audio=bool(request.suppress_video_audio),
        timeout=ctx.settings.media_timeout_s,
        progress=ctx.progress,
    )
    metadata = base_metadata(
        bundle,
        timer,
        video_ids=list(request.video_ids),
        num_clips=len(clips),
        total_duration=round(info.duration, 3),
        audio_overlay_id=request.audio_overlay_id,
        suppress_video_audio=bool(request.suppress_video_audio),
        model_used="ffmpeg/concat",
        stitch_path=str(info.stitch_path),
        kind="stitch",
    )
    response = await store_video(ctx, out_id, work / "stitched.mp4", metadata)
    response["audio_overlay_applied"] = overlay is not None
    response["audio_overlay_warning"] = warning
    ctx.progress(1.0, "done")
    return response


def _song_field(request: StitchVideosRequest) -> str:
    """The field the caller named the song in (``audio_id`` is the original frontend's alias)."""
    alias = request.audio_id and request.audio_id == request.audio_overlay_id
    return "audio_id" if alias else "audio_overlay_id"
