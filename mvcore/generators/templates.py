"""Filling flavor templates; the only place prompts are built from config.

Templates are data (:mod:`mvcore.config.templates`): the same parser that validated the flavor file
renders here, so a request-supplied template (``video_rules_template``) can only name allowed
placeholders, and the filled text is bounded by ``MVCORE_MAX_PROMPT_CHARS`` before it is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mvcore import logs
from mvcore.config import templates
from mvcore.errors import BadInput

_HINT = "Use only {name} placeholders; write literal braces as {{ and }}."


def fill(template: str, values: Mapping[str, Any], *, name: str, max_chars: int) -> str:
    """The filled template, or a 400 naming ``name`` (the field or flavor key the template is)."""
    try:
        parsed = templates.parse(template)
    except templates.TemplateError as exc:
        raise BadInput(
            f"{name} is not a valid template: {exc}", hint=_HINT, details={"field": name}
        ) from None
    missing = sorted(parsed.names - set(values))
    if missing:
        raise BadInput(
            f"{name} uses unknown placeholder(s): {', '.join('{' + m + '}' for m in missing)}",
            alternatives=sorted(values),
            hint="Use only the listed placeholders.",
            details={"field": name},
        )
    try:
        text = parsed.render(values, max_chars=max_chars)
    except templates.TemplateTooLong as exc:
        raise BadInput(
            f"{name}: {exc}",
            hint="Send shorter values, or raise MVCORE_MAX_PROMPT_CHARS on the server.",
            details={"field": name, "limit": "MVCORE_MAX_PROMPT_CHARS", "max_chars": max_chars},
        ) from None
    logs.debug_event("prompt_filled", template=name, prompt=text)
    return text
