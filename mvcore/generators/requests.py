"""Request models of the generator endpoints (the original system's fields)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FLAVOR_FIELD = Field(None, description="Config flavor to use (defaults to 'default')", max_length=200)
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
    model_config = ConfigDict(extra="ignore", str_max_length=20_000)


class CreateScenesRequest(_Request):
    idea: str = Field(..., min_length=1, description="What the video is about")
    character_description: str = Field(..., min_length=1)
    character_characteristics: str | None = None
    number_of_scenes: int | None = Field(None, ge=1, le=32)
    video_type: str | None = None
    video_characteristics: str | None = None
    camera_angle: str | None = None
    project_id: str | None = Field(None, max_length=200)
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD


class GenerateCharacterReferenceRequest(_Request):
    character_description: str = Field(..., min_length=1)
    num_images: int = Field(4, ge=1, le=4)
    aspect_ratio: str | None = Field(None, pattern=r"^\d{1,2}:\d{1,2}$")
    safety_filter_level: str | None = None
    person_generation: str | None = None
    output_format: str | None = Field(None, pattern=r"^(png|jpg|jpeg|webp)$")
    negative_prompt: str | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD


class GenerateVideoRequest(_Request):
    prompt: str = Field(..., min_length=1)
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

    @field_validator("character_reference_id")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
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
            raise ValueError("give video_id (from generate_video) or video_url")
        if not (self.audio_id or self.audio_url):
            raise ValueError("give audio_id (from /api/audio/upload or /download) or audio_url")
        if self.start_time is not None and self.end_time is not None and self.end_time <= self.start_time:
            raise ValueError("end_time must be greater than start_time")
        return self


class StitchVideosRequest(_Request):
    video_ids: list[str] = Field(..., min_length=1, max_length=64)
    audio_overlay_id: str | None = None
    suppress_video_audio: bool = False
    config_flavor: str | None = FLAVOR_FIELD
    config_overrides: ConfigOverrides = OVERRIDES_FIELD


class AudioDownloadRequest(_Request):
    url: str = Field(..., min_length=1, max_length=2000)
    audio_format: str = Field("mp3", pattern=r"^mp3$")
    audio_quality: str | None = None
    start_time: float | None = Field(None, ge=0)
    end_time: float | None = Field(None, gt=0)
