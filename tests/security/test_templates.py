"""Templates are data: ``{name}`` and ``{{``/``}}``, nothing else -- in requests and in flavor files.

Under ``str.format``, ``{aspect_ratio.__class__.__mro__}`` answered Python internals with a 200,
``{aspect_ratio:x>100000000}`` took RSS to gigabytes, and ``{aspect_ratio[999]}``/``!x``/``:d``
were 500s; a flavor with ``{idea:x>50000000}`` validated as ok.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from mvcore.config import templates
from mvcore.config.store import FlavorStore

REPO = Path(__file__).resolve().parents[2]

HOSTILE = [
    "{aspect_ratio.__class__.__mro__}",
    "{aspect_ratio.__doc__}",
    "{aspect_ratio:x>100000000}",
    "{aspect_ratio[999]}",
    "{aspect_ratio!x}",
    "{aspect_ratio!r}",
    "{aspect_ratio:d}",
    "{aspect_ratio:{aspect_ratio}}",
    "{0}",
    "{}",
    "{ aspect_ratio }",
    "rules {",
    "rules }",
    "{aspect_ratio",
    "{{aspect_ratio}",
    "{aspect_ratio}}",
    "{unknown_name}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_request_templates_are_400_naming_the_field(client: TestClient, template: str) -> None:
    response = client.post(
        "/api/mv/generate_video", json={"prompt": "p", "duration": 1, "video_rules_template": template}
    )
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["details"]["field"] == "video_rules_template", detail
    assert "video_rules_template" in detail["message"]
    for leak in ("<class", "<built-in", "str(object", "Traceback"):
        assert leak not in response.text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("ratio {aspect_ratio}", "ratio 16:9"),
        ("{{literal}} {aspect_ratio} {{", "{literal} 16:9 {"),
        ("}}{{", "}{"),
    ],
)
def test_valid_request_templates_render(client: TestClient, template: str, expected: str) -> None:
    response = client.post(
        "/api/mv/generate_video",
        json={"prompt": "p", "duration": 1, "aspect_ratio": "16:9", "video_rules_template": template},
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["full_prompt"] == f"p\n\n{expected}".strip()


@pytest.mark.parametrize("template", ["{idea:x>50000000}", "{idea.__class__}", "{idea[0]}", "{idea!r}"])
def test_flavor_templates_outside_the_language_are_file_line_errors(
    flavors_dir: Path, make_store: Callable[..., FlavorStore], template: str
) -> None:
    bad = flavors_dir / "bad"
    bad.mkdir()
    (bad / "scene_prompts.yaml").write_text(f"# a comment\nscene_generation_prompt: '{template}'\n")
    store = make_store(flavors_dir)
    errors = [str(e) for e in store.current.errors()]
    assert any(e.startswith("flavors/bad/scene_prompts.yaml:2: scene_generation_prompt:") for e in errors), (
        errors
    )
    assert any("not a placeholder" in e for e in errors), errors
    assert "bad" not in store.current.names()


def test_block_scalar_template_errors_name_the_line_in_the_file(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    bad = flavors_dir / "bad"
    bad.mkdir()
    (bad / "scene_prompts.yaml").write_text(
        "scene_generation_prompt: |\n  Write {number_of_scenes} scenes\n  about {idea.__doc__}\n"
    )
    errors = [str(e) for e in make_store(flavors_dir).current.errors()]
    assert any(e.startswith("flavors/bad/scene_prompts.yaml:3: ") for e in errors), errors


@pytest.fixture
def small_prompts(tmp_path: Path) -> Any:
    from reliability import make_settings

    from mvcore.api.app import create_app
    from mvcore.config.plugins import PluginHost

    settings = make_settings(tmp_path, max_prompt_chars=3000)
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as test_client:
        yield test_client


def test_rendered_prompts_are_capped(small_prompts: TestClient) -> None:
    ok = small_prompts.post("/api/mv/create_scenes", json={"idea": "short", "character_description": "me"})
    assert ok.status_code == 200, ok.text
    long = small_prompts.post(
        "/api/mv/create_scenes", json={"idea": "x" * 5000, "character_description": "me"}
    )
    assert long.status_code == 400, long.text
    detail = long.json()["detail"]
    assert detail["details"]["limit"] == "MVCORE_MAX_PROMPT_CHARS"
    assert detail["details"]["field"] == "scene_generation_prompt"
    # a request template that repeats a placeholder is capped the same way
    rules = small_prompts.post(
        "/api/mv/generate_video",
        json={"prompt": "p", "duration": 1, "video_rules_template": "{aspect_ratio}" * 1000},
    )
    assert (
        rules.status_code == 400 and rules.json()["detail"]["details"]["limit"] == "MVCORE_MAX_PROMPT_CHARS"
    )


def test_the_cap_is_checked_before_the_text_is_built() -> None:
    parsed = templates.parse("{a}{a}{a}")
    with pytest.raises(templates.TemplateTooLong) as caught:
        parsed.render({"a": "y" * 1_000_000}, max_chars=100)
    assert caught.value.length == 3_000_000


# --------------------------------------------------------------------------- the language's laws
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@given(text=_TEXT)
def test_escaped_text_renders_back_to_itself(text: str) -> None:
    assert templates.parse(_escape(text)).render({}) == text


@given(
    pieces=st.lists(st.one_of(_TEXT.map(_escape), _NAME.map(lambda n: "{" + n + "}")), max_size=8),
    value=_TEXT,
)
def test_on_its_subset_the_language_agrees_with_str_format(pieces: list[str], value: str) -> None:
    """The oracle: for literals and bare names, the result is what ``str.format`` gives."""
    template = "".join(pieces)
    parsed = templates.parse(template)
    values = dict.fromkeys(parsed.names, value)
    assert parsed.render(values) == template.format(**values)
    assert parsed.names == {name for _, name, _, _ in string.Formatter().parse(template) if name}


@given(text=_TEXT)
def test_anything_else_is_refused_or_is_in_the_language(text: str) -> None:
    """Law: parse never raises anything but TemplateError, and what it accepts holds only names."""
    try:
        parsed = templates.parse(text)
    except templates.TemplateError as exc:
        assert exc.line >= 1 and exc.column >= 1
        return
    for name in parsed.names:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)


def test_no_str_format_on_templates_anywhere_in_mvcore() -> None:
    offenders = []
    for path in (REPO / "mvcore").rglob("*.py"):
        text = path.read_text()
        for needle in ("vformat(", "format_map(", "Formatter().parse"):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []
