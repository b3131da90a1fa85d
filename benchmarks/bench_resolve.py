"""Resolve: one key lookup on a warm snapshot against a dict, Dynaconf, OmegaConf and Hydra.

Every contender holds the same data -- the repo's ``default`` flavor with ``example`` layered on
top -- and answers the same question: ``parameters.number_of_scenes`` of ``example`` (6).

- mvcore: ``snapshot.get("parameters", "number_of_scenes", "example")``;
- dict: ``d["example"]["parameters"]["number_of_scenes"]`` (the floor);
- Dynaconf: ``settings.parameters.number_of_scenes`` with ``environments=True``, a ``default``
  and an ``example`` section, ``merge_enabled=True``, env ``example`` (its layered envs);
- OmegaConf: ``OmegaConf.merge(default, example)`` once, then ``cfg.parameters.number_of_scenes``;
- Hydra: ``compose("config", overrides=["parameters.number_of_scenes=6"])`` + the lookup, per call
  (how a Hydra user gets a value), and attribute access on the composed cfg separately.

Also the full ``snapshot.resolve("example").to_wire()`` (warm, and with the wire caches cleared).
Lookups are timed with timeit statements (no lambda in the loop); ``value_net``/``baseline_net``
give the same numbers with the empty-loop cost taken off.
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import FLAVORS_DIR, note, per_call, result, skipped, timed_runs, tiny
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

FLAVOR, TYPE, KEY, EXPECTED = "example", "parameters", "number_of_scenes", 6
LOOKUP_TARGET = ("<=", 2.0)  # at most 2x the plain dict
PEER_TARGET = ("<=", 0.02)  # at least 50x faster than the peer
MVCORE_STMT = f'snap.get("{TYPE}", "{KEY}", "{FLAVOR}")'
DICT_STMT = f'd["{FLAVOR}"]["{TYPE}"]["{KEY}"]'


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _layers() -> tuple[dict[str, Any], dict[str, Any]]:
    """The default and example flavors as plain dicts {config_type: values} read from the repo."""
    out = []
    for flavor in ("default", FLAVOR):
        layer = {}
        for path in sorted((FLAVORS_DIR / flavor).glob("*.yaml")):
            if path.name != "flavor.yaml":
                with open(path, encoding="utf-8") as handle:
                    layer[path.stem] = yaml.load(handle, Loader=yaml.CSafeLoader) or {}
        out.append(layer)
    return out[0], out[1]


def _ns(stmt: str, ns: dict[str, Any], *, repeat: int = 7) -> tuple[float, float]:
    """(raw, net) nanoseconds per lookup."""
    raw = per_call(stmt, ns, repeat=repeat)
    net = per_call(stmt, ns, repeat=repeat, subtract_loop=True)
    return raw * 1e9, net * 1e9


def _peer_line(
    name: str, baseline: str, mv: tuple[float, float], peer: tuple[float, float]
) -> dict[str, Any]:
    return result(
        name,
        mv[0],
        "ns",
        baseline,
        peer[0],
        target=PEER_TARGET,
        value_net=mv[1],
        baseline_net=peer[1],
        speedup=peer[0] / mv[0],
    )


def run(quick: bool = False) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    store = FlavorStore([FLAVORS_DIR], PluginHost(entry_points=False))
    snap = store.current
    if snap.get(TYPE, KEY, FLAVOR) != EXPECTED:
        raise RuntimeError(f"flavors/{FLAVOR} no longer sets {TYPE}.{KEY} = {EXPECTED}")
    wire = snap.resolve(FLAVOR).to_wire()
    plain = {FLAVOR: {t: c["values"] for t, c in wire["configs"].items()}}
    repeat = 3 if quick else 7
    ns = {"snap": snap, "d": plain}
    mv = _ns(MVCORE_STMT, ns, repeat=repeat)
    floor = _ns(DICT_STMT, ns, repeat=repeat)
    lines.append(
        result(
            "resolve_lookup_vs_dict",
            mv[0],
            "ns",
            "plain nested dict lookup",
            floor[0],
            target=LOOKUP_TARGET,
            value_net=mv[1],
            baseline_net=floor[1],
            ratio_net=mv[1] / floor[1],
        )
    )

    default, example = _layers()
    tmp = Path(tempfile.mkdtemp(prefix="mvcore-bench-resolve-"))
    try:
        lines.append(_dynaconf(tmp, default, example, mv, repeat))
        lines.extend(_omegaconf(default, example, mv, repeat))
        lines.extend(_hydra(tmp, default, mv, quick))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # The whole wire object of a flavor (what GET /api/mv/flavors/{name} serializes).
    resolve_ns = {"snap": snap, "FLAVOR": FLAVOR}
    warm = per_call("snap.resolve(FLAVOR).to_wire()", resolve_ns, repeat=repeat) * 1e6
    same_shape = {"meta": {k: v for k, v in wire.items() if k != "configs"}, "configs": wire["configs"]}
    build_ns = {"w": same_shape}
    floor_wire = (
        per_call('{**w["meta"], "configs": {t: c for t, c in w["configs"].items()}}', build_ns, repeat=repeat)
        * 1e6
    )
    lines.append(
        result(
            "resolve_to_wire_warm",
            warm,
            "us",
            "building the same-shape dict from prebuilt plain dicts",
            floor_wire,
            target="report",
            note="to_wire of each config is cached on the snapshot",
        )
    )
    configs = snap.resolve(FLAVOR).configs

    def cold() -> Any:
        for config in configs.values():
            config._wire.clear()
        return snap.resolve(FLAVOR).to_wire()

    cold_us = per_call(cold, repeat=repeat) * 1e6
    deep_us = per_call(lambda: copy.deepcopy(wire), repeat=repeat) * 1e6
    lines.append(
        result(
            "resolve_to_wire_cold",
            cold_us,
            "us",
            "copy.deepcopy of the same wire dict",
            deep_us,
            target="report",
            note="wire caches cleared before every call",
        )
    )
    return lines


def _dynaconf(
    tmp: Path, default: dict[str, Any], example: dict[str, Any], mv: tuple[float, float], repeat: int
) -> dict[str, Any]:
    name = "resolve_lookup_vs_dynaconf"
    baseline = "Dynaconf layered env: settings.parameters.number_of_scenes"
    if not _have("dynaconf"):
        return skipped(name, "ns", baseline, "dynaconf not installed", target=PEER_TARGET)
    from dynaconf import Dynaconf

    path = tmp / "settings.yaml"
    path.write_text(yaml.safe_dump({"default": default, FLAVOR: example}), encoding="utf-8")
    settings = Dynaconf(
        settings_files=[str(path)],
        environments=True,
        env=FLAVOR,
        merge_enabled=True,
        envvar_prefix="MVCORE_BENCH_DYNACONF",
        load_dotenv=False,
    )
    if settings.parameters.number_of_scenes != EXPECTED:
        raise RuntimeError("dynaconf did not layer example over default")
    peer = _ns(f"s.{TYPE}.{KEY}", {"s": settings}, repeat=min(repeat, 3))
    dotted = per_call(f's.get("{TYPE}.{KEY}")', {"s": settings}, repeat=min(repeat, 3)) * 1e9
    line = _peer_line(name, baseline, mv, peer)
    line["dynaconf_get_dotted_ns"] = round(dotted, 1)  # settings.get("parameters.number_of_scenes")
    return line


def _omegaconf(
    default: dict[str, Any], example: dict[str, Any], mv: tuple[float, float], repeat: int
) -> list[dict[str, Any]]:
    name, baseline = "resolve_lookup_vs_omegaconf", "OmegaConf.merge(default, example) attribute access"
    if not _have("omegaconf"):
        return [skipped(name, "ns", baseline, "omegaconf not installed", target=PEER_TARGET)]
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(OmegaConf.create(default), OmegaConf.create(example))
    if cfg.parameters.number_of_scenes != EXPECTED:
        raise RuntimeError("omegaconf merge did not layer example over default")
    peer = _ns(f"cfg.{TYPE}.{KEY}", {"cfg": cfg}, repeat=min(repeat, 3))
    return [_peer_line(name, baseline, mv, peer)]


def _hydra(tmp: Path, default: dict[str, Any], mv: tuple[float, float], quick: bool) -> list[dict[str, Any]]:
    compose_name = "resolve_lookup_vs_hydra_compose"
    compose_baseline = 'Hydra compose("config", overrides=["parameters.number_of_scenes=6"]) + lookup'
    attr_name = "resolve_lookup_vs_hydra_cfg_attr"
    attr_baseline = "attribute access on a Hydra-composed cfg"
    if not _have("hydra"):
        return [
            skipped(compose_name, "ns", compose_baseline, "hydra-core not installed", target=PEER_TARGET),
            skipped(attr_name, "ns", attr_baseline, "hydra-core not installed", target=PEER_TARGET),
        ]
    from hydra import compose, initialize_config_dir

    conf = tmp / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(yaml.safe_dump(default), encoding="utf-8")
    override = [f"{TYPE}.{KEY}={EXPECTED}"]
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose("config", overrides=override)
        if cfg.parameters.number_of_scenes != EXPECTED:
            raise RuntimeError("hydra override not applied")

        def compose_and_get() -> Any:
            return compose("config", overrides=override).parameters.number_of_scenes

        runs = 3 if tiny() else (20 if quick else 60)
        per = min(timed_runs(compose_and_get, runs))
        attr = _ns(f"cfg.{TYPE}.{KEY}", {"cfg": cfg}, repeat=3)
    note(f"hydra compose: {per * 1e3:.1f} ms per call (best of {runs})")
    return [
        _peer_line(compose_name, compose_baseline, mv, (per * 1e9, per * 1e9)),
        _peer_line(attr_name, attr_baseline, mv, attr),
    ]
