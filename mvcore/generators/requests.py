"""Request models of the generator endpoints (the original system's fields).

Types are strict (``number_of_scenes: true`` or ``"3"`` is a 422 naming the field, not 1 or 3
scenes), and every id in a body must be a UUID: a validator raises :class:`BadInput` (400,
``INVALID_ID``, naming the field) -- an ``MvcoreError`` is not a ``ValueError``, so pydantic lets it
through and the API's error handler answers it -- before a value like ``x/scenes.json`` can become a
path.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from mvcore.errors import BadInput, InvalidField
from mvcore.storage import keys

FLAVOR_FIELD = Field(None, description="Config flavor to use (defaults to 'default')", max_length=200)
NOT_BLANK = "Must not be blank (400 ValidationError naming the field)"
_ID_FIELDS = ("project_id", "character_reference_id", "video_id", "audio_id", "audio_overlay_id", "video_ids")


def not_blank(value: str, info: ValidationInfo) -> str:
    """Blank text is a refused value (400 naming the field), as in the original; not a 422."""
    if not value.strip():
        field = info.field_name or "field"
        raise InvalidField(field, f"{field} must not be blank", hint=f"Give a non-empty {field}.")
    return value


OVERRIDES_FIELD = Field(
    None,
    description=(
        "Per-request changes to the resolved config, {config_type: {key: value}}; checked against the "
        "config type's schema and shown as the layer 'request' in provenance and metadata.config"
    ),
    examples=[{"parameters": {"camera_angle": "wide"}, "image_params": {"video_duration": 4}}],
)
ConfigOverrides = dict[str, dict[str, Any]] | None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=20_000, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_coercion(cls, value: Any, info: ValidationInfo) -> Any:
        """Numbers and booleans exactly as JSON has them: Litestar validates bodies with
        ``strict=False`` (which overrides any strict config), so lax coercions are refused here."""
        kinds = _scalar_kinds(cls.model_fields[str(info.field_name)].annotation)
        if value is None or not kinds:
            return value
        if isinstance(value, bool):
            ok = bool in kinds
        else:
            ok = (int in kinds and isinstance(value, int)) or (
                float in kinds and isinstance(value, int | float)
            )
        if not ok:
            wanted = " or ".join(sorted(_JSON_NAMES[k] for k in kinds))
            raise ValueError(f"must be a JSON {wanted}, not {type(value).__name__} {str(value)[:40]!r}")
        return value

    @field_validator(*_ID_FIELDS, mode="after", check_fields=False)
    @classmethod
    def _ids_are_uuids(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, list):
            return [_uuid(item, f"{info.field_name}[{i}]") for i, item in enumerate(value)]
        return value if value is None else _uuid(value, str(info.field_name))


_JSON_NAMES = {int: "integer", float: "number", bool: "boolean"}


def _scalar_kinds(annotation: Any) -> frozenset[type]:
    """The scalar types (int, float, bool) a field's annotation admits, ``Optional`` unwrapped."""
    args = typing.get_args(annotation) or (annotation,)
    return frozenset(a for a in args if a in _JSON_NAMES)


def _uuid(value: str, field_name: str) -> str:
    try:
        return keys.parse_id(value)
    except Exception:
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise BadInput(
            f"{field_name} must be a UUID (an id this API returned), not {shown!r}",
            code="INVALID_ID",
            hint="Use the id from the response that created the item.",
            details={"field": field_name},
        ) from None


class CreateScenesRequest(_Request):
    idea: str = Field(..., description=f"What the video is about. {NOT_BLANK}")
    character_description: str = Field(..., description=NOT_BLANK)
    character_characteristics: str | None = None
    number_of_scenes: int | None = Field(None, ge=1, le=32)
    video_type: str | None = None
    video_characteristics: str | None = None
    camera_angle: str | None = None
    project_id: str | None = Field(None, max_length=200)
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD

    blank_check = field_validator("idea", "character_description")(not_blank)


