"""The shipped ``flavors/`` directory and the built-in layer, as DESIGN §3 and issue 4 describe them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mvcore.cli import main
from mvcore.config.config_types import builtin_config_types
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.config.validation import template_fields
from tests.shipped import SHIPPED_FLAVORS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = SHIPPED_FLAVORS
BUILTIN_TYPES = {t.name: t for t in builtin_config_types()}

DESIGN_BUILTIN_DEFAULTS = {
    "parameters": {
        "character_characteristics": "sarcastic, dramatic, emotional, and lovable",
        "video_type": "video",
        "video_characteristics": "vlogging, realistic, 4k, cinematic",
        "camera_angle": "front",
        "number_of_scenes": 4,
    },
    "image_params": {
        "model": "google/imagen-4",
        "aspect_ratio": "1:1",
        "safety_filter_level": "block_medium_and_above",
        "person_generation": "allow_adult",
        "output_format": "png",
        "video_model": "google/veo-3.1",
        "video_aspect_ratio": "16:9",
        "video_duration": 8,
        "video_generate_audio": True,
        "video_person_generation": "allow_all",
    },
}
VIDEO_KEYS = {k for k in DESIGN_BUILTIN_DEFAULTS["image_params"] if k.startswith("video_")} | {
    "video_rules_template"
}


def line_of(path: Path, key: str) -> int:
    """1-based line where the top-level ``key:`` is written."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    raise AssertionError(f"{key} not in {path}")


@pytest.fixture
def shipped_store(make_store: Callable[..., FlavorStore]) -> FlavorStore:
    return make_store(SHIPPED)


def test_the_shipped_flavors_validate_with_no_errors_and_no_warnings(shipped_store: FlavorStore) -> None:
    snap = shipped_store.current
    assert snap.names() == ["default", "example", "test_flavor"]
    assert snap.issues == ()
    for name, status in snap.statuses.items():
        assert status.issues == (), (name, [str(i) for i in status.issues])
        assert status.status == "ok" and status.serving
        assert status.description  # every shipped flavor has a manifest description
    assert snap.shadowed == ()


def test_the_shipped_flavors_also_validate_with_the_installed_plugins() -> None:
    snap = FlavorStore([SHIPPED], PluginHost()).current
    assert snap.errors() == [] and snap.issues == ()
    assert all(s.issues == () for s in snap.statuses.values())


