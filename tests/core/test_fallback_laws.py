"""The fallback rule of DESIGN §4, as hypothesis properties over generated flavor trees.

Each example writes a ``default`` flavor and 1-3 other flavors to a temp dir, every
flavor holding a random subset of the keys of the built-in config types (values of the
types the pydantic models in ``mvcore.config.config_types`` require) plus a ``nested`` config
type registered by a plugin, whose schema allows nested objects so the recursive
mapping merge is exercised.  The resolution is compared to an independent reference
model of the rule; provenance is checked by re-reading the named file.

Examples per run (``max_examples`` of each property, ``TOTAL_EXAMPLES`` below):
  reference model 50 + identity 30 + precedence 40 + monotonicity 30 + idempotence 30
  + no leakage 30 + provenance 50 + unknown->default 25 + strict 25 = 310 generated flavor
  trees (each a ``default`` plus 1-3 flavors written to disk and built into a store).
"""

from __future__ import annotations

import copy
import difflib
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from mvcore import hookimpl
from mvcore.config.config_types import builtin_config_types
from mvcore.config.merge import Layer, Provenance, merge_layers
from mvcore.config.store import FlavorStore
from mvcore.errors import FlavorNotFound

EXAMPLES = {
    "reference": 50,
    "identity": 30,
    "precedence": 40,
    "monotonicity": 30,
    "idempotence": 30,
    "leakage": 30,
    "provenance": 50,
    "unknown": 25,
    "strict": 25,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())  # 310


def law(name: str) -> Callable[[Any], Any]:
    # make_store is a stateless factory fixture: sharing it between examples is fine.
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# ---------------------------------------------------------------------------
# Strategies: values typed after the pydantic models of the built-in types
# ---------------------------------------------------------------------------

BUILTIN_TYPES = {t.name: t for t in builtin_config_types()}
BUILTIN_DATA: dict[str, dict[str, Any]] = {
    name: yaml.safe_load(t.defaults_file.read_text(encoding="utf-8")) or {}  # type: ignore[union-attr]
    for name, t in BUILTIN_TYPES.items()
}
NESTED = "nested"
NESTED_PLUGIN = "nest"
NESTED_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
ALL_TYPES = [*BUILTIN_TYPES, NESTED]

# Printable text without braces (braces are template syntax, tested elsewhere).
_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=["L", "N", "P", "Zs", "S"], exclude_characters="{}\x85\u2028\u2029\ufeff"
    )
    | st.sampled_from([" ", "\n", ":", "#", "'", '"', "-"]),
    max_size=30,
)


def _template(allowed: frozenset[str]) -> st.SearchStrategy[str]:
    piece = st.one_of(
        _TEXT,
        st.sampled_from(sorted(allowed)).map(lambda n: "{" + n + "}"),
        st.sampled_from(["{{", "}}", "{{literal}}"]),
    )
    return st.lists(piece, max_size=6).map("".join)


def _field_strategy(field: FieldInfo, allowed: frozenset[str] | None) -> st.SearchStrategy[Any]:
    if allowed is not None:
        return _template(allowed)
    lo = hi = pattern = None
    for meta in field.metadata:
        lo = getattr(meta, "ge", lo)
        hi = getattr(meta, "le", hi)
        pattern = getattr(meta, "pattern", pattern)
    if field.annotation is bool:
        return st.booleans()
    if field.annotation is int:
        return st.integers(min_value=lo, max_value=hi)
    if field.annotation is float:
        return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)
    if field.annotation is str:
        return st.from_regex(pattern, fullmatch=True) if pattern else _TEXT
    raise AssertionError(f"no strategy for {field!r}")  # a new field type: teach the test


def _config_strategy(type_name: str) -> st.SearchStrategy[dict[str, Any]]:
    config_type = BUILTIN_TYPES[type_name]
    assert config_type.model is not None
    fields = {
        key: _field_strategy(field, config_type.placeholders.get(key))
        for key, field in config_type.model.model_fields.items()
    }
    return st.fixed_dictionaries({}, optional=fields)


