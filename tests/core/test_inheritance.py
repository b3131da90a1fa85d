"""Flavor inheritance (``extends:`` in flavor.yaml): chains, errors with file:line, reloads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mvcore.config.snapshot import FlavorState
from mvcore.config.store import FlavorStore


def write(root: Path, flavor: str, name: str, text: str) -> Path:
    path = root / flavor / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def chain_tree(root: Path) -> None:
    """default <- base <- mid <- leaf, each setting one more key; ``sibling`` extends base too."""
    write(root, "default", "parameters.yaml", "camera_angle: default-angle\nvideo_type: default-type\n")
    write(root, "base", "flavor.yaml", "description: base\n")
    write(root, "base", "parameters.yaml", "camera_angle: base-angle\nnumber_of_scenes: 3\n")
    write(root, "mid", "flavor.yaml", "description: mid\nextends: base\n")
    write(root, "mid", "parameters.yaml", "number_of_scenes: 5\n")
    write(root, "leaf", "flavor.yaml", "# a comment line\nextends: mid\n")
    write(root, "leaf", "parameters.yaml", "video_characteristics: leafy\n")
    write(root, "sibling", "flavor.yaml", "extends: base\n")
    write(root, "sibling", "parameters.yaml", "video_characteristics: sib\n")


def test_a_chain_resolves_flavor_then_parents_in_order_then_default_then_builtin(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    chain_tree(tmp_path)
    snap = make_store(tmp_path).current
    assert snap.errors() == []
    leaf = snap.resolve("leaf")["parameters"]
    assert leaf.values["video_characteristics"] == "leafy"
    assert leaf.values["number_of_scenes"] == 5  # mid beats base
    assert leaf.values["camera_angle"] == "base-angle"  # base beats default
    assert leaf.values["video_type"] == "default-type"
    assert leaf.values["character_characteristics"]  # from the built-ins
    layers = {k: (p.layer, Path(p.file).parent.name if p.file else None) for k, p in leaf.provenance.items()}
    assert layers["video_characteristics"] == ("flavor", "leaf")
    assert layers["number_of_scenes"] == ("flavor:mid", "mid")
    assert layers["camera_angle"] == ("flavor:base", "base")
    assert layers["video_type"] == ("default", "default")
    assert layers["character_characteristics"][0] == "builtin"
    status = snap.statuses["leaf"].to_dict()
    assert (status["extends"], status["chain"]) == ("mid", ["mid", "base"])
    # siblings share a parent but never each other's keys
    assert snap.resolve("sibling")["parameters"].values["video_characteristics"] == "sib"
    assert snap.resolve("sibling")["parameters"].values["number_of_scenes"] == 3


def test_extends_default_is_the_same_as_no_extends(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    chain_tree(tmp_path)
    write(tmp_path, "plain", "parameters.yaml", "camera_angle: p\n")
    write(tmp_path, "explicit", "flavor.yaml", "extends: default\n")
    write(tmp_path, "explicit", "parameters.yaml", "camera_angle: p\n")
    snap = make_store(tmp_path).current
    assert snap.errors() == []
    plain, explicit = (
        snap.resolve("plain").to_wire()["configs"],
        snap.resolve("explicit").to_wire()["configs"],
    )
    for type_name, config in plain.items():
        assert explicit[type_name]["values"] == config["values"]
        layers = {k: p["layer"] for k, p in config["provenance"].items()}
        assert {k: p["layer"] for k, p in explicit[type_name]["provenance"].items()} == layers


# (files of the broken flavors, the flavor to look at, its expected status, words of the error, line)
BROKEN_CHAINS = [
    pytest.param({"a": "extends: a\n"}, "a", "invalid", "extends cycle: a -> a", 1, id="self"),
    pytest.param(
        {"a": "extends: b\n", "b": "description: b\nextends: a\n"},
        "b",
        "invalid",
        "extends cycle: a -> b -> a",
        2,
        id="two-cycle",
    ),
    pytest.param(
        {"a": "extends: b\n", "b": "extends: c\n", "c": "extends: a\n"},
        "c",
        "invalid",
        "extends cycle",
        1,
        id="three-cycle",
    ),
    pytest.param(
        {"a": "extends: b\n", "b": "extends: c\n", "c": "extends: b\n"},
        "a",
        "invalid",
        "parent flavor 'b' is invalid",
        1,
        id="cycle-above",
    ),
    pytest.param(
        {"a": "description: x\n\nextends: bse\n", "base": ""},
        "a",
        "invalid",
        "parent flavor 'bse' does not exist; did you mean 'base'?",
        3,
        id="missing-parent",
    ),
    pytest.param(
        {"a": "extends: base\n", "base": "extends: 7\n"},
        "base",
        "invalid",
        "must be a flavor name (a string), got int",
        1,
        id="not-a-string",
    ),
    pytest.param({"a": "extends: Bad Name\n"}, "a", "invalid", "invalid flavor name", 1, id="bad-name"),
    pytest.param(
        {"default": "extends: base\n", "base": ""},
        "default",
        "invalid",  # (requests still work: the built-ins serve as default)
        "the default flavor cannot extend another flavor",
        1,
        id="default-extends",
    ),
]


@pytest.mark.parametrize(("manifests", "flavor", "state", "words", "line"), BROKEN_CHAINS)
def test_a_broken_chain_is_a_validation_error_on_the_extends_line(
    tmp_path: Path,
    make_store: Callable[..., FlavorStore],
    manifests: dict[str, str],
    flavor: str,
    state: str,
    words: str,
    line: int,
) -> None:
    for name, text in manifests.items():
        write(tmp_path, name, "flavor.yaml", text)
    snap = make_store(tmp_path).current
    status = snap.statuses[flavor]
    assert status.status == state
    errors = [i for i in status.issues if i.is_error]
    assert errors, status
    text = str(errors[0])
    assert words in text, text
    assert text.startswith(f"{tmp_path.name}/{flavor}/flavor.yaml:{line}:"), text
    if flavor != "default":
        resolution = snap.resolve(flavor)
        assert resolution.fallback and resolution.flavor_used == "default"


def test_a_parent_with_a_broken_file_makes_its_children_invalid_with_the_parents_first_error(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    chain_tree(tmp_path)
    write(tmp_path, "base", "parameters.yaml", "number_of_scenes: many\n")
    snap = make_store(tmp_path).current
    for child in ("mid", "leaf", "sibling"):
        status = snap.statuses[child]
        assert status.status == FlavorState.INVALID
        first = next(i for i in status.issues if i.is_error)
        assert "parent flavor" in first.message and "base/parameters.yaml:1" in first.message, first


def test_a_parents_reload_re_resolves_its_children_in_the_same_generation(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    chain_tree(tmp_path)
    store = make_store(tmp_path)
    before = store.current
    path = write(tmp_path, "base", "parameters.yaml", "camera_angle: new-base-angle\nnumber_of_scenes: 3\n")
    event = store.rebuild("test", changed_paths=[path])  # the watcher's hint: only base changed
    assert event is not None and event.generation == before.generation + 1
    after = store.current
    for child in ("base", "mid", "leaf", "sibling"):
        assert after.resolve(child)["parameters"].values["camera_angle"] == "new-base-angle", child
    assert {"base", "mid", "leaf", "sibling"} <= set(event.changed)
    assert "default" not in event.changed
    assert after.resolve("default")["parameters"] is before.resolve("default")["parameters"]


def test_a_parent_that_breaks_keeps_children_serving_their_last_good_values(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    chain_tree(tmp_path)
    store = make_store(tmp_path)
    good = store.current.resolve("leaf").to_wire()["configs"]
    path = write(tmp_path, "base", "parameters.yaml", "camera_angle: [unclosed\n")
    store.rebuild("test", changed_paths=[path])
    snap = store.current
    assert snap.statuses["leaf"].status == FlavorState.ERROR and snap.statuses["leaf"].serving
    assert snap.resolve("leaf").to_wire()["configs"] == good
    # fixed again: everything is ok and values come from the new file
    path = write(tmp_path, "base", "parameters.yaml", "camera_angle: fixed\n")
    store.rebuild("test", changed_paths=[path])
    snap = store.current
    assert all(snap.statuses[n].status == FlavorState.OK for n in ("base", "mid", "leaf"))
    assert snap.resolve("leaf")["parameters"].values["camera_angle"] == "fixed"


def test_changing_extends_moves_a_flavor_to_another_parent(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    chain_tree(tmp_path)
    store = make_store(tmp_path)
    assert store.current.resolve("leaf")["parameters"].values["number_of_scenes"] == 5
    path = write(tmp_path, "leaf", "flavor.yaml", "extends: sibling\n")
    store.rebuild("test", changed_paths=[path])
    values = store.current.resolve("leaf")["parameters"].values
    assert values["number_of_scenes"] == 3 and values["video_characteristics"] == "leafy"
    assert store.current.statuses["leaf"].chain == ("sibling", "base")


def test_in_code_flavors_from_plugins_may_extend_directory_flavors(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    from mvcore import hookimpl

    chain_tree(tmp_path)

    class Inline:
        @hookimpl
        def mvcore_flavors(self) -> dict[str, object]:
            return {"coded": {"flavor": {"extends": "mid"}, "parameters": {"video_type": "coded"}}}

    snap = make_store(tmp_path, ("inline", Inline())).current
    resolved = snap.resolve("coded")["parameters"]
    assert resolved.values["video_type"] == "coded" and resolved.values["number_of_scenes"] == 5
    assert resolved.provenance["video_type"].layer == "plugin:inline"
    assert resolved.provenance["number_of_scenes"].layer == "flavor:mid"
