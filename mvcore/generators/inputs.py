"""Turning ids and URLs from a request into local files.

Ids are parsed as UUIDs before they touch a path; our own URLs
(``/api/mv/get_video/{id}``, ``/api/audio/get/{id}``) are mapped back to ids;
other URLs are fetched under the fetch policy (public addresses only, size and time caps).
"""

from __future__ import annotations

import re
from pathlib import Path

from mvcore.errors import NotFound
from mvcore.generators.context import GenContext
from mvcore.storage import keys
from mvcore.storage.fetch import FetchPolicy, fetch_to_file, parse_url

_OWN_VIDEO = re.compile(r"/api/mv/get_video/([0-9a-fA-F-]{36})(?:$|[/?#])")
_OWN_AUDIO = re.compile(r"/api/audio/get/([0-9a-fA-F-]{36})(?:$|[/?#])")


def own_audio_id(url: str | None) -> str | None:
    """The audio id in one of our own URLs (``/api/audio/get/{id}``), else None."""
    match = _OWN_AUDIO.search(url or "")
    return match.group(1) if match else None


async def _stored(
    ctx: GenContext, key: str, what: str, given: str, hint: str, dest: Path, field: str
) -> Path:
    if not await ctx.media.exists(key):
        details = {f"{what.lower()}_id": given, "field": field}
        raise NotFound(f"{what} {given!r} not found", hint=hint, details=details)
    return await ctx.media.fetch(key, dest)


async def video_file(ctx: GenContext, video_id: str, dest: Path, *, field: str = "video_id") -> Path:
    key = keys.video_key(keys.parse_id(video_id, "video", field=field))
    hint = "Use a video_id returned by generate_video."
    return await _stored(ctx, key, "Video", video_id, hint, dest, field)


async def audio_file(ctx: GenContext, audio_id: str, dest: Path, *, field: str = "audio_id") -> Path:
    key = keys.audio_key(keys.parse_id(audio_id, "audio", field=field))
    hint = "Use an audio_id returned by /api/audio/upload or /api/audio/download."
    return await _stored(ctx, key, "Audio", audio_id, hint, dest, field)


async def video_from(
    ctx: GenContext, video_id: str | None, video_url: str | None, dest: Path
) -> tuple[Path, str | None]:
    """(local file, video id when known); ids win over URLs."""
    if not video_id and video_url:
        match = _OWN_VIDEO.search(video_url)
        if match:
            video_id = match.group(1)
    if video_id:
        return await video_file(ctx, video_id, dest), video_id
    assert video_url is not None
    return await download(ctx, video_url, dest / "source_video.mp4", field_name="video_url"), None


async def audio_from(
    ctx: GenContext, audio_id: str | None, audio_url: str | None, dest: Path
) -> tuple[Path, str | None]:
    if not audio_id and audio_url:
        audio_id = own_audio_id(audio_url)
    if audio_id:
        return await audio_file(ctx, audio_id, dest), audio_id
    assert audio_url is not None
    suffix = Path(parse_url(audio_url, "audio_url").path).suffix.lower()
    name = "source_audio" + (
        suffix if suffix in (".mp3", ".wav", ".m4a", ".ogg", ".flac", ".aac") else ".mp3"
    )
    return await download(ctx, audio_url, dest / name, field_name="audio_url"), None


async def download(ctx: GenContext, url: str, target: Path, *, field_name: str) -> Path:
    """Fetch ``url`` into ``target`` under the server's fetch policy (:mod:`mvcore.storage.fetch`)."""
    return await fetch_to_file(url, target, FetchPolicy.from_settings(ctx.settings), field_name=field_name)
