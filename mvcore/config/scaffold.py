"""``mvcore flavors new``: a flavor skeleton that validates as written.

Every key of every built-in config type is written commented out with its
current built-in value, so an author uncomments what they want to change
and everything else keeps falling back.  The first line of each file names
its JSON Schema for yaml-language-server (VS Code's YAML extension and other
editors): the schemas are written to ``<root>/.schemas/`` (hidden, so not a
flavor), which keeps the link right wherever the flavors directory lives.
"""

from __future__ import annotations

from pathlib import Path

from mvcore.config.config_types import ConfigTypeRegistry, builtin_config_types
from mvcore.config.discovery import check_flavor_name
from mvcore.config.schema_export import SCHEMA_COMMENT, export_schemas
from mvcore.errors import BadInput

SCHEMAS_DIR = ".schemas"


def scaffold_flavor(name: str, root: Path, *, force: bool = False, extends: str | None = None) -> Path:
    reason = check_flavor_name(name)
    if reason:
        raise BadInput(reason, hint="Example: mvcore flavors new my_style")
    if extends is not None and check_flavor_name(extends):
        raise BadInput(f"--extends: {check_flavor_name(extends)}")
    target = root / name
    if target.exists() and not force:
        raise BadInput(f"flavor {name!r} already exists in {root}", hint="Use --force to overwrite it.")
    target.mkdir(parents=True, exist_ok=True)
    types = builtin_config_types()
    export_schemas(ConfigTypeRegistry(types), root / SCHEMAS_DIR)
    manifest = [_modeline("flavor"), f"description: {name} flavor", "tags: []"]
    if extends:
        manifest.append(f"extends: {extends}  # keys not set here come from {extends}, then default")
    else:
        manifest.append("# extends: other_flavor  # inherit from another flavor instead of default")
    (target / "flavor.yaml").write_text("\n".join(manifest) + "\n")
    parent = extends or "default"
    for config_type in types:
        assert config_type.defaults_file is not None
        lines = [
            _modeline(config_type.name),
            f"# {config_type.name}: {config_type.description}.",
            f"# Uncomment a key to override it; missing keys fall back to {parent!r}, then to built-ins.",
        ]
        for line in config_type.defaults_file.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                lines.append(f"# {line}")
        (target / config_type.filename).write_text("\n".join(lines) + "\n")
    return target


def _modeline(type_name: str) -> str:
    return SCHEMA_COMMENT.format(url=f"../{SCHEMAS_DIR}/{type_name}.schema.json")
