"""8 readers resolve continuously while 500 rebuilds swap snapshots: no torn read, no exception."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mvcore.config.store import FlavorStore

from . import make_tree, params

READERS = 8
REBUILDS = 500


def _content(g: int) -> str:
    # every write is self-consistent: scenes and angle both derive from g
    return params(f"g{g}", g % 32 + 1)


def test_readers_never_see_half_a_generation(tmp_path: Path, make_store: Callable[..., FlavorStore]) -> None:
    root = make_tree(tmp_path / "flavors", {"default": params("front", 4), "test": _content(0)})
    target = root / "test" / "parameters.yaml"
    store = make_store(root)
    expected: dict[int, int] = {store.current.generation: 0}  # generation -> g it must serve
    stop = threading.Event()
    errors: list[str] = []
    inconsistent: list[str] = []
    seen: list[dict[int, set[int]]] = [{} for _ in range(READERS)]
    reads = [0] * READERS

    def reader(index: int) -> None:
        observed = seen[index]
        while not stop.is_set():
            try:
                snap = store.current  # pin one snapshot for the whole "request"
                with store.pin(snap) as pinned:
                    resolution = pinned.resolve("test")
                    values = resolution.configs["parameters"].values
                    angle, scenes = values["camera_angle"], values["number_of_scenes"]
                    fast = pinned.get("parameters", "camera_angle", "test")
                    generation = resolution.generation
                g = int(str(angle)[1:])
                if scenes != g % 32 + 1 or fast != angle or generation != snap.generation:
                    inconsistent.append(f"gen {generation}: {angle!r} {scenes!r} {fast!r}")
                observed.setdefault(generation, set()).add(g)
                reads[index] += 1
            except Exception as exc:  # counted: the test fails on any
                errors.append(repr(exc))
            if reads[index] % 8 == 0:
                time.sleep(0.0001)  # leave the writer some GIL: 8 spinning readers would starve it

    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # hand the GIL around often so reads really interleave with swaps
    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(READERS)]
    try:
        for thread in threads:
            thread.start()
        for g in range(1, REBUILDS + 1):
            if g % 2:
                target.write_text(_content(g))  # in place: same inode, often the same size and mtime tick
            else:
                tmp = target.with_name(".parameters.yaml.tmp")
                tmp.write_text(_content(g))
                os.replace(tmp, target)
            event = store.rebuild(reason="torn-read test", changed_paths=[target] if g % 3 else None)
            assert event is not None, f"write {g} was not picked up"
            assert event.changed == ["test"]
            expected[event.generation] = g
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        sys.setswitchinterval(switch)

    assert not errors, errors[:5]
    assert not inconsistent, inconsistent[:5]
    assert all(reads), reads
    generations_seen = set().union(*(observed.keys() for observed in seen))
    assert len(generations_seen) > REBUILDS // 5, "readers and rebuilds hardly overlapped"
    print(f"reads per reader: {reads}; generations seen: {len(generations_seen)}")
    for observed in seen:
        for generation, values in observed.items():
            assert values == {expected[generation]}, (generation, values)
    assert store.current.generation == 1 + REBUILDS
