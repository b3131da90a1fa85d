"""Memory: resident set of a FlavorStore holding 1,000 flavors, and its growth over rebuilds.

Measured in a fresh child process (``python -m benchmarks.bench_memory --child ...``) so nothing
the other benchmarks imported or allocated is counted.  The child reads VmRSS from
/proc/self/status after its imports, after building the store, after a short warm-up of
rebuilds, and after all rebuilds.  Each rebuild first rewrites one flavor's ``parameters.yaml``
(a new value every time, round robin over the flavors) and then calls ``store.rebuild()`` --
with ``changed_paths`` when the store accepts it, the way the file watcher calls it -- and checks
the new value is served.  Target: flat (after/before close to 1, growth in MiB reported).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, flavor_name, make_flavor_tree, result, rss_mib, tiny

GROWTH_TARGET = ("<=", 1.05)


def child(root: Path, flavors: int, rebuilds: int) -> dict[str, Any]:
    from mvcore.config.plugins import PluginHost
    from mvcore.config.store import FlavorStore

    gc.collect()
    rss_imports = rss_mib()
    store = FlavorStore([root], PluginHost(entry_points=False))
    if len(store.current.names()) != flavors + 1 or store.current.errors():
        raise RuntimeError("generated tree did not load cleanly")
    gc.collect()
    rss_loaded = rss_mib()
    targeted = "changed_paths" in inspect.signature(store.rebuild).parameters
    warmup = max(1, rebuilds // 10)
    samples: list[float] = []
    rss_warm = rss_loaded
    for i in range(warmup + rebuilds):
        index = i % flavors
        path = root / flavor_name(index) / "parameters.yaml"
        scenes = 1 + (i * 7) % 32
        text = path.read_text(encoding="utf-8").split("number_of_scenes:")[0]
        path.write_text(f"{text}number_of_scenes: {scenes}\n# edit {i}\n", encoding="utf-8")
        if targeted:
            store.rebuild(reason="bench", changed_paths=[path])
        else:
            store.rebuild(reason="bench")
        served = store.current.get("parameters", "number_of_scenes", flavor_name(index))
        if served != scenes:
            raise RuntimeError(f"rebuild {i} serves {served}, expected {scenes}")
        if i + 1 == warmup:
            gc.collect()
            rss_warm = rss_mib()
        elif i >= warmup and (i - warmup) % max(1, rebuilds // 10) == 0:
            samples.append(rss_mib())
    gc.collect()
    rss_end = rss_mib()
    half = samples[len(samples) // 2] if samples else rss_warm
    return {
        "rss_imports": rss_imports,
        "rss_loaded": rss_loaded,
        "rss_warm": rss_warm,
        "rss_end": rss_end,
        "rss_half": half,
        "generation": store.current.generation,
        "targeted": targeted,
        "warmup": warmup,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    if tiny():
        flavors, rebuilds = 20, 10
    else:
        flavors, rebuilds = 1000, (200 if quick else 1000)
    tmp = Path(tempfile.mkdtemp(prefix="mvcore-bench-memory-"))
    try:
        root = tmp / "flavors"
        make_flavor_tree(root, flavors)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_memory",
                "--child",
                "--root",
                str(root),
                "--flavors",
                str(flavors),
                "--rebuilds",
                str(rebuilds),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"memory child failed ({done.returncode}): {done.stderr[-2000:]}")
        data = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    store_mib = data["rss_loaded"] - data["rss_imports"]
    how = "rebuild(changed_paths=[file])" if data["targeted"] else "rebuild() (full rescan)"
    return [
        result(
            f"memory_rss_{flavors}_flavors",
            data["rss_loaded"],
            "MiB",
            "same process before building the store (interpreter + imports)",
            data["rss_imports"],
            target="report",
            store_mib=store_mib,
            per_flavor_kib=store_mib * 1024 / flavors,
        ),
        result(
            f"memory_growth_{rebuilds}_rebuilds",
            data["rss_end"],
            "MiB",
            f"RSS after load + {data['warmup']} warm-up rebuilds",
            data["rss_warm"],
            target=GROWTH_TARGET,
            growth_mib=data["rss_end"] - data["rss_warm"],
            growth_second_half_mib=data["rss_end"] - data["rss_half"],
            flavors=flavors,
            rebuilds=rebuilds,
            generation=data["generation"],
            note=f"each edit then {how}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--flavors", type=int, required=True)
    parser.add_argument("--rebuilds", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(child(args.root, args.flavors, args.rebuilds)))


if __name__ == "__main__":
    main()
