"""Small pieces every generator shares: timing, ids, metadata, storing results."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.storage import keys
from mvcore.storage.media_store import SaveResult


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Timer:
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def base_metadata(bundle: ConfigBundle, timer: Timer, **extra: Any) -> dict[str, Any]:
    return {
        "generation_timestamp": now_iso(),
        "processing_time_seconds": timer.seconds,
        **extra,
        "config": dict(bundle.meta),
    }


async def save_metadata(ctx: GenContext, key: str, metadata: dict[str, Any], media: SaveResult) -> None:
    """Store the JSON metadata of a media file that was just saved (``media``).

    When the media's upload failed, the metadata stays local too: no second wait for the same
    unreachable store (retries and all), and never metadata in the bucket without its file.
    """
    if ctx.media.cloud is not None and media.local_path is not None and not media.cloud_url:
        text = json.dumps(metadata, indent=2, ensure_ascii=False, default=str)
        await ctx.media.local.put_bytes(key, text.encode("utf-8"), "application/json")
    else:
        await ctx.media.save_json(key, metadata)


async def store_video(
    ctx: GenContext, video_id: str, local: Path, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Save a finished video under ``mv/jobs/{id}/`` and fill the URL fields (v3.1 rules)."""
    saved = await ctx.media.save(local, keys.video_key(video_id), "video/mp4")
    metadata["file_size_bytes"] = Path(local).stat().st_size
    local_url = f"/api/mv/get_video/{video_id}"
    metadata["local_video_url"] = local_url
    if saved.cloud_url:
        metadata["cloud_urls"] = {"video": saved.cloud_url}
        metadata["cloud_url"] = saved.cloud_url
    if saved.warning:
        metadata["storage_warning"] = saved.warning
    metadata["video_id"] = video_id
    await save_metadata(ctx, keys.video_metadata_key(video_id), metadata, saved)
    return {
        "video_id": video_id,
        "video_path": keys.video_key(video_id),
        "video_url": saved.cloud_url or local_url,
        "metadata": metadata,
        **({"storage_warning": saved.warning} if saved.warning else {}),
    }


@contextmanager
def working_dir(ctx: GenContext, job_id: str) -> Iterator[Path]:
    """``<scratch>/<job_id>/`` for one generator call, deleted when the call ends.

    Results are copied into storage before the block ends, so nothing a caller needs lives here
    afterwards; without this every generated file stayed on disk twice.
    """
    path = ctx.scratch / job_id
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
