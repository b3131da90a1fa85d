"""``mvcore flavors new``: a flavor skeleton that validates as written.

Every key of every built-in config type is written commented out with its
current built-in value, so an author uncomments what they want to change
and everything else keeps falling back.
"""

from __future__ import annotations

from pathlib import Path

from mvcore.config.config_types import builtin_config_types
from mvcore.config.discovery import check_flavor_name
from mvcore.errors import BadInput


def scaffold_flavor(name: str, root: Path, *, force: bool = False) -> Path:
    reason = check_flavor_name(name)
    if reason:
        raise BadInput(reason, hint="Example: mvcore flavors new my_style")
    target = root / name
    if target.exists() and not force:
        raise BadInput(f"flavor {name!r} already exists in {root}", hint="Use --force to overwrite it.")
    target.mkdir(parents=True, exist_ok=True)
    (target / "flavor.yaml").write_text(f"description: {name} flavor\ntags: []\n")
    for config_type in builtin_config_types():
        assert config_type.defaults_file is not None
        lines = [
            f"# {config_type.name}: {config_type.description}.",
            "# Uncomment a key to override it; missing keys fall back to 'default', then to built-ins.",
        ]
        for line in config_type.defaults_file.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                lines.append(f"# {line}")
        (target / config_type.filename).write_text("\n".join(lines) + "\n")
    return target
