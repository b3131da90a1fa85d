"""One video clip per scene, from the scene prompt and the flavor's video params."""

from __future__ import annotations

from typing import Any

from mvcore.generators.character_reference import find_character_reference
from mvcore.generators.common import Timer, base_metadata, new_id, store_video, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.model_params import check_params, checked_metadata, parameters_used, source_fields
from mvcore.generators.plan import video_call
from mvcore.generators.requests import GenerateVideoRequest


async def generate_video(
    request: GenerateVideoRequest, bundle: ConfigBundle, ctx: GenContext
) -> dict[str, Any]:
    timer = Timer()
    call = video_call(request, bundle, max_chars=ctx.settings.max_prompt_chars)
    prompt = call.prompt or ""
    provider = ctx.provider(request.backend)
    flavor_params = dict(call.params)
    checked = check_params(
        ctx,
        provider,
        model=flavor_params.pop("model"),
        params=flavor_params,
        fields=source_fields(call.sources),
        selector="image_params.video_model",
    )
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
