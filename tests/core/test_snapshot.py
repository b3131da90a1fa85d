"""Snapshots: generations, last-known-good, the wire shape, the fast path, pinning."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mvcore import hookimpl
from mvcore.config.config_types import ConfigType
from mvcore.config.snapshot import base_layer
from mvcore.config.store import FlavorStore
from mvcore.errors import FlavorNotFound


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---------------------------------------------------------------------------
# Generations
# ---------------------------------------------------------------------------


def test_generation_starts_at_1_and_stays_when_nothing_changed(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    first = store.current
    assert first.generation == 1
    assert store.rebuild() is None
    assert store.rebuild("again") is None
    assert store.current is first


def test_touching_rewriting_alike_or_editor_temp_files_do_not_bump_the_generation(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    params = flavors_dir / "example" / "parameters.yaml"
    os.utime(params, ns=(1, 1))
    assert store.rebuild() is None
    params.write_text(params.read_text())
    assert store.rebuild() is None
    (flavors_dir / "example" / ".parameters.yaml.swp").write_bytes(b"\x00junk")
    (flavors_dir / "example" / "parameters.yaml~").write_text("garbage: [")
    (flavors_dir / ".git").mkdir()
    assert store.rebuild() is None
    assert store.current.generation == 1


def test_a_change_bumps_the_generation_and_reports_the_diff(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 9\n")
    event = store.rebuild("edit")
    assert event is not None
    assert (event.generation, event.previous_generation) == (2, 1)
    assert event.changed == ["example"] and event.added == [] and event.removed == []
    assert event.errors == [] and event.reason == "edit"
    assert store.current.generation == 2
    assert store.current.resolve("example")["parameters"]["number_of_scenes"] == 9

    write(flavors_dir / "fresh" / "parameters.yaml", "camera_angle: new\n")
    event = store.rebuild()
    assert event is not None and event.generation == 3 and event.added == ["fresh"]

    shutil.rmtree(flavors_dir / "fresh")
    event = store.rebuild()
    assert event is not None and event.generation == 4 and event.removed == ["fresh"]
    assert not store.current.has("fresh")
    assert store.current.resolve("fresh").fallback is True

    write(flavors_dir / "default" / "parameters.yaml", "video_type: music video\n")
    event = store.rebuild()
    assert event is not None and event.generation == 5
    assert set(event.changed) >= {"default", "example", "test_flavor"}  # everyone inherits default
    assert store.current.resolve("test_flavor")["parameters"]["video_type"] == "music video"


def test_an_old_snapshot_never_changes_after_a_rebuild(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    old = store.current
    write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 9\n")
    store.rebuild()
    assert old.resolve("example")["parameters"]["number_of_scenes"] == 6
    assert old.get("parameters", "number_of_scenes", "example") == 6
    assert store.current.resolve("example")["parameters"]["number_of_scenes"] == 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        old.generation = 7  # type: ignore[misc]
    with pytest.raises(TypeError):
        old.resolve("example")["parameters"].values["number_of_scenes"] = 1  # type: ignore[index]


# ---------------------------------------------------------------------------
# Last known good
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("number_of_scenes: [unclosed\n", "flavors/example/parameters.yaml:2: invalid YAML"),
        (
            "number_of_scenes: lots\n",
            "flavors/example/parameters.yaml:1: number_of_scenes: 'lots' is not of type",
        ),
        ("numbr_of_scenes: 3\n", "flavors/example/parameters.yaml:1: numbr_of_scenes: unknown key"),
    ],
)
def test_a_broken_flavor_keeps_serving_its_last_good_values_with_status_error(
    flavors_dir: Path, make_store: Callable[..., FlavorStore], text: str, error: str
) -> None:
    store = make_store(flavors_dir)
    before = store.current.resolve("example").to_wire()["configs"]
    write(flavors_dir / "example" / "parameters.yaml", text)
    event = store.rebuild()
    assert event is not None
    assert any(e["text"].startswith(error) for e in event.errors), event.errors
    snap = store.current
    status = snap.statuses["example"]
    assert (status.status, status.serving) == ("error", True)
    assert any(str(i).startswith(error) for i in status.issues)
    assert status.to_dict()["errors"][0]["text"].startswith(error)
    resolution = snap.resolve("example")
    assert (resolution.flavor_used, resolution.fallback) == ("example", False)
    assert resolution.to_wire()["configs"] == before
    assert "example" in snap.names()

    # Breaking it again differently still serves the same last good values.
    write(flavors_dir / "example" / "parameters.yaml", "camera_angle: 5\n")
    store.rebuild()
    assert store.current.resolve("example").to_wire()["configs"] == before
    assert store.current.statuses["example"].status == "error"

    # Fixing it serves the new values and clears the error.
    write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 12\n")
    store.rebuild()
    assert store.current.statuses["example"].status == "ok"
    assert store.current.resolve("example")["parameters"]["number_of_scenes"] == 12
    assert store.current.errors() == []


def test_a_flavor_that_was_never_valid_is_not_served_and_requests_fall_back(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    write(flavors_dir / "broken" / "parameters.yaml", "number_of_scenes: 0\n")
    store = make_store(flavors_dir)
    snap = store.current
    status = snap.statuses["broken"]
    assert (status.status, status.serving) == ("invalid", False)
    assert [str(i) for i in status.issues] == [
        "flavors/broken/parameters.yaml:1: number_of_scenes: 0 is less than the minimum of 1"
    ]
    assert "broken" not in snap.names() and not snap.has("broken")
    resolution = snap.resolve("broken")
    assert (resolution.flavor_requested, resolution.flavor_used, resolution.fallback) == (
        "broken",
        "default",
        True,
    )
    with pytest.raises(FlavorNotFound):
        snap.resolve("broken", strict=True)

    write(flavors_dir / "broken" / "parameters.yaml", "number_of_scenes: 1\n")
    store.rebuild()
    assert store.current.resolve("broken").fallback is False
    assert store.current.statuses["broken"].status == "ok"


def test_deleting_default_keeps_the_last_good_default(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    write(flavors_dir / "default" / "parameters.yaml", "video_type: house style\n")
    store = make_store(flavors_dir)
    before = store.current.resolve("test_flavor").to_wire()["configs"]
    assert before["parameters"]["values"]["video_type"] == "house style"
    shutil.rmtree(flavors_dir / "default")
    store.rebuild()
    snap = store.current
    assert snap.resolve("test_flavor").to_wire()["configs"] == before
    assert snap.resolve("default")["parameters"]["video_type"] == "house style"
    status = snap.statuses["default"]
    assert (status.status, status.serving) == ("error", True)
    assert any("default flavor disappeared; serving last good" in str(i) for i in status.issues)

    write(flavors_dir / "default" / "parameters.yaml", "video_type: back again\n")
    store.rebuild()
    assert store.current.statuses["default"].status == "ok"
    assert store.current.resolve("test_flavor")["parameters"]["video_type"] == "back again"


def test_breaking_default_keeps_the_last_good_default_for_every_flavor(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    before = {n: store.current.resolve(n).to_wire()["configs"] for n in ("default", "example", "test_flavor")}
    write(flavors_dir / "default" / "image_params.yaml", "video_duration: forever\n")
    store.rebuild()
    snap = store.current
    assert snap.statuses["default"].status == "error"
    for name, configs in before.items():
        assert snap.resolve(name).to_wire()["configs"] == configs


def test_without_any_default_flavor_default_is_the_builtin_layer(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    shutil.rmtree(flavors_dir / "default")
    snap = make_store(flavors_dir).current
    assert snap.names()[0] == "default"
    prov = snap.resolve("test_flavor")["parameters"].provenance
    assert prov["video_type"].layer == "builtin"
    assert prov["camera_angle"].layer == "flavor"


# ---------------------------------------------------------------------------
# The wire shape and the fast path
# ---------------------------------------------------------------------------


def test_resolution_to_wire_has_exactly_the_documented_shape(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    snap = make_store(flavors_dir).current
    for requested in ("test_flavor", "nosuch", None):
        wire = snap.resolve(requested).to_wire()
        assert set(wire) == {"flavor_requested", "flavor_used", "fallback", "generation", "digest", "configs"}
        assert wire["digest"] == snap.digest(wire["flavor_used"])
        assert wire["flavor_requested"] == requested
        assert wire["flavor_used"] == ("test_flavor" if requested == "test_flavor" else "default")
        assert wire["fallback"] is (requested == "nosuch")
        assert wire["generation"] == 1
        assert set(wire["configs"]) == set(snap.registry.names())
        for config in wire["configs"].values():
            assert set(config) == {"values", "provenance"}
            assert isinstance(config["values"], dict)
            for dotted, prov in config["provenance"].items():
                assert isinstance(dotted, str)
                assert set(prov) == {"layer", "file", "line"}
                assert prov["layer"] in {"flavor", "default", "builtin"}
                assert isinstance(prov["file"], str) and isinstance(prov["line"], int)
        assert json.loads(json.dumps(wire)) == wire  # plain JSON all the way down
    one = snap.resolve("example").to_wire("parameters")
    assert list(one["configs"]) == ["parameters"]


def test_wire_provenance_uses_dotted_paths_for_nested_values(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    write(flavors_dir / "example" / "looks.yaml", "grade:\n  curve:\n    gamma: 2.2\n  lut: film\n")
    snap = make_store(flavors_dir, ("looks", LooksType())).current
    config = snap.resolve("example").to_wire()["configs"]["looks"]
    assert config["values"] == {"grade": {"curve": {"gamma": 2.2, "knee": 0.8}, "lut": "film"}}
    assert set(config["provenance"]) == {"grade.curve.gamma", "grade.curve.knee", "grade.lut"}
    assert config["provenance"]["grade.curve.gamma"]["line"] == 3
    assert config["provenance"]["grade.curve.knee"] == {"layer": "plugin:looks", "file": None, "line": None}


class LooksType:
    @hookimpl
    def mvcore_config_types(self) -> list[dict[str, Any]]:
        return [
            {"name": "looks", "schema": {"type": "object"}, "defaults": {"grade": {"curve": {"knee": 0.8}}}}
        ]


def test_snapshot_get_is_the_fast_path_including_dotted_keys(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    write(flavors_dir / "example" / "looks.yaml", "grade:\n  curve:\n    gamma: 2.2\n")
    snap = make_store(flavors_dir, ("looks", LooksType())).current
    assert snap.get("parameters", "number_of_scenes", "example") == 6
    assert snap.get("parameters", "number_of_scenes") == 4
    assert snap.get("parameters", "number_of_scenes", "nosuch") == 4  # unknown -> default
    assert snap.get("image_params", "video_duration", "test_flavor") == 8
    assert snap.get("looks", "grade.curve.gamma", "example") == 2.2
    assert snap.get("looks", "grade.curve.knee", "example") == 0.8
    assert snap.get("looks", "grade.curve", "default") == {"knee": 0.8}
    for flavor in ("default", "example", "test_flavor"):
        resolution = snap.resolve(flavor)
        for type_name, config in resolution.configs.items():
            for key, value in config.values.items():
                assert snap.get(type_name, key, flavor) == value
    with pytest.raises(KeyError):
        snap.get("parameters", "no_such_key", "example")
    with pytest.raises(KeyError):
        snap.get("no_such_type", "x")


def test_resolving_the_same_flavor_twice_is_a_cached_lookup(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    snap = make_store(flavors_dir).current
    assert snap.resolve("example") is snap.resolve("example")
    assert snap.resolve("example").configs["parameters"] is snap.resolved["example"]["parameters"]


# ---------------------------------------------------------------------------
# Pinning
# ---------------------------------------------------------------------------


def test_a_pinned_snapshot_survives_a_rebuild_inside_the_block(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    with store.pin() as snap:
        assert snap is store.current
        write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 9\n")
        assert store.rebuild() is not None
        assert store.current is not snap and store.current.generation == 2
        assert store.snapshot() is snap
        assert store.snapshot().resolve("example")["parameters"]["number_of_scenes"] == 6
    assert store.snapshot() is store.current
    assert store.snapshot().resolve("example")["parameters"]["number_of_scenes"] == 9


def test_pins_nest_and_unwind(flavors_dir: Path, make_store: Callable[..., FlavorStore]) -> None:
    store = make_store(flavors_dir)
    with store.pin() as outer:
        write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 9\n")
        store.rebuild()
        with store.pin(store.current) as inner:
            assert store.snapshot() is inner and inner is not outer
        assert store.snapshot() is outer
    assert store.snapshot() is store.current


def test_a_pin_is_local_to_its_thread(flavors_dir: Path, make_store: Callable[..., FlavorStore]) -> None:
    store = make_store(flavors_dir)
    seen: list[int] = []
    with store.pin() as snap:
        write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 9\n")
        store.rebuild()
        worker = threading.Thread(target=lambda: seen.append(store.snapshot().generation))
        worker.start()
        worker.join()
        assert store.snapshot() is snap
    assert seen == [2]


async def test_a_pin_is_local_to_its_asyncio_task(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir)
    pinned = asyncio.Event()
    rebuilt = asyncio.Event()

    async def request() -> tuple[int, int]:
        with store.pin() as snap:
            pinned.set()
            await rebuilt.wait()
            return snap.generation, store.snapshot().generation

    async def reload() -> int:
        await pinned.wait()
        write(flavors_dir / "example" / "parameters.yaml", "number_of_scenes: 9\n")
        store.rebuild()
        rebuilt.set()
        return store.snapshot().generation

    (pinned_gen, seen_gen), reload_gen = await asyncio.gather(request(), reload())
    assert (pinned_gen, seen_gen, reload_gen) == (1, 1, 2)


def test_pinning_one_store_does_not_pin_another(
    flavors_dir: Path, tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    one = make_store(flavors_dir)
    other = make_store(tmp_path / "empty-root")
    with one.pin():
        assert other.snapshot() is other.current


def test_the_base_layer_of_a_plugin_type_never_serves_another_type_s_defaults() -> None:
    # Short-lived hosts (tests, CLI calls) free their config types; a new type's defaults may
    # then get the same id() as a freed one.  The cached base layer must not be reused for it.
    # (Without a guard CPython hands a freed dict's address to the next one within a few rounds.)
    for i in range(200):
        defaults = {"v": i}
        config_type = ConfigType(name="grading", schema={}, owner="plugin:p", defaults=defaults)
        assert base_layer(config_type).layer.data == {"v": i}
        del config_type, defaults
