"""8 HTTP clients hammer a live server for the whole run while 1,000 reloads happen.

The server runs in a thread (uvicorn, lifespan on, inotify watch with a 20 ms debounce), so the
watcher rebuilds on its own *and* the test drives every reload itself (write, then
``store.rebuild()``): both race on the store, as a real deployment with an editor and a watcher does.

Every edit writes mutually consistent values (``camera_angle: g<g>``, ``video_type: t<g>``,
``number_of_scenes: g % 32 + 1``), so a torn read shows up as values that disagree with each other,
and every response's values must belong to the one generation it reports: across all responses,
one generation maps to one edit.  Bad edits, deletes and re-adds are mixed in.  Afterwards: zero
5xx, zero transport errors, no file-descriptor or thread growth.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

from . import LiveServer, fd_count, make_settings, settle, thread_count

CLIENTS = 8
RELOADS = 1000
TIME_CAP_S = 150.0  # the whole writer loop; it normally takes a fraction of this
DEFAULT_VALUES = {"camera_angle": "front", "video_type": "video", "number_of_scenes": 4}


def params(g: int) -> str:
    return f'camera_angle: "g{g}"\nvideo_type: "t{g}"\nnumber_of_scenes: {g % 32 + 1}\n'


BAD_EDITS = (
    'camera_angle: "gX"\nnumber_of_scenes: "many"\n',  # schema error
    "camera_angle: [unclosed\n",  # YAML syntax error
    "camera_angle: !!python/object:os.system x\n",  # unsafe tag
    b"camera_angle: \xff\xfe\n",  # not UTF-8
)


def edit_of(values: dict[str, Any]) -> int | None:
    """The edit ``g`` the three values come from; None for the default flavor's values.

    Raises AssertionError when the values do not agree with each other (a torn read).
    """
    angle, kind, scenes = values.get("camera_angle"), values.get("video_type"), values.get("number_of_scenes")
    if {"camera_angle": angle, "video_type": kind, "number_of_scenes": scenes} == DEFAULT_VALUES:
        return None
    assert isinstance(angle, str) and angle.startswith("g"), values
    g = int(angle[1:])
    assert kind == f"t{g}" and scenes == g % 32 + 1, f"torn read: {values}"
    return g


def write(path: Path, content: str | bytes, *, atomic: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    if atomic:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    else:
        path.write_bytes(data)


class Tally:
    """What the client threads saw (shared; guarded by a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.by_generation: dict[tuple[str, int], set[int | None]] = defaultdict(set)
        self.requests = 0

    def fail(self, message: str) -> None:
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(message)

    def seen(
        self, status: int, flavor: str | None = None, generation: int | None = None, g: Any = None
    ) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] += 1
            if flavor is not None and generation is not None:
                self.by_generation[(flavor, generation)].add(g)


def client_loop(index: int, base_url: str, stop: threading.Event, tally: Tally) -> None:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        turn = index
        while not stop.is_set():
            turn += 1
            try:
                check_one(client, turn % 4, tally)
            except AssertionError as exc:
                tally.fail(f"client {index}: {exc}")
            except httpx.HTTPError as exc:
                tally.fail(f"client {index}: transport error {exc!r}")


