"""Every way a file can be saved ends in the right snapshot, with inotify and with polling."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mvcore.config.reload import Reloader
from mvcore.config.store import FlavorStore, ReloadEvent

from . import (
    DEADLINE,
    DEBOUNCE_MS,
    MODES,
    POLL_INTERVAL,
    angle,
    make_tree,
    params,
    status,
    write,
    write_atomic,
)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "flavors", {"default": params("front", 4), "test": params("before", 2)})


@pytest.fixture
def store(root: Path, make_store: Callable[..., FlavorStore]) -> FlavorStore:
    return make_store(root)


@pytest.fixture
def reloader(store: FlavorStore, mode: str) -> Iterator[Reloader]:
    with Reloader(store, mode=mode, debounce_ms=DEBOUNCE_MS, poll_interval=POLL_INTERVAL) as r:
        assert r.mode == mode
        assert r.wait_for_rebuilds(1, DEADLINE), "the start-up rescan did not run"
        yield r


def _served(store: FlavorStore, flavor: str = "test") -> list[object]:
    """Every value ``flavor`` served, one per published generation."""
    seen: list[object] = []

    def record(event: ReloadEvent) -> None:
        seen.append(angle(store, flavor))

    store.subscribe(record)
    return seen


def _settled(reloader: Reloader, store: FlavorStore, value: str, flavor: str = "test") -> bool:
    return reloader.wait_until(
        lambda: angle(store, flavor) == value and status(store, flavor) == "ok", DEADLINE
    )


def test_in_place_write(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    generation = store.current.generation
    with open(root / "test" / "parameters.yaml", "w") as handle:  # truncate + write, same inode
        handle.write(params("in-place-edit", 2))
    assert _settled(reloader, store, "in-place-edit")
    assert store.current.generation > generation
    assert store.current.get("parameters", "number_of_scenes", "test") == 2


@pytest.mark.parametrize("editor", ["vim", "vscode", "jetbrains", "emacs"])
def test_editor_rename_saves(reloader: Reloader, store: FlavorStore, root: Path, editor: str) -> None:
    target = root / "test" / "parameters.yaml"
    served = _served(store)
    text = params(f"saved-by-{editor}", 5)
    if editor == "vim":  # swap file while editing; backup by rename; write the new file; drop the backup
        swap = write(target.with_name(".parameters.yaml.swp"), "vim swap")
        os.rename(target, target.with_name("parameters.yaml~"))
        target.write_text(text)
        target.with_name("parameters.yaml~").unlink()
        swap.unlink()
    elif editor == "vscode":  # atomic save: a temp sibling renamed over the file
        write_atomic(target, text, ".parameters.yaml.vscode-save")
    elif editor == "jetbrains":  # "safe write": tmp file, original renamed away, tmp renamed in
        tmp = write(target.with_name("parameters.yaml___jb_tmp___"), text)
        os.rename(target, target.with_name("parameters.yaml___jb_old___"))
        os.rename(tmp, target)
        target.with_name("parameters.yaml___jb_old___").unlink()
    else:  # emacs: lock symlink, backup by rename, new file, lock removed
        lock = target.with_name(".#parameters.yaml")
        os.symlink("user@host.1234:1700000000", lock)
        os.rename(target, target.with_name("parameters.yaml~"))
        target.write_text(text)
        lock.unlink()
    assert _settled(reloader, store, f"saved-by-{editor}")
    assert store.current.get("parameters", "number_of_scenes", "test") == 5
    assert set(served) <= {"before", f"saved-by-{editor}"}, "a half-saved state was served"


def test_delete_then_create(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    target = root / "test" / "parameters.yaml"
    target.unlink()
    target.write_text(params("recreated-file", 6))
    assert _settled(reloader, store, "recreated-file")
    assert store.current.get("parameters", "number_of_scenes", "test") == 6


def test_partial_write_completed_later(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    served = _served(store)
    attempts = reloader.stats.rebuilds
    with open(root / "test" / "parameters.yaml", "w") as handle:
        handle.write('camera_angle: "half-writ')  # an unterminated string: invalid YAML
        handle.flush()
        # let a rebuild see the torn file: it must keep serving the last good version
        seen_torn = reloader.wait_until(lambda: status(store) == "error", DEADLINE)
        assert seen_torn, "no rebuild saw the partial file"
        # the swap is visible before the reloader counts the attempt: wait for the count too
        assert reloader.wait_until(lambda: reloader.stats.rebuilds > attempts, DEADLINE)
        assert angle(store) == "before"
        handle.write('ten-and-complete"\nnumber_of_scenes: 7\n')
    assert _settled(reloader, store, "half-written-and-complete")
    assert store.current.get("parameters", "number_of_scenes", "test") == 7
    assert not [e for e in store.current.errors() if "test" in e.file]
    assert set(served) <= {"before", "half-written-and-complete"}


def test_many_files_at_once_like_git_checkout(reloader: Reloader, store: FlavorStore, root: Path) -> None:
    names = [f"branch{i}" for i in range(6)]
    make_tree(root, {n: params(f"{n}-v1") for n in names})
    assert reloader.wait_until(lambda: all(angle(store, n) == f"{n}-v1" for n in names), DEADLINE)
    # the "checkout": every file rewritten (unlink + create, as git does), one flavor gone, one new
    for n in names[:-1]:
        path = root / n / "parameters.yaml"
        path.unlink()
        path.write_text(params(f"{n}-v2-from-the-other-branch"))
    shutil.rmtree(root / names[-1])
    write(root / "fresh" / "parameters.yaml", params("fresh-on-this-branch"))
    (root / "test" / "parameters.yaml").write_text(params("test-v2", 9))

    def checked_out() -> bool:
        return (
            all(angle(store, n) == f"{n}-v2-from-the-other-branch" for n in names[:-1])
            and not store.current.has(names[-1])
            and angle(store, "fresh") == "fresh-on-this-branch"
            and angle(store) == "test-v2"
        )

    assert reloader.wait_until(checked_out, DEADLINE)
    assert not store.current.errors()


def _configmap(flavor_dir: Path, stamp: str, text: str) -> None:
    """What the kubelet's atomic writer does: a new timestamped dir, then ..data swapped to it."""
    write(flavor_dir / stamp / "parameters.yaml", text)
    tmp_link = flavor_dir / "..data_tmp"
    os.symlink(stamp, tmp_link)
    os.replace(tmp_link, flavor_dir / "..data")


