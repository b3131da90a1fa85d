"""One video clip per scene, from the scene prompt and the flavor's video params."""

from __future__ import annotations

from typing import Any

from mvcore.generators.character_reference import find_character_reference
from mvcore.generators.common import Timer, base_metadata, new_id, store_video, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.model_params import CheckedParams, check_params, checked_metadata, parameters_used
from mvcore.generators.requests import GenerateVideoRequest
from mvcore.generators.templates import fill

#: request field -> the image_params key that supplies it when the request does not
VIDEO_FLAVOR_KEYS = {
    "aspect_ratio": "video_aspect_ratio",
    "duration": "video_duration",
    "generate_audio": "video_generate_audio",
    "person_generation": "video_person_generation",
}


def checked_video_params(
    request: GenerateVideoRequest, bundle: ConfigBundle, ctx: GenContext, provider: Any
) -> CheckedParams:
    """The video params, checked against the flavor's video model (400 before any call)."""
    params = video_params(request, bundle)
    fields = {
        key: key if getattr(request, key, None) is not None else f"image_params.{flavor_key}"
        for key, flavor_key in VIDEO_FLAVOR_KEYS.items()
    }
    model = params.pop("model")
    return check_params(
        ctx, provider, model=model, params=params, fields=fields, selector="image_params.video_model"
    )


def video_params(request: GenerateVideoRequest, bundle: ConfigBundle) -> dict[str, Any]:
    flavor = bundle.section("image_params")

    def pick(value: Any, key: str) -> Any:
        return value if value is not None else flavor.get(key)

    return {
        "model": flavor.get("video_model"),
        "aspect_ratio": pick(request.aspect_ratio, "video_aspect_ratio"),
        "duration": pick(request.duration, "video_duration"),
        "generate_audio": pick(request.generate_audio, "video_generate_audio"),
        "person_generation": flavor.get("video_person_generation"),
    }


async def generate_video(
    request: GenerateVideoRequest, bundle: ConfigBundle, ctx: GenContext
) -> dict[str, Any]:
    timer = Timer()
    provider = ctx.provider(request.backend)
    checked = checked_video_params(request, bundle, ctx, provider)
    params = {"model": checked.model, **checked.sent}
    template = (
        request.video_rules_template or bundle.section("image_params").get("video_rules_template") or ""
    )
    rules = fill(
        template,
        {"aspect_ratio": params.get("aspect_ratio")},
        name="video_rules_template",
        max_chars=ctx.settings.max_prompt_chars,
    )
    prompt = f"{request.prompt.strip()}\n\n{rules.strip()}".strip()
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
