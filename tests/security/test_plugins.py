"""Untrusted plugins: every hook x {hangs, raises, returns garbage}, all registered at once, through
the whole app.  Each failure is reported with the plugin's name, the plugin's contribution is
skipped, everything else loads and serves; a plugin that hangs costs one hook timeout, once --
not a stalled reload and a leaked thread on every reload after it.  And no plugin replaces a
built-in config type unless it says ``replaces_builtin``.

(``tests/core/test_plugins.py`` covers the host one failure at a time; this is the app-level,
everything-at-once view.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from reliability import make_settings, settle, steady_gc, thread_count

from mvcore import hookimpl
from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore

HOOK_TIMEOUT = 0.5
HOOKS = [
    "mvcore_flavor_dirs",
    "mvcore_flavors",
    "mvcore_config_types",
    "mvcore_providers",
    "mvcore_on_reload",
]
GARBAGE: dict[str, Any] = {
    "mvcore_flavor_dirs": [42, None, object()],
    "mvcore_flavors": "not a mapping",
    "mvcore_config_types": [{"name": "no schema"}, 17],
    "mvcore_providers": ["replicate"],
    "mvcore_on_reload": object(),  # the value of this hook is ignored: garbage is harmless
}


def make_plugin(hook: str, behaviour: str, release: threading.Event) -> object:
    def impl(**kwargs: Any) -> Any:
        if behaviour == "hangs":
            release.wait(30)  # "forever", bounded: the fixture releases it at the end
            return None
        if behaviour == "raises":
            raise RuntimeError(f"boom from {hook}")
        return GARBAGE[hook]

    # pluggy matches implementations by argument names: on_reload takes ``event``
    function: Callable[..., Any] = (lambda event: impl(event=event)) if hook == "mvcore_on_reload" else impl
    return type(f"{behaviour}_{hook}", (), {hook: staticmethod(hookimpl(function))})()


class GoodPlugin:
    """Contributes an in-code flavor and a provider; counts reload notifications."""

    def __init__(self) -> None:
        self.reloads = 0

    @hookimpl
    def mvcore_flavors(self) -> dict[str, Any]:
        return {"from_plugin": {"parameters": {"camera_angle": "plugin-angle"}}}

    @hookimpl
    def mvcore_on_reload(self, event: dict[str, Any]) -> None:
        self.reloads += 1


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let every hanging hook thread finish


def test_every_hook_hanging_raising_or_returning_garbage(tmp_path: Path, release: threading.Event) -> None:
    settings = make_settings(tmp_path)
    host = PluginHost(entry_points=False, hook_timeout=HOOK_TIMEOUT)
    bad_names = []
    for hook in HOOKS:
        for behaviour in ("hangs", "raises", "garbage"):
            name = f"{behaviour}-{hook.removeprefix('mvcore_')}"
            host.register(make_plugin(hook, behaviour, release), name)
            bad_names.append((name, hook, behaviour))
    good = GoodPlugin()
    host.register(good, "good")

    started = time.monotonic()
    store = FlavorStore(list(settings.flavors_dirs), host)
    app = create_app(settings, store=store)
    # each hanging hook costs one timeout while starting, not more
    assert time.monotonic() - started < len(HOOKS) * HOOK_TIMEOUT + 5

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        names = client.get("/api/mv/get_config_flavors").json()["flavors"]
        assert {"default", "example", "from_plugin"} <= set(names), names
        angle = client.get("/api/mv/flavors/from_plugin").json()["configs"]["parameters"]["values"]
        assert angle["camera_angle"] == "plugin-angle"
        scenes = client.post("/api/mv/create_scenes", json={"idea": "i", "character_description": "c"})
        assert scenes.status_code == 200, scenes.text

        # reloads: the hung on_reload hook is not waited for again, and leaks no thread per reload
        example = settings.flavors_dirs[0] / "example" / "parameters.yaml"
        example.write_text('camera_angle: "first"\n')
        store.rebuild(reason="first")
        threads = thread_count()
        with steady_gc():  # a full collection of the suite's heap is not a hook being waited for
            started = time.monotonic()
            for index in range(10):
                example.write_text(f'camera_angle: "r{index}"\n')
                event = store.rebuild(reason=f"reload {index}")
                assert event is not None
            elapsed = time.monotonic() - started
        assert elapsed < HOOK_TIMEOUT * 3, f"10 reloads took {elapsed:.1f} s: the hung hook was waited for"
        assert thread_count() <= threads + 1, (threads, thread_count())
        assert good.reloads >= 11
        served = client.get("/api/mv/flavors/example").json()["configs"]["parameters"]["values"]
        assert served["camera_angle"] == "r9"

    report = {r["name"]: r for r in host.report()}
    assert report["good"]["errors"] == []
    for name, hook, behaviour in bad_names:
        errors = report[name]["errors"]
        if hook == "mvcore_on_reload" and behaviour == "garbage":
            assert errors == [], errors  # a return value nobody reads
            continue
        assert errors, (name, report[name])
        assert all(e.startswith(f"{hook}: ") for e in errors), errors
        expected = {"hangs": "did not return within", "raises": "boom from", "garbage": ""}[behaviour]
        assert any(expected in e for e in errors), errors
    # the config-type failures are also in the status the API serves, with the plugin's name
    status = store.current.status_wire()
    plugin_issues = [e for e in status["errors"] if e["file"].startswith("plugin:")]
    assert any(e["file"] == "plugin:garbage-config_types" for e in plugin_issues), plugin_issues
    release.set()
    assert settle(lambda: not [t for t in threading.enumerate() if t.name == "mvcore-hook"], timeout=5)


LENS = {"type": "object", "properties": {"lens": {"type": "string"}}, "additionalProperties": False}


class TypePlugin:
    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item

    @hookimpl
    def mvcore_config_types(self) -> list[Any]:
        return [self.item]


@pytest.mark.parametrize("explicit", [False, True])
def test_a_plugin_replaces_the_builtin_layer_only_when_it_says_so(tmp_path: Path, explicit: bool) -> None:
    settings = make_settings(tmp_path)
    item: dict[str, Any] = {"name": "parameters", "schema": LENS, "defaults": {"lens": "35mm"}}
    if explicit:
        item["replaces_builtin"] = True
    host = PluginHost(entry_points=False, hook_timeout=HOOK_TIMEOUT)
    host.register(TypePlugin(item), "sneaky")
    store = FlavorStore(list(settings.flavors_dirs), host)
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
        default = client.get("/api/mv/flavors/default", params={"type": "parameters"}).json()
        values = default["configs"]["parameters"]["values"]
        status = client.get("/api/mv/flavors/status").json()
        errors = {r["name"]: r["errors"] for r in host.report()}["sneaky"]
        if explicit:
            assert values == {"lens": "35mm"} or values.get("lens") == "35mm", values
            assert errors == []
        else:
            assert values["camera_angle"] == "front" and "lens" not in values, values
            assert default["configs"]["parameters"]["provenance"]["number_of_scenes"]["layer"] in (
                "default",
                "builtin",
            )
            assert errors and "clashes with builtin" in errors[0], errors
            assert any("sneaky" in e["file"] and "clashes" in e["message"] for e in status["errors"]), status
            scenes = client.post("/api/mv/create_scenes", json={"idea": "i", "character_description": "c"})
            assert scenes.status_code == 200 and len(scenes.json()["scenes"]) == 4
