"""What each generator hands its provider, built in one place from request + resolved config.

Every generator builds its provider call through these functions, and so does the prompt
preview (``POST /api/mv/flavors/{name}/render``, ``mvcore flavors render``): the preview
shows the very prompts and parameters a generation would send.  Each call also records
where every value came from -- ``request.<field>`` when the request gave it, else
``<config_type>.<key>`` of the flavor -- so the preview can add the provenance of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mvcore.generators.context import ConfigBundle
from mvcore.generators.requests import (
    CreateScenesRequest,
    GenerateCharacterReferenceRequest,
    GenerateVideoRequest,
    LipsyncRequest,
)
from mvcore.generators.templates import fill

SCENE_PARAMETER_KEYS = (
    "character_characteristics",
    "number_of_scenes",
    "video_type",
    "video_characteristics",
    "camera_angle",
)
IMAGE_PARAM_KEYS = ("model", "aspect_ratio", "safety_filter_level", "person_generation", "output_format")
LIPSYNC_REQUEST_KEYS = ("temperature", "occlusion_detection_enabled", "active_speaker_detection")


@dataclass(frozen=True, kw_only=True)
class ProviderCall:
    """One generator's provider call: the prompt, its parameters and where each came from.

    ``sources`` maps ``prompt``/``template``/a parameter name to ``request.<field>`` or
    ``<config_type>.<key>``; ``inputs`` are the values a template was filled with.
    """

    prompt: str | None = None
    template: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    defaulted: list[str] = field(default_factory=list)


def _pick(request_value: Any, request_field: str, section: Any, config_ref: str) -> tuple[Any, str]:
    """The request's value when given, else the flavor's; with the source of the one used."""
    if request_value is not None:
        return request_value, f"request.{request_field}"
    return section.get(config_ref.partition(".")[2]), config_ref


def scenes_call(request: CreateScenesRequest, bundle: ConfigBundle, *, max_chars: int) -> ProviderCall:
    """Request values win; the flavor's parameters fill the gaps (reported as defaults applied)."""
    params = bundle.section("parameters")
    inputs: dict[str, Any] = {"idea": request.idea, "character_description": request.character_description}
    sources = {"idea": "request.idea", "character_description": "request.character_description"}
    defaulted = []
    for key in SCENE_PARAMETER_KEYS:
        inputs[key], sources[key] = _pick(getattr(request, key), key, params, f"parameters.{key}")
        if sources[key].startswith("parameters."):
            defaulted.append(key)
    prompts = bundle.section("scene_prompts")
    template = prompts["scene_generation_prompt"]
    prompt = fill(template, inputs, name="scene_generation_prompt", max_chars=max_chars)
    sources["template"] = "scene_prompts.scene_generation_prompt"
    sources["model"] = "scene_prompts.scene_model"
    return ProviderCall(
        prompt=prompt,
        template=template,
        params={
            "number_of_scenes": int(inputs["number_of_scenes"]),
            "model": str(prompts.get("scene_model", "")),
        },
        inputs=inputs,
        sources=sources,
        defaulted=defaulted,
    )


def character_call(
    request: GenerateCharacterReferenceRequest, bundle: ConfigBundle, *, max_chars: int
) -> ProviderCall:
    prompts = bundle.section("image_prompts")
    template = prompts["character_reference_prompt"]
    inputs = {"character_description": request.character_description}
    prompt = fill(template, inputs, name="character_reference_prompt", max_chars=max_chars)
    flavor = bundle.section("image_params")
    params: dict[str, Any] = {}
    sources = {
        "template": "image_prompts.character_reference_prompt",
        "character_description": "request.character_description",
    }
    for key in IMAGE_PARAM_KEYS:
        params[key], sources[key] = _pick(getattr(request, key, None), key, flavor, f"image_params.{key}")
    return ProviderCall(prompt=prompt, template=template, params=params, inputs=inputs, sources=sources)


def video_call(request: GenerateVideoRequest, bundle: ConfigBundle, *, max_chars: int) -> ProviderCall:
    """The scene prompt plus the flavor's video rules (filled with the aspect ratio)."""
    flavor = bundle.section("image_params")
    params: dict[str, Any] = {"model": flavor.get("video_model")}
    sources = {
        "model": "image_params.video_model",
        "person_generation": "image_params.video_person_generation",
    }
    for key, request_field in (("aspect_ratio", "aspect_ratio"), ("duration", "duration")):
        params[key], sources[key] = _pick(
            getattr(request, request_field), request_field, flavor, f"image_params.video_{key}"
        )
    params["generate_audio"], sources["generate_audio"] = _pick(
        request.generate_audio, "generate_audio", flavor, "image_params.video_generate_audio"
    )
    params["person_generation"] = flavor.get("video_person_generation")
    given = request.video_rules_template or None  # an empty template in the request means "the flavor's"
    template, sources["template"] = _pick(
        given, "video_rules_template", flavor, "image_params.video_rules_template"
    )
    template = template or ""
    inputs = {"aspect_ratio": params["aspect_ratio"]}
    rules = fill(template, inputs, name="video_rules_template", max_chars=max_chars)
    prompt = f"{request.prompt.strip()}\n\n{rules.strip()}".strip()
    sources["prompt"] = "request.prompt"
    return ProviderCall(prompt=prompt, template=template, params=params, inputs=inputs, sources=sources)


def lipsync_call(request: LipsyncRequest, bundle: ConfigBundle) -> ProviderCall:
    flavor = bundle.section("lipsync_params")
    params: dict[str, Any] = {"model": flavor.get("model")}
    sources = {"model": "lipsync_params.model"}
    for key in LIPSYNC_REQUEST_KEYS:
        params[key], sources[key] = _pick(getattr(request, key), key, flavor, f"lipsync_params.{key}")
    return ProviderCall(params=params, sources=sources)
