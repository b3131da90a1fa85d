"""Getting a scene list out of an LLM's answer.

LLMs on Replicate stream tokens, wrap JSON in code fences and add chatter; this module joins the
output, finds the JSON object in it and checks it has the scenes asked for.  Provider-independent,
so any text-generating backend can reuse it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from mvcore.providers.base import Scene

SCENES_SYSTEM_PROMPT = (
    'Answer with one JSON object only, shaped {"scenes": [{"description": "...", '
    '"negative_description": "..."}]}, and no other text.'
)
_FENCE = re.compile(r"```(?:[a-zA-Z0-9_-]+)?\s*(.*?)```", re.DOTALL)


def join_text(output: Any) -> str:
    """LLM output on Replicate is usually a list of string tokens; join it."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list | tuple):
        return "".join(join_text(o) for o in output)
    if isinstance(output, Mapping):
        for key in ("output", "text", "content", "response"):
            if key in output:
                return join_text(output[key])
        return json.dumps(output)
    return str(output)


def _candidates(text: str) -> list[str]:
    stripped = text.strip()
    out = [stripped]
    out += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        out.append(stripped[start : end + 1])
    return out


def _parse_json_object(text: str) -> Any:
    for candidate in _candidates(text):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    # Last resort: the first decodable JSON value that starts at a '{' and has "scenes".
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "scenes" in value:
            return value
    raise ValueError("no JSON object found in the output")


def extract_scenes(text: str, number_of_scenes: int) -> list[Scene]:
    """Parse ``{"scenes": [{"description", "negative_description"}]}`` out of free LLM text.

    Code fences and chatter around the object are tolerated; a bare list of scenes is accepted.
    More scenes than asked are truncated; fewer, or anything unusable, raise ``ValueError``.
    """
    if not text.strip():
        raise ValueError("the output was empty")
    data = _parse_json_object(text)
    raw = data.get("scenes") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ValueError('the JSON has no "scenes" list')
    scenes: list[Scene] = []
    for i, item in enumerate(raw):
        if isinstance(item, str) and item.strip():
            scenes.append(Scene(description=item.strip(), negative_description=""))
            continue
        if not isinstance(item, dict):
            raise ValueError(f"scene {i + 1} is not an object")
        desc = item.get("description")
        if not isinstance(desc, str) or not desc.strip():
            raise ValueError(f'scene {i + 1} has no "description"')
        neg = item.get("negative_description")
        scenes.append(Scene(description=desc.strip(), negative_description=str(neg or "").strip()))
    if len(scenes) < number_of_scenes:
        raise ValueError(f"got {len(scenes)} scene(s), expected {number_of_scenes}")
    return scenes[:number_of_scenes]