def test_kubernetes_configmap_symlink_swap(
    mode: str, root: Path, make_store: Callable[..., FlavorStore]
) -> None:
    flavor_dir = root / "mounted"
    flavor_dir.mkdir()
    write(flavor_dir / "..2024_01_01" / "parameters.yaml", params("configmap-v1"))
    os.symlink("..2024_01_01", flavor_dir / "..data")
    os.symlink("..data/parameters.yaml", flavor_dir / "parameters.yaml")
    store = make_store(root)
    assert angle(store, "mounted") == "configmap-v1"
    with Reloader(store, mode=mode, debounce_ms=DEBOUNCE_MS, poll_interval=POLL_INTERVAL) as reloader:
        assert reloader.wait_for_rebuilds(1, DEADLINE)
        served = _served(store, "mounted")
        _configmap(flavor_dir, "..2024_01_02", params("configmap-v2-longer"))
        shutil.rmtree(flavor_dir / "..2024_01_01")  # the old version is removed afterwards
        assert _settled(reloader, store, "configmap-v2-longer", "mounted")
        _configmap(flavor_dir, "..2024_01_03", params("configmap-v3"))
        assert _settled(reloader, store, "configmap-v3", "mounted")
    assert set(served) <= {"configmap-v2-longer", "configmap-v3"}
    assert not store.current.errors()
