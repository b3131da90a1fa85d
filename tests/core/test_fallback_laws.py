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
  trees (each a ``default`` plus 1-3 flavors written to disk and built into a store), and
  for inheritance chains of depth 3 to 5 (``extends:``, plus a sibling sharing a parent):
  reference 40 + precedence along the chain 30 + no leakage between siblings 30 +
  provenance 30 = 130 more.  ``test_strategies_make_nesting_and_collisions_common`` measures
  how often the ``nested`` data exercise the recursive merge (depth >= 2, an empty mapping
  over a non-empty one, a list meeting a list or mapping) and fails when that gets rare.
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
from hypothesis import HealthCheck, assume, event, given, settings
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
    "chain_reference": 40,
    "chain_precedence": 30,
    "chain_siblings": 30,
    "chain_provenance": 30,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())  # 440


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


_NESTED_KEYS = st.sampled_from(["a", "b", "c"])  # few keys: layers collide on the same paths
_LEAF = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.sampled_from(["", "x", "yes", "1:1", "0"]),
    st.lists(st.integers(0, 3), max_size=3),  # list over list / mapping: replaced whole
)
# an empty mapping over a non-empty one is still a leaf: drawn as often as all other leaves together
_LEAF = st.one_of(_LEAF, st.just({}))


def _nested_value(depth: int) -> st.SearchStrategy[Any]:
    """Mappings two to three times as likely as leaves, down to ``depth`` levels.

    ``st.recursive`` with a leaf budget mostly stopped at depth 1 (no example of depth >= 2
    in 2 of 5 runs of 50); drawing the depth explicitly makes nesting the common case.
    """
    if depth == 0:
        return _LEAF
    inner = _nested_value(depth - 1)
    mapping = st.dictionaries(_NESTED_KEYS, inner, min_size=1, max_size=3)
    return st.one_of(mapping, mapping, _LEAF) if depth > 1 else st.one_of(mapping, _LEAF)


_NESTED_VALUE = _nested_value(3)
_NESTED_CONFIG = st.dictionaries(_NESTED_KEYS, _NESTED_VALUE, min_size=1, max_size=3)

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
    chosen = draw(st.lists(st.sampled_from(list(BUILTIN_TYPES)), unique=True, max_size=len(BUILTIN_TYPES)))
    if draw(st.integers(0, 4)) > 0:  # the recursive merge is where the rule can go wrong: mostly present
        chosen.append(NESTED)
    return {t: (draw(CONFIG_STRATEGIES[t]), draw(_STYLE)) for t in chosen}


@st.composite
def trees(draw: st.DrawFn, min_others: int = 1) -> dict[str, Any]:
    names = draw(st.lists(_NAME, min_size=min_others, max_size=3, unique=True))
    flavors = {"default": draw(flavor_configs())}
    for name in names:
        flavors[name] = draw(flavor_configs())
    tree = {"flavors": flavors, "plugin_defaults": draw(_NESTED_CONFIG), "extends": {}}
    hollow(draw, tree)
    note_shapes(tree)
    return tree


@st.composite
def chain_trees(draw: st.DrawFn) -> dict[str, Any]:
    """``default`` <- c0 <- c1 <- ... (3 to 5 deep), plus a sibling of one chain member.

    The sibling extends the same parent as the chain member after it, so two flavors share
    a parent (the no-leakage law needs that); c0 extends ``default`` explicitly or not at all.
    """
    names = draw(st.lists(_NAME, min_size=4, max_size=6, unique=True))
    chain, sibling = names[:-1], names[-1]
    extends: dict[str, str] = {}
    if draw(st.booleans()):
        extends[chain[0]] = "default"
    for child, parent in zip(chain[1:], chain, strict=False):
        extends[child] = parent
    extends[sibling] = chain[draw(st.integers(0, len(chain) - 2))]
    flavors = {"default": draw(flavor_configs())}
    for name in names:
        flavors[name] = draw(flavor_configs())
    tree = {"flavors": flavors, "plugin_defaults": draw(_NESTED_CONFIG), "extends": extends}
    tree["chain"], tree["sibling"] = chain, sibling
    hollow(draw, tree)
    note_shapes(tree)
    return tree


