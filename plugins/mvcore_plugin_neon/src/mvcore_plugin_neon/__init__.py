"""Example mvcore plugin: the 'neon' flavors and the 'color_grade' config type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mvcore

COLOR_GRADE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ColorGrade",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "palette": {"type": "array", "items": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}},
        "saturation": {"type": "number", "minimum": 0, "maximum": 3},
        "contrast": {"type": "number", "minimum": 0, "maximum": 3},
        "grain": {"type": "boolean"},
    },
}


@mvcore.hookimpl
def mvcore_flavor_dirs() -> list[Path]:
    return [Path(__file__).parent / "flavors"]


@mvcore.hookimpl
def mvcore_config_types() -> list[dict[str, Any]]:
    return [
        {
            "name": "color_grade",
            "schema": COLOR_GRADE_SCHEMA,
            "defaults": {
                "palette": ["#ff00aa", "#00e5ff"],
                "saturation": 1.0,
                "contrast": 1.0,
                "grain": False,
            },
            "description": "Colour grading applied to rendered clips",
        }
    ]


@mvcore.hookimpl
def mvcore_flavors() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "neon_minimal": {
            "flavor": {"description": "In-code flavor: neon look, three scenes"},
            "parameters": {"number_of_scenes": 3, "video_characteristics": "neon, night city, rain"},
            "color_grade": {"saturation": 1.6},
        }
    }
