"""``HEAD`` on pages and media: the ``GET`` answer's status and headers, without its body.

Litestar routes ``HEAD`` only to handlers that declare it, so a ``HEAD`` of a page or a media URL
(link checkers, download managers, ``curl -I``, some players probing size) was a 405.  Rather than
doubling every such route, this wraps the app's ASGI handler *outside* routing: a ``HEAD`` of a
path that is a page or a media GET is routed as ``GET``, the response start (status, headers --
``Content-Length`` included) is sent as is, and every body byte is dropped (RFC 9110 §9.3.2).
"""

from __future__ import annotations

import re
from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send

HEAD_PATHS = re.compile(
    r"^/(create|quick-gen|flavors)?/?$"
    r"|^/api/mv/get_video/[^/]+/?$"
    r"|^/api/mv/get_character_reference/[^/]+/?$"
    r"|^/api/audio/get/[^/]+/?$"
)


def head_as_get(app: ASGIApp) -> ASGIApp:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD" or not HEAD_PATHS.match(scope["path"]):
            await app(scope, receive, send)
            return
        finished = False

        async def without_body(message: Any) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app({**scope, "method": "GET"}, receive, without_body)  # type: ignore[arg-type]

    return handler
