"""Scene lists: the flavor's scene prompt filled with the request, sent to a provider."""

from __future__ import annotations

from typing import Any

from mvcore.generators.common import Timer, base_metadata, new_id
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.model_params import check_params
from mvcore.generators.plan import scenes_call
from mvcore.generators.requests import CreateScenesRequest


async def create_scenes(
    request: CreateScenesRequest, bundle: ConfigBundle, ctx: GenContext
) -> dict[str, Any]:
    timer = Timer()
    call = scenes_call(request, bundle, max_chars=ctx.settings.max_prompt_chars)
    inputs, defaulted, prompt = call.inputs, call.defaulted, call.prompt or ""
    provider = ctx.provider()
    scene_model = str(call.params["model"] or "")
    checked = None
    if scene_model:
        where = "scene_prompts.scene_model"
        checked = check_params(ctx, provider, model=scene_model, params={}, fields={}, selector=where)
    ctx.progress(0.1, "writing scenes")
    scenes = await provider.generate_scenes(
        prompt=prompt,
        inputs=inputs,
        number_of_scenes=call.params["number_of_scenes"],
        model=call.params["model"],
        progress=ctx.progress,
    )
    wire = [s.to_wire() for s in scenes]
    scenes_id = new_id()
    base = f"mv/scenes/{request.project_id or scenes_id}"
    json_key, md_key = f"{base}/scenes.json", f"{base}/scenes.md"
    await ctx.media.save_json(json_key, {"scenes": wire, "inputs": inputs})
    markdown = "\n".join(
        f"## Scene {i}\n\n{s['description']}\n\n**Avoid:** {s['negative_description']}\n"
        for i, s in enumerate(wire, 1)
    )
    await ctx.media.save_text(md_key, f"# {request.idea}\n\n{markdown}")
    ctx.progress(1.0, "done")
    return {
        "scenes": wire,
        "output_files": {"json": json_key, "markdown": md_key},
        "metadata": base_metadata(
            bundle,
            timer,
            idea=request.idea,
            number_of_scenes=len(wire),
            parameters_used=inputs,
            defaults_applied=defaulted,
            model_used=f"{provider.name}/{call.params['model']}" if provider.name != "offline" else "offline",
            scenes_id=scenes_id,
            project_id=request.project_id,
            prompt_chars=len(prompt),
            **(checked.metadata() if checked is not None else {}),
        ),
    }
