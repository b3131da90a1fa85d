"""The embedded provider: real media with no keys and no network.

Scenes are composed deterministically from the filled template inputs,
character references are drawn with Pillow, videos are real H.264/AAC MP4s
rendered by ffmpeg, and "lipsync" muxes the song clip onto the video --
reported honestly as ``offline/mux``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from mvcore.media.ffmpeg import aspect_to_size
from mvcore.providers import offline_video
from mvcore.providers.base import Progress, ProviderResult, Scene, no_progress
from mvcore.providers.offline_art import draw_character, encode_image

_BEATS = (
    "opens on",
    "follows",
    "cuts to",
    "pushes in on",
    "circles around",
    "pulls back from",
    "tracks alongside",
    "lingers on",
)
_PLACES = (
    "a rooftop at dusk",
    "a crowded night market",
    "an empty train platform",
    "a sunlit kitchen",
    "a rain-soaked street",
    "a quiet beach at dawn",
    "a neon-lit arcade",
    "a forest clearing",
)
_ACTIONS = (
    "singing the first line straight to camera",
    "dancing half-ironically",
    "laughing at a private joke",
    "walking against the crowd",
    "staring into the distance, then grinning",
    "performing the chorus with full drama",
    "pretending not to notice the camera",
    "spinning with arms wide open",
)


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class OfflineProvider:
    name = "offline"

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self.long_side = int(getattr(settings, "offline_long_side", 1280))
        self.fps = int(getattr(settings, "offline_fps", 24))
        self.timeout = float(getattr(settings, "media_timeout_s", 600.0))
        # Simulated model latency (MVCORE_OFFLINE_LATENCY) and an append-only log of every call
        # (MVCORE_OFFLINE_CALL_LOG): what tests of the project pipeline count "paid" calls with.
        self.latency = float(getattr(settings, "offline_latency_s", 0.0) or 0.0)
        self.call_log = getattr(settings, "offline_call_log", None)

    async def _called(self, call: str, **info: Any) -> None:
        """Log the call (one line, one ``write`` on an O_APPEND file: safe across processes), then wait."""
        if self.call_log:
            line = json.dumps({"call": call, "pid": os.getpid(), "t": time.time(), **info}) + "\n"
            fd = os.open(str(self.call_log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        if self.latency:
            await asyncio.sleep(self.latency)

    async def generate_scenes(
        self,
        *,
        prompt: str,
        inputs: dict[str, Any],
        number_of_scenes: int,
        model: str,
        progress: Progress = no_progress,
    ) -> list[Scene]:
        await self._called("generate_scenes", prompt=prompt[:300])
        rng = _rng(prompt, number_of_scenes)
        character = inputs.get("character_description", "the character")
        traits = inputs.get("character_characteristics", "")
        style = inputs.get("video_characteristics", "")
        camera = inputs.get("camera_angle", "front")
        kind = inputs.get("video_type", "video")
        idea = inputs.get("idea", "")
        places = rng.sample(_PLACES, k=len(_PLACES))
        scenes = []
        for index in range(number_of_scenes):
            beat = _BEATS[index % len(_BEATS)]
            place = places[index % len(places)]
            action = _ACTIONS[rng.randrange(len(_ACTIONS))]
            description = (
                f"Scene {index + 1} of {number_of_scenes} of a {kind} about {idea}: "
                f"the camera ({camera} angle) {beat} {character}, {traits}, in {place}, {action}. "
                f"Style: {style}."
            )
            negative = (
                "blurry, distorted faces, extra limbs, text, captions, watermarks, logos, "
                f"a different-looking character than {character}"
            )
            scenes.append(Scene(description, negative))
            progress((index + 1) / number_of_scenes, "writing scenes")
        await asyncio.sleep(0)
        return scenes

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
        await self._called("generate_images", prompt=prompt[:300])
        width, height = aspect_to_size(str(params.get("aspect_ratio") or "1:1"), long_side=1024)
        fmt = str(params.get("output_format") or "png")
        out_dir.mkdir(parents=True, exist_ok=True)

        def render(index: int) -> Path:
            image = draw_character(prompt, width, height, seed=seed, variant=index)
            data, ext = encode_image(image, fmt)
            path = out_dir / f"{index}.{ext}"
            path.write_bytes(data)
            return path

        paths = []
        for index in range(num_images):
            paths.append(await asyncio.to_thread(render, index))
            progress((index + 1) / num_images, "drawing")
        return ProviderResult(paths, "offline/pillow")

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
        await self._called("generate_video", prompt=prompt[:300])
        await offline_video.render_clip(
            out_path,
            prompt=prompt,
            duration=float(params.get("duration") or 8),
            aspect_ratio=str(params.get("aspect_ratio") or "16:9"),
            fps=self.fps,
            long_side=self.long_side,
            with_audio=bool(params.get("generate_audio", True)),
            reference_image=reference_image,
            seed=seed,
            timeout=self.timeout,
            progress=progress,
        )
        return ProviderResult([out_path], "offline/ffmpeg")

    async def lipsync(
        self,
        *,
        video: Path,
        audio: Path,
        params: dict[str, Any],
        out_path: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        from mvcore.media.video import mux_audio

        await self._called("lipsync", video=str(video)[-300:])
        await mux_audio(video, audio, out_path, timeout=self.timeout)
        progress(1.0, "muxed")
        return ProviderResult([out_path], "offline/mux")
