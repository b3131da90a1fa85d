"""Replicate's rules the fake server applies: Cancel-After durations and input validation (422)."""

from __future__ import annotations

import re
from typing import Any

from mvcore.config.model_checks import ModelEntry

__all__ = ["input_refusal", "parse_cancel_after"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_cancel_after(value: str) -> float | None:
    """Seconds of a Go-style duration (``1h30m``, ``90s``, ``500ms``); None when malformed."""
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def input_refusal(entry: ModelEntry, inp: dict[str, Any], *, reject_unknown: bool) -> dict[str, Any] | None:
    """Replicate's 422 problem body when ``entry``'s model would refuse ``inp``, else None."""
    problems = entry.check_input(inp, allow_unknown=not reject_unknown)
    if not problems:
        return None
    fields = []
    for problem in problems:
        if problem.value is None and problem.input not in inp:
            kind, text = "required", f"{problem.input} is required"
        elif not entry.accepts(problem.input):
            kind = "additional_property_not_allowed"
            text = f"Additional property {problem.input} is not allowed"
        elif problem.accepted_values is not None:
            values = ", ".join(str(v) for v in problem.accepted_values)
            kind, text = "enum", f"{problem.input} must be one of the following: {values}"
        else:
            kind, text = "invalid", f"{problem.input}: {problem.accepted or problem.message}"
        fields.append({"type": kind, "field": f"input.{problem.input}", "description": text})
    detail = "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
    return {"title": "Input validation failed", "detail": detail, "status": 422, "invalid_fields": fields}
