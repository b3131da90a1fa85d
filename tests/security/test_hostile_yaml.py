"""Hostile flavor files: each is rejected with a clear error, the other flavors load, and loading
costs bounded time and memory.

``tests/core/test_validation_errors.py`` has the table of bad inputs and their messages; this goes
further: the expensive shapes a flavor author (or an attacker with write access to a flavor
directory) can hand the loader -- billion laughs, deep nesting, a 50 MiB file, a million tiny nodes
inside the 1 MiB cap, a FIFO nobody writes to, symlink loops and escapes -- with the time (wall
clock) and memory (tracemalloc peak of Python allocations, and the process' max RSS growth for the
C parser's) of a whole store build measured and asserted, through the store and the live API.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.config.validation import MAX_FILE_BYTES

TIME_LIMIT_S = 3.0
PEAK_LIMIT_BYTES = 24 * 1024 * 1024  # Python allocations while building the whole store
RSS_GROWTH_LIMIT_KB = 96 * 1024
GOOD = 'camera_angle: "good"\nnumber_of_scenes: 3\n'


def billion_laughs() -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return ("\n".join(lines) + "\ncamera_angle: *a9\n").encode()


def scalar_alias_flood() -> bytes:
    """One anchor, referenced until the file hits the size cap (each alias is cheap, but many)."""
    head = b'x: &x "lol"\nlist: ['
    count = (MAX_FILE_BYTES - len(head) - 8) // 4
    return head + b"*x, " * count + b"*x]\n"


def tiny_nodes() -> bytes:
    """Half a million one-character nodes, just under the 1 MiB cap."""
    count = (MAX_FILE_BYTES - 32) // 2
    return b"camera_angle: [" + b"1," * count + b"1]\n"


def flow_nesting(levels: int) -> bytes:
    return b"camera_angle: " + b"[" * levels + b"]" * levels + b"\n"


def block_nesting(levels: int) -> bytes:
    lines = [("  " * i) + f"k{i}:" for i in range(levels)]
    return ("camera_angle:\n" + "\n".join("  " + line for line in lines) + " leaf\n").encode()


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], None]  # builds the hostile thing inside the flavor directory ``bad``
    fragment: str  # part of the error message
    where: str = "flavor"  # "flavor": reported on flavor ``bad``; "root": a discovery issue


def writes(content: bytes | str, name: str = "parameters.yaml") -> Callable[[Path], None]:
    def make(directory: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (directory / name).write_bytes(data)

    return make


def fifo(directory: Path) -> None:
    os.mkfifo(directory / "parameters.yaml")  # nobody ever writes to it: opening it would block forever


def file_loop(directory: Path) -> None:
    (directory / "parameters.yaml").symlink_to("parameters.yaml")


def file_loop_pair(directory: Path) -> None:
    (directory / "parameters.yaml").symlink_to("image_params.yaml")
    (directory / "image_params.yaml").symlink_to("parameters.yaml")


def file_escape(directory: Path) -> None:
    outside = directory.parents[1] / "outside.yaml"
    outside.write_text('camera_angle: "stolen"\n')
    (directory / "parameters.yaml").symlink_to(outside)


def file_to_system(directory: Path) -> None:
    (directory / "parameters.yaml").symlink_to("/etc/passwd")


def file_to_device(directory: Path) -> None:
    (directory / "parameters.yaml").symlink_to("/dev/zero")


def big_file(directory: Path) -> None:
    with open(directory / "parameters.yaml", "wb") as out:
        out.write(b'camera_angle: "huge"\ndescription: "')
        chunk = b"x" * (1 << 20)
        for _ in range(50):
            out.write(chunk)
        out.write(b'"\n')


def dir_loop(directory: Path) -> None:
    directory.rmdir()
    directory.symlink_to(directory.name)


def dir_escape(directory: Path) -> None:
    outside = directory.parents[1] / "elsewhere"
    outside.mkdir()
    (outside / "parameters.yaml").write_text('camera_angle: "stolen"\n')
    directory.rmdir()
    directory.symlink_to(outside, target_is_directory=True)


CASES: dict[str, Case] = {
    "billion laughs": Case(writes(billion_laughs()), "aliases"),
    "alias flood up to the size cap": Case(writes(scalar_alias_flood()), "too many YAML nodes"),
    "half a million tiny nodes": Case(writes(tiny_nodes()), "too many YAML nodes"),
    "100-level flow nesting": Case(writes(flow_nesting(100)), "nesting deeper than"),
    "100-level block nesting": Case(writes(block_nesting(100)), "nesting deeper than"),
    "50 MiB file": Case(big_file, "over the 1048576-byte limit"),
    "!!python/object/apply": Case(
        writes("camera_angle: !!python/object/apply:os.system ['touch /tmp/mvcore-pwned']\n"),
        "unsupported YAML tag",
    ),
    "!!python/object/new": Case(
        writes("camera_angle: !!python/object/new:os.system [ls]\n"), "unsupported YAML tag"
    ),
    "!!python/name": Case(writes("camera_angle: !!python/name:os.system\n"), "unsupported YAML tag"),
    "!!python/object on the mapping": Case(
        writes("!!python/object:os.Popen\nargs: [ls]\n"), "unsupported YAML tag"
    ),
    "non-UTF-8 bytes": Case(writes(b"camera_angle: caf\xe9 \xff\xfe\n"), "not valid UTF-8"),
    "UTF-16 with a BOM": Case(writes('camera_angle: "x"\n'.encode("utf-16")), "NUL byte"),
    "NUL byte": Case(writes(b'camera_angle: "a\x00b"\n'), "NUL byte"),
    "FIFO": Case(fifo, "not a regular file"),
    "symlink to itself": Case(file_loop, "Too many levels of symbolic links"),
    "symlink loop of two files": Case(file_loop_pair, "Too many levels of symbolic links"),
    "symlink escaping the root": Case(file_escape, "symlink points outside the flavors directory"),
    "symlink to /etc/passwd": Case(file_to_system, "symlink points outside the flavors directory"),
    "symlink to /dev/zero": Case(file_to_device, "symlink points outside the flavors directory"),
    "flavor directory symlinked to itself": Case(dir_loop, "symlink loop", where="root"),
    "flavor directory symlinked outside the root": Case(
        dir_escape, "symlink points outside the flavors directory", where="root"
    ),
}


def make_root(tmp_path: Path, case: Case) -> Path:
    root = tmp_path / "flavors"
    for name, text in (("default", 'camera_angle: "front"\n'), ("good", GOOD)):
        (root / name).mkdir(parents=True)
        (root / name / "parameters.yaml").write_text(text)
    bad = root / "bad"
    bad.mkdir()
    case.make(bad)
    return root


def build_measured(root: Path) -> tuple[FlavorStore, float, int, int]:
    """A store over ``root``: (store, seconds, tracemalloc peak bytes, max-RSS growth KiB)."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        store = FlavorStore([root], PluginHost(entry_points=False))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return store, elapsed, peak, rss_growth


