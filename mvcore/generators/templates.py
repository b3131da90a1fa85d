"""Filling flavor templates; the only place prompts are built from config."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from mvcore import logs
from mvcore.config.validation import template_fields
from mvcore.errors import BadInput


def fill(template: str, values: Mapping[str, Any], *, name: str) -> str:
    """``str.format`` with a clear 400 when a request-supplied template is wrong."""
    try:
        used = template_fields(template)
    except ValueError as exc:
        raise BadInput(
            f"{name} is not a valid template: {exc}",
            hint="Write literal braces as {{ and }}.",
            details={"field": name},
        ) from None
    missing = sorted(used - set(values))
    if missing:
        raise BadInput(
            f"{name} uses unknown placeholder(s): {', '.join('{' + m + '}' for m in missing)}",
            alternatives=sorted(values),
            hint="Use only the listed placeholders.",
            details={"field": name},
        )
    text = string.Formatter().vformat(template, (), dict(values))
    logs.debug_event("prompt_filled", template=name, prompt=text)
    return text
