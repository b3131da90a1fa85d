"""Audio endpoints: upload, download, get, info."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody

from mvcore.api import wire
from mvcore.api.deps import CtxDep, SettingsDep
from mvcore.api.media_response import serve_stored
from mvcore.errors import BadInput, NotFound, PayloadTooLarge
from mvcore.generators.audio_library import audio_info, download_audio, upload_audio
from mvcore.generators.requests import AudioDownloadRequest
from mvcore.storage import keys

AUDIO_HINT = "Use an audio_id returned by /api/audio/upload or /api/audio/download."


@dataclass
class AudioUpload:
    """The upload form: one file in the multipart field ``data``."""

    data: UploadFile


async def save_upload(upload: UploadFile, folder: Path, max_bytes: int) -> Path:
    """Stream ``upload`` into ``folder`` with a size cap (413 past MVCORE_MAX_UPLOAD_BYTES)."""
    target = folder / ("upload" + Path(upload.filename).suffix.lower()[:8])
    size = 0
    with open(target, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"Upload is larger than {max_bytes} bytes",
                    hint="Use a smaller file or raise MVCORE_MAX_UPLOAD_BYTES.",
                )
            out.write(chunk)
    await upload.close()
    return target


class AudioController(Controller):
    path = "/api/audio"
    tags = ["audio"]

    @post("/upload", status_code=200, summary="Upload a song (mp3/wav/m4a/ogg/flac), stored as mp3")
    async def upload(
        self,
        ctx: CtxDep,
        settings: SettingsDep,
        data: Annotated[AudioUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> wire.AudioRecord:
        # A form model, not ``MultipartBody[UploadFile]``: Litestar's single-file extraction raises
        # StopIteration (a 500) for a form without a file or with the field given twice; the model
        # answers those with a validation error naming the field.
        upload = data.data
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise BadInput("Send the audio as a multipart field named 'data' with a filename")
        with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
            target = await save_upload(upload, Path(tmp), settings.max_upload_bytes)
            return wire.typed(wire.AudioRecord, await upload_audio(ctx, target, upload.filename))

    @post("/download", status_code=200, summary="Download audio from a URL (YouTube needs the yt-dlp extra)")
    async def download(self, ctx: CtxDep, data: JSONBody[AudioDownloadRequest]) -> wire.AudioRecord:
        return wire.typed(wire.AudioRecord, await download_audio(ctx, data))

    @get("/get/{audio_id:str}", summary="The mp3 file (or its presigned URL in cloud mode)")
    async def get_audio(
        self,
        request: Request[Any, Any, Any],
        ctx: CtxDep,
        settings: SettingsDep,
        audio_id: FromPath[str],
        redirect: FromQuery[bool] = True,
    ) -> Any:
        aid = keys.parse_id(audio_id, "audio")
        return await serve_stored(
            request,
            ctx.media,
            keys.audio_key(aid),
            redirect=redirect,
            serve_from_cloud=settings.serve_from_cloud,
            missing=NotFound(f"Audio {audio_id!r} not found", hint=AUDIO_HINT),
            url_body={"audio_id": aid},
        )

    @get("/info/{audio_id:str}", summary="Metadata of a stored song")
    async def info(self, ctx: CtxDep, audio_id: FromPath[str]) -> wire.AudioInfo:
        return wire.typed(wire.AudioInfo, await audio_info(ctx, audio_id))
