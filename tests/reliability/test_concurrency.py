"""Many clients at once against a live server: every result stored, none mixed up with another's.

Each request carries something of its own -- a song of its own pitch, an idea of its own words, a
clip of its own length -- and every answer is checked for exactly that, not only for a 200.
"""

from __future__ import annotations

import asyncio
import math
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.media.ffmpeg import ffmpeg_exe, probe
from tests.reliability import LiveServer, make_settings

UPLOADS = 16
RATE = 8000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path)
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with LiveServer(create_app(settings, store=store)) as live:
        yield live


def _tone(path: Path, freq: int, seconds: float = 1.5) -> bytes:
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={freq}:duration={seconds}",
            "-c:a",
            "pcm_s16le",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def _samples(data: bytes, suffix: str, scratch: Path) -> list[int]:
    source = scratch.with_suffix(suffix)
    source.write_bytes(data)
    pcm = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(source), "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2]))


def _power(samples: list[int], freq: float) -> float:
    """Goertzel: the energy of ``samples`` at ``freq``."""
    coeff = 2 * math.cos(2 * math.pi * freq / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s2 * s2 + s1 * s1 - coeff * s1 * s2


def _pitch(samples: list[int], candidates: list[int]) -> int:
    middle = samples[len(samples) // 4 : 3 * len(samples) // 4]
    return max(candidates, key=lambda f: _power(middle, f))


async def test_sixteen_uploads_at_once_are_each_stored_with_their_own_song(
    server: LiveServer, tmp_path: Path
) -> None:
    pitches = [300 + 70 * i for i in range(UPLOADS)]
    songs = {f: _tone(tmp_path / f"tone{f}.wav", f) for f in pitches}
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:

        async def upload(freq: int) -> tuple[int, dict[str, Any]]:
            files = {"data": (f"song-{freq}.wav", songs[freq], "audio/wav")}
            response = await client.post("/api/audio/upload", files=files)
            assert response.status_code == 200, response.text
            return freq, response.json()

        results = await asyncio.gather(*(upload(f) for f in pitches))
        assert len({body["audio_id"] for _, body in results}) == UPLOADS
        for freq, body in results:
            stored = await client.get(f"/api/audio/get/{body['audio_id']}")
            assert stored.status_code == 200
            heard = _pitch(_samples(stored.content, ".mp3", tmp_path / body["audio_id"]), pitches)
            assert heard == freq, f"upload of {freq} Hz came back as {heard} Hz"


async def test_concurrent_generator_calls_each_answer_for_their_own_request(
    server: LiveServer, tmp_path: Path
) -> None:
    ideas = [
        f"idea number {i}: a {word} learns to dance"
        for i, word in enumerate(["fox", "owl", "crab", "yak", "eel", "bat", "cow", "ant"])
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=180) as client:

        async def scenes(idea: str) -> tuple[str, dict[str, Any]]:
            body = {"idea": idea, "character_description": "a small robot with a red scarf"}
            response = await client.post("/api/mv/create_scenes", json=body)
            assert response.status_code == 200, response.text
            return idea, response.json()

        async def clip(seconds: int) -> tuple[int, dict[str, Any]]:
            response = await client.post(
                "/api/mv/generate_video", json={"prompt": f"a {seconds}-second sunrise", "duration": seconds}
            )
            assert response.status_code == 200, response.text
            return seconds, response.json()

        answered = await asyncio.gather(*(scenes(i) for i in ideas), *(clip(s) for s in (4, 6, 8, 4)))
        scene_answers = answered[: len(ideas)]
        clip_answers = answered[len(ideas) :]
        for idea, body in scene_answers:
            text = " ".join(s["description"] for s in body["scenes"])
            assert idea.split(":")[1].strip().split(" learns")[0] in text, (idea, text[:200])
            assert all(other.split(":")[0] + ":" not in text for other in ideas if other != idea)
        assert len({body["video_id"] for _, body in clip_answers}) == 4
        for seconds, body in clip_answers:
            stored = await client.get(f"/api/mv/get_video/{body['video_id']}")
            assert stored.status_code == 200
            path = tmp_path / f"{body['video_id']}.mp4"
            path.write_bytes(stored.content)
            info = await probe(path)
            assert abs(info.duration - seconds) < 0.2, (seconds, info.duration)
            assert body["metadata"]["full_prompt"].startswith(f"a {seconds}-second sunrise")
