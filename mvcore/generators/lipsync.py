"""Lipsync: a clip of the song put onto a video clip (offline: muxed; replicate: sync/lipsync-2-pro)."""

from __future__ import annotations

from typing import Any

from mvcore import logs
from mvcore.errors import BadInput
from mvcore.generators.common import Timer, base_metadata, new_id, store_video, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.inputs import audio_from, own_audio_id, video_from
from mvcore.generators.model_params import CheckedParams, check_call, checked_metadata, parameters_used
from mvcore.generators.plan import ProviderCall, lipsync_call
from mvcore.generators.requests import LipsyncRequest
from mvcore.media import audio


def plan_lipsync(
    request: LipsyncRequest, bundle: ConfigBundle, ctx: GenContext
) -> tuple[ProviderCall, Any, CheckedParams]:
    """The call, its provider and its checked params; raises on what cannot run, before a job."""
    clipping = request.start_time is not None or request.end_time is not None
    if clipping and not request.audio_id and request.audio_url and not own_audio_id(request.audio_url):
        raise BadInput(
            "start_time/end_time apply to audio_id only",
            hint="Upload the song (/api/audio/upload) and pass its audio_id with the range, "
            "or pass an audio_url that is already clipped.",
        )
    call = lipsync_call(request, bundle)
    provider = ctx.provider()
    input_names = {"active_speaker_detection": "active_speaker"}
    checked = check_call(ctx, provider, call, selector="lipsync_params.model", input_names=input_names)
    return call, provider, checked


async def lipsync(request: LipsyncRequest, bundle: ConfigBundle, ctx: GenContext) -> dict[str, Any]:
    timer = Timer()
    clipping = request.start_time is not None or request.end_time is not None
    _call, provider, checked = plan_lipsync(request, bundle, ctx)
    params = {"model": checked.model, **checked.sent}
    video_id = new_id()
    with working_dir(ctx, video_id) as work:
        ctx.progress(0.05, "fetching inputs")
        video_path, source_video_id = await video_from(ctx, request.video_id, request.video_url, work)
        audio_path, source_audio_id = await audio_from(ctx, request.audio_id, request.audio_url, work)
        if clipping:
            clipped = work / "audio_clip.mp3"
            await audio.clip_audio(
                audio_path,
                clipped,
                request.start_time or 0.0,
                request.end_time,
                timeout=ctx.settings.media_timeout_s,
            )
            audio_path = clipped
        ctx.progress(0.2, "lipsyncing")
        result = await provider.lipsync(
            video=video_path,
            audio=audio_path,
            params=params,
            out_path=work / "lipsync.mp4",
            progress=ctx.progress,
        )
        metadata = base_metadata(
            bundle,
            timer,
            model_used=result.model_used,
            parameters_used={
                **parameters_used(result.raw, checked),
                # applied here (the song is clipped before upload), not model inputs
                "start_time": request.start_time,
                "end_time": request.end_time,
            },
            **checked_metadata(result.raw, checked),
            source_video_id=source_video_id,
            source_audio_id=source_audio_id,
            source_video_url=logs.scrub_url(request.video_url) if not source_video_id else None,
            source_audio_url=logs.scrub_url(request.audio_url) if not source_audio_id else None,
            kind="lipsync",
        )
        response = await store_video(ctx, video_id, result.paths[0], metadata)
        ctx.progress(1.0, "done")
        return response
