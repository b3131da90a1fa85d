"""The exact ``input`` of every Replicate prediction, built from what a generator hands over.

Pure functions, no network: the provider calls them with a file opener (local files become
open handles that the client uploads), the prompt preview (``POST /api/mv/flavors/{name}/render``)
calls them with a placeholder, so the preview shows the very input the provider sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mvcore.providers.scene_json import SCENES_SYSTEM_PROMPT

log = logging.getLogger(__name__)

#: turns a local file into the value the input carries (an open handle, or a preview placeholder)
Attach = Callable[[Path, str], Any]

#: Input keys the well-known models accept (from their Replicate schemas).  Keys outside the set
#: are dropped for these models; any other model receives the input unfiltered.
KNOWN_MODEL_INPUTS: dict[str, frozenset[str]] = {
    "google/imagen-4": frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    "google/imagen-4-fast": frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    "google/imagen-4-ultra": frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    "google/veo-3.1": frozenset(
        {
            "prompt",
            "aspect_ratio",
            "duration",
            "image",
            "last_frame",
            "reference_images",
            "negative_prompt",
            "resolution",
            "generate_audio",
            "seed",
        }
    ),
    "google/veo-3.1-fast": frozenset(
        {
            "prompt",
            "aspect_ratio",
            "duration",
            "image",
            "last_frame",
            "negative_prompt",
            "resolution",
            "generate_audio",
            "seed",
        }
    ),
    "sync/lipsync-2-pro": frozenset({"video", "audio", "sync_mode", "temperature", "active_speaker"}),
    "sync/lipsync-2": frozenset({"video", "audio", "sync_mode", "temperature", "active_speaker"}),
}

#: used for scenes when the flavor names no model (``model=""``)
DEFAULT_SCENE_MODEL = "openai/gpt-4o-mini"
DEFAULT_IMAGE_MODEL = "google/imagen-4"
DEFAULT_VIDEO_MODEL = "google/veo-3.1"
DEFAULT_LIPSYNC_MODEL = "sync/lipsync-2-pro"


def scenes_input(prompt: str, model: str) -> tuple[str, dict[str, Any]]:
    return (model.strip() or DEFAULT_SCENE_MODEL, {"prompt": prompt, "system_prompt": SCENES_SYSTEM_PROMPT})


def image_model(params: dict[str, Any]) -> str:
    return str(params.get("model") or DEFAULT_IMAGE_MODEL)


def image_input(
    prompt: str, negative_prompt: str | None, params: dict[str, Any], seed: int | None, index: int
) -> dict[str, Any]:
    """The input of image ``index`` of a batch (imagen makes one image per prediction)."""
    return clean(
        {
            "prompt": prompt,
            "aspect_ratio": params.get("aspect_ratio"),
            "safety_filter_level": params.get("safety_filter_level"),
            "person_generation": params.get("person_generation"),
            "output_format": params.get("output_format"),
            "negative_prompt": negative_prompt or None,
            # vary the seed so n images differ
            "seed": None if seed is None else seed + index,
            **dict(params.get("extra_input") or {}),
        },
        image_model(params),
    )


def video_input(
    prompt: str,
    negative_prompt: str | None,
    params: dict[str, Any],
    seed: int | None,
    reference_image: Path | None,
    attach: Attach,
) -> tuple[str, dict[str, Any]]:
    model = str(params.get("model") or DEFAULT_VIDEO_MODEL)
    aspect_ratio = params.get("aspect_ratio")
    duration = params.get("duration")
    inp: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": negative_prompt or None,
        "aspect_ratio": aspect_ratio,
        "duration": int(duration) if duration is not None else None,
        "generate_audio": params.get("generate_audio"),
        "person_generation": params.get("person_generation"),
        "resolution": params.get("resolution"),
        "seed": seed,
    }
    if reference_image is not None:
        handle = attach(reference_image, "reference image")
        mode = reference_mode(model, params.get("reference_mode"), aspect_ratio, duration)
        if mode == "reference_images":
            inp["reference_images"] = [handle]
        else:
            inp["image"] = handle
    inp.update(params.get("extra_input") or {})
    return model, clean(inp, model)


def lipsync_input(
    video: Path, audio: Path, params: dict[str, Any], attach: Attach
) -> tuple[str, dict[str, Any]]:
    model = str(params.get("model") or DEFAULT_LIPSYNC_MODEL)
    inp: dict[str, Any] = {
        "video": attach(video, "video"),
        "audio": attach(audio, "audio"),
        "temperature": params.get("temperature"),
        "sync_mode": params.get("sync_mode"),
        "active_speaker": params.get("active_speaker", params.get("active_speaker_detection")),
        "occlusion_detection_enabled": params.get("occlusion_detection_enabled"),
        **dict(params.get("extra_input") or {}),
    }
    return model, clean(inp, model)


def clean(inp: dict[str, Any], model: str) -> dict[str, Any]:
    """Drop None values, and keys a well-known model does not accept."""
    out = {k: v for k, v in inp.items() if v is not None}
    allowed = KNOWN_MODEL_INPUTS.get(model.partition(":")[0])
    if allowed is not None:
        dropped = sorted(set(out) - allowed)
        if dropped:
            log.debug("dropping inputs %s that %s does not accept", dropped, model)
        out = {k: v for k, v in out.items() if k in allowed}
    return out


def reference_mode(model: str, requested: Any, aspect_ratio: Any, duration: Any) -> str:
    """How veo gets the character image: ``reference_images`` (R2V) or ``image`` (first frame).

    Veo 3.1's reference images work only at 16:9 and 8 s (and veo-3.1-fast has none), so other
    shapes fall back to the image-to-video ``image`` input.
    """
    if requested in ("reference_images", "image"):
        return str(requested)
    allowed = KNOWN_MODEL_INPUTS.get(model.partition(":")[0])
    if allowed is not None and "reference_images" not in allowed:
        return "image"
    if allowed is None:
        return "reference_images"
    r2v_ok = str(aspect_ratio or "16:9") == "16:9" and str(duration or 8).strip() in ("8", "8.0")
    return "reference_images" if r2v_ok else "image"
