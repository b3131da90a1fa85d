"""schemas/ is generated from the pydantic models; a test fails when the two drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from click.testing import CliRunner

from mvcore.cli import main
from mvcore.config.config_types import builtin_config_types
from mvcore.config.plugins import PluginHost
from mvcore.config.schema_export import export_schemas, render_schemas

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models() -> None:
    rendered = render_schemas(PluginHost(entry_points=False).contributions().registry)
    on_disk = {p.name: p.read_text() for p in (REPO / "schemas").glob("*.schema.json")}
    assert on_disk == rendered, "schemas/ drifted from the models: run `mvcore schemas export`"


def test_every_schema_is_valid_draft_2020_12_and_accepts_the_builtin_defaults() -> None:
    for config_type in builtin_config_types():
        schema = json.loads((REPO / "schemas" / f"{config_type.name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert config_type.defaults_file is not None
        defaults = yaml.safe_load(config_type.defaults_file.read_text())
        assert list(jsonschema.Draft202012Validator(schema).iter_errors(defaults)) == []


def test_export_check_reports_a_drifted_file(tmp_path: Path) -> None:
    registry = PluginHost(entry_points=False).contributions().registry
    assert sorted(export_schemas(registry, tmp_path)) == sorted(render_schemas(registry))
    assert export_schemas(registry, tmp_path, check=True) == []
    (tmp_path / "parameters.schema.json").write_text("{}\n")
    assert export_schemas(registry, tmp_path, check=True) == ["parameters.schema.json"]
    result = CliRunner().invoke(main, ["schemas", "export", "--check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "parameters.schema.json is out of date" in result.output
