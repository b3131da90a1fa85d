"""Ids and storage keys.

Every id that arrives from outside (a URL path, a request body) goes through
:func:`parse_id` before it is used to build a key, so nothing a caller sends
can reach the filesystem or the bucket except a canonical UUID.

Decision: a malformed id is answered like an unknown one -- :class:`NotFound`
(HTTP 404) -- because the wire contract is "404 for unknown ids", and a string
that is not a UUID cannot name anything we stored.  It carries its own code,
``INVALID_ID``, and a hint saying what an id looks like, so clients can tell
"typo" from "expired".

Keys (DESIGN.md section 9)::

    mv/jobs/{id}/video.mp4          video_key
    mv/jobs/{id}/metadata.json      video_metadata_key
    character_references/{id}.{ext} character_reference_key
    audio/{id}.mp3                  audio_key
    audio/{id}.json                 audio_metadata_key

:func:`check_key` is the generic guard both storage backends apply to every
key: relative, ``/``-separated, no empty / ``.`` / ``..`` segments, no
backslashes or control characters, at most 1024 bytes.
"""

from __future__ import annotations

import re
import uuid
from typing import NoReturn

from mvcore.errors import BadInput, NotFound

__all__ = [
    "ID_HINT",
    "MAX_KEY_BYTES",
    "audio_key",
    "audio_metadata_key",
    "character_reference_key",
    "check_key",
    "is_id",
    "parse_id",
    "video_key",
    "video_metadata_key",
]

MAX_KEY_BYTES = 1024
ID_HINT = "ids are UUIDs (like 3f2b8c1e-0d4a-4c4e-9b1a-2f6d8e7a9c10) as returned by the API that created them"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_HINTS = {
    "video": "ids are UUIDs as returned by generate_video, lipsync or stitch-videos",
    "audio": "ids are UUIDs as returned by /api/audio/upload or /api/audio/download",
    "character reference": "ids are UUIDs as returned by generate_character_reference",
    "job": "ids are UUIDs as returned by an ?async=true request",
}


def _shown(value: object) -> str:
    """A short, printable rendering of whatever the caller sent (no NULs, no megabyte echoes)."""
    text = value if isinstance(value, str) else repr(value)
    return text[:64] + "..." if len(text) > 64 else text


def is_id(value: object) -> bool:
    """True when ``value`` is a UUID string in canonical 8-4-4-4-12 form (any case) or a UUID."""
    return isinstance(value, uuid.UUID) or (isinstance(value, str) and _UUID.fullmatch(value) is not None)


def parse_id(value: object, what: str = "item", *, field: str | None = None) -> str:
    """Return the canonical (lower-case, hyphenated) form of the id ``value``.

    ``what`` names the kind of thing ("video", "audio", "character reference",
    "job") and is used in the message: ``Video 'abc' not found``.  Anything that
    is not a UUID raises :class:`NotFound` with code ``INVALID_ID`` -- before
    the value is used for anything else.  ``field`` names the request field or path parameter
    the value came from (``details.field``), so the caller knows what to fix.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    shown = _shown(value)
    raise NotFound(
        f"{what[:1].upper()}{what[1:]} {shown!r} not found",
        code="INVALID_ID",
        hint=_HINTS.get(what, ID_HINT),
        details={"id": shown, "kind": what, "reason": "not a UUID", **({"field": field} if field else {})},
    )


def check_key(key: object) -> str:
    """Return ``key`` if it is a safe relative storage key, else raise :class:`BadInput` (``INVALID_KEY``)."""
    if not isinstance(key, str) or not key:
        _refuse(key, "it is empty or not a string")
    assert isinstance(key, str)
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        _refuse(key, f"it is longer than {MAX_KEY_BYTES} bytes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        _refuse(key, "it contains control characters")
    if "\\" in key:
        _refuse(key, "it contains a backslash")
    if key.startswith("/"):
        _refuse(key, "it is absolute")
    if any(part in ("", ".", "..") for part in key.split("/")):
        _refuse(key, "it has an empty, '.' or '..' segment")
    return key


def _refuse(key: object, problem: str) -> NoReturn:
    raise BadInput(
        f"Storage key {_shown(key)!r} refused: {problem}",
        code="INVALID_KEY",
        hint="Keys are relative paths like 'mv/jobs/<uuid>/video.mp4'.",
    )


def video_key(video_id: str | uuid.UUID) -> str:
    return f"mv/jobs/{parse_id(video_id, 'video')}/video.mp4"


def video_metadata_key(video_id: str | uuid.UUID) -> str:
    return f"mv/jobs/{parse_id(video_id, 'video')}/metadata.json"


def character_reference_key(image_id: str | uuid.UUID, ext: str) -> str:
    ext = ext.lstrip(".").lower()
    if not _EXT.fullmatch(ext):
        raise BadInput(
            f"Image extension {_shown(ext)!r} refused",
            code="INVALID_KEY",
            hint="Use a plain extension such as png, jpg or webp.",
        )
    return f"character_references/{parse_id(image_id, 'character reference')}.{ext}"


def audio_key(audio_id: str | uuid.UUID) -> str:
    return f"audio/{parse_id(audio_id, 'audio')}.mp3"


def audio_metadata_key(audio_id: str | uuid.UUID) -> str:
    return f"audio/{parse_id(audio_id, 'audio')}.json"