def test_mvcore_flavors_validate_exits_0_on_the_shipped_flavors() -> None:
    result = CliRunner().invoke(main, ["flavors", "validate", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_test_flavor_shows_all_three_layers_with_their_files_and_lines(shipped_store: FlavorStore) -> None:
    resolution = shipped_store.current.resolve("test_flavor")
    assert (resolution.flavor_used, resolution.fallback) == ("test_flavor", False)
    expectations = [
        # (config type, key, layer, file)
        ("parameters", "camera_angle", "flavor", SHIPPED / "test_flavor" / "parameters.yaml"),
        ("parameters", "number_of_scenes", "flavor", SHIPPED / "test_flavor" / "parameters.yaml"),
        (
            "image_prompts",
            "character_reference_prompt",
            "flavor",
            SHIPPED / "test_flavor" / "image_prompts.yaml",
        ),
        ("parameters", "video_type", "default", SHIPPED / "default" / "parameters.yaml"),
        ("parameters", "character_characteristics", "default", SHIPPED / "default" / "parameters.yaml"),
        ("image_params", "video_duration", "default", SHIPPED / "default" / "image_params.yaml"),
        ("scene_prompts", "scene_model", "builtin", BUILTIN_TYPES["scene_prompts"].defaults_file),
        ("lipsync_params", "model", "builtin", BUILTIN_TYPES["lipsync_params"].defaults_file),
    ]
    for type_name, key, layer, file in expectations:
        assert file is not None
        prov = resolution[type_name].provenance[key]
        assert prov.layer == layer, (type_name, key)
        assert Path(prov.file).resolve() == file.resolve(), (type_name, key)
        assert prov.line == line_of(file, key), (type_name, key)
        assert resolution[type_name][key] == yaml.safe_load(file.read_text())[key]
    layers = {p.layer for c in resolution.configs.values() for p in c.provenance.values()}
    assert layers == {"flavor", "default", "builtin"}
    assert resolution["parameters"]["camera_angle"] == "overhead"
    assert resolution["parameters"]["number_of_scenes"] == 2


def test_flavors_show_json_prints_exactly_the_resolution() -> None:
    result = CliRunner().invoke(
        main,
        ["flavors", "show", "test_flavor", "--json", "--flavors-dir", str(SHIPPED)],
        env={"MVCORE_PLUGINS": ""},
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output.strip().splitlines()[-1])
    expected = FlavorStore([SHIPPED], PluginHost(entry_points=False)).current.resolve("test_flavor").to_wire()
    assert body == json.loads(json.dumps(expected))

    result = CliRunner().invoke(
        main,
        ["flavors", "show", "nosuch", "--json", "--flavors-dir", str(SHIPPED)],
        env={"MVCORE_PLUGINS": ""},
    )
    body = json.loads(result.output.strip().splitlines()[-1])
    assert (body["flavor_requested"], body["flavor_used"], body["fallback"]) == ("nosuch", "default", True)


def test_example_differs_from_default_in_parameters(shipped_store: FlavorStore) -> None:
    snap = shipped_store.current
    example, default = snap.resolve("example")["parameters"], snap.resolve("default")["parameters"]
    assert example["number_of_scenes"] == 6 and default["number_of_scenes"] == 4
    assert example["video_type"] == "short film" and default["video_type"] == "video"
    assert example["camera_angle"] == "wide" and default["camera_angle"] == "front"
    assert {k for k in example.values if example[k] != default[k]} >= {
        "number_of_scenes",
        "video_type",
        "camera_angle",
    }
    assert all(p.layer == "flavor" for p in example.provenance.values())


def test_the_video_keys_live_in_image_params(shipped_store: FlavorStore) -> None:
    snap = shipped_store.current
    assert "video_params" not in snap.registry
    for flavor in ("default", "example", "test_flavor"):
        image_params = snap.resolve(flavor)["image_params"].values
        assert set(image_params) >= VIDEO_KEYS
    default_file = yaml.safe_load((SHIPPED / "default" / "image_params.yaml").read_text())
    assert set(default_file) >= VIDEO_KEYS
    for other in snap.registry.names():
        if other != "image_params":
            assert not VIDEO_KEYS & set(snap.resolve("default")[other].values)


def test_the_builtin_layer_holds_the_design_defaults(
    make_store: Callable[..., FlavorStore], tmp_path: Path
) -> None:
    builtin_only = make_store(tmp_path / "no-flavors").current.resolve("default")
    for type_name, defaults in DESIGN_BUILTIN_DEFAULTS.items():
        values = builtin_only[type_name].values
        for key, value in defaults.items():
            assert values[key] == value, (type_name, key)
    assert template_fields(builtin_only["image_params"]["video_rules_template"]) == {"aspect_ratio"}
    assert template_fields(builtin_only["image_prompts"]["character_reference_prompt"]) == {
        "character_description"
    }
    scene_fields = template_fields(builtin_only["scene_prompts"]["scene_generation_prompt"])
    assert scene_fields == BUILTIN_TYPES["scene_prompts"].placeholders["scene_generation_prompt"]


def _shipped_templates() -> list[tuple[str, str, str, str]]:
    out = []
    for path in sorted(SHIPPED.glob("*/*.yaml")):
        config_type = BUILTIN_TYPES.get(path.stem)
        if config_type is None:
            continue
        data = yaml.safe_load(path.read_text()) or {}
        for key in config_type.placeholders:
            if key in data:
                out.append((path.parent.name, path.stem, key, data[key]))
    return out


@pytest.mark.parametrize(("flavor", "type_name", "key", "template"), _shipped_templates())
def test_shipped_templates_use_only_allowed_placeholders_and_render(
    flavor: str, type_name: str, key: str, template: str
) -> None:
    allowed = BUILTIN_TYPES[type_name].placeholders[key]
    used = template_fields(template)
    assert used <= allowed, (flavor, type_name, key, used - allowed)
    rendered = template.format(**{name: f"<{name}>" for name in allowed})
    assert all(f"<{name}>" in rendered for name in used)
    if key == "scene_generation_prompt":
        # asks for the JSON shape the scene generator parses
        assert '{"scenes": [{"description": "...", "negative_description": "..."}]}' in rendered
        assert used == allowed  # every scene input reaches the model


def test_there_are_shipped_templates_to_check() -> None:
    found = {(t, k) for _, t, k, _ in _shipped_templates()}
    assert found == {
        ("scene_prompts", "scene_generation_prompt"),
        ("image_prompts", "character_reference_prompt"),
        ("image_params", "video_rules_template"),
    }


ORIGINAL_STYLE = {
    "parameters.yaml": """\
        character_characteristics: "sarcastic, dramatic, emotional, and lovable"
        video_type: "video"
        video_characteristics: "vlogging, realistic, 4k, cinematic"
        camera_angle: "front"
        number_of_scenes: 4
        """,
    "scene_prompts.yaml": """\
        scene_generation_prompt: |
          Create {number_of_scenes} scenes for a {video_type} about: {idea}
          Character: {character_description}
          Personality: {character_characteristics}
          Camera angle: {camera_angle}
          Style: {video_characteristics}
          Return JSON: {{"scenes": [{{"description": "...", "negative_description": "..."}}]}}
        """,
    "image_prompts.yaml": """\
        character_reference_prompt: "Full body reference of {character_description}, white background"
        """,
    "image_params.yaml": """\
        # Image generation parameters
        model: "google/imagen-4"
        aspect_ratio: "1:1"
        safety_filter_level: "block_medium_and_above"
        person_generation: "allow_adult"
        output_format: "png"

        # Video generation parameters
        video_model: "google/veo-3.1"
        video_aspect_ratio: "16:9"
        video_duration: 8
        video_generate_audio: true
        video_person_generation: "allow_all"
        video_rules_template: |
          Aspect ratio {aspect_ratio}. Keep the character consistent. No text overlays.
        """,
}


def test_original_system_style_files_load_unchanged(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    for flavor in ("default", "legacy"):
        (root / flavor).mkdir(parents=True)
        for name, text in ORIGINAL_STYLE.items():
            (root / flavor / name).write_text(textwrap.dedent(text))
    snap = make_store(root).current
    assert snap.errors() == [] and snap.issues == ()
    assert all(s.issues == () for s in snap.statuses.values())
    resolution = snap.resolve("legacy")
    for name, text in ORIGINAL_STYLE.items():
        type_name = name.removesuffix(".yaml")
        on_disk = yaml.safe_load(textwrap.dedent(text))
        values = dict(resolution[type_name].values)
        assert {k: values[k] for k in on_disk} == on_disk
        assert all(resolution[type_name].provenance[k].layer == "flavor" for k in on_disk)
    assert set(DESIGN_BUILTIN_DEFAULTS["image_params"]) | {"video_rules_template"} == set(
        yaml.safe_load(textwrap.dedent(ORIGINAL_STYLE["image_params.yaml"]))
    )
