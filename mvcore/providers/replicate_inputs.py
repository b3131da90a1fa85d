"""The exact ``input`` of every Replicate prediction, built from what a generator hands over.

Pure functions, no network.  The provider calls them with a file opener (local files become
open handles that the client uploads) and the prompt preview (``POST /api/mv/flavors/{name}/render``)
with a placeholder, so the preview shows the very input the provider sends.  Each builder answers
``(model, sent, not_sent)``: for a model in the catalogue, keys it has no input for are not sent and
are reported (``raw["not_sent"]``, ``parameters_not_sent``), never dropped silently; a model outside
the catalogue receives every key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mvcore.config.model_checks import ModelCatalogue
from mvcore.providers.scene_json import SCENES_SYSTEM_PROMPT

log = logging.getLogger(__name__)

#: turns a local file into the value the input carries (an open handle, or a preview placeholder)
Attach = Callable[[Path, str], Any]
#: (model, what is sent, what is not)
Built = tuple[str, dict[str, Any], dict[str, Any]]

#: used for scenes when the flavor names no model (``model=""``)
DEFAULT_SCENE_MODEL = "openai/gpt-4o-mini"
DEFAULT_IMAGE_MODEL = "google/imagen-4"
DEFAULT_VIDEO_MODEL = "google/veo-3.1"
DEFAULT_LIPSYNC_MODEL = "sync/lipsync-2-pro"


def scenes_input(prompt: str, model: str, models: ModelCatalogue) -> Built:
    name = model.strip() or DEFAULT_SCENE_MODEL
    return (name, *split(name, {"prompt": prompt, "system_prompt": SCENES_SYSTEM_PROMPT}, models))


def image_model(params: dict[str, Any]) -> str:
    return str(params.get("model") or DEFAULT_IMAGE_MODEL)


def image_input(
    prompt: str,
    negative_prompt: str | None,
    params: dict[str, Any],
    seed: int | None,
    index: int,
    models: ModelCatalogue,
) -> Built:
    """The input of image ``index`` of a batch (imagen makes one image per prediction)."""
    model = image_model(params)
    inp = {
        "prompt": prompt,
        "aspect_ratio": params.get("aspect_ratio"),
        "safety_filter_level": params.get("safety_filter_level"),
        "person_generation": params.get("person_generation"),
        "output_format": params.get("output_format"),
        "negative_prompt": negative_prompt or None,
        # vary the seed so n images differ
        "seed": None if seed is None else seed + index,
        **dict(params.get("extra_input") or {}),
    }
    return (model, *split(model, inp, models))


def video_input(
    prompt: str,
    negative_prompt: str | None,
    params: dict[str, Any],
    seed: int | None,
    reference_image: Path | None,
    attach: Attach,
    models: ModelCatalogue,
) -> Built:
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
        mode = reference_mode(model, params.get("reference_mode"), aspect_ratio, duration, models)
        if mode == "reference_images":
            inp["reference_images"] = [handle]
        else:
            inp["image"] = handle
    inp.update(params.get("extra_input") or {})
    return (model, *split(model, inp, models))


def lipsync_input(
    video: Path, audio: Path, params: dict[str, Any], attach: Attach, models: ModelCatalogue
) -> Built:
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
    return (model, *split(model, inp, models))


def split(model: str, inp: dict[str, Any], models: ModelCatalogue) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what is sent, what is not): None values dropped; for a catalogued model, also every key it
    has no input for."""
    present = {k: v for k, v in inp.items() if v is not None}
    entry = models.get(model)
    if entry is None:
        return present, {}
    sent = {k: v for k, v in present.items() if entry.accepts(k)}
    not_sent = {k: v for k, v in present.items() if k not in sent}
    if not_sent:
        log.debug("not sending inputs %s: %s has no such inputs", sorted(not_sent), model)
    return sent, not_sent


def reference_mode(
    model: str, requested: Any, aspect_ratio: Any, duration: Any, models: ModelCatalogue
) -> str:
    """How veo gets the character image: ``reference_images`` (R2V) or ``image`` (first frame).

    Veo 3.1's reference images work only at 16:9 and 8 s (per its schema's description), and a
    model without a ``reference_images`` input gets the image-to-video ``image`` input.
    """
    if requested in ("reference_images", "image"):
        return str(requested)
    entry = models.get(model)
    if entry is None:
        return "reference_images"
    if not entry.accepts("reference_images"):
        return "image"
    r2v_ok = str(aspect_ratio or "16:9") == "16:9" and str(duration or 8).strip() in ("8", "8.0")
    return "reference_images" if r2v_ok else "image"
