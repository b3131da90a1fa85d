"""One small error hierarchy for the whole project.

Every error knows the HTTP status it maps to, a stable machine code (the
original system's codes where they existed), a human message, a hint that
says how to fix it, and -- where it applies -- the valid alternatives.  The
API turns any ``MvcoreError`` into ``{"detail": {"error", "message",
"details"}}`` without ever leaking a server path or a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from mvcore import logs


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Return the closest choice to ``word`` or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


class MvcoreError(Exception):
    """Root of every error mvcore raises on purpose."""

    status_code: int = 400
    code: str = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        alternatives: Iterable[str] | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})
        self.alternatives = sorted(alternatives) if alternatives is not None else None
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def to_detail(self) -> dict[str, Any]:
        """The wire shape used inside ``{"detail": ...}``."""
        details = dict(self.details)
        if self.hint:
            details.setdefault("hint", self.hint)
        if self.alternatives is not None:
            details.setdefault("valid", self.alternatives)
        return logs.scrub_value({"error": self.code, "message": self.message, "details": details})


class BadInput(MvcoreError):
    """A value the caller sent is not acceptable (HTTP 400)."""

    status_code = 400
    code = "INVALID_INPUT"


class SchemaViolation(MvcoreError):
    """A request or a flavor file does not match its schema (HTTP 422)."""

    status_code = 422
    code = "VALIDATION_ERROR"


class NotFound(MvcoreError):
    """An id or name that does not exist (HTTP 404)."""

    status_code = 404
    code = "NOT_FOUND"


class FlavorNotFound(NotFound):
    """Strict mode refused to fall back to ``default``."""

    code = "FLAVOR_NOT_FOUND"

    def __init__(self, name: str, available: Iterable[str]) -> None:
        names = sorted(available)
        guess = did_you_mean(name, names)
        hint = f"Did you mean {guess!r}? " if guess else ""
        hint += "Pick one of the available flavors, or omit config_flavor to use 'default'."
        super().__init__(
            f"Config flavor {name!r} does not exist",
            hint=hint,
            alternatives=names,
            details={"flavor": name, "did_you_mean": guess},
        )


class Unauthorized(MvcoreError):
    """Missing or wrong API key (HTTP 401)."""

    status_code = 401
    code = "UNAUTHORIZED"


class PayloadTooLarge(MvcoreError):
    """A body or upload over the configured cap (HTTP 413)."""

    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class ConfigError(MvcoreError):
    """A flavor file is unreadable or invalid; carries file:line errors."""

    status_code = 422
    code = "CONFIG_ERROR"


class PluginError(MvcoreError):
    """A plugin failed to load or a hook misbehaved."""

    status_code = 500
    code = "PLUGIN_ERROR"


class ProviderError(MvcoreError):
    """A generation backend failed; code is one of the original's codes."""

    status_code = 502
    code = "UNKNOWN_ERROR"


class MediaError(MvcoreError):
    """ffmpeg or an audio/video step failed."""

    status_code = 500
    code = "MEDIA_ERROR"


class StorageError(MvcoreError):
    """Local disk or the object store failed."""

    status_code = 507
    code = "STORAGE_ERROR"


class DeadlineExceeded(MvcoreError):
    """A step ran past its deadline (HTTP 504)."""

    status_code = 504
    code = "TIMEOUT"


# --- api: field values the original refused with 400 ValidationError ---------------------------
class InvalidField(BadInput):
    """A well-typed request field whose value is refused: blank text, an empty list, end <= start.

    The original answered these 400 ``ValidationError`` naming the field; type and shape errors
    stay 422.  Request-model validators raise it; it is not a ``ValueError``, so pydantic lets it
    through unchanged (documented pydantic behaviour) and the API answers 400 with
    ``details.field``.
    """

    code = "ValidationError"

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, details={"field": field})
        self.field = field