_NESTED_KEYS = st.sampled_from(["a", "b", "c", "d"])
_LEAF = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.sampled_from(["", "x", "yes", "1:1", "0"]),
    st.lists(st.integers(0, 3), max_size=3),
    st.just({}),
)
_NESTED_VALUE = st.recursive(
    _LEAF, lambda inner: st.dictionaries(_NESTED_KEYS, inner, max_size=3), max_leaves=8
)
_NESTED_CONFIG = st.dictionaries(_NESTED_KEYS, _NESTED_VALUE, max_size=4)

CONFIG_STRATEGIES = {name: _config_strategy(name) for name in BUILTIN_TYPES}
CONFIG_STRATEGIES[NESTED] = _NESTED_CONFIG


def one_key(type_name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Exactly one key of a config type, with a valid value."""
    if type_name == NESTED:
        return st.dictionaries(_NESTED_KEYS, _NESTED_VALUE, min_size=1, max_size=1)
    config_type = BUILTIN_TYPES[type_name]
    assert config_type.model is not None
    fields = config_type.model.model_fields
    return st.sampled_from(sorted(fields)).flatmap(
        lambda key: _field_strategy(fields[key], config_type.placeholders.get(key)).map(lambda v: {key: v})
    )


_STYLE = st.tuples(st.sampled_from([False, True, None]), st.integers(0, 2))  # flow style, comment lines
# ^[a-z0-9][a-z0-9_-]{0,9}$ (built by hand: from_regex is several times slower)
_NAME = st.builds(
    str.__add__,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=9),
).filter(lambda n: n != "default")


@st.composite
def flavor_configs(draw: st.DrawFn) -> dict[str, tuple[dict[str, Any], tuple[bool | None, int]]]:
    """One flavor: {config_type: (data, style)} for a random subset of the types."""
    chosen = draw(st.lists(st.sampled_from(ALL_TYPES), unique=True, max_size=len(ALL_TYPES)))
    return {t: (draw(CONFIG_STRATEGIES[t]), draw(_STYLE)) for t in chosen}


@st.composite
def trees(draw: st.DrawFn, min_others: int = 1) -> dict[str, Any]:
    names = draw(st.lists(_NAME, min_size=min_others, max_size=3, unique=True))
    flavors = {"default": draw(flavor_configs())}
    for name in names:
        flavors[name] = draw(flavor_configs())
    return {"flavors": flavors, "plugin_defaults": draw(_NESTED_CONFIG)}


# ---------------------------------------------------------------------------
# Writing a tree, and the reference model of the rule
# ---------------------------------------------------------------------------


class NestedTypePlugin:
    """Registers the ``nested`` config type (any JSON object) with given defaults."""

    def __init__(self, defaults: Mapping[str, Any]) -> None:
        self.defaults = defaults

    @hookimpl
    def mvcore_config_types(self) -> list[dict[str, Any]]:
        return [{"name": NESTED, "schema": NESTED_SCHEMA, "defaults": copy.deepcopy(self.defaults)}]


def dump(data: Mapping[str, Any], style: tuple[bool | None, int]) -> str:
    flow, comments = style
    header = "".join(f"# comment line {i}\n" for i in range(comments))
    return header + yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=flow)


def write_config(
    root: Path, flavor: str, type_name: str, data: Mapping[str, Any], style: Any = (False, 0)
) -> Path:
    path = root / flavor / f"{type_name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(data, style), encoding="utf-8")
    return path


def write_tree(root: Path, tree: dict[str, Any]) -> None:
    for flavor, configs in tree["flavors"].items():
        (root / flavor).mkdir(parents=True, exist_ok=True)
        for type_name, (data, style) in configs.items():
            write_config(root, flavor, type_name, data, style)


def store_for(
    make_store: Callable[..., FlavorStore], root: Path, tree: dict[str, Any], *, strict: bool = False
) -> FlavorStore:
    return make_store(root, (NESTED_PLUGIN, NestedTypePlugin(tree["plugin_defaults"])), strict=strict)


def data_of(tree: dict[str, Any], flavor: str, type_name: str) -> dict[str, Any]:
    entry = tree["flavors"].get(flavor, {}).get(type_name)
    return entry[0] if entry else {}


def base_of(tree: dict[str, Any], type_name: str) -> dict[str, Any]:
    return tree["plugin_defaults"] if type_name == NESTED else BUILTIN_DATA[type_name]


def ref_merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    """Reference: mappings merge key by key, anything else in ``high`` replaces whole."""
    out = copy.deepcopy(dict(low))
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = ref_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expected(tree: dict[str, Any], flavor: str, type_name: str) -> dict[str, Any]:
    merged = ref_merge(base_of(tree, type_name), data_of(tree, "default", type_name))
    if flavor != "default":
        merged = ref_merge(merged, data_of(tree, flavor, type_name))
    return merged


def leaves(data: Mapping[str, Any], prefix: str = "", *, empty_maps: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value:
            out.update(leaves(value, path, empty_maps=empty_maps))
        elif empty_maps or not isinstance(value, Mapping):
            out[path] = value
    return out


def at(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def key_line(node: yaml.Node, dotted: str) -> int:
    """1-based line of the key at ``dotted`` in a YAML node tree we composed ourselves."""
    line = None
    for part in dotted.split("."):
        assert isinstance(node, yaml.MappingNode), dotted
        for key_node, value_node in node.value:
            if key_node.value == part:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            raise AssertionError(f"{dotted} not in file")
    assert line is not None
    return line


def wire(store: FlavorStore, flavor: str) -> dict[str, Any]:
    return store.snapshot().resolve(flavor).to_wire()["configs"]


def tmp_root() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="mvcore-laws-")


# ---------------------------------------------------------------------------
# The laws
# ---------------------------------------------------------------------------


@law("reference")
@given(tree=trees())
def test_every_resolved_config_equals_the_reference_model_of_the_rule(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        snap = store.snapshot()
        assert snap.errors() == [], [str(i) for i in snap.errors()]
        assert set(snap.names()) == set(tree["flavors"])
        for flavor in tree["flavors"]:
            configs = wire(store, flavor)
            assert set(configs) == set(ALL_TYPES)
            for type_name in ALL_TYPES:
                assert configs[type_name]["values"] == expected(tree, flavor, type_name), (flavor, type_name)


@law("identity")
@given(tree=trees())
def test_identity_resolving_default_is_default_merged_over_builtin(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        resolution = store.snapshot().resolve("default")
        assert (resolution.flavor_used, resolution.fallback) == ("default", False)
        for type_name in ALL_TYPES:
            own = data_of(tree, "default", type_name)
            values, _ = merge_layers([Layer("default", own), Layer("builtin", base_of(tree, type_name))])
            assert resolution.configs[type_name].to_wire()["values"] == values
            assert values == ref_merge(base_of(tree, type_name), own)
        # A flavor without any file of its own resolves exactly like default.
        (root / "zz-no-files-at-all").mkdir()
        store.rebuild()
        assert wire(store, "zz-no-files-at-all") == wire(store, "default")


@law("precedence")
@given(tree=trees())
def test_precedence_a_key_set_in_the_flavor_always_wins(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        for flavor in tree["flavors"]:
            if flavor == "default":
                continue
            configs = wire(store, flavor)
            for type_name in ALL_TYPES:
                own = data_of(tree, flavor, type_name)
                file = str(root / flavor / f"{type_name}.yaml")
                for path, value in leaves(own, empty_maps=False).items():
                    assert at(configs[type_name]["values"], path) == value, (flavor, type_name, path)
                    prov = configs[type_name]["provenance"][path]
                    assert (prov["layer"], prov["file"]) == ("flavor", file)


@law("monotonicity")
@given(tree=trees(), data=st.data())
def test_monotonicity_adding_a_key_to_default_never_changes_a_key_the_flavor_sets(
    make_store, tree, data
) -> None:
    type_name = data.draw(st.sampled_from(ALL_TYPES), label="type")
    added = data.draw(one_key(type_name), label="key added to default")
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        before = {f: wire(store, f) for f in tree["flavors"]}
        new_default = ref_merge(data_of(tree, "default", type_name), added)
        write_config(root, "default", type_name, new_default)
        store.rebuild("test")
        for flavor in tree["flavors"]:
            if flavor == "default":
                continue
            after = wire(store, flavor)[type_name]
            own = data_of(tree, flavor, type_name)
            for path in leaves(own, empty_maps=False):
                assert at(after["values"], path) == at(before[flavor][type_name]["values"], path)
                assert after["provenance"][path] == before[flavor][type_name]["provenance"][path]
        # ... and the added keys do show wherever the flavor is silent (the rule, not just the law).
        default = {**tree["flavors"]["default"], type_name: (new_default, (False, 0))}
        new_tree = {**tree, "flavors": {**tree["flavors"], "default": default}}
        for flavor in tree["flavors"]:
            assert wire(store, flavor)[type_name]["values"] == expected(new_tree, flavor, type_name)


@law("idempotence")
@given(tree=trees())
def test_idempotence_building_and_resolving_twice_gives_equal_results(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        first = store_for(make_store, root, tree)
        second = store_for(make_store, root, tree)
        assert first.rebuild() is None  # nothing changed: same snapshot, same generation
        assert first.snapshot().generation == second.snapshot().generation == 1
        for flavor in [*tree["flavors"], "no-such-flavor"]:
            a, b = first.snapshot().resolve(flavor), second.snapshot().resolve(flavor)
            assert a.to_wire() == b.to_wire()
            assert first.snapshot().resolve(flavor).to_wire() == a.to_wire()
            # Merging resolved values over themselves changes nothing (x over x == x).
            for type_name in ALL_TYPES:
                values = a.configs[type_name].to_wire()["values"]
                assert merge_layers([Layer("again", values), Layer("resolved", values)])[0] == values


@law("leakage")
@given(tree=trees(min_others=2), data=st.data())
def test_no_leakage_editing_one_flavor_never_changes_another(make_store, tree, data) -> None:
    others = sorted(n for n in tree["flavors"] if n != "default")
    edited, watched = data.draw(st.permutations(others), label="flavors")[:2]
    new_configs = data.draw(flavor_configs(), label="new content of the edited flavor")
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        before = wire(store, watched)
        for old in (root / edited).iterdir():
            old.unlink()
        for type_name, (config, style) in new_configs.items():
            write_config(root, edited, type_name, config, style)
        store.rebuild("test")
        assert wire(store, watched) == before
        new_tree = {**tree, "flavors": {**tree["flavors"], edited: new_configs}}
        for type_name in ALL_TYPES:
            assert wire(store, edited)[type_name]["values"] == expected(new_tree, edited, type_name)


@law("provenance")
@given(tree=trees())
def test_provenance_always_names_a_file_that_holds_the_value_at_that_line(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        files: dict[str, tuple[list[str], Any, yaml.Node]] = {}  # file -> (lines, data, node tree)
        for flavor in tree["flavors"]:
            for type_name, config in wire(store, flavor).items():
                values, provenance = config["values"], config["provenance"]
                # Every leaf has provenance, and nothing else has (no stale entries).
                assert set(provenance) == set(leaves(values)), (flavor, type_name)
                for path, prov in provenance.items():
                    value = at(values, path)
                    if prov["file"] is None:
                        assert type_name == NESTED and prov["layer"] == f"plugin:{NESTED_PLUGIN}"
                        assert at(tree["plugin_defaults"], path) == value
                        continue
                    file = prov["file"]
                    if file not in files:
                        text = Path(file).read_text(encoding="utf-8")
                        files[file] = (
                            text.splitlines(),
                            yaml.safe_load(text),
                            yaml.compose(text, yaml.SafeLoader),
                        )
                    lines, on_disk, node = files[file]
                    assert at(on_disk, path) == value, (file, path)
                    assert prov["line"] == key_line(node, path), (file, path)
                    assert path.rsplit(".", 1)[-1] in lines[prov["line"] - 1]
                    expected_layer = {
                        str(root / flavor / f"{type_name}.yaml"): "flavor",
                        str(root / "default" / f"{type_name}.yaml"): "default",
                    }.get(file, "builtin")
                    if expected_layer == "builtin":
                        assert file == str(BUILTIN_TYPES[type_name].defaults_file)
                    assert prov["layer"] == expected_layer


@law("unknown")
@given(tree=trees(), name=_NAME | st.text(max_size=80))
def test_unknown_flavor_resolves_as_default_with_fallback_true(make_store, tree, name) -> None:
    assume(name not in tree["flavors"] and name not in ("", "default"))
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        resolution = store.snapshot().resolve(name)
        assert resolution.flavor_requested == name
        assert (resolution.flavor_used, resolution.fallback) == ("default", True)
        assert resolution.to_wire()["configs"] == wire(store, "default")


@law("strict")
@given(tree=trees(), data=st.data())
def test_strict_unknown_flavor_raises_flavor_not_found_with_alternatives(make_store, tree, data) -> None:
    names = sorted(tree["flavors"])
    near = data.draw(st.sampled_from(names), label="near")
    typo = near + data.draw(st.sampled_from(["x", "9", "_"]), label="suffix")  # close enough for did-you-mean
    assume(typo not in names)
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree, strict=True)
        with pytest.raises(FlavorNotFound) as caught:
            store.snapshot().resolve(typo, strict=True)
        error = caught.value
        assert error.alternatives == names
        assert error.details["did_you_mean"] is not None
        assert error.details["did_you_mean"] == difflib.get_close_matches(typo, names, n=1, cutoff=0.6)[0]
        detail = error.to_detail()
        assert detail["error"] == "FLAVOR_NOT_FOUND" and detail["details"]["valid"] == names
        assert error.status_code == 404


# ---------------------------------------------------------------------------
# merge_layers, directly
# ---------------------------------------------------------------------------


def _merge(*layers: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Provenance]]:
    """Highest precedence first; each layer named l0, l1 ... with line = 10*index + 1."""
    return merge_layers(
        [
            Layer(f"l{i}", data, f"f{i}", {p: 10 * i + 1 for p in _all_paths(data)})
            for i, data in enumerate(layers)
        ]
    )


def _all_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        out.append(path)
        if isinstance(value, Mapping):
            out.extend(_all_paths(value, path))
    return out


def test_merge_mappings_merge_recursively_key_by_key() -> None:
    values, prov = _merge({"a": {"b": {"c": 1}}}, {"a": {"b": {"d": 2}, "e": 3}, "f": 4})
    assert values == {"a": {"b": {"c": 1, "d": 2}, "e": 3}, "f": 4}
    assert {p: v.layer for p, v in prov.items()} == {"a.b.c": "l0", "a.b.d": "l1", "a.e": "l1", "f": "l1"}
    assert prov["a.b.c"] == Provenance("l0", "f0", 1)


def test_merge_lists_replace_whole() -> None:
    values, prov = _merge({"a": [1]}, {"a": [1, 2, 3], "b": [4]})
    assert values == {"a": [1], "b": [4]}
    assert prov["a"].layer == "l0" and prov["b"].layer == "l1"
    assert "a.0" not in prov


@pytest.mark.parametrize("falsy", [0, 0.0, False, "", None, []])
def test_merge_present_but_falsy_key_wins(falsy: Any) -> None:
    values, prov = _merge({"k": falsy}, {"k": "fallback"}, {"k": "base"})
    assert values == {"k": falsy}
    assert prov["k"] == Provenance("l0", "f0", 1)


def test_merge_scalar_replaced_by_mapping() -> None:
    values, prov = _merge({"a": {"b": 1}}, {"a": 7})
    assert values == {"a": {"b": 1}}
    assert set(prov) == {"a.b"} and prov["a.b"].layer == "l0"


def test_merge_mapping_replaced_by_scalar() -> None:
    values, prov = _merge({"a": 7}, {"a": {"b": 1, "c": {"d": 2}}})
    assert values == {"a": 7}
    assert set(prov) == {"a"} and prov["a"] == Provenance("l0", "f0", 1)


def test_merge_non_empty_mapping_over_empty_mapping_leaves_no_stale_provenance() -> None:
    values, prov = _merge({"a": {"b": 1}}, {"a": {}})
    assert values == {"a": {"b": 1}}
    assert set(prov) == {"a.b"}


def test_merge_empty_mapping_is_a_leaf_with_provenance() -> None:
    values, prov = _merge({"x": 1}, {"a": {}})
    assert values == {"x": 1, "a": {}}
    assert prov["a"].layer == "l1"


def test_merge_does_not_share_mutable_values_with_its_layers() -> None:
    low = {"a": {"b": [1, 2]}}
    values, _ = _merge({}, low)
    values["a"]["b"].append(3)
    values["a"]["c"] = 1
    assert low == {"a": {"b": [1, 2]}}


def test_merge_of_no_layers_is_empty() -> None:
    assert merge_layers([]) == ({}, {})