def hollow(draw: st.DrawFn, tree: dict[str, Any]) -> None:
    """Now and then, give a flavor ``{}`` where its parent (or ``default``) has a non-empty mapping.

    Independent draws make that collision rare (about one tree in eight); this makes it common.
    """
    for name in [n for n in tree["flavors"] if n != "default"]:
        below = nested_layers(tree, tree.get("extends", {}).get(name) or "default")
        targets = sorted({k for layer in below for k, v in layer.items() if isinstance(v, Mapping) and v})
        if not targets or not draw(st.booleans()):
            continue
        key = draw(st.sampled_from(targets))
        data, style = tree["flavors"][name].get(NESTED, ({}, (False, 0)))
        tree["flavors"][name][NESTED] = ({**data, key: {}}, style)


def lineage(tree: dict[str, Any], flavor: str) -> list[str]:
    """``flavor`` and its parents, nearest first (without ``default``)."""
    out = []
    while flavor not in ("default", None) and flavor not in out:
        out.append(flavor)
        flavor = tree.get("extends", {}).get(flavor)
    return out


def nested_layers(tree: dict[str, Any], flavor: str) -> list[dict[str, Any]]:
    """The ``nested`` data of a flavor's chain, lowest precedence first."""
    names = ["default", *reversed(lineage(tree, flavor))] if flavor != "default" else ["default"]
    return [tree["plugin_defaults"], *(data_of(tree, n, NESTED) for n in names)]


def _depth(value: Any) -> int:
    if isinstance(value, Mapping) and value:
        return 1 + max(_depth(v) for v in value.values())
    return 0


def _collisions(low: Any, high: Any, found: set[str]) -> None:
    for key, value in high.items():
        if key not in low:
            continue
        below = low[key]
        if isinstance(value, Mapping) and not value and isinstance(below, Mapping) and below:
            found.add("empty-over-non-empty")
        if isinstance(value, list) or isinstance(below, list):
            found.add("list collision")
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            _collisions(below, value, found)


def shapes(tree: dict[str, Any]) -> set[str]:
    """Which interesting shapes of the recursive merge a tree exercises."""
    found: set[str] = set()
    for flavor in tree["flavors"]:
        layers = nested_layers(tree, flavor)
        if any(_depth(layer) >= 2 for layer in layers):
            found.add("depth >= 2")
        for low_index, low in enumerate(layers):
            for high in layers[low_index + 1 :]:
                _collisions(low, high, found)
    return found


def note_shapes(tree: dict[str, Any]) -> None:
    for shape in sorted(shapes(tree)):
        event(shape)  # shown by pytest --hypothesis-show-statistics


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
        parent = tree.get("extends", {}).get(flavor)
        if parent is not None:
            manifest = yaml.safe_dump({"description": flavor, "extends": parent})
            (root / flavor / "flavor.yaml").write_text(manifest, encoding="utf-8")
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
    """base <- default <- farthest parent <- ... <- nearest parent <- the flavor itself."""
    merged = ref_merge(base_of(tree, type_name), data_of(tree, "default", type_name))
    if flavor != "default":
        for member in reversed(lineage(tree, flavor)):
            merged = ref_merge(merged, data_of(tree, member, type_name))
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
# Inheritance chains (extends:), depth >= 3
# ---------------------------------------------------------------------------


def layer_of(tree: dict[str, Any], root: Path, flavor: str, file: str) -> str:
    """The provenance layer a file of ``root`` must carry when it serves ``flavor``."""
    owner = Path(file).parent.name
    if owner == "default":
        return "default"
    if owner == flavor:
        return "flavor"
    assert owner in lineage(tree, flavor), (flavor, file)
    return f"flavor:{owner}"


@law("chain_reference")
@given(tree=chain_trees())
def test_chains_resolve_as_the_reference_model_flavor_then_parents_then_default(make_store, tree) -> None:
    assert len(tree["chain"]) >= 3
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        snap = store.snapshot()
        assert snap.errors() == [], [str(i) for i in snap.errors()]
        for flavor in tree["flavors"]:
            configs = wire(store, flavor)
            for type_name in ALL_TYPES:
                assert configs[type_name]["values"] == expected(tree, flavor, type_name), (flavor, type_name)
            if flavor != "default":
                assert list(snap.statuses[flavor].chain) == lineage(tree, flavor)[1:]


