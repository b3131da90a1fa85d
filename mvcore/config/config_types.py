"""The registry of config types: which file, which model, which schema.

A config type is one YAML file inside a flavor (``parameters.yaml`` ...).
Built-in types are defined here by pydantic models -- the single source of
the JSON Schemas in ``schemas/`` and of typed access in code.  Plugins may
register more types with a plain JSON Schema (``mvcore_config_types`` hook).
Every type carries its base-layer defaults and the placeholders each of its
templates may use, so validation and resolution need nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mvcore.errors import PluginError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CONFIG_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

SCENE_PLACEHOLDERS = frozenset(
    {
        "idea",
        "character_description",
        "character_characteristics",
        "number_of_scenes",
        "camera_angle",
        "video_type",
        "video_characteristics",
    }
)


def optional(description: str = "", *, examples: list[Any] | None = None, **constraints: Any) -> Any:
    """A key that may be missing (it falls back) but, when present, must have the field's type.

    Typed as Any so the annotation can stay ``str``/``int`` (null is *not* a valid value) while
    the default is None (missing).  ``description`` and ``examples`` go into the JSON Schemas
    in ``schemas/``, which editors show on hover and offer as completions.
    """
    return Field(None, description=description or None, examples=examples, **constraints)


class _Strict(BaseModel):
    # Every key is optional in a flavor file (missing keys fall back), but a
    # key that is present must be of the right type; unknown keys are errors.
    model_config = ConfigDict(extra="forbid")


_SCENE_TEMPLATE_HELP = (
    "Template of the LLM prompt that writes the scene list. Placeholders: {idea}, "
    "{character_description}, {character_characteristics}, {number_of_scenes}, {camera_angle}, "
    "{video_type}, {video_characteristics}; write literal braces as {{ and }}. It must ask for JSON "
    '{"scenes": [{"description", "negative_description"}]}.'
)


class ParametersConfig(_Strict):
    """Scene-level knobs that fill the scene prompt template."""

    character_characteristics: str = optional(
        "Personality words for the character ({character_characteristics} in the scene prompt).",
        examples=["sarcastic, dramatic, emotional, and lovable"],
    )
    video_type: str = optional(
        "What kind of video ({video_type} in the scene prompt).", examples=["video", "short film"]
    )
    video_characteristics: str = optional(
        "Visual style words ({video_characteristics} in the scene prompt).",
        examples=["vlogging, realistic, 4k, cinematic"],
    )
    camera_angle: str = optional(
        "Camera placement ({camera_angle} in the scene prompt).", examples=["front", "wide", "low angle"]
    )
    number_of_scenes: int = optional(
        "How many scenes to write when the request does not say (1-32).", examples=[4, 6], ge=1, le=32
    )


class ScenePromptsConfig(_Strict):
    """The LLM prompt that writes the scene list."""

    scene_generation_prompt: str = optional(
        _SCENE_TEMPLATE_HELP,
        examples=[
            "Write exactly {number_of_scenes} scenes of a {video_type} about: {idea}\n"
            "Character: {character_description}.\n"
            'Reply with JSON only: {{"scenes": [{{"description": "...", "negative_description": "..."}}]}}\n'
        ],
    )
    scene_model: str = optional(
        "Replicate language model that writes the scenes (owner/name).", examples=["openai/gpt-4o-mini"]
    )


class ImagePromptsConfig(_Strict):
    """The prompt of the character reference images."""

    character_reference_prompt: str = optional(
        "Template of the character reference image prompt; placeholder: {character_description}.",
        examples=["A full-body character reference sheet of {character_description}, plain background."],
    )


class ImageParamsConfig(_Strict):
    """Image model parameters -- and, as in the original system, the video ones."""

    model: str = optional("Image model on Replicate (owner/name).", examples=["google/imagen-4"])
    aspect_ratio: str = optional(
        "Aspect ratio of character images, W:H.",
        examples=["1:1", "3:4", "16:9"],
        pattern=r"^\d{1,2}:\d{1,2}$",
    )
    safety_filter_level: str = optional(
        "Image model safety filter.", examples=["block_medium_and_above", "block_only_high"]
    )
    person_generation: str = optional(
        "Whether images may show people.", examples=["allow_adult", "dont_allow"]
    )
    output_format: str = optional(
        "Image file format.", examples=["png", "jpg", "webp"], pattern=r"^(png|jpg|jpeg|webp)$"
    )
    video_model: str = optional("Video model on Replicate (owner/name).", examples=["google/veo-3.1"])
    video_aspect_ratio: str = optional(
        "Aspect ratio of video clips, W:H.", examples=["16:9", "9:16"], pattern=r"^\d{1,2}:\d{1,2}$"
    )
    video_duration: int = optional("Clip length in seconds (1-60).", examples=[8, 4], ge=1, le=60)
    video_generate_audio: bool = optional("Whether the video model also makes sound.", examples=[True, False])
    video_person_generation: str = optional(
        "Whether clips may show people.", examples=["allow_all", "allow_adult"]
    )
    video_rules_template: str = optional(
        "Template appended to every video prompt; placeholder: {aspect_ratio}.",
        examples=["Frame for a {aspect_ratio} aspect ratio. No text, captions or watermarks."],
    )


class LipsyncParamsConfig(_Strict):
    """Lipsync model parameters (a built-in type: lipsync must work without plugins)."""

    model: str = optional("Lipsync model on Replicate (owner/name).", examples=["sync/lipsync-2-pro"])
    temperature: float = optional("How expressive the mouth movement is (0-1).", examples=[0.5], ge=0, le=1)
    occlusion_detection_enabled: bool = optional(
        "Detect hands or objects in front of the face (slower).", examples=[False, True]
    )
    active_speaker_detection: bool = optional(
        "Lipsync only the person who is speaking when several faces are visible.", examples=[False, True]
    )


@dataclass(frozen=True)
class ConfigType:
    """One kind of config file a flavor may hold."""

    name: str
    schema: Mapping[str, Any]
    placeholders: Mapping[str, frozenset[str]] = field(default_factory=dict)
    model: type[BaseModel] | None = None
    owner: str = "builtin"
    defaults_file: Path | None = None
    defaults: Mapping[str, Any] | None = None
    description: str = ""
    replaces_builtin: bool = False

    @property
    def filename(self) -> str:
        return f"{self.name}.yaml"

    @property
    def layer(self) -> str:
        """Provenance layer name of this type's base defaults."""
        return "builtin" if self.owner == "builtin" else self.owner


