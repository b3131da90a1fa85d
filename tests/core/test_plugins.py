"""Plugins (DESIGN §7): each one is isolated, so a broken plugin is reported by name and skipped.

Covers entry points that fail to import (simulated with a dist-info on a tmp
``sys.path`` entry), hooks that raise, hang or return garbage, allow/deny lists,
config-type clashes with built-ins, and the installed example plugin ``neon``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mvcore_plugin_neon
import pytest

from mvcore import hookimpl
from mvcore.config.config_types import ConfigType
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings


def record(host: PluginHost, name: str) -> dict[str, Any]:
    return next(r for r in host.report() if r["name"] == name)


class InlineFlavor:
    """A well-behaved plugin: one in-code flavor."""

    def __init__(self, flavor: str = "from-good-plugin") -> None:
        self.flavor = flavor

    @hookimpl
    def mvcore_flavors(self) -> dict[str, Any]:
        return {self.flavor: {"parameters": {"camera_angle": "drone"}}}


def assert_rest_loads(store: FlavorStore, good_flavor: str = "from-good-plugin") -> None:
    snap = store.current
    assert {"default", "example", "test_flavor", good_flavor} <= set(snap.names())
    assert snap.resolve(good_flavor)["parameters"]["camera_angle"] == "drone"
    assert snap.resolve("example")["parameters"]["number_of_scenes"] == 6


# ---------------------------------------------------------------------------
# Entry points that fail to import
# ---------------------------------------------------------------------------

FAKE_DISTS = {
    # entry-point name: (module name, module source)
    "boom": ("mvcore_test_boom", "raise RuntimeError('boom at import')\n"),
    "quitter": ("mvcore_test_quitter", "raise SystemExit(3)\n"),
    "missing": ("mvcore_test_not_there", None),
    "syntax": ("mvcore_test_syntax", "def broken(:\n"),
    "fine": (
        "mvcore_test_fine",
        "import mvcore\n\n@mvcore.hookimpl\ndef mvcore_flavors():\n"
        "    return {'from-entry-point': {'parameters': {'camera_angle': 'crane'}}}\n",
    ),
}


@pytest.fixture
def fake_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    for ep_name, (module, source) in FAKE_DISTS.items():
        dist = site / f"mvcore_test_{ep_name}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: mvcore-test-{ep_name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[mvcore]\n{ep_name} = {module}\n")
        if source is not None:
            (site / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module, _ in FAKE_DISTS.values():
        sys.modules.pop(module, None)


def test_entry_points_that_fail_to_import_are_reported_by_name_and_the_rest_loads(
    fake_entry_points: Path, flavors_dir: Path
) -> None:
    host = PluginHost()
    for name, fragment in [
        ("boom", "RuntimeError('boom at import')"),
        ("quitter", "SystemExit(3)"),
        ("missing", "ModuleNotFoundError"),
        ("syntax", "SyntaxError"),
    ]:
        rec = record(host, name)
        assert rec["source"] == "entry-point"
        assert rec["version"] == "0.1"
        assert len(rec["errors"]) == 1 and rec["errors"][0].startswith("import failed:")
        assert fragment in rec["errors"][0]
        assert rec["hooks"] == []
    assert record(host, "fine")["errors"] == []
    assert record(host, "neon")["errors"] == []
    store = FlavorStore([flavors_dir], host)
    names = store.current.names()
    assert {"default", "example", "test_flavor", "neon", "neon_minimal", "from-entry-point"} <= set(names)
    assert store.current.resolve("from-entry-point")["parameters"]["camera_angle"] == "crane"


def test_a_denied_entry_point_is_not_even_imported(fake_entry_points: Path) -> None:
    host = PluginHost(deny=list(FAKE_DISTS))
    for name in FAKE_DISTS:
        assert record(host, name)["enabled"] is False
        assert record(host, name)["errors"] == []
    assert not {module for module, _ in FAKE_DISTS.values()} & set(sys.modules)
    assert record(host, "neon")["enabled"] is True


def test_an_allow_list_skips_every_other_entry_point(fake_entry_points: Path) -> None:
    host = PluginHost(allow=["fine"])
    assert record(host, "fine")["enabled"] is True and record(host, "fine")["errors"] == []
    assert all(not record(host, n)["enabled"] for n in ("boom", "quitter", "missing", "syntax", "neon"))
    assert "mvcore_test_fine" in sys.modules and "mvcore_test_boom" not in sys.modules


# ---------------------------------------------------------------------------
# Hooks that raise, hang or return garbage
# ---------------------------------------------------------------------------


class RaisesInHooks:
    @hookimpl
    def mvcore_flavors(self) -> Any:
        raise RuntimeError("kaboom in mvcore_flavors")

    @hookimpl
    def mvcore_config_types(self) -> Any:
        raise KeyError("kaboom in mvcore_config_types")

    @hookimpl
    def mvcore_flavor_dirs(self) -> Any:
        raise SystemExit("even SystemExit is contained")


def test_a_plugin_that_raises_inside_a_hook_is_reported_and_skipped(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir, ("raiser", RaisesInHooks()), ("good", InlineFlavor()))
    errors = record(store.host, "raiser")["errors"]
    assert any(
        e.startswith("mvcore_flavors: raised RuntimeError('kaboom in mvcore_flavors')") for e in errors
    )
    assert any(e.startswith("mvcore_config_types: raised KeyError") for e in errors)
    assert any(e.startswith("mvcore_flavor_dirs: raised SystemExit") for e in errors)
    assert record(store.host, "good")["errors"] == []
    assert_rest_loads(store)


class Hangs:
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    @hookimpl
    def mvcore_flavor_dirs(self) -> Any:
        self.release.wait(30)
        return []


def test_a_plugin_that_hangs_in_a_hook_is_cut_off_at_the_hook_timeout(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    release = threading.Event()
    try:
        started = time.monotonic()
        store = make_store(
            flavors_dir, ("sleeper", Hangs(release)), ("good", InlineFlavor()), hook_timeout=0.2
        )
        assert time.monotonic() - started < 5
        errors = record(store.host, "sleeper")["errors"]
        assert errors == ["mvcore_flavor_dirs: did not return within 0.2 s (skipped)"]
        assert_rest_loads(store)
    finally:
        release.set()


def _plugin(hook: str, value: Callable[[], Any]) -> object:
    impl = hookimpl(lambda: value())
    return type(f"Garbage_{hook}", (), {hook: staticmethod(impl)})()


GARBAGE: dict[str, tuple[str, Callable[[], Any], str]] = {
    # plugin name: (hook, return value, fragment of the reported error)
    "types-not-a-list": ("mvcore_config_types", lambda: "nonsense", "needs at least 'name'"),
    "type-without-schema": ("mvcore_config_types", lambda: [{"name": "lonely"}], "needs at least 'name'"),
    "type-bad-name": ("mvcore_config_types", lambda: [{"name": "Bad Type", "schema": {}}], "is not allowed"),
    "type-named-flavor": (
        "mvcore_config_types",
        lambda: [{"name": "flavor", "schema": {}}],
        "is not allowed",
    ),
    "type-broken-schema": (
        "mvcore_config_types",
        lambda: [{"name": "broken_schema", "schema": {"type": "notatype"}}],
        "invalid JSON Schema",
    ),
    "type-schema-not-object": (
        "mvcore_config_types",
        lambda: [{"name": "odd_schema", "schema": {"properties": 5}}],
        "invalid JSON Schema",
    ),
    "type-defaults-not-mapping": (
        "mvcore_config_types",
        lambda: [{"name": "bad_defaults", "schema": {}, "defaults": [1, 2]}],
        "'defaults' must be a mapping",
    ),
    "type-defaults-break-schema": (
        "mvcore_config_types",
        lambda: [
            {
                "name": "wrong_defaults",
                "schema": {"type": "object", "properties": {"gain": {"type": "number"}}},
                "defaults": {"gain": "loud"},
            }
        ],
        "defaults do not match",
    ),
    "dirs-not-paths": ("mvcore_flavor_dirs", lambda: [1, None], "expected paths, got int"),
    "dirs-generator": ("mvcore_flavor_dirs", lambda: (p for p in ["/"]), "expected paths, got generator"),
    "flavors-not-a-mapping": ("mvcore_flavors", lambda: 42, "expected {flavor: {config_type: mapping}}"),
    "flavors-values-not-mappings": ("mvcore_flavors", lambda: {"x": [1]}, "expected {flavor: {config_type"),
    "flavor-name-not-a-string": ("mvcore_flavors", lambda: {5: {"parameters": {}}}, "flavor name"),
    "providers-not-a-mapping": ("mvcore_providers", lambda: ["replicate"], "expected {name: provider}"),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_a_plugin_returning_garbage_is_reported_by_name_and_the_rest_loads(
    flavors_dir: Path, make_store: Callable[..., FlavorStore], name: str
) -> None:
    hook, value, fragment = GARBAGE[name]
    store = make_store(flavors_dir, (name, _plugin(hook, value)), ("good", InlineFlavor()))
    store.host.providers(Settings())
    errors = record(store.host, name)["errors"]
    assert errors and any(e.startswith(f"{hook}: ") and fragment in e for e in errors), errors
    assert record(store.host, "good")["errors"] == []
    assert_rest_loads(store)
    assert store.current.errors() == [] or all(f"plugin:{name}" in i.file for i in store.current.errors())


class InCodeGarbage:
    """In-code flavors whose *values* are garbage: errors of that flavor, not a crash."""

    @hookimpl
    def mvcore_flavors(self) -> dict[Any, Any]:
        return {
            "int-keys": {"parameters": {1: "one", "camera_angle": "x"}},
            "objects": {"parameters": {"camera_angle": object()}},
            "not-a-mapping": {"parameters": "front"},
            "unknown-type": {"no_such_type": {"a": 1}, "parameters": {"camera_angle": "fine"}},
        }


def test_in_code_flavors_with_garbage_values_are_invalid_flavors_not_crashes(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir, ("junk", InCodeGarbage()), ("good", InlineFlavor()))
    snap = store.current
    statuses = snap.statuses
    for name in ("int-keys", "objects", "not-a-mapping"):
        assert statuses[name].status == "invalid"
        assert name not in snap.names()
        assert all(i.file.startswith(f"plugin:junk/{name}") for i in statuses[name].issues)
    assert any("unknown key '1'" in str(i) for i in statuses["int-keys"].issues)
    assert statuses["unknown-type"].status == "ok"  # an unknown type is a warning
    assert [i.severity for i in statuses["unknown-type"].issues] == ["warning"]
    assert_rest_loads(store)


class RemoteRefSchema:
    """A schema that would make validation fetch a URL: refused, never fetched."""

    @hookimpl
    def mvcore_config_types(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "remote",
                "schema": {"type": "object", "properties": {"x": {"$ref": "https://schemas.invalid/x.json"}}},
            }
        ]


def test_a_schema_with_a_remote_ref_is_refused_and_never_fetched(
    flavors_dir: Path, make_store: Callable[..., FlavorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validation tried to fetch a remote schema")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    (flavors_dir / "example" / "remote.yaml").write_text("x: 1\n")
    store = make_store(flavors_dir, ("remote", RemoteRefSchema()))
    assert "remote" not in store.current.registry
    errors = record(store.host, "remote")["errors"]
    assert len(errors) == 1 and "never fetched" in errors[0]
    # ... and the file of an unknown type is only a warning: example keeps loading.
    assert store.current.statuses["example"].status == "ok"


class DanglingRefSchema:
    """A local $ref that resolves nowhere, reached only when a file has the key."""

    @hookimpl
    def mvcore_config_types(self) -> list[dict[str, Any]]:
        return [
            {"name": "dangling", "schema": {"type": "object", "properties": {"x": {"$ref": "#/$defs/nope"}}}}
        ]


def test_a_schema_that_breaks_while_checking_a_file_is_an_error_of_that_file(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    (flavors_dir / "example" / "dangling.yaml").write_text("x: 1\n")
    store = make_store(flavors_dir, ("dangling", DanglingRefSchema()))
    snap = store.current
    assert "dangling" in snap.registry
    texts = [str(i) for i in snap.statuses["example"].issues]
    assert len(texts) == 1, texts
    assert texts[0].startswith("flavors/example/dangling.yaml: cannot check against the 'dangling' schema: ")
    assert "/$defs/nope" in texts[0] and len(texts[0]) < 250
    assert snap.statuses["example"].status == "invalid"
    assert snap.resolve("test_flavor").fallback is False


class ProviderClassRaises:
    class Broken:
        def __init__(self, settings: Any) -> None:
            raise RuntimeError("cannot build provider")

    @hookimpl
    def mvcore_providers(self) -> dict[str, Any]:
        return {"broken": self.Broken, "fine": object()}


def test_a_provider_factory_that_raises_is_reported_and_skipped(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir, ("prov", ProviderClassRaises()))
    providers = store.host.providers(Settings())
    assert "broken" not in providers and "fine" in providers
    assert any("cannot build provider" in e for e in record(store.host, "prov")["errors"])


class ReloadListeners:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def mvcore_on_reload(self, event: dict[str, Any]) -> None:
        self.events.append(event)


class ReloadRaises:
    @hookimpl
    def mvcore_on_reload(self, event: dict[str, Any]) -> None:
        raise ValueError("listener broke")


def test_on_reload_hooks_get_the_event_and_a_raising_one_does_not_stop_the_reload(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    listener = ReloadListeners()
    store = make_store(flavors_dir, ("bad-listener", ReloadRaises()), ("listener", listener))
    (flavors_dir / "example" / "parameters.yaml").write_text("number_of_scenes: 9\n")
    event = store.rebuild("test")
    assert event is not None and event.generation == 2
    assert store.current.resolve("example")["parameters"]["number_of_scenes"] == 9
    assert [e["generation"] for e in listener.events] == [2]
    assert "example" in listener.events[0]["changed"]
    assert any("listener broke" in e for e in record(store.host, "bad-listener")["errors"])


# ---------------------------------------------------------------------------
# Allow / deny lists
# ---------------------------------------------------------------------------


def _host(allow: list[str] | None = None, deny: tuple[str, ...] = ()) -> PluginHost:
    host = PluginHost(entry_points=False, allow=allow, deny=deny)
    host.register(InlineFlavor("flavor-a"), "a")
    host.register(InlineFlavor("flavor-b"), "b")
    return host


@pytest.mark.parametrize(
    ("allow", "deny", "enabled"),
    [
        (None, (), {"a", "b"}),
        (["a"], (), {"a"}),
        ([], (), set()),
        (None, ("a",), {"b"}),
        (["a", "b"], ("b",), {"a"}),  # deny wins over allow
    ],
)
def test_allow_and_deny_lists_choose_the_plugins(
    flavors_dir: Path, allow: list[str] | None, deny: tuple[str, ...], enabled: set[str]
) -> None:
    host = _host(allow, deny)
    assert record(host, "builtin")["enabled"] is True  # built-ins are never filtered
    assert {r["name"] for r in host.report() if r["enabled"] and r["name"] != "builtin"} == enabled
    names = set(FlavorStore([flavors_dir], host).current.names())
    assert {f"flavor-{p}" for p in ("a", "b")} & names == {f"flavor-{p}" for p in enabled}


def test_mvcore_plugins_and_mvcore_disable_plugins_env_vars(
    flavors_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVCORE_FLAVORS_DIR", str(flavors_dir))
    monkeypatch.setenv("MVCORE_PLUGINS", " neon , other ,")
    monkeypatch.setenv("MVCORE_DISABLE_PLUGINS", "other")
    settings = Settings()
    assert settings.plugins == ["neon", "other"]
    assert settings.disable_plugins == ["other"]
    store = FlavorStore.from_settings(settings)
    assert record(store.host, "neon")["enabled"] is True
    assert "neon" in store.current.names()

    monkeypatch.setenv("MVCORE_DISABLE_PLUGINS", "neon")
    store = FlavorStore.from_settings(Settings())
    assert record(store.host, "neon")["enabled"] is False
    assert not {"neon", "neon_minimal"} & set(store.current.names())
    assert "color_grade" not in store.current.registry

    monkeypatch.delenv("MVCORE_DISABLE_PLUGINS")
    monkeypatch.setenv("MVCORE_PLUGINS", "")
    settings = Settings()
    assert settings.plugins == []
    assert record(FlavorStore.from_settings(settings).host, "neon")["enabled"] is False


# ---------------------------------------------------------------------------
# Config types from plugins
# ---------------------------------------------------------------------------


class TypePlugin:
    def __init__(self, *types: Any) -> None:
        self.types = list(types)

    @hookimpl
    def mvcore_config_types(self) -> list[Any]:
        return self.types


LENS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"lens": {"type": "string"}, "camera_angle": {"type": "string"}},
}


def test_a_plugin_config_type_clashing_with_a_builtin_is_refused(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    clash = {"name": "parameters", "schema": LENS_SCHEMA, "defaults": {"lens": "35mm"}}
    store = make_store(flavors_dir, ("clasher", TypePlugin(clash)))
    snap = store.current
    assert snap.registry["parameters"].owner == "builtin"
    errors = record(store.host, "clasher")["errors"]
    assert errors == [
        "mvcore_config_types: Config type 'parameters' from plugin:clasher clashes with builtin"
    ]
    assert any(i.file == "plugin:clasher" and "clashes with builtin" in i.message for i in snap.errors())
    values = snap.resolve("default")["parameters"]
    assert "lens" not in values.values and values["number_of_scenes"] == 4


def test_a_config_type_object_clashing_with_a_builtin_is_refused_too(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    sneaky = ConfigType(name="image_params", schema={"type": "object"})  # owner defaults to "builtin"
    store = make_store(flavors_dir, ("sneaky", TypePlugin(sneaky)))
    assert store.current.registry["image_params"].owner == "builtin"
    assert "clashes with builtin" in record(store.host, "sneaky")["errors"][0]


def test_replaces_builtin_true_replaces_the_builtin_type_on_purpose(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    replacement = {
        "name": "parameters",
        "schema": LENS_SCHEMA,
        "defaults": {"lens": "35mm"},
        "replaces_builtin": True,
    }
    (flavors_dir / "example" / "parameters.yaml").write_text("lens: 85mm\ncamera_angle: wide\n")
    (flavors_dir / "default" / "parameters.yaml").write_text("camera_angle: front\n")
    (flavors_dir / "test_flavor" / "parameters.yaml").write_text("number_of_scenes: 2\n")
    store = make_store(flavors_dir, ("replacer", TypePlugin(replacement)))
    snap = store.current
    assert record(store.host, "replacer")["errors"] == []
    assert snap.registry["parameters"].owner == "plugin:replacer"
    example = snap.resolve("example")["parameters"]
    assert dict(example.values) == {"lens": "85mm", "camera_angle": "wide"}
    default = snap.resolve("default")["parameters"]
    assert dict(default.values) == {"lens": "35mm", "camera_angle": "front"}
    assert default.provenance["lens"].layer == "plugin:replacer" and default.provenance["lens"].file is None
    # number_of_scenes is not a key of the replacement schema any more
    assert snap.statuses["test_flavor"].status == "invalid"
    assert any("unknown key 'number_of_scenes'" in str(i) for i in snap.statuses["test_flavor"].issues)


class EarlyTypePlugin(TypePlugin):
    @hookimpl(tryfirst=True)
    def mvcore_config_types(self) -> list[Any]:
        return self.types


def test_two_plugins_claiming_the_same_new_type_the_one_pluggy_calls_second_is_refused(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    """pluggy calls the last registered plugin first: it claims the type, the earlier one clashes."""
    first = TypePlugin({"name": "grading", "schema": {"type": "object"}, "defaults": {"by": "first"}})
    second = TypePlugin({"name": "grading", "schema": {"type": "object"}, "defaults": {"by": "second"}})
    store = make_store(flavors_dir, ("first", first), ("second", second))
    assert store.current.registry["grading"].owner == "plugin:second"
    assert store.current.resolve("default")["grading"]["by"] == "second"
    assert "clashes with plugin:second" in record(store.host, "first")["errors"][0]


def test_tryfirst_is_honoured_a_plugin_marked_tryfirst_is_called_before_later_registrations(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    first = EarlyTypePlugin({"name": "grading", "schema": {"type": "object"}, "defaults": {"by": "first"}})
    second = TypePlugin({"name": "grading", "schema": {"type": "object"}, "defaults": {"by": "second"}})
    store = make_store(flavors_dir, ("first", first), ("second", second))
    assert store.current.registry["grading"].owner == "plugin:first"
    assert "clashes with plugin:first" in record(store.host, "second")["errors"][0]


class OrderProbe:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    @hookimpl
    def mvcore_flavor_dirs(self) -> list[Any]:
        self.calls.append(self.name)
        return []


class FirstOrderProbe(OrderProbe):
    @hookimpl(tryfirst=True)
    def mvcore_flavor_dirs(self) -> list[Any]:
        self.calls.append(self.name)
        return []


class LastOrderProbe(OrderProbe):
    @hookimpl(trylast=True)
    def mvcore_flavor_dirs(self) -> list[Any]:
        self.calls.append(self.name)
        return []


def test_hooks_are_called_in_pluggys_order_tryfirst_then_lifo_then_trylast() -> None:
    calls: list[str] = []
    host = PluginHost(entry_points=False)
    host.register(LastOrderProbe("late", calls), "late")
    host.register(FirstOrderProbe("early", calls), "early")
    host.register(OrderProbe("a", calls), "a")
    host.register(OrderProbe("b", calls), "b")
    host.call_each("mvcore_flavor_dirs")
    assert calls == ["early", "b", "a", "late"]


class MisspelledHook:
    @hookimpl
    def mvcore_flavor_dir(self) -> list[Any]:  # the spec is mvcore_flavor_dirs
        return []

    @hookimpl
    def mvcore_flavors(self) -> dict[str, Any]:
        return {"still-loads": {"parameters": {"number_of_scenes": 2}}}


def test_a_misspelled_hook_is_reported_as_a_plugin_error_with_a_did_you_mean() -> None:
    host = PluginHost(entry_points=False)
    host.register(MisspelledHook(), "typo")
    errors = record(host, "typo")["errors"]
    assert errors == [
        "unknown hook mvcore_flavor_dir: no such hook specification (did you mean mvcore_flavor_dirs?)"
    ]
    assert record(host, "typo")["hooks"] == ["mvcore_flavors"]  # its valid hooks still work
    assert dict(host.contributions().inline_flavors)["typo"]["still-loads"]


class WrapperPlugin:
    @hookimpl(wrapper=True)
    def mvcore_flavors(self) -> Any:
        result = yield
        return result


class OldStyleWrapperPlugin:
    @hookimpl(hookwrapper=True)
    def mvcore_flavors(self) -> Any:
        yield


@pytest.mark.parametrize("plugin", [WrapperPlugin(), OldStyleWrapperPlugin()], ids=["wrapper", "hookwrapper"])
def test_hook_wrappers_are_refused_explicitly_and_the_plugin_is_not_registered(plugin: object) -> None:
    host = PluginHost(entry_points=False)
    host.register(plugin, "wrapping")
    rec = record(host, "wrapping")
    assert rec["errors"] and "hook wrappers are not supported (mvcore_flavors)" in rec["errors"][0]
    assert not host.pm.is_registered(plugin)
    assert host.call_each("mvcore_flavors") == []


# ---------------------------------------------------------------------------
# The installed example plugin
# ---------------------------------------------------------------------------


def test_the_installed_neon_plugin_loads_from_its_entry_point(flavors_dir: Path) -> None:
    host = PluginHost()
    neon = record(host, "neon")
    assert neon["source"] == "entry-point" and neon["version"] == "0.1.0" and neon["enabled"]
    assert neon["errors"] == []
    assert neon["hooks"] == ["mvcore_config_types", "mvcore_flavor_dirs", "mvcore_flavors"]
    snap = FlavorStore([flavors_dir], host).current
    assert snap.errors() == []
    assert {"neon", "neon_minimal"} <= set(snap.names())
    assert snap.registry["color_grade"].owner == "plugin:neon"
    assert snap.statuses["neon"].origin == "plugin:neon"
    assert snap.statuses["neon_minimal"].description == "In-code flavor: neon look, three scenes"

    neon_grade = snap.resolve("neon")["color_grade"]
    assert neon_grade["saturation"] == 1.4 and neon_grade["grain"] is True
    prov = neon_grade.provenance["saturation"]
    assert prov.layer == "flavor" and prov.file is not None and prov.line == 2
    assert Path(prov.file).is_file() and Path(prov.file).name == "color_grade.yaml"
    assert snap.resolve("neon")["parameters"]["camera_angle"] == "low angle"

    minimal = snap.resolve("neon_minimal")
    assert minimal["parameters"]["number_of_scenes"] == 3
    assert minimal["parameters"].provenance["number_of_scenes"].layer == "plugin:neon"
    assert minimal["parameters"].provenance["number_of_scenes"].file is None
    assert minimal["parameters"].provenance["camera_angle"].layer == "default"
    assert minimal["color_grade"]["saturation"] == 1.6
    assert minimal["color_grade"].provenance["contrast"].layer == "plugin:neon"  # the type's own defaults
    assert minimal["color_grade"]["palette"] == ["#ff00aa", "#00e5ff"]


def test_neon_registered_directly_on_a_fresh_host_shows_its_flavors(
    flavors_dir: Path, make_store: Callable[..., FlavorStore]
) -> None:
    store = make_store(flavors_dir, ("neon", mvcore_plugin_neon))
    assert {"neon", "neon_minimal"} <= set(store.current.names())
    assert "color_grade" in store.current.registry


def test_a_bad_color_grade_file_gives_schema_errors_from_the_plugin_schema(flavors_dir: Path) -> None:
    (flavors_dir / "graded").mkdir()
    (flavors_dir / "graded" / "color_grade.yaml").write_text(
        "palette: ['#ff2bd6', red]\nsaturation: 9\ngrain: sometimes\nhue: 3\n"
    )
    (flavors_dir / "graded-ok").mkdir()
    (flavors_dir / "graded-ok" / "color_grade.yaml").write_text("saturation: 2.5\n")
    snap = FlavorStore([flavors_dir], PluginHost()).current
    texts = {str(i) for i in snap.statuses["graded"].issues}
    shown = "flavors/graded/color_grade.yaml"
    assert f"{shown}:1: palette.1: 'red' does not match '^#[0-9a-fA-F]{{6}}$'" in texts
    assert f"{shown}:2: saturation: 9 is greater than the maximum of 3" in texts
    assert f"{shown}:3: grain: 'sometimes' is not of type 'boolean'" in texts
    assert any(t.startswith(f"{shown}:4: hue: unknown key 'hue'") for t in texts)
    assert "graded" not in snap.names()
    assert snap.resolve("graded-ok")["color_grade"]["saturation"] == 2.5