@law("chain_precedence")
@given(tree=chain_trees())
def test_precedence_along_a_chain_the_nearest_flavor_that_sets_a_key_wins(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        deepest = tree["chain"][-1]
        configs = wire(store, deepest)
        members = lineage(tree, deepest)
        for type_name in ALL_TYPES:
            for index, member in enumerate(members):  # nearest first
                own = data_of(tree, member, type_name)
                nearer = [data_of(tree, m, type_name) for m in members[:index]]
                for path, value in leaves(own, empty_maps=False).items():
                    if any(_touches(data, path) for data in nearer):
                        continue  # a nearer flavor decides this path
                    assert at(configs[type_name]["values"], path) == value, (member, type_name, path)
                    prov = configs[type_name]["provenance"][path]
                    layer = "flavor" if member == deepest else f"flavor:{member}"
                    assert (prov["layer"], prov["file"]) == (layer, str(root / member / f"{type_name}.yaml"))


def _touches(data: Mapping[str, Any], path: str) -> bool:
    """Whether ``data`` sets ``path`` itself or replaces it: a non-mapping at a proper prefix."""
    node: Any = data
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
        if depth < len(parts) - 1 and not isinstance(node, Mapping):
            return True
    return True


@law("chain_siblings")
@given(tree=chain_trees(), data=st.data())
def test_no_leakage_between_siblings_editing_one_child_never_changes_its_sibling(
    make_store, tree, data
) -> None:
    sibling = tree["sibling"]
    parent = tree["extends"][sibling]
    other = next(n for n, p in tree["extends"].items() if p == parent and n != sibling)
    edited, watched = data.draw(st.permutations([sibling, other]), label="edited, watched")
    new_configs = data.draw(flavor_configs(), label="new content of the edited sibling")
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        before = wire(store, watched)
        for old in (root / edited).glob("*.yaml"):
            if old.name != "flavor.yaml":
                old.unlink()
        for type_name, (config, style) in new_configs.items():
            write_config(root, edited, type_name, config, style)
        store.rebuild("test", changed_paths=[root / edited / "parameters.yaml"])
        assert wire(store, watched) == before
        new_tree = {**tree, "flavors": {**tree["flavors"], edited: new_configs}}
        for type_name in ALL_TYPES:
            assert wire(store, edited)[type_name]["values"] == expected(new_tree, edited, type_name)


@law("chain_provenance")
@given(tree=chain_trees())
def test_provenance_in_a_chain_names_a_file_of_the_chain_that_holds_the_value(make_store, tree) -> None:
    with tmp_root() as tmp:
        root = Path(tmp) / "flavors"
        write_tree(root, tree)
        store = store_for(make_store, root, tree)
        for flavor in tree["flavors"]:
            for type_name, config in wire(store, flavor).items():
                values, provenance = config["values"], config["provenance"]
                assert set(provenance) == set(leaves(values)), (flavor, type_name)
                for path, prov in provenance.items():
                    if prov["file"] is None:
                        assert prov["layer"] == f"plugin:{NESTED_PLUGIN}"
                        assert at(tree["plugin_defaults"], path) == at(values, path)
                        continue
                    on_disk = yaml.safe_load(Path(prov["file"]).read_text(encoding="utf-8"))
                    assert at(on_disk, path) == at(values, path), (prov["file"], path)
                    if prov["layer"] == "builtin":
                        assert prov["file"] == str(BUILTIN_TYPES[type_name].defaults_file)
                    else:
                        assert prov["layer"] == layer_of(tree, root, flavor, prov["file"])


def test_strategies_make_nesting_and_collisions_common() -> None:
    """Count, over 200 drawn trees of each kind, how often each merge shape occurs."""
    counts: dict[str, int] = {}
    drawn = 0

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(tree=trees() | chain_trees())
    def count(tree: dict[str, Any]) -> None:
        nonlocal drawn
        drawn += 1
        for shape in shapes(tree):
            counts[shape] = counts.get(shape, 0) + 1

    count()
    print(f"of {drawn} trees: {counts}")  # the figures the closing note reports (pytest -s)
    assert drawn >= 100
    for shape in ("depth >= 2", "empty-over-non-empty", "list collision"):
        assert counts.get(shape, 0) >= drawn // 5, (shape, counts, drawn)


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
