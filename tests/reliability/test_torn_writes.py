"""Ordinary non-atomic writers while 4 clients poll a live server: no half-written file is served.

Each writer replaces ``example/parameters.yaml`` the way plain tools do -- truncate, pause, write;
write part, pause, write the rest; many small appends through one handle -- with a final file
that is either valid (new values) or broken.  Meanwhile 4 HTTP clients poll
``GET /api/mv/flavors/example?type=parameters`` every 10 ms.  Every response must show exactly
the previous good values or (for a valid final file) the new ones: never the built-in defaults
of an empty file, never a prefix of the new file.  A broken final file keeps the previous values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

from . import LiveServer, make_settings, settle

CLIENTS = 4
KEYS = ("camera_angle", "video_type", "number_of_scenes", "character_characteristics")
OLD = {"camera_angle": "old-angle", "video_type": "old-type", "number_of_scenes": 6,
       "character_characteristics": "the previous good file, " + "o" * 60}  # fmt: skip
NEW = {"camera_angle": "new-angle", "video_type": "new-type", "number_of_scenes": 3,
       "character_characteristics": "the new file, written slowly, " + "n" * 60}  # fmt: skip


def yaml_of(values: dict[str, Any]) -> str:
    return "".join(f"{k}: {v!r}\n" if isinstance(v, str) else f"{k}: {v}\n" for k, v in values.items())


NEW_TEXT = yaml_of(NEW)
# pad so that the first 102 bytes end on a line: the prefix alone is valid YAML (a "torn" flavor)
NEW["video_type"] += "-" * (102 - len(NEW_TEXT.split("character_characteristics")[0]))
NEW_TEXT = yaml_of(NEW)
assert NEW_TEXT[101] == "\n"
BROKEN_TEXT = NEW_TEXT + "video_characteristics: [never closed\n"  # same prefix: every part parses


def truncate_pause_write(path: Path, text: str) -> None:
    with open(path, "w") as handle:  # the file is empty from here on ...
        handle.flush()
        time.sleep(0.2)  # ... for 0.2 s
        handle.write(text)


def partial_pause_rest(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text[:102])  # a valid YAML prefix with some of the new keys
        handle.flush()
        time.sleep(0.3)
        handle.write(text[102:])


def small_appends(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        for start in range(0, len(text), 9):
            handle.write(text[start : start + 9])
            handle.flush()
            time.sleep(0.01)


WRITERS: dict[str, Callable[[Path, str], None]] = {
    "truncate+pause+write": truncate_pause_write,
    "partial+pause+rest": partial_pause_rest,
    "many small appends": small_appends,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, FlavorStore, Path]]:
    settings = make_settings(tmp_path, watch="inotify")
    target = settings.flavors_dirs[0] / "example" / "parameters.yaml"
    target.write_text(yaml_of(OLD))
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with LiveServer(create_app(settings, store=store)) as live:
        yield live, store, target


def poll(base_url: str, stop: threading.Event, seen: list[dict[str, Any]], errors: list[str]) -> None:
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        while not stop.is_set():
            try:
                response = client.get("/api/mv/flavors/example", params={"type": "parameters"})
                values = response.json()["configs"]["parameters"]["values"]
                seen.append({k: values.get(k) for k in KEYS})
            except Exception as exc:  # the test fails on any
                errors.append(repr(exc))
            stop.wait(0.01)


@pytest.mark.parametrize("final", ["valid", "broken"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_slow_writers_never_publish_a_partial_file(
    server: tuple[LiveServer, FlavorStore, Path], writer: str, final: str
) -> None:
    live, store, target = server
    assert settle(lambda: store.current.get("parameters", "camera_angle", "example") == OLD["camera_angle"])
    stop = threading.Event()
    seen: list[list[dict[str, Any]]] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    clients = [
        threading.Thread(target=poll, args=(live.url, stop, seen[i], errors), daemon=True)
        for i in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    try:
        assert settle(lambda: all(seen), timeout=10), "the clients never got an answer"
        WRITERS[writer](target, NEW_TEXT if final == "valid" else BROKEN_TEXT)
        expected = NEW if final == "valid" else OLD
        status = "ok" if final == "valid" else "error"
        assert settle(
            lambda: (
                store.current.statuses["example"].status == status
                and store.current.get("parameters", "camera_angle", "example") == expected["camera_angle"]
            ),
            timeout=10,
        ), store.current.statuses["example"]
        # every client asks twice more: its last answer was requested after the final swap
        counts = [len(s) for s in seen]
        assert settle(lambda: all(len(s) >= n + 2 for s, n in zip(seen, counts, strict=True)), timeout=10)
    finally:
        stop.set()
        for thread in clients:
            thread.join(10)
    assert not errors, errors[:5]
    allowed = [OLD, NEW] if final == "valid" else [OLD]
    foreign = [values for client in seen for values in client if values not in allowed]
    assert not foreign, f"{len(foreign)} responses served neither file: {foreign[:3]}"
    assert all(s[-1] == (NEW if final == "valid" else OLD) for s in seen)