class GenerateCharacterReferenceRequest(_Request):
    character_description: str = Field(..., description=NOT_BLANK)
    num_images: int = Field(4, ge=1, le=4)
    aspect_ratio: str | None = Field(None, pattern=r"^\d{1,2}:\d{1,2}$")
    safety_filter_level: str | None = None
    person_generation: str | None = None
    output_format: str | None = Field(None, pattern=r"^(png|jpg|jpeg|webp)$")
    negative_prompt: str | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD

    blank_check = field_validator("character_description")(not_blank)


class GenerateVideoRequest(_Request):
    prompt: str = Field(..., description=NOT_BLANK)
    negative_prompt: str | None = None
    aspect_ratio: str | None = Field(None, pattern=r"^\d{1,2}:\d{1,2}$")
    duration: int | None = Field(None, ge=1, le=60)
    generate_audio: bool | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    character_reference_id: str | None = Field(None, description="An empty string means none")
    video_rules_template: str | None = None
    backend: str | None = Field(
        None, description="Provider to use: offline or replicate (default: configured)"
    )
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD

    blank_check = field_validator("prompt")(not_blank)

    @field_validator("character_reference_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None


class LipsyncRequest(_Request):
    video_url: str | None = None
    audio_url: str | None = None
    video_id: str | None = None
    audio_id: str | None = None
    start_time: float | None = Field(None, ge=0)
    end_time: float | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=1)
    occlusion_detection_enabled: bool | None = None
    active_speaker_detection: bool | None = None
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD

    @model_validator(mode="after")
    def _sources(self) -> LipsyncRequest:
        if not (self.video_id or self.video_url):
            raise InvalidField("video_id", "Give video_id (from generate_video) or video_url")
        if not (self.audio_id or self.audio_url):
            raise InvalidField("audio_id", "Give audio_id (from /api/audio/upload or /download) or audio_url")
        if self.start_time is not None and self.end_time is not None and self.end_time <= self.start_time:
            raise InvalidField(
                "end_time",
                f"end_time ({self.end_time:g}) must be greater than start_time ({self.start_time:g})",
                hint="Give the clip's end after its start, in seconds of the song.",
            )
        return self


class StitchVideosRequest(_Request):
    video_ids: list[str] = Field(..., max_length=64, description="Clips in order; at least one")
    audio_overlay_id: str | None = None
    audio_id: str | None = Field(
        None,
        description="Alias of audio_overlay_id (what the original frontend's re-stitch sends); "
        "used alone it also suppresses the clips' own audio unless suppress_video_audio is given",
    )
    suppress_video_audio: bool | None = Field(None, description="Mute the clips' own audio (default false)")
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD

    @field_validator("video_ids")
    @classmethod
    def _some_clips(cls, value: list[str]) -> list[str]:
        if not value:
            raise InvalidField("video_ids", "video_ids must list at least one video id")
        return value

    @model_validator(mode="after")
    def _audio_alias(self) -> StitchVideosRequest:
        alias_used = bool(self.audio_id) and not self.audio_overlay_id
        if self.audio_id and self.audio_overlay_id and self.audio_id != self.audio_overlay_id:
            raise InvalidField("audio_id", "audio_id and audio_overlay_id name different songs; give one")
        if alias_used:
            self.audio_overlay_id = self.audio_id
        if self.suppress_video_audio is None:
            # the first stitch of the original page sends suppress_video_audio=true with the song;
            # its re-stitch sends only audio_id and expects the same mix
            self.suppress_video_audio = alias_used
        return self


class AudioDownloadRequest(_Request):
    url: str = Field(..., max_length=2000, description=NOT_BLANK)
    audio_format: str = Field("mp3", pattern=r"^mp3$")
    audio_quality: str | None = None
    start_time: float | None = Field(None, ge=0)
    end_time: float | None = Field(None, gt=0)

    blank_check = field_validator("url")(not_blank)

    @model_validator(mode="after")
    def _range(self) -> AudioDownloadRequest:
        if self.start_time is not None and self.end_time is not None and self.end_time <= self.start_time:
            raise InvalidField(
                "end_time",
                f"end_time ({self.end_time:g}) must be greater than start_time ({self.start_time:g})",
            )
        return self
