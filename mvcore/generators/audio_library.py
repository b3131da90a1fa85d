"""The song library: uploads and downloads converted to mp3, with their metadata."""

from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path
from typing import Any

import httpx

from mvcore import logs
from mvcore.errors import BadInput, MvcoreError, NotFound, PayloadTooLarge
from mvcore.generators.common import new_id, now_iso, save_metadata, working_dir
from mvcore.generators.context import GenContext
from mvcore.generators.inputs import download
from mvcore.generators.requests import AudioDownloadRequest
from mvcore.media import audio, ffmpeg
from mvcore.storage import fetch, keys

UPLOAD_FORMATS = {"mp3", "wav", "m4a", "ogg", "flac", "aac", "mp4"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


async def add_audio_file(
    ctx: GenContext,
    source: Path,
    *,
    filename: str,
    title: str | None,
    source_url: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> dict[str, Any]:
    """Convert (and optionally clip) a local file to mp3 and store it with its metadata."""
    audio_id = new_id()
    with working_dir(ctx, audio_id) as work:
        return await _store_audio(ctx, audio_id, work, source, filename, title, source_url, start, end)


async def _store_audio(
    ctx: GenContext,
    audio_id: str,
    work: Path,
    source: Path,
    filename: str,
    title: str | None,
    source_url: str | None,
    start: float | None,
    end: float | None,
) -> dict[str, Any]:
    mp3 = work / "audio.mp3"
    timeout = ctx.settings.media_timeout_s
    await _check_duration(ctx, source, start, end)
    if start is not None or end is not None:
        await audio.clip_audio(source, mp3, start or 0.0, end, timeout=timeout)
        info = await ffmpeg.probe(mp3)
    else:
        info = await audio.convert_to_mp3(source, mp3, timeout=timeout)
    _check_stored_size(ctx, mp3)
    saved = await ctx.media.save(mp3, keys.audio_key(audio_id), "audio/mpeg")
    fmt = Path(filename).suffix.lstrip(".").lower() or "mp3"
    metadata = {
        "audio_id": audio_id,
        "audio_url": f"/api/audio/get/{audio_id}",
        "filename": Path(filename).name[:255],
        "format": fmt,
        "title": title or Path(filename).stem[:255],
        "duration": round(info.duration, 3),
        "file_size_bytes": mp3.stat().st_size,
        "source_url": source_url,
        "cloud_url": saved.cloud_url,
        "created_at": now_iso(),
    }
    if saved.warning:
        metadata["storage_warning"] = saved.warning
    await save_metadata(ctx, keys.audio_metadata_key(audio_id), metadata, saved)
    return metadata


async def _check_duration(ctx: GenContext, source: Path, start: float | None, end: float | None) -> None:
    """Refuse a song longer than MVCORE_MAX_AUDIO_SECONDS before converting it: a tiny FLAC of an
    hour of silence would otherwise become a 30 MB mp3 (and minutes of ffmpeg time)."""
    limit = ctx.settings.max_audio_seconds
    duration = await audio.audio_duration(source, timeout=min(60.0, ctx.settings.media_timeout_s))
    kept = (min(end, duration) if end is not None else duration) - (start or 0.0)
    if kept > limit:
        raise BadInput(
            f"The audio is {kept:.0f} s long, over the limit of {limit:g} s",
            hint="Upload a shorter song (or a start_time/end_time range), or raise "
            "MVCORE_MAX_AUDIO_SECONDS on the server.",
            details={"limit": "MVCORE_MAX_AUDIO_SECONDS", "max_seconds": limit, "duration": round(kept, 3)},
        )


def _check_stored_size(ctx: GenContext, mp3: Path) -> None:
    limit = ctx.settings.max_audio_stored_bytes
    size = mp3.stat().st_size
    if size > limit:
        raise PayloadTooLarge(
            f"The converted song is {size} bytes, over the limit of {limit} bytes",
            hint="Upload a shorter song, or raise MVCORE_MAX_AUDIO_STORED_BYTES on the server.",
            details={"limit": "MVCORE_MAX_AUDIO_STORED_BYTES", "max_bytes": limit, "size": size},
        )


async def upload_audio(ctx: GenContext, source: Path, filename: str) -> dict[str, Any]:
    ext = Path(filename).suffix.lstrip(".").lower()
    if ext not in UPLOAD_FORMATS:
        raise BadInput(
            f"{Path(filename).name[:120]}: unsupported audio format {ext or '(none)'!r}",
            alternatives=sorted(UPLOAD_FORMATS),
            hint="Upload an mp3, wav, m4a, ogg or flac file.",
            details={"field": "file", "filename": Path(filename).name[:120]},
        )
    return await add_audio_file(ctx, source, filename=filename, title=None)


YOUTUBE_HOSTS = ("youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be")


async def download_audio(ctx: GenContext, request: AudioDownloadRequest) -> dict[str, Any]:
    """A song from a URL: YouTube hosts (yt-dlp), or a host ``MVCORE_FETCH_ALLOW_HOSTS`` names."""
    url = request.url.strip()
    parsed = fetch.parse_url(url, "url")
    youtube = parsed.host.lower() in YOUTUBE_HOSTS
    if not youtube and not fetch.host_matches(ctx.settings.fetch_allow_hosts, parsed):
        raise BadInput(
            f"url: downloads come from YouTube only, not from {parsed.host[:100]!r}",
            hint="Give a YouTube URL, upload the file (/api/audio/upload), or list the host in "
            "MVCORE_FETCH_ALLOW_HOSTS on the server.",
            alternatives=YOUTUBE_HOSTS,
            details={"field": "url", "limit": "MVCORE_FETCH_ALLOW_HOSTS"},
        )
    with working_dir(ctx, new_id()) as work:
        if youtube:
            source, title = await _youtube(url, parsed, work, ctx)
        else:
            # The URL's last segment names the file; anything odd in it (``..``, ``:``) is dropped.
            name = _SAFE_NAME.sub("_", Path(parsed.path).name).strip("._")
            name = name[:100] or "download.mp3"
            source = await download(ctx, url, work / name, field_name="url")
            title = Path(name).stem
        try:
            return await add_audio_file(
                ctx,
                source,
                filename=source.name,
                title=title,
                source_url=logs.scrub_url(url),
                start=request.start_time,
                end=request.end_time,
            )
        except MvcoreError:
            raise
        except Exception as exc:
            raise BadInput(f"Downloaded file is not usable audio: {exc.__class__.__name__}") from None


async def _youtube(url: str, parsed: httpx.URL, work: Path, ctx: GenContext) -> tuple[Path, str]:
    """yt-dlp does its own connections: the YouTube host is checked to be public first, and env
    proxies are off unless MVCORE_FETCH_USE_ENV_PROXIES says otherwise."""
    if importlib.util.find_spec("yt_dlp") is None:
        raise MvcoreError(
            "YouTube downloads need the optional yt-dlp extra",
            hint="pip install 'mvcore[youtube]' on the server, or upload the audio file instead.",
            code="NOT_IMPLEMENTED",
            status_code=501,
        )
    policy = fetch.FetchPolicy.from_settings(ctx.settings)
    await policy.checked_address(parsed, "url")
    import yt_dlp

    options: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": str(work / "yt.%(ext)s"),
        "quiet": True,
        "noplaylist": True,
        "max_filesize": ctx.settings.max_upload_bytes,
        "socket_timeout": min(30.0, ctx.settings.fetch_timeout_s),
    }
    if not policy.use_env_proxies:
        options["proxy"] = ""  # yt-dlp: an empty proxy means a direct connection

    def run() -> tuple[Path, str]:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
        files = sorted(work.glob("yt.*"))
        if not files:
            raise BadInput("YouTube download produced no file")
        return files[0], str(info.get("title") or "youtube")

    try:
        async with asyncio.timeout(ctx.settings.media_timeout_s):
            return await asyncio.to_thread(run)
    except MvcoreError:
        raise
    except Exception as exc:
        logs.event("youtube_download_failed", error=repr(exc))
        raise BadInput(f"YouTube download failed: {str(exc)[:200]}") from None


async def audio_info(ctx: GenContext, audio_id: str) -> dict[str, Any]:
    """The song's record with ``exists: true``; ``{audio_id, exists: false}`` for an unknown id.

    The original answered unknown ids with 200 and ``exists: false`` (clients branch on it); an
    id that is not a UUID is still a 404 INVALID_ID, before it touches storage.
    """
    aid = keys.parse_id(audio_id, "audio", field="audio_id")
    try:
        record = await ctx.media.load_json(keys.audio_metadata_key(aid))
    except NotFound:
        return {"audio_id": aid, "exists": False}
    return {**record, "exists": True}