def schema_for(model: type[BaseModel], name: str) -> dict[str, Any]:
    """JSON Schema (Draft 2020-12) of a config model, as exported to ``schemas/``."""
    schema = model.model_json_schema()
    for prop in schema.get("properties", {}).values():
        if prop.get("default", "x") is None:
            del prop["default"]
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://mvcore.dev/schemas/{name}.schema.json",
        **schema,
    }


_BUILTIN_DIR = Path(__file__).parent / "builtin"

_BUILTIN_MODELS: dict[str, tuple[type[BaseModel], dict[str, frozenset[str]], str]] = {
    "parameters": (ParametersConfig, {}, "Scene parameters that fill the scene prompt"),
    "scene_prompts": (
        ScenePromptsConfig,
        {"scene_generation_prompt": SCENE_PLACEHOLDERS},
        "Prompt and model that write the scene list",
    ),
    "image_prompts": (
        ImagePromptsConfig,
        {"character_reference_prompt": frozenset({"character_description"})},
        "Prompt for character reference images",
    ),
    "image_params": (
        ImageParamsConfig,
        {"video_rules_template": frozenset({"aspect_ratio"})},
        "Image and video model parameters",
    ),
    "lipsync_params": (LipsyncParamsConfig, {}, "Lipsync model parameters"),
}


def builtin_config_types() -> list[ConfigType]:
    """The built-in types, with defaults read from the packaged YAML files."""
    out = []
    for name, (model, placeholders, description) in _BUILTIN_MODELS.items():
        out.append(
            ConfigType(
                name=name,
                schema=schema_for(model, name),
                placeholders=placeholders,
                model=model,
                owner="builtin",
                defaults_file=_BUILTIN_DIR / f"{name}.yaml",
                description=description,
            )
        )
    return out


BUILTIN_TYPE_NAMES = frozenset(_BUILTIN_MODELS)


class ConfigTypeRegistry:
    """Config types by name, in registration order, with clash rules."""

    def __init__(self, types: Iterable[ConfigType] = ()) -> None:
        self._types: dict[str, ConfigType] = {}
        self.errors: list[str] = []
        for config_type in types:
            self.add(config_type)

    def add(self, config_type: ConfigType) -> None:
        if not CONFIG_TYPE_NAME.match(config_type.name) or config_type.name == "flavor":
            raise PluginError(
                f"Config type name {config_type.name!r} is not allowed",
                hint="Use lower-case letters, digits and '_' (not 'flavor', which is the manifest).",
            )
        existing = self._types.get(config_type.name)
        if existing is not None and not config_type.replaces_builtin:
            raise PluginError(
                f"Config type {config_type.name!r} from {config_type.owner} clashes with {existing.owner}",
                hint="Choose another name, or set replaces_builtin=True to replace it on purpose.",
            )
        self._types[config_type.name] = config_type

    def __getitem__(self, name: str) -> ConfigType:
        return self._types[name]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Any:
        return iter(self._types.values())

    def names(self) -> list[str]:
        return list(self._types)

    def by_filename(self) -> dict[str, ConfigType]:
        out: dict[str, ConfigType] = {}
        for config_type in self._types.values():
            out[config_type.filename] = config_type
            out[f"{config_type.name}.yml"] = config_type
        return out
