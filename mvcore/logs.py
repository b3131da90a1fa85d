"""Structured log events.

Events are plain ``logging`` records whose message is ``event k=v ...`` and
whose ``extra`` carries the fields, so they read well in a terminal and can
be parsed by machines.  With ``MV_DEBUG_MODE=true`` the debug events the
original system had (flavor discovered/selected/loaded, fallback, filled
prompts) are promoted to INFO.  Every value passes the secret scrubber.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("mvcore")

#: The one line format of the process: mvcore's events, Litestar's and uvicorn's records alike.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_state = threading.local()
_debug_mode = False
_secrets: tuple[str, ...] = ()


def configure(*, debug_mode: bool, secrets: Iterable[str] = ()) -> None:
    global _debug_mode, _secrets
    _debug_mode = debug_mode
    _secrets = tuple(s for s in secrets if s)


def debug_enabled() -> bool:
    return _debug_mode


#: Query parameters that carry credentials (``?api_key=``, ``&token=``, presigned-URL signatures).
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|refresh[_-]?token|id[_-]?token|auth"
    r"|authorization|password|passwd|pwd|secret|client[_-]?secret|sig|signature|session[_-]?token"
    r"|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)=)"
    r"([^&#;\s\"'<>]+)"
)


def scrub(text: str) -> str:
    """``text`` without configured secrets and without credentials in URL query strings."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\1***", text)
    return text


def scrub_url(url: str | None) -> str | None:
    """A caller's URL as we store and answer it: credentials in its query replaced by ``***``.

    The fetch itself uses the URL as given; metadata, responses and job results keep this form."""
    return None if url is None else scrub(url)


def scrub_value(value: Any) -> Any:
    """``value`` with every secret replaced in its strings (mappings and lists walked): error
    details echo what callers sent, and a caller may send a secret (a key as a flavor name...)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_value(k): scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        text = value if value.isidentifier() else json.dumps(value)
    else:
        try:
            text = json.dumps(value, default=str, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    return scrub(text)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a structured event (always emitted at ``level``)."""
    if not logger.isEnabledFor(level):
        return
    message = name + "".join(f" {k}={_fmt(v)}" for k, v in fields.items())
    logger.log(level, message, extra={"event": name, "fields": {k: scrub(str(v)) for k, v in fields.items()}})


def debug_event(name: str, **fields: Any) -> None:
    """A debug-mode event: INFO when MV_DEBUG_MODE is on, DEBUG otherwise."""
    event(name, logging.INFO if _debug_mode else logging.DEBUG, **fields)


class ScrubbingFilter(logging.Filter):
    """Attach to handlers so that no secret reaches a log line, whoever logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # configured secrets and credentials in URL query strings alike
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            # a traceback's text can carry a secret too (an exception message, a URL): format it
            # now, scrubbed; formatters use ``exc_text`` when it is set
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


def litestar_logging_config() -> Any:
    """Litestar's default logging setup, with :class:`ScrubbingFilter` on each of its handlers.

    Building a Litestar app configures the root logger and *replaces* the handlers already there
    (the scrubbing one :func:`setup_logging` installs included), so without this the scrubber
    silently disappeared as soon as the app existed.
    """
    from litestar.logging.config import LoggingConfig, default_handlers

    handlers = {name: {**spec, "filters": ["mvcore_scrub"]} for name, spec in default_handlers.items()}
    return LoggingConfig(
        filters={"mvcore_scrub": {"()": ScrubbingFilter}},
        handlers=handlers,
        formatters={"standard": {"format": LOG_FORMAT}},
    )


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's loggers with mvcore's format and scrubber, instead of uvicorn's own colours and layout."""
    stream = {
        "class": "logging.StreamHandler",
        "formatter": "mvcore",
        "filters": ["mvcore_scrub"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mvcore_scrub": {"()": ScrubbingFilter}},
        "formatters": {"mvcore": {"format": LOG_FORMAT}},
        "handlers": {"default": stream},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def setup_logging(level: int = logging.INFO) -> None:
    """Root handler for the CLI and server (idempotent)."""
    root = logging.getLogger()
    if not any(getattr(h, "_mvcore", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(ScrubbingFilter())
        handler._mvcore = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        # uvicorn's access log has handlers of its own (MVCORE_ACCESS_LOG): scrub at its logger
        logging.getLogger("uvicorn.access").addFilter(ScrubbingFilter())
    root.setLevel(level)
