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


def optional(description: str = "", **constraints: Any) -> Any:
    """A key that may be missing (it falls back) but, when present, must have the field's type.

    Typed as Any so the annotation can stay ``str``/``int`` (null is *not* a valid value) while
    the default is None (missing).
    """
    return Field(None, description=description or None, **constraints)


class _Strict(BaseModel):
    # Every key is optional in a flavor file (missing keys fall back), but a
    # key that is present must be of the right type; unknown keys are errors.
    model_config = ConfigDict(extra="forbid")


class ParametersConfig(_Strict):
    """Scene-level knobs that fill the scene prompt template."""

    character_characteristics: str = optional(description="Personality words for the character")
    video_type: str = optional(description="What kind of video, e.g. 'video', 'short film'")
    video_characteristics: str = optional(description="Visual style words")
    camera_angle: str = optional(description="Camera placement, e.g. 'front', 'wide'")
    number_of_scenes: int = optional(ge=1, le=32, description="How many scenes to write")


class ScenePromptsConfig(_Strict):
    """The LLM prompt that writes the scene list."""

    scene_generation_prompt: str = optional(
        description="str.format template; must ask for JSON {scenes:[{description,negative_description}]}",
    )
    scene_model: str = optional(description="Replicate LLM used to write scenes")


class ImagePromptsConfig(_Strict):
    character_reference_prompt: str = optional(description="str.format template over {character_description}")


class ImageParamsConfig(_Strict):
    """Image model parameters -- and, as in the original system, the video ones."""

    model: str = optional(description="Image model on Replicate")
    aspect_ratio: str = optional(pattern=r"^\d{1,2}:\d{1,2}$")
    safety_filter_level: str = optional()
    person_generation: str = optional()
    output_format: str = optional(pattern=r"^(png|jpg|jpeg|webp)$")
    video_model: str = optional(description="Video model on Replicate")
    video_aspect_ratio: str = optional(pattern=r"^\d{1,2}:\d{1,2}$")
    video_duration: int = optional(ge=1, le=60)
    video_generate_audio: bool = optional()
    video_person_generation: str = optional()
    video_rules_template: str = optional(description="str.format template over {aspect_ratio}")


class LipsyncParamsConfig(_Strict):
    """Lipsync model parameters (a built-in type: lipsync must work without plugins)."""

    model: str = optional(description="Lipsync model on Replicate")
    temperature: float = optional(ge=0, le=1)
    occlusion_detection_enabled: bool = optional()
    active_speaker_detection: bool = optional()


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
