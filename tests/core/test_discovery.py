"""Discovery (DESIGN §3): sources, precedence, shadowing, and what is ignored.

Precedence for one flavor name: the flavor directories (in the order given) ->
directories contributed by plugins -> in-code flavors from plugins.  A shadowed
flavor is reported, never silently dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mvcore import hookimpl
from mvcore.cli import main
from mvcore.config.discovery import Shadowed
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings


def flavor(root: Path, name: str, **files: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    for type_name, text in files.items():
        (directory / f"{type_name}.yaml").write_text(text)
    return directory


class PluginDir:
    """Contributes a directory of flavors."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @hookimpl
    def mvcore_flavor_dirs(self) -> list[Path]:
        return [self.directory]


class InCode:
    """Contributes in-code flavors."""

    def __init__(self, flavors: dict[str, Any]) -> None:
        self.flavors = flavors

    @hookimpl
    def mvcore_flavors(self) -> dict[str, Any]:
        return self.flavors


# ---------------------------------------------------------------------------
# Precedence and shadowing
# ---------------------------------------------------------------------------


def test_two_flavor_roots_with_the_same_flavor_the_first_wins_and_the_other_is_reported(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    flavor(first, "shared", parameters="camera_angle: from-first\n")
    flavor(second, "shared", parameters="camera_angle: from-second\nnumber_of_scenes: 7\n")
    flavor(second, "only-second", parameters="camera_angle: second-only\n")

    snap = make_store([first, second]).current
    shared = snap.resolve("shared")["parameters"]
    assert shared["camera_angle"] == "from-first"
    assert shared["number_of_scenes"] == 4  # nothing leaks from the shadowed copy
    assert shared.provenance["camera_angle"].file == str(first / "shared" / "parameters.yaml")
    assert snap.resolve("only-second")["parameters"]["camera_angle"] == "second-only"
    assert snap.shadowed == (Shadowed("shared", str(first / "shared"), str(second / "shared")),)
    assert snap.status_wire()["shadowed"] == [
        {"name": "shared", "used": str(first / "shared"), "shadowed": str(second / "shared")}
    ]
    assert snap.statuses["shared"].source == str(first / "shared")

    # The order of the roots is the precedence.
    snap = make_store([second, first]).current
    assert snap.resolve("shared")["parameters"]["camera_angle"] == "from-second"
    assert snap.shadowed[0].loser == str(first / "shared")


def test_shadowed_flavors_show_in_flavors_list(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    flavor(first, "shared", parameters="camera_angle: a\n")
    flavor(second, "shared", parameters="camera_angle: b\n")
    args = ["flavors", "list", "--flavors-dir", str(first), "--flavors-dir", str(second)]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output[result.output.index("{") :])
    assert body["shadowed"] == [
        {"name": "shared", "used": str(first / "shared"), "shadowed": str(second / "shared")}
    ]
    text = CliRunner().invoke(main, args).output
    assert "shadowed" in text and str(second / "shared") in text


def test_a_plugin_dir_flavor_is_shadowed_by_a_flavors_dir_flavor(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root, plugin_root = tmp_path / "flavors", tmp_path / "plugin_flavors"
    flavor(root, "shared", parameters="camera_angle: from-flavors-dir\n")
    flavor(plugin_root, "shared", parameters="camera_angle: from-plugin-dir\n")
    flavor(plugin_root, "plugin-only", parameters="camera_angle: plugin-dir-only\n")

    snap = make_store(root, ("pdir", PluginDir(plugin_root))).current
    assert snap.resolve("shared")["parameters"]["camera_angle"] == "from-flavors-dir"
    assert snap.shadowed == (
        Shadowed("shared", str(root / "shared"), f"plugin:pdir:{plugin_root / 'shared'}"),
    )
    only = snap.resolve("plugin-only")["parameters"]
    assert only["camera_angle"] == "plugin-dir-only"
    assert only.provenance["camera_angle"].layer == "flavor"
    assert only.provenance["camera_angle"].file == str(plugin_root / "plugin-only" / "parameters.yaml")
    assert snap.statuses["plugin-only"].origin == "plugin:pdir"


def test_an_in_code_flavor_resolves_with_plugin_provenance_and_loses_to_directories(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root, plugin_root = tmp_path / "flavors", tmp_path / "plugin_flavors"
    flavor(root, "in-dir", parameters="camera_angle: dir\n")
    flavor(plugin_root, "in-plugin-dir", parameters="camera_angle: plugin-dir\n")
    code = InCode(
        {
            "in-code": {"flavor": {"description": "from code"}, "parameters": {"number_of_scenes": 3}},
            "in-dir": {"parameters": {"camera_angle": "code"}},
            "in-plugin-dir": {"parameters": {"camera_angle": "code"}},
        }
    )
    snap = make_store(root, ("pdir", PluginDir(plugin_root)), ("code", code)).current

    in_code = snap.resolve("in-code")["parameters"]
    assert in_code["number_of_scenes"] == 3
    assert in_code.provenance["number_of_scenes"].to_dict() == {
        "layer": "plugin:code",
        "file": None,
        "line": None,
    }
    assert in_code.provenance["camera_angle"].layer == "builtin"
    assert snap.statuses["in-code"].description == "from code"
    assert snap.statuses["in-code"].source == "plugin:code (in code)"

    assert snap.resolve("in-dir")["parameters"]["camera_angle"] == "dir"
    assert snap.resolve("in-plugin-dir")["parameters"]["camera_angle"] == "plugin-dir"
    losers = {s.name: s.loser for s in snap.shadowed}
    assert losers == {"in-dir": "plugin:code (in code)", "in-plugin-dir": "plugin:code (in code)"}


def test_an_in_code_default_flavor_is_the_middle_layer_when_no_directory_has_one(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    flavor(root, "mine", parameters="camera_angle: mine\n")
    snap = make_store(
        root, ("code", InCode({"default": {"parameters": {"video_type": "from code"}}}))
    ).current
    mine = snap.resolve("mine")["parameters"]
    assert mine["video_type"] == "from code"
    assert mine.provenance["video_type"].layer == "plugin:code"


# ---------------------------------------------------------------------------
# What is ignored
# ---------------------------------------------------------------------------


def test_hidden_dirs_and_editor_temp_files_are_ignored(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    for hidden in (".git", "..data", "..2024_01_01_00_00_00.123", ".cache"):
        flavor(root, hidden, parameters="camera_angle: hidden\n")
    (root / "README.md").write_text("not a flavor\n")
    (root / "notes.yaml").write_text("not: a flavor\n")
    real = flavor(root, "real", parameters="camera_angle: real\n")
    for junk in (
        ".parameters.yaml.swp",
        ".parameters.yaml.swx",
        "parameters.yaml~",
        "#parameters.yaml#",
        ".#parameters.yaml",
        "parameters.yaml.tmp",
        "parameters.yaml.bak",
        "parameters.yaml.orig",
        "parameters.yaml.part",
        "4913",
    ):
        (real / junk).write_text("camera_angle: [unclosed\n")
    (real / "notes.txt").write_text("anything")
    snap = make_store(root).current
    assert snap.names() == ["default", "real"]
    assert snap.issues == ()
    assert snap.statuses["real"].issues == ()
    assert snap.resolve("real")["parameters"]["camera_angle"] == "real"


def test_a_kubernetes_configmap_layout_loads(tmp_path: Path, make_store: Callable[..., FlavorStore]) -> None:
    # kubelet mounts: <dir>/..2024_x/<files>, <dir>/..data -> ..2024_x, <dir>/<file> -> ..data/<file>
    root = tmp_path / "flavors"
    mounted = root / "mounted"
    stamp = mounted / "..2024_05_01_10_00_00.000001"
    stamp.mkdir(parents=True)
    (stamp / "parameters.yaml").write_text("camera_angle: from-configmap\n")
    (mounted / "..data").symlink_to(stamp.name, target_is_directory=True)
    (mounted / "parameters.yaml").symlink_to("..data/parameters.yaml")
    snap = make_store(root).current
    assert snap.errors() == [] and snap.issues == ()
    assert snap.resolve("mounted")["parameters"]["camera_angle"] == "from-configmap"


def test_a_symlinked_flavor_inside_the_root_is_allowed(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    flavor(root, "original", parameters="camera_angle: shared-look\n")
    (root / "alias").symlink_to("original", target_is_directory=True)
    snap = make_store(root).current
    assert snap.errors() == []
    assert snap.resolve("alias")["parameters"]["camera_angle"] == "shared-look"


def test_a_broken_symlink_in_the_root_is_reported(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    flavor(root, "real", parameters="camera_angle: real\n")
    (root / "dangling").symlink_to("nowhere", target_is_directory=True)
    (root / "loop").symlink_to("loop")
    snap = make_store(root).current
    texts = sorted(str(i) for i in snap.errors())
    assert texts == [
        "flavors/dangling: broken symlink (or a symlink loop)",
        "flavors/loop: broken symlink (or a symlink loop)",
    ]
    assert snap.resolve("real")["parameters"]["camera_angle"] == "real"


def test_an_unknown_yaml_file_is_a_warning_and_the_flavor_still_loads(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    flavor(root, "mine", parameters="camera_angle: mine\n", paramters="camera_angle: typo\n")
    (root / "mine" / "extra.yml").write_text("a: 1\n")
    snap = make_store(root).current
    status = snap.statuses["mine"]
    assert status.status == "ok" and status.serving
    assert snap.errors() == []
    warnings = sorted(str(i) for i in status.issues)
    assert [i.severity for i in status.issues] == ["warning", "warning"]
    assert warnings[0].startswith("flavors/mine/extra.yml: unknown config file (known: image_params.yaml,")
    assert warnings[1].startswith("flavors/mine/paramters.yaml: unknown config file")
    assert "flavor.yaml); ignored" in warnings[1]
    assert snap.resolve("mine")["parameters"]["camera_angle"] == "mine"
    assert [w["text"] for w in status.to_dict()["warnings"]] == [str(i) for i in status.issues]


def test_yml_extension_is_accepted(tmp_path: Path, make_store: Callable[..., FlavorStore]) -> None:
    root = tmp_path / "flavors"
    (root / "short").mkdir(parents=True)
    (root / "short" / "parameters.yml").write_text("camera_angle: yml\n")
    snap = make_store(root).current
    assert snap.resolve("short")["parameters"]["camera_angle"] == "yml"


def test_a_missing_root_is_a_warning_not_a_crash(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    missing, root = tmp_path / "not-there", tmp_path / "flavors"
    flavor(root, "real", parameters="camera_angle: real\n")
    snap = make_store([missing, root]).current
    assert snap.errors() == []
    assert [(i.severity, i.message) for i in snap.issues] == [("warning", "flavors directory does not exist")]
    assert snap.resolve("real")["parameters"]["camera_angle"] == "real"
    assert snap.status_wire()["warnings"][0]["message"] == "flavors directory does not exist"


def test_with_no_flavor_root_at_all_default_is_the_builtin_layer(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    snap = make_store(tmp_path / "not-there").current
    assert snap.names() == ["default"]
    default = snap.resolve("default")
    assert default.fallback is False
    assert default["parameters"]["number_of_scenes"] == 4
    assert {p.layer for c in default.configs.values() for p in c.provenance.values()} == {"builtin"}
    nosuch = snap.resolve("nosuch")
    assert (nosuch.flavor_used, nosuch.fallback) == ("default", True)


def test_a_root_that_is_a_file_is_reported(tmp_path: Path, make_store: Callable[..., FlavorStore]) -> None:
    not_a_dir = tmp_path / "flavors.txt"
    not_a_dir.write_text("x")
    snap = make_store(not_a_dir).current
    assert [i.message for i in snap.errors()] == ["cannot list flavors directory: Not a directory"]


# ---------------------------------------------------------------------------
# MVCORE_FLAVORS_DIR
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("one", ["one"]),
        (f"one{os.pathsep}two", ["one", "two"]),
        (f"one{os.pathsep}two{os.pathsep}three", ["one", "two", "three"]),
        ("one,two", ["one", "two"]),
        (f"one{os.pathsep}", ["one"]),
        (f"/abs/one{os.pathsep}rel/two", ["/abs/one", "rel/two"]),
        ("one, two", ["one", "two"]),
    ],
)
def test_mvcore_flavors_dir_accepts_several_paths(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("MVCORE_FLAVORS_DIR", value)
    assert Settings().flavors_dirs == [Path(p) for p in expected]


def test_mvcore_flavors_dir_defaults_to_dot_flavors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MVCORE_FLAVORS_DIR", raising=False)
    assert Settings().flavors_dirs == [Path("flavors")]


def test_several_roots_from_the_environment_keep_their_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    flavor(first, "shared", parameters="camera_angle: first\n")
    flavor(second, "shared", parameters="camera_angle: second\n")
    flavor(second, "extra", parameters="camera_angle: extra\n")
    monkeypatch.setenv("MVCORE_FLAVORS_DIR", f"{first}{os.pathsep}{second}")
    monkeypatch.setenv("MVCORE_PLUGINS", "")
    store = FlavorStore.from_settings(Settings())
    snap = store.current
    assert store.roots == [first, second]
    assert snap.resolve("shared")["parameters"]["camera_angle"] == "first"
    assert snap.resolve("extra")["parameters"]["camera_angle"] == "extra"
    assert [s.name for s in snap.shadowed] == ["shared"]
