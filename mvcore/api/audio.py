"""Audio endpoints: upload, download, get, info."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, FromQuery, JSONBody

from mvcore.api import wire
from mvcore.api.deps import CtxDep, SettingsDep
from mvcore.api.media_response import serve_stored
from mvcore.errors import BadInput, NotFound, PayloadTooLarge
from mvcore.generators import audio_library
from mvcore.generators.requests import AudioDownloadRequest
from mvcore.storage import keys

AUDIO_HINT = "Use an audio_id returned by /api/audio/upload or /api/audio/download."


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class AudioUpload:
    """The upload form: one file in the multipart field ``file`` (what curl users send) or ``data``."""

    file: UploadFile | None = None
    data: UploadFile | None = None


def the_upload(form: AudioUpload) -> UploadFile:
    """The one uploaded file of the form; 400 naming the field otherwise."""
    given = [u for u in (form.file, form.data) if u is not None]
    if len(given) != 1 or not isinstance(given[0], UploadFile) or not given[0].filename:
        problem = "two files" if len(given) > 1 else "no file with a filename"
        raise BadInput(
            f"The upload form has {problem}",
            hint="Send one multipart field named 'file' (or 'data'), e.g. curl -F file=@song.mp3",
            details={"field": "file"},
        )
    return given[0]


def local_name(filename: str) -> str:
    """The user's file name, made safe for the scratch dir: errors then name the user's file."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).strip("._ ")[:120]
    return name or "upload" + Path(filename).suffix.lower()[:8]


async def save_upload(upload: UploadFile, folder: Path, max_bytes: int) -> Path:
    """Stream ``upload`` into ``folder`` with a size cap (413 past MVCORE_MAX_UPLOAD_BYTES)."""
    target = folder / local_name(upload.filename)
    size = 0
    with open(target, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"{target.name} is larger than {max_bytes} bytes",
                    hint="Use a smaller file or raise MVCORE_MAX_UPLOAD_BYTES.",
                    details={"field": "file"},
                )
            out.write(chunk)
    await upload.close()
    return target


class AudioController(Controller):
    path = "/api/audio"
    tags = ["audio"]

    @post("/upload", status_code=200, summary="Upload a song (mp3/wav/m4a/ogg/flac), stored as mp3")
    async def upload_audio(
        self,
        ctx: CtxDep,
        settings: SettingsDep,
        data: Annotated[AudioUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> wire.AudioRecord:
        # A form model, not ``MultipartBody[UploadFile]``: Litestar's single-file extraction raises
        # StopIteration (a 500) for a form without a file or with the field given twice; the model
        # answers those with a validation error naming the field.
        upload = the_upload(data)
        with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
            target = await save_upload(upload, Path(tmp), settings.max_upload_bytes)
            record = await audio_library.upload_audio(ctx, target, upload.filename)
            return wire.typed(wire.AudioRecord, record)

    @post("/download", status_code=200, summary="Download audio from a URL (YouTube needs the yt-dlp extra)")
    async def download_audio(self, ctx: CtxDep, data: JSONBody[AudioDownloadRequest]) -> wire.AudioRecord:
        return wire.typed(wire.AudioRecord, await audio_library.download_audio(ctx, data))

    @get(
        "/get/{audio_id:str}",
        summary="The mp3 file (or its presigned URL in cloud mode)",
        responses={200: ResponseSpec(wire.CloudAudioLink, description="Cloud mode, redirect=false")},
    )
    async def get_audio(
        self,
        request: Request[Any, Any, Any],
        ctx: CtxDep,
        settings: SettingsDep,
        audio_id: FromPath[str],
        redirect: FromQuery[bool] = True,
    ) -> Any:
        aid = keys.parse_id(audio_id, "audio", field="audio_id")
        key = keys.audio_key(aid)

        def cloud_answer(url: str) -> wire.CloudAudioLink:
            return {
                "audio_id": aid,
                "audio_url": url,
                "storage_backend": "s3",
                "expires_in_seconds": settings.presigned_url_expiry,
                "cloud_path": key,
            }

        return await serve_stored(
            request,
            ctx.media,
            key,
            redirect=redirect,
            serve_from_cloud=settings.serve_from_cloud,
            missing=NotFound(f"Audio {audio_id!r} not found", hint=AUDIO_HINT, details={"field": "audio_id"}),
            cloud_answer=cloud_answer,
        )

    @get("/info/{audio_id:str}", summary="Metadata of a stored song (exists: false when unknown)")
    async def audio_info(self, ctx: CtxDep, audio_id: FromPath[str]) -> wire.AudioInfo:
        return wire.typed(wire.AudioInfo, await audio_library.audio_info(ctx, audio_id))
