"""Signed, short-lived media links: the URLs we hand out play as given when auth is on.

``<video src>`` and ``<audio src>`` cannot send ``X-API-Key``, so with ``API_KEY`` set every
media URL in an answer gets ``?token=<expiry>.<signature>``: HMAC-SHA256 (stdlib ``hmac``) over
the exact path and the expiry, keyed with a server secret.  The auth middleware accepts a valid
token on that one path instead of the key; a token for one object opens no other, expires after
``MVCORE_MEDIA_TOKEN_TTL`` seconds, and the log scrubber removes ``token=`` values from every
log line.  (A JWT library would add a dependency for a two-field token; see design-decisions.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

from litestar import Response

from mvcore.settings import Settings

# The media GETs a token can open: exactly one object each (ids are canonical lower-case UUIDs),
# including a project's clips, song segments, product image and final video.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PROJECT_FILE = (
    r"(?:scenes/\d{3}/(?:video|lipsynced)\.mp4|scenes/\d{3}/audio\.mp3|final\.mp4|product\.(?:png|jpg|webp))"
)
MEDIA_PATH = re.compile(
    rf"^/api/(?:mv/get_video|mv/get_character_reference|audio/get)/{_UUID}$"
    rf"|^/api/mv/projects/{_UUID}/files/{PROJECT_FILE}$"
)
_LABEL = b"mvcore media token v1"


class MediaLinks:
    """Makes and checks media tokens; ``clock`` is injectable so expiry is testable."""

    def __init__(self, secret: bytes, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(secret, _LABEL, hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaLinks | None:
        """None when auth is off (URLs stay plain); the secret defaults to one derived from API_KEY."""
        if not settings.auth_enabled:
            return None
        source = settings.media_token_secret or settings.api_key
        assert source is not None
        return cls(source.get_secret_value().encode(), settings.media_token_ttl_s)

    def _signature(self, path: str, expiry: int) -> str:
        mac = hmac.new(self._key, f"{path}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def token(self, path: str, expiry: int | None = None) -> str:
        expiry = int(self.clock()) + self.ttl_s if expiry is None else expiry
        return f"{expiry}.{self._signature(path, expiry)}"

    def verify(self, path: str, token: str) -> bool:
        """True for an unexpired token made for exactly ``path``."""
        expiry_text, _, signature = token.partition(".")
        if not expiry_text.isdigit() or len(expiry_text) > 12 or not signature:
            return False
        expiry = int(expiry_text)
        if expiry < self.clock():
            return False
        return hmac.compare_digest(signature, self._signature(path, expiry))

    def sign(self, url: str) -> str:
        return f"{url}?token={self.token(url)}" if MEDIA_PATH.match(url) else url

    def sign_body(self, value: Any) -> Any:
        """A copy of ``value`` with every media path in it signed (stored records stay untouched)."""
        if isinstance(value, str):
            return self.sign(value)
        if isinstance(value, dict):
            return {k: self.sign_body(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sign_body(v) for v in value]
        return value


def sign_responses(links: MediaLinks) -> Callable[[Response[Any]], Any]:
    """An ``after_request`` hook: every JSON answer of every controller leaves with signed links.

    One place instead of one call per handler, so a controller added later (projects, editors)
    hands out playable URLs without knowing about tokens.
    """

    async def after_request(response: Response[Any]) -> Response[Any]:
        # static files and streams arrive as ASGI responses without ``content``: left as they are
        content = getattr(response, "content", None)
        if isinstance(content, dict | list):
            response.content = links.sign_body(content)
        return response

    return after_request
