"""What a rebuild re-reads: only the flavors the changed paths name, and never a stale cache entry."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mvcore.config.loading import ParseCache
from mvcore.config.store import FlavorStore

from . import angle, make_tree, params, write


def _tree(root: Path, count: int = 5) -> Path:
    flavors = {f"f{i}": params(f"f{i}-v1") for i in range(count)}
    return make_tree(root, {"default": params("front", 4), **flavors})


def test_hinted_rebuild_reuses_untouched_flavors(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = _tree(tmp_path / "flavors")
    store = make_store(root)
    before = store.current
    target = write(root / "f1" / "parameters.yaml", params("f1-v2-edited"))
    event = store.rebuild("edit", changed_paths=[target])
    assert event is not None and event.changed == ["f1"] and not event.added and not event.removed
    after = store.current
    assert angle(store, "f1") == "f1-v2-edited"
    for name in ("default", "f0", "f2", "f3", "f4"):
        assert after.flavors[name] is before.flavors[name]  # not re-read
        assert after.resolved[name]["parameters"] is before.resolved[name]["parameters"]  # not re-resolved
    assert after.flavors["f1"] is not before.flavors["f1"]


def test_full_rebuild_keeps_identity_of_unchanged_flavors(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = _tree(tmp_path / "flavors")
    store = make_store(root)
    before = store.current
    write(root / "f3" / "parameters.yaml", params("f3-v2-edited"))
    event = store.rebuild("full")
    assert event is not None and event.changed == ["f3"]  # only what really changed is reported
    assert store.current.flavors["f0"] is before.flavors["f0"]
    assert store.current.resolved["f0"]["parameters"] is before.resolved["f0"]["parameters"]


def test_paths_outside_known_flavors_rescan_everything(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = _tree(tmp_path / "flavors")
    store = make_store(root)
    target = write(root / "newcomer" / "parameters.yaml", params("newcomer"))
    event = store.rebuild("new dir", changed_paths=[target])  # an unknown flavor: discovery runs again
    assert event is not None and event.added == ["newcomer"]
    (root / "f2" / "parameters.yaml").unlink()
    (root / "f2").rmdir()
    event = store.rebuild("gone", changed_paths=[root / "f2"])  # an entry of the root itself
    assert event is not None and event.removed == ["f2"]
    event = store.rebuild("elsewhere", changed_paths=[tmp_path / "unrelated.yaml"])
    assert event is None


def test_a_default_edit_re_resolves_every_flavor(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = _tree(tmp_path / "flavors")
    store = make_store(root)
    target = write(root / "default" / "parameters.yaml", params("front", 4) + "video_type: grumpy-vlog\n")
    event = store.rebuild("default edit", changed_paths=[target])
    assert event is not None and "f4" in event.changed
    assert all(store.current.get("parameters", "video_type", f"f{i}") == "grumpy-vlog" for i in range(5))


def test_flavors_read_through_symlinks_are_always_re_read(
    tmp_path: Path, make_store: Callable[..., FlavorStore]
) -> None:
    root = _tree(tmp_path / "flavors")
    (root / "alias").mkdir()
    os.symlink("../f0/parameters.yaml", root / "alias" / "parameters.yaml")
    store = make_store(root)
    assert angle(store, "alias") == "f0-v1"
    target = write(root / "f0" / "parameters.yaml", params("f0-v2-shared"))
    store.rebuild("edit through a link", changed_paths=[target])  # the hint names f0 only
    assert angle(store, "alias") == "f0-v2-shared"


def test_parse_cache_does_not_trust_a_racy_signature(tmp_path: Path) -> None:
    """Two same-size writes within one timestamp tick look unchanged to stat (coarse kernel clocks)."""
    path = write(tmp_path / "parameters.yaml", 'camera_angle: "aaaa"\n')
    cache = ParseCache()
    first, digest = cache.read(path, "parameters.yaml")
    assert first.data == {"camera_angle": "aaaa"}
    st = os.stat(path)
    path.write_text('camera_angle: "bbbb"\n')  # same size, same inode ...
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and, as on a coarse clock, the same mtime
    second, other = cache.read(path, "parameters.yaml")
    assert second.data == {"camera_angle": "bbbb"} and other != digest
    again, same = cache.read(path, "parameters.yaml")
    assert again is second and same == other  # unchanged bytes keep the parse's identity


def test_parse_cache_trusts_old_signatures(tmp_path: Path) -> None:
    path = write(tmp_path / "parameters.yaml", 'camera_angle: "old"\n')
    old = os.stat(path).st_mtime_ns - 60 * 10**9
    os.utime(path, ns=(old, old))  # written a minute ago
    cache = ParseCache()
    first, _ = cache.read(path, "parameters.yaml")
    entry = cache.entries[str(path)]
    cache.entries[str(path)] = type(entry)(entry.signature, "x", entry.digest, entry.parsed, entry.checked_ns)
    second, _ = cache.read(path, "parameters.yaml")
    assert second is first  # signature trusted: the bytes were not even hashed again
