"""One video clip per scene, from the scene prompt and the flavor's video params."""

from __future__ import annotations

from typing import Any

from mvcore.generators.character_reference import find_character_reference
from mvcore.generators.common import Timer, base_metadata, new_id, store_video, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.model_params import CheckedParams, check_call, checked_metadata, parameters_used
from mvcore.generators.plan import ProviderCall, video_call
from mvcore.generators.requests import GenerateVideoRequest


def plan_video(
    request: GenerateVideoRequest, bundle: ConfigBundle, ctx: GenContext
) -> tuple[ProviderCall, Any, CheckedParams]:
    """The call, its provider and its checked params: a refused value raises here, before a job
    is queued (the API checks ``?async=true`` requests with this) and before any upload."""
    call = video_call(request, bundle, max_chars=ctx.settings.max_prompt_chars)
    provider = ctx.provider(request.backend)
    return call, provider, check_call(ctx, provider, call, selector="image_params.video_model")


async def generate_video(
    request: GenerateVideoRequest, bundle: ConfigBundle, ctx: GenContext
) -> dict[str, Any]:
    timer = Timer()
    call, provider, checked = plan_video(request, bundle, ctx)
    prompt = call.prompt or ""
    params = {"model": checked.model, **checked.sent}
    video_id = new_id()
    with working_dir(ctx, video_id) as work:
        reference = None
        if request.character_reference_id:
            key = await find_character_reference(ctx, request.character_reference_id)
            reference = await ctx.media.fetch(key, work)
        ctx.progress(0.02, "rendering")
        result = await provider.generate_video(
            prompt=prompt,
            negative_prompt=request.negative_prompt,
            params=params,
            reference_image=reference,
            seed=request.seed,
            out_path=work / "video.mp4",
            progress=ctx.progress,
        )
        ctx.progress(0.95, "uploading")
        metadata = base_metadata(
            bundle,
            timer,
            prompt=request.prompt,
            full_prompt=prompt,
            negative_prompt=request.negative_prompt,
            character_reference_id=request.character_reference_id,
            parameters_used=parameters_used(result.raw, checked, seed=request.seed),
            model_used=result.model_used,
            backend=provider.name,
            **checked_metadata(result.raw, checked),
        )
        response = await store_video(ctx, video_id, result.paths[0], metadata)
        ctx.progress(1.0, "done")
        return response
