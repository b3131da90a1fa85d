"""Serving stored media with HTTP range support.

Browsers seek in ``<video>``/``<audio>`` with ``Range`` requests and Safari
will not play MP4 without 206 answers, so media GETs honour a single
``bytes=`` range (other units and multi-ranges are ignored: 200) and always advertise
``Accept-Ranges``.  The file is
streamed in chunks, never read whole into memory.
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from litestar import Request, Response
from litestar.response import Redirect, Stream

from mvcore.storage.media_store import MediaStore

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def media_response(
    request: Request[Any, Any, Any], path: Path, media_type: str, filename: str
) -> Response[Any]:
    size = os.stat(path).st_size
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, max-age=3600",
    }
    start, end = 0, size - 1
    status = 200
    wanted = request.headers.get("range")
    if wanted and _single_bytes_range(wanted):
        parsed = _parse_range(wanted.strip(), size)
        if parsed is None:
            return Response(
                b"",
                status_code=416,
                headers={**headers, "Content-Range": f"bytes */{size}"},
                media_type=media_type,
            )
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    headers["Content-Type"] = media_type  # handlers are typed Any; don't let JSON be assumed
    return Stream(_chunks(path, start, end), status_code=status, headers=headers, media_type=media_type)


def _single_bytes_range(header: str) -> bool:
    """Whether ``Range`` asks for one ``bytes`` range.  Anything else -- another unit, several
    ranges (we do not send multipart/byteranges) -- is ignored and the whole file answered with
    200, as RFC 9110 §14.2 allows; only an unsatisfiable bytes range is a 416."""
    unit, sep, spec = header.strip().partition("=")
    return bool(sep) and unit.strip().lower() == "bytes" and "," not in spec


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = _RANGE.match(header)
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            return None
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


async def _chunks(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    remaining = end - start + 1
    async with await anyio.open_file(path, "rb") as handle:
        await handle.seek(start)
        while remaining > 0:
            data = await handle.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


async def serve_stored(
    request: Request[Any, Any, Any],
    media: MediaStore,
    key: str,
    *,
    redirect: bool,
    serve_from_cloud: bool,
    missing: Exception,
    cloud_answer: Callable[[str], Mapping[str, Any]],
) -> Any:
    """One stored object: a 302 / JSON (``cloud_answer(presigned_url)``) in cloud mode, else the bytes."""
    if serve_from_cloud and media.cloud is not None:
        url = await media.url_for(key)
        if url:
            if redirect:
                return Redirect(url, status_code=302)
            return dict(cloud_answer(url))
    if not await media.exists(key):
        raise missing
    path = await media.fetch(key, None)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return media_response(request, path, media_type, Path(key).name)
