"""Turning ids and URLs from a request into local files.

Ids are parsed as UUIDs before they touch a path; our own URLs
(``/api/mv/get_video/{id}``, ``/api/audio/get/{id}``) are mapped back to ids;
other URLs are downloaded with a size cap and a deadline.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from mvcore.errors import BadInput, DeadlineExceeded, NotFound, PayloadTooLarge
from mvcore.generators.context import GenContext
from mvcore.storage import keys

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
    return await download(video_url, dest / "source_video.mp4", ctx.settings.max_upload_bytes), None


async def audio_from(
    ctx: GenContext, audio_id: str | None, audio_url: str | None, dest: Path
) -> tuple[Path, str | None]:
    if not audio_id and audio_url:
        audio_id = own_audio_id(audio_url)
    if audio_id:
        return await audio_file(ctx, audio_id, dest), audio_id
    assert audio_url is not None
    suffix = Path(httpx.URL(audio_url).path).suffix.lower() if _is_http(audio_url) else ""
    name = "source_audio" + (
        suffix if suffix in (".mp3", ".wav", ".m4a", ".ogg", ".flac", ".aac") else ".mp3"
    )
    return await download(audio_url, dest / name, ctx.settings.max_upload_bytes), None


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


async def download(url: str, target: Path, max_bytes: int, *, timeout: float = 120.0) -> Path:
    """Stream an http(s) URL to ``target`` with a size cap; clear 400s for everything else."""
    if not _is_http(url):
        raise BadInput(
            f"Unsupported URL {url[:200]!r}", hint="Give an http(s) URL or an id returned by this API."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    size = 0
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise BadInput(
                    f"Downloading {url[:200]!r} failed with HTTP {response.status_code}",
                    hint="Check that the URL is reachable from the server.",
                )
            with open(partial, "wb") as out:
                async for chunk in response.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"Download is larger than {max_bytes} bytes",
                            hint="Use a smaller file or raise MVCORE_MAX_UPLOAD_BYTES.",
                        )
                    out.write(chunk)
        partial.replace(target)
    except httpx.TimeoutException:
        raise DeadlineExceeded(f"Downloading {url[:200]!r} took too long") from None
    except httpx.HTTPError as exc:
        raise BadInput(
            f"Downloading {url[:200]!r} failed: {exc.__class__.__name__}",
            hint="Check that the URL is reachable from the server.",
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    return target
