"""Bad input never escapes as a traceback: it becomes ``file:line: key.path: message``.

Every row of the table builds a store over a tmp flavors root that holds one broken
thing next to a good ``example2`` flavor, and checks that

* building the store raises nothing,
* the error names the file (relative to the flavors root's parent, never an absolute
  server path), the line where there is one and the key path where there is one,
* the good flavor still loads with its own values and the broken one is not served,
* ``mvcore flavors validate`` prints the same error and exits 1, without a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mvcore import hookimpl
from mvcore.cli import main
from mvcore.config.store import FlavorStore
from mvcore.config.validation import MAX_FILE_BYTES, Issue, read_yaml

# file[:line]: [key.path: ]message
ISSUE_FORMAT = re.compile(
    r"^(?P<file>[^\n]+?)(?::(?P<line>\d+))?: (?:(?P<path>[\w.-]+): )?(?P<message>.+)$", re.S
)

GOOD = "example2"
BAD = "bad"


def _write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    """Write ``rel`` (relative to the flavors root; a leading ``flavors/`` is the root itself)."""

    def setup(root: Path) -> None:
        path = root / rel.removeprefix("flavors/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return setup


def _alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _deep_nesting(levels: int = 100) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "leaf: 1\n"


def _directory_as_file(root: Path) -> None:
    (root / BAD / "parameters.yaml").mkdir(parents=True)


def _fifo(root: Path) -> None:
    (root / BAD).mkdir()
    os.mkfifo(root / BAD / "parameters.yaml")


def _symlink_file_outside(root: Path) -> None:
    outside = root.parent / "outside.yaml"
    outside.write_text("camera_angle: stolen\n")
    (root / BAD).mkdir()
    (root / BAD / "parameters.yaml").symlink_to(outside)


def _symlink_dir_outside(root: Path) -> None:
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (outside / "parameters.yaml").write_text("camera_angle: stolen\n")
    (root / BAD).symlink_to(outside, target_is_directory=True)


def _symlink_dir_to_parent(root: Path) -> None:
    (root / BAD).symlink_to("..", target_is_directory=True)


class InvalidNamePlugin:
    """An in-code flavor whose name tries to climb out of the flavors tree."""

    @hookimpl
    def mvcore_flavors(self) -> dict[str, Any]:
        return {
            "../x": {"parameters": {"camera_angle": "escaped"}},
            "fine": {"parameters": {"video_type": "ok"}},
        }


@dataclass(frozen=True)
class Case:
    setup: Callable[[Path], None]
    file: str
    line: int | None
    path: str
    fragment: str
    plugins: tuple[tuple[str, object], ...] = ()


P = f"flavors/{BAD}/parameters.yaml"
S = f"flavors/{BAD}/scene_prompts.yaml"

CASES: dict[str, Case] = {
    "invalid YAML syntax": Case(
        _write(P, "camera_angle: front\n  video_type: x\n"),
        P,
        2,
        "",
        "invalid YAML: mapping values are not allowed",
    ),
    "unclosed flow sequence": Case(
        _write(P, "camera_angle: front\nvideo_type: [a, b\n"), P, 3, "", "invalid YAML"
    ),
    "tab indentation": Case(_write(P, "camera_angle:\n\tfront\n"), P, 2, "", "invalid YAML"),
    "wrong type (str for int)": Case(
        _write(P, "camera_angle: front\nnumber_of_scenes: many\n"),
        P,
        2,
        "number_of_scenes",
        "'many' is not of type 'integer'",
    ),
    "wrong type (bool for str)": Case(
        _write(P, "video_type: yes\n"), P, 1, "video_type", "is not of type 'string'"
    ),
    "null value": Case(_write(P, "camera_angle:\n"), P, 1, "camera_angle", "None is not of type 'string'"),
    "out of range": Case(
        _write(P, "video_type: x\nnumber_of_scenes: 99\n"), P, 2, "number_of_scenes", "maximum of 32"
    ),
    "pattern mismatch": Case(
        _write(f"flavors/{BAD}/image_params.yaml", 'model: m\naspect_ratio: "16x9"\n'),
        f"flavors/{BAD}/image_params.yaml",
        2,
        "aspect_ratio",
        "does not match",
    ),
    "unknown key with did-you-mean": Case(
        _write(P, "camera_angle: front\ncamera_angel: wide\n"),
        P,
        2,
        "camera_angel",
        "unknown key 'camera_angel'; did you mean 'camera_angle'?",
    ),
    "unknown key without a close match": Case(
        _write(P, "camera_angle: front\nzzz: 1\n"), P, 2, "zzz", "allowed keys: character_characteristics"
    ),
    "unknown placeholder": Case(
        _write(S, 'scene_model: m\nscene_generation_prompt: "about {idae}"\n'),
        S,
        2,
        "scene_generation_prompt",
        "unknown placeholder {idae}; did you mean {idea}?",
    ),
    "placeholder of another template": Case(
        _write(
            f"flavors/{BAD}/image_prompts.yaml",
            'character_reference_prompt: "{character_description} {idea}"\n',
        ),
        f"flavors/{BAD}/image_prompts.yaml",
        1,
        "character_reference_prompt",
        "unknown placeholder {idea}",
    ),
    "unbalanced opening brace": Case(
        _write(S, 'scene_model: m\nscene_generation_prompt: "about {idea"\n'),
        S,
        2,
        "scene_generation_prompt",
        "unbalanced braces",
    ),
    "unbalanced closing brace": Case(
        _write(S, 'scene_model: m\nscene_generation_prompt: "about idea}"\n'),
        S,
        2,
        "scene_generation_prompt",
        "unbalanced braces",
    ),
    "positional {} placeholder": Case(
        _write(S, 'scene_model: m\nscene_generation_prompt: "about {}"\n'),
        S,
        2,
        "scene_generation_prompt",
        "positional placeholders",
    ),
    "positional {0} placeholder": Case(
        _write(f"flavors/{BAD}/image_params.yaml", 'video_rules_template: "ratio {0}"\n'),
        f"flavors/{BAD}/image_params.yaml",
        1,
        "video_rules_template",
        "positional placeholders",
    ),
    "anchor/alias bomb": Case(_write(P, _alias_bomb()), P, 2, "", "aliases"),
    "100-level nesting": Case(_write(P, _deep_nesting()), P, 34, "", "nesting deeper than 32 levels"),
    "100-level flow nesting": Case(
        _write(P, "a: " + "[" * 100 + "]" * 100 + "\n"), P, 1, "", "nesting deeper"
    ),
    "2 MiB file": Case(
        _write(P, "# " + "x" * (2 * 1024 * 1024) + "\ncamera_angle: x\n"),
        P,
        None,
        "",
        f"{MAX_FILE_BYTES}-byte limit",
    ),
    "file that is a directory": Case(_directory_as_file, P, None, "", "is a directory"),
    "FIFO instead of a file": Case(_fifo, P, None, "", "not a regular file"),
    "symlinked file pointing outside the root": Case(
        _symlink_file_outside, P, None, "", "symlink points outside the flavors directory"
    ),
    "symlinked flavor dir pointing outside the root": Case(
        _symlink_dir_outside, f"flavors/{BAD}", None, "", "symlink points outside the flavors directory"
    ),
    "symlinked flavor dir pointing at the parent": Case(
        _symlink_dir_to_parent, f"flavors/{BAD}", None, "", "symlink points outside the flavors directory"
    ),
    "flavor dir named 'Bad Name'": Case(
        _write("Bad Name/parameters.yaml", "camera_angle: x\n"),
        "flavors/Bad Name",
        None,
        "",
        "invalid flavor name",
    ),
    "flavor dir named '-x'": Case(
        _write("-x/parameters.yaml", "camera_angle: x\n"), "flavors/-x", None, "", "invalid flavor name"
    ),
    "flavor dir with upper case": Case(
        _write("Example/parameters.yaml", "camera_angle: x\n"),
        "flavors/Example",
        None,
        "",
        "invalid flavor name",
    ),
    "flavor dir name over 64 chars": Case(
        _write("a" * 65 + "/parameters.yaml", "camera_angle: x\n"),
        "flavors/" + "a" * 65,
        None,
        "",
        "invalid flavor name",
    ),
    "in-code flavor named '../x'": Case(
        lambda root: None,
        "plugin:climber",
        None,
        "",
        "invalid flavor name '../x'",
        plugins=(("climber", InvalidNamePlugin()),),
    ),
    "!!python/object tag on a scalar": Case(
        _write(P, "camera_angle: !!python/object:os.system ls\n"),
        P,
        1,
        "camera_angle",
        "unsupported YAML tag",
    ),
    "!!python/name tag": Case(
        _write(P, "camera_angle: !!python/name:os.system\n"), P, 1, "camera_angle", "unsupported YAML tag"
    ),
    "!!python/object/apply tag on a sequence": Case(
        _write(P, 'camera_angle: !!python/object/apply:os.system ["ls"]\n'),
        P,
        1,
        "camera_angle",
        "unsupported YAML tag",
    ),
    "!!python/object tag on the top-level mapping": Case(
        _write(P, "!!python/object:os.Popen\ncamera_angle: front\n"), P, 1, "", "unsupported YAML tag"
    ),
    "implicit timestamp value": Case(
        _write(P, "camera_angle: 2001-12-14\n"), P, 1, "camera_angle", "unsupported YAML tag"
    ),
    "non-UTF-8 bytes": Case(_write(P, b"camera_angle: caf\xe9\n"), P, None, "", "not valid UTF-8"),
    "NUL byte": Case(_write(P, b"camera_angle: a\x00b\n"), P, None, "", "NUL byte"),
    "top-level list instead of mapping": Case(
        _write(P, "- a\n- b\n"), P, 1, "", "top level must be a mapping"
    ),
    "top-level scalar": Case(_write(P, "just words\n"), P, 1, "", "top level must be a mapping"),
    "duplicate keys": Case(
        _write(P, "camera_angle: a\nvideo_type: x\ncamera_angle: b\n"), P, 3, "camera_angle", "duplicate key"
    ),
    "YAML merge key": Case(_write(P, "base: &b {camera_angle: x}\n<<: *b\n"), P, 2, "", "merge keys"),
    "non-string key": Case(_write(P, "1: a\n"), P, 1, "", "keys must be strings"),
    "bad manifest": Case(
        _write(f"flavors/{BAD}/flavor.yaml", "description: 3\n"),
        f"flavors/{BAD}/flavor.yaml",
        1,
        "description",
        "must be a string",
    ),
}


def _build(tmp_path: Path, make_store: Callable[..., FlavorStore], case: Case) -> tuple[Path, FlavorStore]:
    root = tmp_path / "flavors"
    (root / GOOD).mkdir(parents=True)
    (root / GOOD / "parameters.yaml").write_text("number_of_scenes: 5\ncamera_angle: tilted\n")
    case.setup(root)
    return root, make_store(root, *case.plugins)


def _matching(issues: list[Issue], case: Case) -> list[Issue]:
    return [i for i in issues if i.file == case.file and case.fragment in i.message]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_gives_a_clear_error_naming_the_file_and_the_good_flavor_still_loads(
    tmp_path: Path, make_store: Callable[..., FlavorStore], case: Case
) -> None:
    _, store = _build(tmp_path, make_store, case)
    snap = store.current
    errors = snap.errors()
    found = _matching(errors, case)
    assert found, f"no error for {case.file} with {case.fragment!r}; got {[str(e) for e in errors]}"
    issue = found[0]
    assert issue.line == case.line
    assert issue.path == case.path
    text = str(issue)
    where = f"{case.file}:{case.line}: " if case.line else f"{case.file}: "
    assert text.startswith(where), text
    match = ISSUE_FORMAT.match(text)
    assert match is not None, text
    assert match["file"] == case.file
    assert (match["line"] and int(match["line"])) == (case.line or None)
    assert (match["path"] or "") == case.path
    assert case.fragment in match["message"]
    for error in errors:
        assert "Traceback" not in str(error)
        assert str(tmp_path) not in str(error), "messages must not leak the server's directory layout"

    # The good flavor is untouched; the broken one is not served.
    good = snap.resolve(GOOD)
    assert (good.flavor_used, good.fallback) == (GOOD, False)
    assert good["parameters"]["number_of_scenes"] == 5
    assert good["parameters"]["camera_angle"] == "tilted"
    assert BAD not in snap.names()
    assert snap.resolve(BAD).fallback is True
    assert not any(n.startswith("..") or "/" in n or " " in n for n in snap.names())


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "name",
    [
        "invalid YAML syntax",
        "unknown key with did-you-mean",
        "duplicate keys",
        "2 MiB file",
        "FIFO instead of a file",
        "symlinked file pointing outside the root",
        "!!python/object tag on the top-level mapping",
    ],
)
def test_flavors_validate_prints_file_line_errors_and_exits_1_without_traceback(
    tmp_path: Path, make_store: Callable[..., FlavorStore], name: str
) -> None:
    case = CASES[name]
    root, store = _build(tmp_path, make_store, case)
    expected = str(_matching(store.current.errors(), case)[0])
    result = CliRunner().invoke(main, ["flavors", "validate", str(root)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert expected in result.output
    assert "Traceback" not in result.output


def test_every_error_of_a_file_is_collected_each_with_its_own_line(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    (root / BAD).mkdir(parents=True)
    (root / BAD / "image_params.yaml").write_text(
        "model: m\n"
        "video_duration: long\n"
        "aspect_ratio: wide\n"
        "vidoe_model: x\n"
        'video_rules_template: "{aspect_ratio} {ratio}"\n'
        "video_generate_audio: 3\n"
    )
    errors = [str(e) for e in make_store(root).current.errors()]
    shown = "flavors/bad/image_params.yaml"
    assert f"{shown}:2: video_duration: 'long' is not of type 'integer'" in errors
    assert any(e.startswith(f"{shown}:3: aspect_ratio: 'wide' does not match") for e in errors)
    assert f"{shown}:4: vidoe_model: unknown key 'vidoe_model'; did you mean 'video_model'?" in errors
    assert any(
        e.startswith(f"{shown}:5: video_rules_template: unknown placeholder {{ratio}}") for e in errors
    )
    assert f"{shown}:6: video_generate_audio: 3 is not of type 'boolean'" in errors
    assert len(errors) == 5


def test_nested_key_path_errors_name_the_dotted_path_and_its_line(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    class Nested:
        @hookimpl
        def mvcore_config_types(self) -> list[dict[str, Any]]:
            schema = {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "grade": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "curve": {"type": "object", "properties": {"gamma": {"type": "number"}}}
                        },
                    }
                },
            }
            return [{"name": "looks", "schema": schema}]

    root = tmp_path / "flavors"
    (root / BAD).mkdir(parents=True)
    (root / BAD / "looks.yaml").write_text("grade:\n  curve:\n    gamma: high\n  curvee: {}\n")
    errors = {str(e) for e in make_store(root, ("nested", Nested())).current.errors()}
    assert "flavors/bad/looks.yaml:3: grade.curve.gamma: 'high' is not of type 'number'" in errors
    assert "flavors/bad/looks.yaml:4: grade.curvee: unknown key 'curvee'; did you mean 'curve'?" in errors


def test_an_empty_file_is_an_empty_config_not_an_error(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = tmp_path / "flavors"
    (root / "quiet").mkdir(parents=True)
    (root / "quiet" / "parameters.yaml").write_text("# nothing here yet\n")
    snap = make_store(root).current
    assert snap.errors() == []
    assert snap.resolve("quiet").fallback is False


def test_read_yaml_never_raises_on_a_file_that_vanished(tmp_path: Path) -> None:
    parsed = read_yaml(tmp_path / "gone.yaml", display="flavors/x/gone.yaml")
    assert parsed.data is None
    assert [str(i) for i in parsed.issues] == [
        "flavors/x/gone.yaml: cannot read file: No such file or directory"
    ]