def check_one(client: httpx.Client, kind: int, tally: Tally) -> None:
    if kind == 0:
        response = client.get("/api/mv/get_config_flavors")
        tally.seen(response.status_code)
        assert response.status_code == 200, response.text
        names = response.json()["flavors"]
        assert names[0] == "default" and "load" in names, names
    elif kind in (1, 2):
        flavor = "load" if kind == 1 else "churn"
        response = client.get(f"/api/mv/flavors/{flavor}", params={"type": "parameters"})
        assert response.status_code == 200, response.text
        body = response.json()
        values = body["configs"]["parameters"]["values"]
        g = edit_of(values)
        if flavor == "load":
            # an in-place write can be seen truncated (an empty file: default's values) -- but whole
            assert body["flavor_used"] == "load" and not body["fallback"], body
        else:
            # churn comes and goes: either itself, or default with fallback -- never a mix
            assert body["fallback"] == (g is None), body
            assert body["flavor_used"] == ("default" if g is None else "churn"), body
        tally.seen(response.status_code, flavor, body["generation"], g)
    else:
        response = client.post(
            "/api/mv/create_scenes",
            json={"idea": "reload storm", "character_description": "a tester", "config_flavor": "load"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        meta = body["metadata"]
        used = meta["parameters_used"]
        g = edit_of(used)
        assert len(body["scenes"]) == used["number_of_scenes"], meta
        assert all(f"({used['camera_angle']} angle)" in s["description"] for s in body["scenes"])
        assert meta["config"]["flavor_used"] == "load"
        tally.seen(response.status_code, "load", meta["config"]["generation"], g)


@pytest.mark.slow
def test_clients_and_a_thousand_reloads(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, watch="inotify", debounce_ms=20)
    root = settings.flavors_dirs[0]
    load = root / "load" / "parameters.yaml"
    churn = root / "churn"
    write(load, params(0), atomic=False)
    write(churn / "parameters.yaml", params(0), atomic=False)

    fds_before, threads_before = fd_count(), thread_count()
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    app = create_app(settings, store=store)
    tally = Tally()
    stop = threading.Event()
    server = LiveServer(app).start()
    try:
        # warm up: every client connected, the thread pools and the watcher running
        with httpx.Client(base_url=server.url, timeout=30.0) as warm:
            for kind in range(4):
                check_one(warm, kind, tally)
        clients = [
            threading.Thread(target=client_loop, args=(i, server.url, stop, tally), daemon=True)
            for i in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        settle(lambda: tally.requests >= 4 * CLIENTS, timeout=30)
        fds_warm, threads_warm = fd_count(), thread_count()

        good, bad, removed, readded = drive_reloads(store, load, churn, tally)

        # the watcher catches up with the last write; the clients keep going meanwhile
        assert settle(lambda: store.current.statuses["load"].status == "ok", timeout=10)
        fds_loaded, threads_loaded = fd_count(), thread_count()
        stop.set()
        for thread in clients:
            thread.join(30)
        assert not any(t.is_alive() for t in clients), "a client thread hung"
        with httpx.Client(base_url=server.url, timeout=10.0) as last:
            assert last.get("/health").status_code == 200
    finally:
        stop.set()
        server.stop()

    statuses = dict(tally.statuses)
    print(
        f"load+reload: {tally.requests} requests {statuses}, {good} good / {bad} bad edits, "
        f"{removed} deletes, {readded} re-adds, final generation {store.current.generation}"
    )
    assert not tally.failures, tally.failures[:10]
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses == {200: tally.requests}, statuses
    assert tally.requests >= 200, f"the clients made only {tally.requests} requests"
    assert good >= 600 and bad >= 90 and removed >= 90 and readded >= 90
    # one generation, one edit -- per flavor, whatever endpoint reported it
    torn = {key: seen for key, seen in tally.by_generation.items() if len(seen) != 1}
    assert not torn, sorted(torn.items())[:10]
    assert len({gen for flavor, gen in tally.by_generation if flavor == "load"}) > 20
    edits_seen = [g for (flavor, _), seen in tally.by_generation.items() if flavor == "load" for g in seen]
    assert sum(g is not None for g in edits_seen) > 0.8 * len(edits_seen)

    # nothing leaked while serving: the counts under load match the warm counts (small slack for
    # a keep-alive socket being replaced, an executor thread being spawned late) ...
    assert fds_loaded <= fds_warm + 6, (fds_warm, fds_loaded)
    assert threads_loaded <= threads_warm + 3, (threads_warm, threads_loaded)
    # ... and after shutdown everything the server opened is closed again
    assert settle(lambda: thread_count() <= threads_before + 1, timeout=10), (threads_before, thread_count())
    assert settle(lambda: fd_count() <= fds_before + 3, timeout=10), (fds_before, fd_count())


def drive_reloads(store: FlavorStore, load: Path, churn: Path, tally: Tally) -> tuple[int, int, int, int]:
    """1,000 reloads: good edits, bad edits, deletes and re-adds of a flavor directory."""
    started = time.monotonic()
    good = bad = removed = readded = 0
    last_good = 0
    for i in range(1, RELOADS + 1):
        assert time.monotonic() - started < TIME_CAP_S, f"only {i} reloads in {TIME_CAP_S:g} s"
        step = i % 10
        changed: list[Path] | None = [load] if i % 3 else None
        if step == 6:
            write(load, BAD_EDITS[(i // 10) % len(BAD_EDITS)], atomic=bool(i % 4))
            bad += 1
        elif step == 7:
            shutil.rmtree(churn, ignore_errors=True)
            changed = None
            removed += 1
        elif step == 8:
            # re-added whole: built aside under a hidden name, then renamed into place
            staging = churn.with_name(".churn.staging")
            write(staging / "parameters.yaml", params(i), atomic=False)
            os.rename(staging, churn)
            changed = None
            readded += 1
        else:
            write(load, params(i), atomic=bool(i % 2))
            last_good = i
            good += 1
        store.rebuild(reason=f"load test {i}", changed_paths=changed)
        snap = store.current
        served = edit_of(dict(snap.resolved["load"]["parameters"].values))
        if step == 6:
            assert snap.statuses["load"].status == "error", snap.statuses["load"]
            assert served == last_good, (i, served, last_good)  # last known good keeps serving
        else:
            assert served == last_good, (i, served, last_good)
        assert snap.has("churn") == (step != 7)
    assert tally.requests > 0
    return good, bad, removed, readded
