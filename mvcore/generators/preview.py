"""The prompt preview: what every generator would send, without calling any provider.

``render_preview`` builds each generator's request model from the author's inputs, runs the
same ``plan`` functions the generators run, and the same Replicate input builders the
provider runs -- so the text shown is the text sent (a test compares it with what a fake
Replicate server receives).  Each value carries its provenance: the layer, file and line of
the flavor key it came from, or the request field that gave it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mvcore.config.model_checks import ModelCatalogue
from mvcore.config.resolver import Resolution
from mvcore.generators.context import ConfigBundle
from mvcore.generators.plan import ProviderCall, character_call, lipsync_call, scenes_call, video_call
from mvcore.generators.requests import (
    OVERRIDES_FIELD,
    ConfigOverrides,
    CreateScenesRequest,
    GenerateCharacterReferenceRequest,
    GenerateVideoRequest,
    LipsyncRequest,
)
from mvcore.providers import replicate_inputs
from mvcore.providers.catalogue import shipped_catalogue

#: stands in for a local file the provider would upload (the preview reads no media)
FILE_PLACEHOLDER = "<file: {label}>"
VIDEO_PROMPT_PLACEHOLDER = "<scene description>"


class RenderRequest(BaseModel):
    """The generator inputs of a preview; ``requests`` adds any field of one generator's request."""

    idea: str = Field(..., min_length=1, max_length=20_000, examples=["a heist at a bakery"])
    character_description: str = Field(..., min_length=1, max_length=20_000, examples=["a raccoon in a cap"])
    video_prompt: str | None = Field(
        None, max_length=20_000, description="Scene description for the video prompt (default: a placeholder)"
    )
    config_overrides: ConfigOverrides = OVERRIDES_FIELD
    requests: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Extra request fields per generator, e.g. {'generate_video': {'duration': 4}}",
    )


GENERATOR_NAMES = ("create_scenes", "generate_character_reference", "generate_video", "lipsync")


#: the shipped model catalogue: the default when a caller has no catalogue of its own
MODELS = shipped_catalogue()
PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"


def render_preview(
    resolution: Resolution, render: RenderRequest, *, max_chars: int, models: ModelCatalogue | None = None
) -> dict[str, Any]:
    """Prompts, parameters and Replicate inputs of every generator for one flavor.

    ``models``: the catalogue the server's generators use (shipped + plugins); the shipped one
    when not given.  The Replicate inputs are filtered by it, as the provider does.
    """
    models = models or MODELS
    bundle = ConfigBundle.from_resolution(resolution)
    extra = render.requests
    scenes = CreateScenesRequest(
        idea=render.idea,
        character_description=render.character_description,
        **extra.get("create_scenes", {}),
    )
    character = GenerateCharacterReferenceRequest(
        character_description=render.character_description, **extra.get("generate_character_reference", {})
    )
    video = GenerateVideoRequest(
        prompt=render.video_prompt or VIDEO_PROMPT_PLACEHOLDER, **extra.get("generate_video", {})
    )
    # ids are UUIDs in requests; the preview fetches nothing, so placeholders of the right shape do
    lipsync_fields = {"video_id": PLACEHOLDER_ID, "audio_id": PLACEHOLDER_ID, **extra.get("lipsync", {})}
    lipsync = LipsyncRequest(**lipsync_fields)
    return {
        **resolution.meta(),
        "generators": {
            "create_scenes": _scenes(scenes, bundle, resolution, max_chars, models),
            "generate_character_reference": _character(character, bundle, resolution, max_chars, models),
            "generate_video": _video(video, bundle, resolution, max_chars, models),
            "lipsync": _lipsync(lipsync, bundle, resolution, models),
        },
    }


def _placeholder(path: Path, label: str) -> str:
    return FILE_PLACEHOLDER.format(label=label)


def _provenance(call: ProviderCall, resolution: Resolution) -> dict[str, Any]:
    """source of each value -> where it came from (flavor key with layer/file/line, or request field)."""
    out: dict[str, Any] = {}
    for name, source in sorted(call.sources.items()):
        scope, _, key = source.partition(".")
        if scope == "request":
            out[name] = {"source": source, "layer": "input", "file": None, "line": None}
            continue
        config = resolution.configs.get(scope)
        prov = config.provenance.get(key) if config is not None else None
        out[name] = {"source": source, **(prov.to_dict() if prov is not None else _unset())}
    return out


def _unset() -> dict[str, Any]:
    return {"layer": None, "file": None, "line": None, "note": "not set in any layer"}


def _wire(
    call: ProviderCall, resolution: Resolution, model: str, inputs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "prompt": call.prompt,
        "template": call.template,
        "template_inputs": call.inputs,
        "parameters": call.params,
        "provenance": _provenance(call, resolution),
        "replicate": {"model": model, "inputs": inputs},
    }


def _scenes(
    request: CreateScenesRequest,
    bundle: ConfigBundle,
    resolution: Resolution,
    max_chars: int,
    models: ModelCatalogue,
) -> dict[str, Any]:
    call = scenes_call(request, bundle, max_chars=max_chars)
    model, inp, _ = replicate_inputs.scenes_input(call.prompt or "", call.params["model"], models)
    return {**_wire(call, resolution, model, [inp]), "defaults_applied": call.defaulted}


def _character(
    request: GenerateCharacterReferenceRequest,
    bundle: ConfigBundle,
    resolution: Resolution,
    max_chars: int,
    models: ModelCatalogue,
) -> dict[str, Any]:
    call = character_call(request, bundle, max_chars=max_chars)
    inputs = [
        replicate_inputs.image_input(
            call.prompt or "", request.negative_prompt, call.params, request.seed, i, models
        )[1]
        for i in range(request.num_images)
    ]
    return _wire(call, resolution, replicate_inputs.image_model(call.params), inputs)


def _video(
    request: GenerateVideoRequest,
    bundle: ConfigBundle,
    resolution: Resolution,
    max_chars: int,
    models: ModelCatalogue,
) -> dict[str, Any]:
    call = video_call(request, bundle, max_chars=max_chars)
    reference = Path("reference") if request.character_reference_id else None
    model, inp, _ = replicate_inputs.video_input(
        call.prompt or "", request.negative_prompt, call.params, request.seed, reference, _placeholder, models
    )
    return _wire(call, resolution, model, [inp])


def _lipsync(
    request: LipsyncRequest, bundle: ConfigBundle, resolution: Resolution, models: ModelCatalogue
) -> dict[str, Any]:
    call = lipsync_call(request, bundle)
    model, inp, _ = replicate_inputs.lipsync_input(
        Path("video"), Path("audio"), call.params, _placeholder, models
    )
    return _wire(call, resolution, model, [inp])
