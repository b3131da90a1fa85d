"""Writing the JSON Schemas of every config type to ``schemas/``.

The files are generated from the pydantic models (and plugin schemas), and a
test regenerates them in memory to fail when ``schemas/`` drifts.  ``flavor.schema.json``
covers the manifest, ``flavor.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mvcore.config.config_types import ConfigTypeRegistry, schema_for
from mvcore.config.manifest import FlavorManifest

#: what ``mvcore flavors new`` writes on the first line of each file, for yaml-language-server
SCHEMA_COMMENT = "# yaml-language-server: $schema={url}"


def manifest_schema() -> dict[str, Any]:
    """JSON Schema of ``flavor.yaml`` (description, tags, extends)."""
    return schema_for(FlavorManifest, "flavor")


def render_schemas(registry: ConfigTypeRegistry, *, builtin_only: bool = True) -> dict[str, str]:
    """file name -> JSON text, stable (sorted keys, trailing newline)."""
    out = {"flavor.schema.json": json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n"}
    for config_type in registry:
        if builtin_only and config_type.owner != "builtin":
            continue
        out[f"{config_type.name}.schema.json"] = (
            json.dumps(config_type.schema, indent=2, sort_keys=True) + "\n"
        )
    return out


def export_schemas(registry: ConfigTypeRegistry, directory: Path, *, check: bool = False) -> list[str]:
    """Write (or with ``check`` compare) the schema files; returns names that differ."""
    directory.mkdir(parents=True, exist_ok=True)
    differing = []
    for name, text in render_schemas(registry).items():
        path = directory / name
        current = path.read_text() if path.exists() else None
        if current != text:
            differing.append(name)
            if not check:
                path.write_text(text)
    return differing
