"""Character reference images from the flavor's image prompt and params."""

from __future__ import annotations

import mimetypes
from typing import Any

from mvcore.errors import NotFound
from mvcore.generators.common import Timer, base_metadata, new_id, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.model_params import CheckedParams, check_call, checked_metadata, parameters_used
from mvcore.generators.plan import ProviderCall, character_call
from mvcore.generators.requests import GenerateCharacterReferenceRequest
from mvcore.storage import keys

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")


def plan_character_reference(
    request: GenerateCharacterReferenceRequest, bundle: ConfigBundle, ctx: GenContext
) -> tuple[ProviderCall, Any, CheckedParams]:
    """The call, its provider and its checked params (raises on a refused value, before a job)."""
    call = character_call(request, bundle, max_chars=ctx.settings.max_prompt_chars)
    provider = ctx.provider()
    return call, provider, check_call(ctx, provider, call, selector="image_params.model")


async def generate_character_reference(
    request: GenerateCharacterReferenceRequest, bundle: ConfigBundle, ctx: GenContext
) -> dict[str, Any]:
    timer = Timer()
    call, provider, checked = plan_character_reference(request, bundle, ctx)
    prompt = call.prompt or ""
    params = {"model": checked.model, **checked.sent}
    with working_dir(ctx, new_id()) as work:
        result = await provider.generate_images(
            prompt=prompt,
            negative_prompt=request.negative_prompt,
            num_images=request.num_images,
            params=params,
            seed=request.seed,
            out_dir=work,
            progress=ctx.progress,
        )
        images = []
        warnings = []
        for index, path in enumerate(result.paths):
            image_id = new_id()
            ext = path.suffix.lstrip(".").lower() or "png"
            content_type = mimetypes.types_map.get(f".{ext}", "application/octet-stream")
            saved = await ctx.media.save(path, keys.character_reference_key(image_id, ext), content_type)
            if saved.warning:
                warnings.append(saved.warning)
            images.append(
                {
                    "id": image_id,
                    "index": index,
                    "path": keys.character_reference_key(image_id, ext),
                    "url": f"/api/mv/get_character_reference/{image_id}",
                    "cloud_url": saved.cloud_url,
                    "format": ext,
                }
            )
    ctx.progress(1.0, "done")
    response: dict[str, Any] = {
        "images": images,
        "metadata": base_metadata(
            bundle,
            timer,
            character_description=request.character_description,
            prompt=prompt,
            num_images=len(images),
            parameters_used=parameters_used(result.raw, checked, seed=request.seed),
            negative_prompt=request.negative_prompt,
            model_used=result.model_used,
            **checked_metadata(result.raw, checked),
        ),
    }
    if warnings:
        response["storage_warning"] = warnings[0]
    return response


async def find_character_reference(
    ctx: GenContext, image_id: str, *, field: str = "character_reference_id"
) -> str:
    """Storage key of a character reference image, whatever its extension.

    ``field`` names where the id came from (request field or path parameter) in the 404.
    """
    keys.parse_id(image_id, "character reference", field=field)
    for ext in IMAGE_EXTENSIONS:
        key = keys.character_reference_key(image_id, ext)
        if await ctx.media.exists(key):
            return key
    raise NotFound(
        f"Character reference {image_id!r} not found",
        hint="Use an id returned by /api/mv/generate_character_reference.",
        details={"field": field},
    )
