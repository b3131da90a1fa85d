"""The provider protocol every generation backend implements.

Generators fill templates from the resolved flavor config, then hand plain
values to a provider; a provider never sees flavors, snapshots or HTTP.
Providers write their results to the local paths they are given (callers
store them afterwards), so every backend ends in the same place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mvcore.media.progress import Progress, no_progress

__all__ = ["Progress", "ProviderResult", "Scene", "no_progress"]


@dataclass(frozen=True)
class Scene:
    description: str
    negative_description: str

    def to_wire(self) -> dict[str, str]:
        return {"description": self.description, "negative_description": self.negative_description}


@dataclass(frozen=True)
class ProviderResult:
    """What a media-producing call made: files written and the model that made them."""

    paths: list[Path]
    model_used: str
    raw: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    name: str

    async def generate_scenes(
        self,
        *,
        prompt: str,
        inputs: dict[str, Any],
        number_of_scenes: int,
        model: str,
        progress: Progress = no_progress,
    ) -> list[Scene]:
        """``prompt`` is the filled flavor template; ``inputs`` the values it was filled with."""
        ...

    async def generate_images(
        self,
        *,
        prompt: str,
        negative_prompt: str | None,
        num_images: int,
        params: dict[str, Any],
        seed: int | None,
        out_dir: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        """params: model, aspect_ratio, safety_filter_level, person_generation, output_format."""
        ...

    async def generate_video(
        self,
        *,
        prompt: str,
        negative_prompt: str | None,
        params: dict[str, Any],
        reference_image: Path | None,
        seed: int | None,
        out_path: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        """params: model, aspect_ratio, duration, generate_audio, person_generation."""
        ...

    async def lipsync(
        self,
        *,
        video: Path,
        audio: Path,
        params: dict[str, Any],
        out_path: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        """params: model, temperature, occlusion_detection_enabled, active_speaker_detection."""
        ...
