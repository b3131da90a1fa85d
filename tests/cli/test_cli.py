"""The ``mvcore`` command as a user meets it: help, exit codes, paths, and the long-running commands."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from mvcore import __version__
from mvcore.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _commands(group: click.Group, prefix: str = "mvcore") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


@pytest.mark.parametrize(
    ("path", "command"), list(_commands(main)), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_command_and_option_has_help_text(path: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"{path} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help"


def test_version_prints_the_package_version() -> None:
    code, out, _ = run("--version")
    assert (code, out.strip()) == (0, f"mvcore {__version__}")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--no-such-option"], 2),
        (["flavors", "show"], 2),  # missing argument
        (["flavors", "validate", "does/not/exist"], 2),  # click's own path check
        (["flavors", "show", "nosuch", "--strict"], 1),  # not found is the command's failure
        (["flavors", "diff", "default", "nosuch"], 1),
        (["flavors", "list"], 0),
        (["plugins", "list"], 0),
    ],
)
def test_exit_codes_usage_errors_are_2_reported_failures_are_1(
    args: list[str], code: int, flavors_dir: Path
) -> None:
    env = {"MVCORE_FLAVORS_DIR": str(flavors_dir)}
    assert run(*args, env=env)[0] == code


def test_an_unknown_flavor_prints_error_and_hint_on_stderr_or_one_json_object(flavors_dir: Path) -> None:
    env = {"MVCORE_FLAVORS_DIR": str(flavors_dir)}
    code, out, err = run("flavors", "show", "nosuch", "--strict", env=env)
    assert code == 1 and out == ""
    assert err.startswith("error: Config flavor 'nosuch' does not exist\nhint: ")
    code, out, err = run("flavors", "show", "nosuch", "--strict", "--json", env=env)
    assert code == 1 and json.loads(out)["detail"]["error"] == "FLAVOR_NOT_FOUND"


def test_validate_prints_each_error_once_with_the_path_as_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "roots" / "fl" / "bad"
    bad.mkdir(parents=True)
    (bad / "parameters.yaml").write_text('number_of_scenes: "x"\nbogus: 1\n')
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run("flavors", "validate", "../roots/fl")
    lines = err.splitlines()
    assert code == 1
    assert [line.split(":")[0:2] for line in lines] == [
        ["../roots/fl/bad/parameters.yaml", "1"],
        ["../roots/fl/bad/parameters.yaml", "2"],
    ]
    assert all(Path(line.split(":")[0]).is_file() for line in lines)  # opens from here
    code, out, err = run("flavors", "validate", "../roots/fl/bad")
    assert code == 1 and "1 flavor(s) checked: 2 error(s)" in out
    assert err.splitlines()[0].startswith("../roots/fl/bad/parameters.yaml:1: number_of_scenes:")


def test_diff_lists_differing_values_and_says_when_there_are_none(flavors_dir: Path) -> None:
    env = {"MVCORE_FLAVORS_DIR": str(flavors_dir)}
    code, out, _ = run("flavors", "diff", "default", "example", "--json", env=env)
    rows = json.loads(out)
    assert (
        code == 0
        and {"config_type": "parameters", "key": "number_of_scenes"}.items()
        <= next(r for r in rows if r["key"] == "number_of_scenes").items()
    )
    code, out, _ = run("flavors", "diff", "default", "default", env=env)
    assert (code, out.strip()) == (0, "default and default resolve to the same values")


def test_new_scaffolds_a_flavor_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    root = tmp_path / "flavors"
    code, out, _ = run("flavors", "new", "my_style", "--dir", str(root))
    assert code == 0 and out.startswith("created ")
    assert run("flavors", "validate", str(root / "my_style"))[0] == 0
    code, _, err = run("flavors", "new", "my_style", "--dir", str(root))
    assert code == 1 and err.startswith("error: ")
    assert run("flavors", "new", "my_style", "--dir", str(root), "--force")[0] == 0
    assert run("flavors", "new", "Bad Name", "--dir", str(root))[0] == 1


def test_plugins_list_shows_the_builtin_and_the_installed_example_plugin() -> None:
    code, out, _ = run("plugins", "list", "--json")
    names = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and names["builtin"]["source"] == "builtin"
    assert names["neon"]["source"] == "entry-point" and names["neon"]["errors"] == []


def test_schemas_export_check_fails_on_drift_and_passes_after_export(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    assert run("schemas", "export", "--dir", str(target))[0] == 0
    assert run("schemas", "export", "--dir", str(target), "--check")[0] == 0
    first = sorted(target.glob("*.json"))[0]
    first.write_text("{}")
    code, _, err = run("schemas", "export", "--dir", str(target), "--check")
    assert code == 1 and first.name in err


# ------------------------------------------------------------------ long-running commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MVCORE_", "API_KEY", "REPLICATE"))}
    env.update(MVCORE_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1", **extra)
    return env


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """Lines of the merged output up to the one containing ``needle`` (bounded in time)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return "".join(seen)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.02)
    raise AssertionError(f"{needle!r} not seen in {timeout} s; output so far:\n{''.join(seen)}")


def _stop(proc: subprocess.Popen[str], sig: int, timeout: float = 5.0) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S")
BANNER = ("mvcore ", "  ", "warning: ")


def _assert_one_log_format(out: str) -> None:
    """uvicorn, Litestar and mvcore records share one layout; only the start-up banner differs."""
    records = [line for line in out.splitlines() if line and not line.startswith(BANNER)]
    assert {"uvicorn.error", "mvcore"} <= {line.split(" ")[3].rstrip(":") for line in records}
    assert [line for line in records if not LOG_LINE.match(line)] == []


def test_serve_prints_its_urls_warns_about_a_missing_flavors_dir_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = _free_port()
    missing = tmp_path / "no-flavors-here"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvcore.cli", "serve", "--port", str(port), "--flavors-dir", str(missing)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = _read_until(proc, "Uvicorn running", timeout=60)
        assert f"web UI:   http://127.0.0.1:{port}/" in out
        assert f"OpenAPI:  http://127.0.0.1:{port}/schema/openapi.json" in out
        assert f"warning: flavors directory {missing} does not exist" in out
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        started = time.monotonic()
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15)
        assert _stop(proc, signal.SIGTERM) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 5
        assert proc.stdout is not None
        out += proc.stdout.read()
        assert "Application shutdown complete" in out
        _assert_one_log_format(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_watch_prints_a_reload_event_for_an_edit_and_stops_on_ctrl_c(
    flavors_dir: Path, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvcore.cli", "flavors", "watch", "--flavors-dir", str(flavors_dir)],
        cwd=tmp_path,
        env=_env(tmp_path, MVCORE_DEBOUNCE_MS="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _read_until(proc, "watching ", timeout=30)
        time.sleep(0.3)  # the observer is started right after the banner
        target = flavors_dir / "example" / "parameters.yaml"
        target.write_text(target.read_text().replace("number_of_scenes: 6", "number_of_scenes: 7"))
        line = _read_until(proc, '"generation"', timeout=15).splitlines()[-1]
        event = json.loads(line)
        assert "example" in event["changed"]
        assert _stop(proc, signal.SIGINT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
