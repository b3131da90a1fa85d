"""API-key auth as a pure ASGI middleware.

Off when ``API_KEY`` is empty.  The key comes from the ``X-API-Key`` header;
the ``api_key`` query parameter is accepted only where a header cannot be
sent (media GETs used as ``<video src>``, and the SSE stream used by
``EventSource``).  ``/health`` and the static UI shell are always open.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from litestar.types import ASGIApp, Receive, Scope, Send

from mvcore.api.media_links import MEDIA_PATH, MediaLinks
from mvcore.settings import Settings

OPEN_PATHS = re.compile(r"^/(health|favicon\.ico|create|quick-gen|flavors|projects)?/?$|^/static/")
# Media GETs (used as <video src>/<img src>/<audio src>, downloads) and the SSE stream only --
# not /get_video/{id}/info, which is JSON metadata a client fetches with the header.
QUERY_KEY_PATHS = re.compile(
    r"^/api/(mv/get_video/[^/]+|mv/get_character_reference/[^/]+|audio/get/[^/]+|mv/flavors/events)$"
    r"|^/api/mv/projects/[^/]+/(events|files/.+)$"
)


def auth_middleware_factory(settings: Settings, links: MediaLinks | None = None) -> Any:
    """``links``: media GETs with a valid signed ``token`` (see media_links) need no key."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket") or not settings.auth_enabled:
                await app(scope, receive, send)
                return
            path = scope.get("path", "")
            method = scope.get("method", "GET")
            if method == "OPTIONS" or OPEN_PATHS.match(path):
                await app(scope, receive, send)
                return
            presented = None
            for name, value in scope.get("headers", []):
                if name == b"x-api-key":
                    presented = value.decode("latin-1")
                    break
            if presented is None and method in ("GET", "HEAD") and QUERY_KEY_PATHS.match(path):
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                token = query.get("token")
                if token and links is not None and MEDIA_PATH.match(path):
                    if links.verify(path, token[0]):
                        await app(scope, receive, send)
                    else:
                        await _bad_link(send)
                    return
                values = query.get("api_key")
                presented = values[0] if values else None
            if settings.check_api_key(presented):
                await app(scope, receive, send)
                return
            await _unauthorized(send, missing=presented is None)

        return middleware

    return factory


async def send_problem(
    send: Any,
    status: int,
    code: str,
    message: str,
    hint: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """The project's error body, sent straight from ASGI middleware (before any routing)."""
    body = json.dumps({"detail": {"error": code, "message": message, "details": {"hint": hint}}}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Any, *, missing: bool) -> None:
    await send_problem(
        send,
        401,
        "UNAUTHORIZED",
        "Missing API key" if missing else "Invalid API key",
        "Send the key in the X-API-Key header (api_key query works on media GETs).",
        [(b"www-authenticate", b'ApiKey header="X-API-Key"')],
    )


async def _bad_link(send: Any) -> None:
    await send_problem(
        send,
        401,
        "UNAUTHORIZED",
        "Media link expired or not valid for this object",
        "Fetch the URL again (e.g. from .../info) for a fresh link, or send X-API-Key.",
        [(b"www-authenticate", b'ApiKey header="X-API-Key"')],
    )


def json_limit_middleware_factory(max_json_bytes: int, max_depth: int = 64) -> Any:
    """Request bodies other than multipart uploads are JSON, at most ``max_json_bytes`` (413).

    Litestar decodes a JSON body whatever its Content-Type says, so the cap is applied to every
    body that is not ``multipart/*`` (uploads have their own cap, MVCORE_MAX_UPLOAD_BYTES); a
    body declared as something else than JSON is refused with 415 -- ``multipart/*`` too, unless the
    route takes a form (the upload), so a 40 MB form posted to a JSON endpoint is refused before a
    byte of it is read; the bytes are counted as they arrive, so a chunked body (no Content-Length)
    cannot slip past the cap either; and a body nested deeper than ``max_depth`` is a 400 before
    the JSON decoder (which recurses, and raised RecursionError at ~1,000 levels) sees it.
    """

    def factory(app: ASGIApp) -> ASGIApp:
        async def too_large(send: Any) -> None:
            await send_problem(
                send,
                413,
                "PAYLOAD_TOO_LARGE",
                f"JSON body over {max_json_bytes} bytes",
                "Send a smaller body (MVCORE_MAX_JSON_BYTES).",
            )

        async def middleware(scope: Scope, receive: Receive, send: Any) -> None:
            if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
                await app(scope, receive, send)
                return
            headers = dict(scope.get("headers", []))
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype.startswith(b"multipart/") and _takes_a_form(scope):
                await app(scope, receive, send)
                return
            if ctype and ctype != b"application/json" and not ctype.endswith(b"+json"):
                shown = ctype.decode("latin-1")[:100]
                await send_problem(
                    send,
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"Content-Type {shown!r} is not accepted here",
                    "Send a JSON body with Content-Type: application/json (uploads: multipart/form-data).",
                )
                return
            length = headers.get(b"content-length")
            if length and length.isdigit() and int(length) > max_json_bytes:
                await too_large(send)
                return
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                body += message.get("body", b"")
                if len(body) > max_json_bytes:
                    await too_large(send)
                    return
                if not message.get("more_body", False):
                    break
            if json_depth(body, max_depth) > max_depth:
                await send_problem(
                    send,
                    400,
                    "INVALID_INPUT",
                    f"JSON body nested deeper than {max_depth} levels",
                    "Send a flatter JSON object (limit: MVCORE_MAX_JSON_DEPTH).",
                )
                return
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            await app(scope, replay, send)

        return middleware

    return factory


def _takes_a_form(scope: Scope) -> bool:
    """Whether the matched route takes a form: ``data`` is multipart/urlencoded, or ``opt["takes_form"]``."""
    from litestar.enums import RequestEncodingType

    handler = scope.get("route_handler")
    if (getattr(handler, "opt", None) or {}).get("takes_form"):
        return True  # a handler that reads ``request.form()`` itself (project creation) says so
    try:
        data = handler.parsed_fn_signature.parameters.get("data")
    except AttributeError:
        return False
    media = getattr(getattr(data, "kwarg_definition", None), "media_type", None)
    return media in (RequestEncodingType.MULTI_PART, RequestEncodingType.URL_ENCODED)


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(body: bytes | bytearray, stop_at: int) -> int:
    """Nesting depth of the arrays/objects in a JSON text (strings skipped), counted up to
    ``stop_at + 1``: a linear scan over brackets only, so 1 MiB of ``[`` costs microseconds."""
    if b"[" not in body and b"{" not in body:
        return 0
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    break
        else:
            depth -= 1
    return deepest
