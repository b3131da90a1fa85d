"""config_overrides as the topmost layer ``request``: checks, the allow-list, provenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mvcore.config.overrides import apply_overrides, check_overrides, is_allowed
from mvcore.config.store import FlavorStore
from mvcore.errors import BadInput, SchemaViolation


@pytest.mark.parametrize(
    ("config_type", "key", "allowed", "expected"),
    [
        ("parameters", "camera_angle", None, True),
        ("image_params", "model", None, False),  # by default no key that picks a model
        ("image_params", "video_model", None, False),
        ("scene_prompts", "scene_model", None, False),
        ("image_params", "model", ["image_params.model"], True),
        ("image_params", "aspect_ratio", ["image_params.model"], False),
        ("image_params", "aspect_ratio", ["image_params.*"], True),
        ("parameters", "camera_angle", [], False),
        ("parameters", "camera_angle", ["*"], True),
    ],
)
def test_the_allow_list_decides_which_keys_a_request_may_override(
    config_type: str, key: str, allowed: list[str] | None, expected: bool
) -> None:
    assert is_allowed(config_type, key, allowed) is expected


def test_overrides_are_the_top_layer_and_keep_the_provenance_of_everything_else(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "parameters.yaml").write_text("camera_angle: low\nvideo_type: clip\n")
    snap = make_store(tmp_path).current
    overrides: dict[str, Any] = {"parameters": {"camera_angle": "wide"}}
    check_overrides(overrides, snap.registry)
    base = snap.resolve("default")
    result = apply_overrides(base, overrides)
    config = result["parameters"]
    assert config.values["camera_angle"] == "wide" and config.values["video_type"] == "clip"
    assert config.provenance["camera_angle"].layer == "request"
    assert config.provenance["video_type"] == base["parameters"].provenance["video_type"]
    assert result.meta()["overrides"] == overrides
    assert base["parameters"].values["camera_angle"] == "low"  # the snapshot is untouched
    assert apply_overrides(base, None) is base


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"nope": {}}, SchemaViolation, "config_overrides.nope"),
        ({"parameters": {"camera": "x"}}, SchemaViolation, "config_overrides.parameters.camera"),
        (
            {"parameters": {"number_of_scenes": 0}},
            SchemaViolation,
            "config_overrides.parameters.number_of_scenes",
        ),
        ({"lipsync_params": {"model": "x/y"}}, BadInput, "config_overrides.lipsync_params.model"),
    ],
)
def test_bad_overrides_name_the_field(
    tmp_path: Path, make_store: Callable[..., FlavorStore], overrides: Any, error: type, field: str
) -> None:
    snap = make_store(tmp_path).current
    with pytest.raises(error) as caught:
        check_overrides(overrides, snap.registry)
    assert caught.value.details["field"] == field  # type: ignore[attr-defined]
