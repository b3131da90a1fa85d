"""Editor support: schemas with descriptions and examples for every key, the manifest's
schema, yaml-language-server lines in scaffolded files, and check-jsonschema (the
editors' kind of check) over the shipped flavors and a broken one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mvcore.cli import main
from mvcore.config.config_types import builtin_config_types
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
TYPES = [t.name for t in builtin_config_types()]
CHECK = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which(
    "check-jsonschema"
)


def check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    if CHECK is None:
        pytest.fail("check-jsonschema is not installed (it is in the test extra)")
    return subprocess.run(
        [CHECK, "--schemafile", str(schema), *map(str, files)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("schema_file", sorted(p.name for p in SCHEMAS.glob("*.schema.json")))
def test_every_key_of_every_schema_has_a_description_and_examples(schema_file: str) -> None:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    assert schema.get("description"), schema_file
    for key, prop in schema["properties"].items():
        assert prop.get("description"), (schema_file, key)
        assert prop.get("examples"), (schema_file, key)


@pytest.mark.parametrize("type_name", [*TYPES, "flavor"])
def test_check_jsonschema_accepts_every_shipped_flavor_file(type_name: str) -> None:
    name = "flavor.yaml" if type_name == "flavor" else f"{type_name}.yaml"
    files = sorted((REPO / "flavors").glob(f"*/{name}"))
    if not files:
        pytest.skip(f"no shipped flavor has {name}")
    result = check_jsonschema(SCHEMAS / f"{type_name}.schema.json", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("type_name", "text", "words"),
    [
        ("parameters", "camera_angel: wide\n", "'camera_angel' was unexpected"),
        ("parameters", "number_of_scenes: 0\n", "0 is less than the minimum of 1"),
        ("image_params", "aspect_ratio: wide\n", "does not match"),
        ("flavor", "extends: Not A Name\n", "extends"),
        ("flavor", "tags: film\n", "tags"),
    ],
)
def test_check_jsonschema_refuses_a_broken_flavor_file(
    tmp_path: Path, type_name: str, text: str, words: str
) -> None:
    broken = tmp_path / "broken" / ("flavor.yaml" if type_name == "flavor" else f"{type_name}.yaml")
    broken.parent.mkdir()
    broken.write_text(text)
    result = check_jsonschema(SCHEMAS / f"{type_name}.schema.json", broken)
    assert result.returncode == 1, result.stdout
    assert words in result.stdout, result.stdout
    # ... and mvcore itself refuses the same file
    store = FlavorStore([tmp_path], PluginHost(entry_points=False))
    assert store.current.statuses["broken"].status == "invalid"


def test_flavors_new_writes_a_schema_line_into_every_file_that_points_at_the_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["flavors", "new", "my_style", "--dir", str(tmp_path), "--extends", "base"]
    )
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "my_style").glob("*.yaml"))
    assert {f.stem for f in files} == {*TYPES, "flavor"}
    for file in files:
        first = file.read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, (file, first)
        target = (file.parent / match.group(1)).resolve()
        assert target.read_text() == (SCHEMAS / f"{file.stem}.schema.json").read_text()
    # the scaffold extends base; with base present, it resolves through it and validates
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "parameters.yaml").write_text("camera_angle: from base\n")
    snap = FlavorStore([tmp_path], PluginHost(entry_points=False)).current
    assert snap.errors() == [], [str(i) for i in snap.errors()]
    assert snap.resolve("my_style")["parameters"].values["camera_angle"] == "from base"
    assert ".schemas" not in snap.statuses  # hidden: not a flavor


def test_the_authoring_guide_maps_every_schema_in_the_vs_code_setting() -> None:
    guide = (REPO / "docs" / "flavor-authoring.md").read_text()
    block = re.search(r"```json\n(\{\s*\"yaml\.schemas\".*?)\n```", guide, re.S)
    assert block, "docs/flavor-authoring.md lost its VS Code settings block"
    mapping = json.loads(block.group(1))["yaml.schemas"]
    mapped = {Path(k).name for k in mapping}
    assert mapped == {p.name for p in SCHEMAS.glob("*.schema.json")}
    for schema, glob in mapping.items():
        name = Path(schema).name.removesuffix(".schema.json")
        assert glob == f"flavors/**/{name}.yaml", (schema, glob)
