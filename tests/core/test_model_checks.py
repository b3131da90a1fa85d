"""Flavor values bound to a model, checked against that model's published input schema.

Table tests over every catalogued model: valid and invalid values of every enum/range a flavor
key feeds, each error reported once as ``file:line: key: VALUE is not accepted by MODEL (...)``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mvcore.cli import main
from mvcore.config.hookspecs import hookimpl
from mvcore.config.model_checks import ModelCatalogue, ModelEntry, ModelIssue, accepted_text
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.providers.catalogue import register, shipped_catalogue

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = shipped_catalogue()
IMAGEN_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3")


def make_root(tmp_path: Path, files: dict[str, str]) -> Path:
    """A flavors root: the shipped default plus flavor ``x`` with ``files`` (name -> YAML)."""
    root = tmp_path / "flavors"
    shutil.copytree(REPO / "flavors" / "default", root / "default")
    (root / "x").mkdir()
    for name, text in files.items():
        (root / "x" / name).write_text(text)
    return root


def store_for(root: Path, host: PluginHost | None = None) -> FlavorStore:
    return FlavorStore([root], register(host or PluginHost(entry_points=False)))


def model_issues(store: FlavorStore) -> list[ModelIssue]:
    return [i for i in store.current.issues if isinstance(i, ModelIssue)]


def errors_of(store: FlavorStore) -> list[str]:
    out = [str(i) for i in store.current.issues if i.severity == "error"]
    out += [str(i) for s in store.current.statuses.values() for i in s.issues if i.severity == "error"]
    return out


# (model, config file, selector key, value key, value, accepted) -- every enum/range a flavor key feeds
CASES: list[tuple[str, str, str, str, Any, bool]] = [
    *[("google/imagen-4", "image_params.yaml", "model", "aspect_ratio", v, True) for v in IMAGEN_RATIOS],
    ("google/imagen-4", "image_params.yaml", "model", "aspect_ratio", "21:9", False),
    ("google/imagen-4", "image_params.yaml", "model", "aspect_ratio", "2:3", False),
    ("google/imagen-4", "image_params.yaml", "model", "output_format", "png", True),
    ("google/imagen-4", "image_params.yaml", "model", "output_format", "jpg", True),
    ("google/imagen-4", "image_params.yaml", "model", "output_format", "webp", False),
    ("google/imagen-4", "image_params.yaml", "model", "output_format", "jpeg", False),
    ("google/imagen-4", "image_params.yaml", "model", "safety_filter_level", "block_low_and_above", True),
    ("google/imagen-4", "image_params.yaml", "model", "safety_filter_level", "block_medium_and_above", True),
    ("google/imagen-4", "image_params.yaml", "model", "safety_filter_level", "block_only_high", True),
    ("google/imagen-4", "image_params.yaml", "model", "safety_filter_level", "block_none", False),
    ("google/imagen-4-ultra", "image_params.yaml", "model", "output_format", "png", True),
    ("google/imagen-4-ultra", "image_params.yaml", "model", "output_format", "webp", False),
    ("google/imagen-4-ultra", "image_params.yaml", "model", "aspect_ratio", "4:3", True),
    ("google/imagen-4-ultra", "image_params.yaml", "model", "aspect_ratio", "5:4", False),
    ("google/imagen-4-ultra", "image_params.yaml", "model", "safety_filter_level", "block_few", False),
    *[("google/veo-3.1", "image_params.yaml", "video_model", "video_duration", v, True) for v in (4, 6, 8)],
    *[
        ("google/veo-3.1", "image_params.yaml", "video_model", "video_duration", v, False)
        for v in (1, 5, 7, 10)
    ],
    ("google/veo-3.1", "image_params.yaml", "video_model", "video_aspect_ratio", "16:9", True),
    ("google/veo-3.1", "image_params.yaml", "video_model", "video_aspect_ratio", "9:16", True),
    ("google/veo-3.1", "image_params.yaml", "video_model", "video_aspect_ratio", "1:1", False),
    ("google/veo-3.1", "image_params.yaml", "video_model", "video_aspect_ratio", "4:3", False),
    ("google/veo-3.1", "image_params.yaml", "video_model", "video_generate_audio", True, True),
    ("google/veo-3.1", "image_params.yaml", "video_model", "video_generate_audio", False, True),
    ("sync/lipsync-2-pro", "lipsync_params.yaml", "model", "temperature", 0, True),
    ("sync/lipsync-2-pro", "lipsync_params.yaml", "model", "temperature", 0.5, True),
    ("sync/lipsync-2-pro", "lipsync_params.yaml", "model", "temperature", 1, True),
    ("sync/lipsync-2-pro", "lipsync_params.yaml", "model", "active_speaker_detection", True, True),
]


def yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


@pytest.mark.parametrize(("model", "file", "selector", "key", "value", "ok"), CASES)
def test_a_flavor_value_is_checked_against_the_model_its_flavor_selects(
    tmp_path: Path, model: str, file: str, selector: str, key: str, value: Any, ok: bool
) -> None:
    root = make_root(tmp_path, {file: f"{selector}: {model}\n# a comment\n{key}: {yaml_value(value)}\n"})
    store = store_for(root)
    errors = errors_of(store)
    if ok:
        assert errors == []
        return
    entry = CATALOGUE.get(model)
    assert entry is not None
    shown = value if isinstance(value, str) else yaml_value(value)
    accepted = accepted_text(entry.properties[_input_of(file, selector, key)])
    assert errors == [f"flavors/x/{file}:3: {key}: {shown} is not accepted by {model} ({accepted})"]
    assert store.current.statuses["x"].status == "ok"  # reported, and still serving


def _input_of(file: str, selector: str, key: str) -> str:
    for binding in CATALOGUE.bindings:
        if binding.config_type == file.removesuffix(".yaml") and binding.selector == selector:
            return binding.keys[key]
    raise AssertionError(f"no binding for {file}:{selector}")


def test_the_issue_example_reads_exactly_as_promised(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"image_params.yaml": "video_model: google/veo-3.1\nvideo_duration: 5\n"})
    assert errors_of(store_for(root)) == [
        "flavors/x/image_params.yaml:2: video_duration: 5 is not accepted by google/veo-3.1 (4, 6, 8)"
    ]


def test_a_value_inherited_from_default_is_checked_against_the_model_a_flavor_chooses(
    tmp_path: Path,
) -> None:
    # default says video_duration 8 (fine for veo-3.1); x picks a plugin model that only does 5 s
    class FiveSeconds:
        @hookimpl
        def mvcore_models(self) -> list[dict[str, Any]]:
            schema = {"type": "object", "properties": {"duration": {"type": "integer", "enum": [5]}}}
            return [{"name": "acme/five", "input_schema": schema, "source": "t", "retrieved": "2026-12-01"}]

    host = PluginHost(entry_points=False)
    host.register(FiveSeconds(), "five")
    root = make_root(tmp_path, {"image_params.yaml": "video_model: acme/five\n"})
    errors = errors_of(store_for(root, host))
    assert len(errors) == 1
    expected = "flavors/default/image_params.yaml:9: video_duration: 8 is not accepted by acme/five (5)"
    assert errors[0].startswith(expected)
    assert errors[0].endswith("(model chosen at flavors/x/image_params.yaml:1)")


def test_an_error_in_default_is_reported_once_for_every_flavor_it_reaches(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"parameters.yaml": "camera_angle: wide\n"})
    default_file = root / "default" / "image_params.yaml"
    default_file.write_text(default_file.read_text().replace("video_duration: 8", "video_duration: 5"))
    found = [i for i in model_issues(store_for(root)) if i.severity == "error"]
    assert len(found) == 1
    assert found[0].file == "flavors/default/image_params.yaml"
    assert sorted(found[0].flavors) == ["default", "x"]


@pytest.mark.parametrize(
    ("file", "text", "key"),
    [
        ("image_params.yaml", "model: acme/unknown-image\naspect_ratio: '5:4'\n", "model"),
        ("image_params.yaml", "video_model: acme/unknown-video\n", "video_model"),
        ("lipsync_params.yaml", "model: acme/unknown-lipsync\n", "model"),
        ("scene_prompts.yaml", "scene_model: acme/unknown-llm\n", "scene_model"),
    ],
)
def test_a_model_missing_from_the_catalogue_is_a_warning_not_an_error(
    tmp_path: Path, file: str, text: str, key: str
) -> None:
    store = store_for(make_root(tmp_path, {file: text}))
    assert errors_of(store) == []
    warnings = [i for i in model_issues(store) if i.severity == "warning"]
    assert len(warnings) == 1
    assert str(warnings[0]).startswith(f"flavors/x/{file}:1: {key}: acme/unknown-")
    assert "is not in the model catalogue" in warnings[0].message


def test_a_value_the_flavor_schema_refuses_stays_a_schema_error_with_its_line(tmp_path: Path) -> None:
    # lipsync temperature 1.5: the config type refuses it (0..1), as the model would
    files = {"lipsync_params.yaml": "model: sync/lipsync-2-pro\ntemperature: 1.5\n"}
    store = store_for(make_root(tmp_path, files))
    errors = errors_of(store)
    assert len(errors) == 1 and errors[0].startswith("flavors/x/lipsync_params.yaml:2: temperature:")


def test_the_shipped_flavors_pass_the_model_checks() -> None:
    store = store_for(REPO / "flavors")
    assert model_issues(store) == []


def test_flavors_validate_prints_the_model_error_and_exits_1(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"image_params.yaml": "model: google/imagen-4\noutput_format: webp\n"})
    runner = CliRunner()
    whole = runner.invoke(main, ["flavors", "validate", str(root)])
    assert whole.exit_code == 1
    line = "flavors/x/image_params.yaml:2: output_format: webp is not accepted by google/imagen-4 (jpg, png)"
    assert line in whole.output
    one = runner.invoke(main, ["flavors", "validate", str(root / "x")])
    assert one.exit_code == 1 and line in one.output


def test_a_plugin_adds_models_and_bindings_and_its_broken_entries_are_reported(tmp_path: Path) -> None:
    class Lipsync3:
        @hookimpl
        def mvcore_models(self) -> list[Any]:
            schema = {"type": "object", "properties": {"temperature": {"type": "number", "maximum": 0.8}}}
            good = {
                "name": "acme/lipsync-3",
                "input_schema": schema,
                "source": "t",
                "retrieved": "2026-12-01",
            }
            no_slash = {"name": "no-slash", "input_schema": schema}
            return [good, no_slash, {"name": "acme/no-source", "input_schema": schema}]

        @hookimpl
        def mvcore_model_bindings(self) -> list[Any]:
            keys = {"temperature": "temperature"}
            return [{"config_type": "lipsync_params", "selector": "model", "keys": keys}, {"bad": 1}]

    host = PluginHost(entry_points=False)
    host.register(Lipsync3(), "lipsync3")
    root = make_root(tmp_path, {"lipsync_params.yaml": "model: acme/lipsync-3\ntemperature: 0.9\n"})
    store = store_for(root, host)
    errors = errors_of(store)
    expected = "temperature: 0.9 is not accepted by acme/lipsync-3 (number of at most 0.8)"
    assert f"flavors/x/lipsync_params.yaml:2: {expected}" in errors
    plugin_errors = [e for e in errors if e.startswith("plugin:lipsync3")]
    assert len(plugin_errors) == 3  # two bad models, one bad binding -- none crashed the build


def test_a_hot_reload_rechecks_the_models(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"image_params.yaml": "video_duration: 6\n"})
    store = store_for(root)
    assert errors_of(store) == []
    (root / "x" / "image_params.yaml").write_text("video_duration: 7\n")
    store.rebuild("edit")
    assert errors_of(store) == [
        "flavors/x/image_params.yaml:1: video_duration: 7 is not accepted by google/veo-3.1 (4, 6, 8)"
        " (model chosen at flavors/default/image_params.yaml:7)"
    ]
    before = store.current.generation
    assert store.rebuild("nothing changed") is None and store.current.generation == before
    (root / "x" / "image_params.yaml").write_text("video_duration: 4\n")
    store.rebuild("fixed")
    assert errors_of(store) == []


# ------------------------------------------------------------------------ the catalogue itself


def _enum_and_range_cases() -> list[tuple[str, str, Any, bool]]:
    cases: list[tuple[str, str, Any, bool]] = []
    for entry in CATALOGUE.entries.values():
        for name, prop in entry.properties.items():
            if "enum" in prop:
                cases += [(entry.name, name, v, True) for v in prop["enum"]]
                bad = "nope" if prop.get("type") == "string" else 999
                cases.append((entry.name, name, bad, False))
            for bound, step in (("minimum", -1), ("maximum", 1)):
                if bound in prop:
                    cases.append((entry.name, name, prop[bound], True))
                    cases.append((entry.name, name, prop[bound] + step * 0.5, False))
    return cases


@pytest.mark.parametrize(("model", "input_name", "value", "ok"), _enum_and_range_cases())
def test_every_enum_and_range_of_every_catalogued_model(
    model: str, input_name: str, value: Any, ok: bool
) -> None:
    entry = CATALOGUE.get(model)
    assert entry is not None
    problem = entry.problem(input_name, value)
    assert (problem is None) is ok
    if problem is not None:
        assert problem.message.startswith(f"{value} is not accepted by {model} (")


def test_every_catalogued_model_says_where_and_when_its_schema_was_taken() -> None:
    required = {"google/imagen-4", "google/veo-3.1", "sync/lipsync-2-pro", "openai/gpt-4o-mini"}
    assert set(CATALOGUE.names()) >= required
    for entry in CATALOGUE.entries.values():
        assert entry.source and entry.retrieved == "2026-12-01"
        assert entry.notes, f"{entry.name}: say what was inferred"


def test_every_model_the_builtins_and_shipped_flavors_name_is_catalogued() -> None:
    store = FlavorStore([REPO / "flavors"], PluginHost(entry_points=False))
    named = set()
    for configs in store.current.resolved.values():
        for binding in CATALOGUE.bindings:
            named.add(configs[binding.config_type].values.get(binding.selector))
    assert named and all(CATALOGUE.get(n) is not None for n in named), named


def test_a_version_suffix_finds_the_model_and_an_entry_needs_owner_and_name() -> None:
    assert CATALOGUE.get("google/veo-3.1:abc123") is CATALOGUE.get("google/veo-3.1")
    with pytest.raises(ValueError, match="owner/name"):
        ModelEntry.from_mapping({"name": "veo", "input_schema": {"properties": {}}})
    assert ModelCatalogue().get("google/veo-3.1") is None


def test_models_list_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list"])
    assert listed.exit_code == 0
    for name in CATALOGUE.names():
        assert name in listed.output
    shown = runner.invoke(main, ["models", "show", "google/veo-3.1"])
    assert shown.exit_code == 0
    assert "duration                 4, 6, 8 default 8" in shown.output
    assert "source:    https://replicate.com/google/veo-3.1/versions/" in shown.output
    missing = runner.invoke(main, ["models", "show", "acme/nothing"])
    assert missing.exit_code != 0 and "not in the catalogue" in missing.output
