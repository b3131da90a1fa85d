"""Small pieces every generator shares: timing, ids, metadata, storing results."""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.storage import keys


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


async def store_video(
    ctx: GenContext, video_id: str, local: Path, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Save a finished video under ``mv/jobs/{id}/`` and fill the URL fields (v3.1 rules)."""
    saved = await ctx.media.save(local, keys.video_key(video_id), "video/mp4")
    metadata["file_size_bytes"] = saved.local_path.stat().st_size if saved.local_path else None
    local_url = f"/api/mv/get_video/{video_id}"
    metadata["local_video_url"] = local_url
    if saved.cloud_url:
        metadata["cloud_urls"] = {"video": saved.cloud_url}
        metadata["cloud_url"] = saved.cloud_url
    if saved.warning:
        metadata["storage_warning"] = saved.warning
    metadata["video_id"] = video_id
    await ctx.media.save_json(keys.video_metadata_key(video_id), metadata)
    # The result is stored: the working copy in this id's scratch dir is no longer needed
    # (without this every generated video stayed on disk twice).
    work = ctx.scratch / video_id
    if Path(local).resolve().is_relative_to(work.resolve()):
        remove_scratch(work)
    return {
        "video_id": video_id,
        "video_path": keys.video_key(video_id),
        "video_url": saved.cloud_url or local_url,
        "metadata": metadata,
        **({"storage_warning": saved.warning} if saved.warning else {}),
    }


def scratch_dir(ctx: GenContext, job_id: str) -> Path:
    """``<scratch>/<job_id>/``: a generator's working directory (see :func:`remove_scratch`)."""
    path = ctx.scratch / job_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_scratch(path: Path) -> None:
    """Delete a working directory made by :func:`scratch_dir` (missing or half-deleted is fine)."""
    shutil.rmtree(path, ignore_errors=True)
