"""The flavor manifest, ``flavor.yaml``: description, tags and the parent flavor.

The pydantic model is the source of ``schemas/flavor.schema.json`` (editors
complete and check the manifest with it); the checks below give the same
answer with ``file:line`` for every problem, and a bad manifest never stops
the flavor's config files from being read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mvcore.config.discovery import check_flavor_name
from mvcore.config.validation import Issue, ParsedFile

#: same rule as discovery's FLAVOR_NAME (kept here as text for the JSON Schema)
FLAVOR_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MANIFEST_KEYS = ("description", "tags", "extends")


class FlavorManifest(BaseModel):
    """flavor.yaml: what a flavor is, and which flavor it builds on."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(
        "",
        description="One line shown in the flavor list and the web UI.",
        examples=["Grainy 16 mm look, handheld camera, warm colours"],
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Free-form labels shown next to the description.",
        examples=[["film", "retro"]],
    )
    extends: str | None = Field(
        None,
        pattern=FLAVOR_NAME_PATTERN,
        description=(
            "Parent flavor. Keys this flavor does not set come from the parent, then from the "
            "parent's parent, ..., then from 'default', then from the built-ins. One parent; chains "
            "are allowed, cycles are errors."
        ),
        examples=["cinematic"],
    )


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A checked manifest; ``file`` and ``extends_line`` say where ``extends`` was written."""

    description: str = ""
    tags: tuple[str, ...] = ()
    extends: str | None = None
    file: str | None = None
    extends_line: int | None = None


def read_manifest(parsed: ParsedFile, shown: str) -> tuple[Manifest, list[Issue]]:
    """The manifest in ``parsed`` (a parsed ``flavor.yaml``) and every problem in it."""
    data: dict[str, Any] = parsed.data or {}
    lines = parsed.lines
    issues: list[Issue] = []

    def bad(key: str, message: str) -> None:
        issues.append(Issue(file=shown, line=lines.get(key), path=key, message=message))

    description = data.get("description", "")
    if not isinstance(description, str):
        bad("description", "must be a string")
        description = ""
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        bad("tags", "must be a list of strings")
        tags = []
    extends = data.get("extends")
    if extends is not None and not isinstance(extends, str):
        bad("extends", f"must be a flavor name (a string), got {type(extends).__name__}")
        extends = None
    elif isinstance(extends, str):
        reason = check_flavor_name(extends)
        if reason:
            bad("extends", reason)
            extends = None
    for key in data:
        if key not in MANIFEST_KEYS:
            bad(key, f"unknown manifest key; allowed: {', '.join(MANIFEST_KEYS)}")
    manifest = Manifest(
        description=description,
        tags=tuple(tags),
        extends=extends,
        file=shown,
        extends_line=lines.get("extends"),
    )
    return manifest, issues