def messages(store: FlavorStore, case: Case) -> list[str]:
    snap = store.current
    if case.where == "root":
        return [str(i) for i in snap.issues]
    status = snap.statuses.get("bad")
    assert status is not None, f"flavor 'bad' is not reported at all: {snap.statuses}"
    assert status.status == "invalid" and not status.serving, status
    return [str(i) for i in status.issues if i.severity == "error"]


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_is_rejected_in_bounded_time_and_memory(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    root = make_root(tmp_path, case)
    store, elapsed, peak, rss_growth = build_measured(root)

    found = messages(store, case)
    assert any(case.fragment in m for m in found), found
    assert all("bad" in m for m in found), found  # every message names the file or directory
    assert all(str(tmp_path) not in m for m in found), found  # ... relative to the flavors root
    snap = store.current
    assert not snap.has("bad")
    assert snap.resolved["good"]["parameters"].values["camera_angle"] == "good"
    assert snap.statuses["good"].status == "ok" and snap.statuses["default"].status == "ok"
    assert not Path("/tmp/mvcore-pwned").exists()

    assert elapsed < TIME_LIMIT_S, f"{name}: {elapsed:.2f} s"
    assert peak < PEAK_LIMIT_BYTES, f"{name}: tracemalloc peak {peak / 2**20:.1f} MiB"
    assert rss_growth < RSS_GROWTH_LIMIT_KB, f"{name}: max RSS grew {rss_growth / 1024:.1f} MiB"


def test_every_hostile_file_at_once_through_the_api(tmp_path: Path) -> None:
    """All of them side by side in one flavors directory, served by the app."""
    root = tmp_path / "flavors"
    for name, text in (("default", 'camera_angle: "front"\n'), ("good", GOOD)):
        (root / name).mkdir(parents=True)
        (root / name / "parameters.yaml").write_text(text)
    names = {}
    for index, (label, case) in enumerate(CASES.items()):
        directory = root / f"bad{index:02d}"
        directory.mkdir()
        case.make(directory)
        names[directory.name] = label
    from reliability import make_settings

    settings = make_settings(tmp_path, flavors_dirs=[root])
    started = time.perf_counter()
    store = FlavorStore([root], PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
        assert time.perf_counter() - started < 2 * TIME_LIMIT_S
        assert client.get("/health").status_code == 200
        assert client.get("/api/mv/get_config_flavors").json()["flavors"] == ["default", "good"]
        good = client.get("/api/mv/flavors/good", params={"type": "parameters"}).json()
        assert good["configs"]["parameters"]["values"]["camera_angle"] == "good"
        status = client.get("/api/mv/flavors/status")
        assert status.status_code == 200
        body = status.json()
        in_errors = {e["file"].split("/")[1] for e in body["errors"] if "/" in e["file"]}
        missing = [label for name, label in names.items() if name not in set(body["flavors"]) | in_errors]
        assert not missing, missing
        # error messages name files relative to the flavors root, never the server's layout
        assert not [e for e in body["errors"] if str(tmp_path) in e["text"]], body["errors"]
        for name in names:
            answer = client.get(f"/api/mv/flavors/{name}")
            assert answer.status_code == 200 and answer.json()["fallback"] is True
            strict = client.get(f"/api/mv/flavors/{name}", params={"strict_flavor": "true"})
            assert strict.status_code == 404
        request = {"idea": "i", "character_description": "c", "config_flavor": "bad00"}
        scenes = client.post("/api/mv/create_scenes", json=request)
        assert scenes.status_code == 200 and scenes.json()["metadata"]["config"]["fallback"] is True


@pytest.mark.parametrize("name", ["billion laughs", "half a million tiny nodes", "50 MiB file", "FIFO"])
def test_hostile_edit_of_a_served_flavor_keeps_its_last_good_version(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    root = make_root(tmp_path, Case(writes(GOOD), ""))
    store = FlavorStore([root], PluginHost(entry_points=False))
    assert store.current.has("bad")
    (root / "bad" / "parameters.yaml").unlink()
    case.make(root / "bad")
    started = time.perf_counter()
    store.rebuild(reason=f"hostile edit: {name}", changed_paths=[root / "bad" / "parameters.yaml"])
    assert time.perf_counter() - started < TIME_LIMIT_S
    status = store.current.statuses["bad"]
    assert status.status == "error" and status.serving, status
    assert any(case.fragment in str(i) for i in status.issues), status.issues
    assert store.current.resolved["bad"]["parameters"].values["camera_angle"] == "good"


def test_nesting_deep_enough_to_overflow_the_c_stack_is_refused(tmp_path: Path) -> None:
    """300,000 nested brackets (600 KB, under the size cap) on a 1 MiB thread stack.

    libyaml's composer recurses in C once per level: before the pre-scan this killed the whole
    process with SIGSEGV.  Run in a child process so a regression fails this test, not the run.
    """
    bad = tmp_path / "deep.yaml"
    bad.write_bytes(flow_nesting(300_000))
    script = textwrap.dedent(
        f"""
        import threading
        from pathlib import Path
        from mvcore.config.validation import read_yaml

        threading.stack_size(1 << 20)
        out = {{}}
        thread = threading.Thread(target=lambda: out.update(r=read_yaml(Path({str(bad)!r}))))
        thread.start()
        thread.join()
        print("|".join(str(i) for i in out["r"].issues))
        """
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    # Our pre-scan says "nesting deeper than"; a libyaml built with its own depth limit (the PyPI
    # wheels) rejects the file first with "maximum nesting depth".  Either way: refused, no crash.
    assert "nesting deeper than" in result.stdout or "maximum nesting depth" in result.stdout, result.stdout
    assert time.perf_counter() - started < 20


def test_rejecting_files_leaks_no_file_descriptor(tmp_path: Path) -> None:
    """Refused files (too big, FIFO, loops) are never left open."""
    stores = []
    for name in ("50 MiB file", "FIFO", "symlink to itself", "NUL byte"):
        root = make_root(tmp_path / name.replace(" ", "_"), CASES[name])
        stores.append(FlavorStore([root], PluginHost(entry_points=False)))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        for store in stores:
            store.rebuild(reason="again")
            assert not store.current.has("bad")
    assert len(os.listdir("/proc/self/fd")) <= before
    shutil.rmtree(tmp_path / "50_MiB_file")
