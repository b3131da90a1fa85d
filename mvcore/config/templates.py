"""The template language of flavor prompts: ``{name}`` placeholders and ``{{``/``}}`` literal braces.

Nothing else: no attribute (``{a.b}``), index (``{a[0]}``), conversion (``{a!r}``) or format spec
(``{a:>9}``).  Templates come from flavor files and from requests, so they are data: ``str.format``
on them let a caller read Python internals (``{x.__class__.__mro__}``) or allocate gigabytes
(``{x:>100000000}``).  One parser serves flavor validation (errors with the template's line and
column) and rendering (which checks the rendered length against a cap before building the text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_RULES = "only {name} placeholders are allowed (no attribute, index, conversion or format spec)"


class TemplateError(ValueError):
    """A template that does not follow the language; ``line``/``column`` are 1-based in the template."""

    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(f"{message} (template line {line}, column {column})")
        self.reason = message
        self.line = line
        self.column = column


class TemplateTooLong(ValueError):
    """The rendered text would be longer than the cap; raised before the text is built."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"the filled template would be {length} characters, over the limit of {limit}")
        self.length = length
        self.limit = limit


@dataclass(frozen=True)
class Placeholder:
    name: str


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.parts if isinstance(p, Placeholder))

    def rendered_length(self, values: Mapping[str, str]) -> int:
        return sum(len(p) if isinstance(p, str) else len(values[p.name]) for p in self.parts)

    def render(self, values: Mapping[str, Any], *, max_chars: int | None = None) -> str:
        """The text with every placeholder replaced by ``str(value)``.

        KeyError names a placeholder without a value; :class:`TemplateTooLong` is raised before
        anything is concatenated, so a cap really bounds the memory a template can make us use.
        """
        texts = {name: _text(values[name]) for name in self.names}
        if max_chars is not None:
            length = self.rendered_length(texts)
            if length > max_chars:
                raise TemplateTooLong(length, max_chars)
        return "".join(p if isinstance(p, str) else texts[p.name] for p in self.parts)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _where(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _error(text: str, index: int, message: str) -> TemplateError:
    line, column = _where(text, index)
    return TemplateError(message, line=line, column=column)


def parse(text: str) -> Template:
    """Parse ``text``; :class:`TemplateError` at the first thing outside the language."""
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        brace = min((j for j in (text.find("{", i), text.find("}", i)) if j != -1), default=n)
        literal.append(text[i:brace])
        i = brace
        if i >= n:
            break
        if text.startswith(("{{", "}}"), i):
            literal.append(text[i])
            i += 2
            continue
        if text[i] == "}":
            raise _error(text, i, "unbalanced braces: a single '}'; write a literal brace as }}")
        end = text.find("}", i + 1)
        inner = text[i + 1 : end] if end != -1 else ""
        if end == -1 or "{" in inner:
            raise _error(text, i, "unbalanced braces: '{' is never closed; write a literal brace as {{")
        if inner == "" or inner.isdigit():
            raise _error(text, i, f"positional placeholders like {{{inner}}} are not allowed; use a name")
        if not _NAME.fullmatch(inner):
            shown = inner if len(inner) <= 40 else inner[:40] + "..."
            raise _error(text, i, f"{{{shown}}} is not a placeholder: {_RULES}")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Placeholder(inner))
        i = end + 1
    if literal and "".join(literal):
        parts.append("".join(literal))
    return Template(tuple(parts))


__all__ = ["Placeholder", "Template", "TemplateError", "TemplateTooLong", "parse"]
