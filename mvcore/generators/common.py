"""Small pieces every generator shares: timing, ids, metadata, storing results."""

from __future__ import annotations

import errno
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

from mvcore.errors import MediaError, StorageError
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
    afterwards; without this every generated file stayed on disk twice.  A disk that fills up while
    the call writes here (an ffmpeg step, a download, an image) is a 507 ``DISK_FULL``, and the
    directory goes with whatever partial file it holds.
    """
    path = ctx.scratch / job_id
    try:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise disk_full("the scratch space") from None
        raise
    except MediaError as exc:
        if _out_of_space(ctx.scratch, exc):
            raise disk_full("the scratch space") from None
        raise
    finally:
        shutil.rmtree(path, ignore_errors=True)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Below this much free space after a failed ffmpeg step, the failure was the disk filling up.
_NEARLY_FULL_BYTES = 4 * 1024 * 1024


def disk_full(where: str) -> StorageError:
    """The one 507 ``DISK_FULL`` answer (the same code LocalStorage gives when a save fills the disk)."""
    return StorageError(
        f"disk full while writing {where}",
        code="DISK_FULL",
        hint="Free space in MVCORE_DATA_DIR (or point it at a bigger disk) and retry.",
        details={"where": where},
    )


def _out_of_space(scratch: Path, exc: MediaError) -> bool:
    """ffmpeg reports ENOSPC among its encoder statistics (or not at all), and its partial output is
    already deleted when we see the error: look for the message, then at what space is left."""
    if "No space left on device" in f"{exc.message} {exc.details}":
        return True
    try:
        return shutil.disk_usage(scratch).free < _NEARLY_FULL_BYTES
    except OSError:
        return False
