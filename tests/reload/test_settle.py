"""The settle rule and the event classification, as tables (pure functions: no files, no clock)."""

from __future__ import annotations

import pytest

from mvcore.config.settle import SettleTracker
from mvcore.config.watching import Change, Role, WatchSpec, classify

SETTLE, MAX_WAIT, GRACE = 1.0, 10.0, 0.1
F = "/flavors/example/parameters.yaml"
G = "/flavors/example/image_params.yaml"
OTHER = "/flavors/other/parameters.yaml"


def tracker() -> SettleTracker:
    return SettleTracker(SETTLE, MAX_WAIT, grace_s=GRACE)


# (observations as (time, change, path[, emptied]), time of the question, paths published then)
CASES = {
    "a completed save is published at once": ([(0, Change.DONE, F)], 0.0, {F}),
    "an unclosed write is not published ...": ([(0, Change.WRITING, F)], 0.9, None),
    "... until it settles": ([(0, Change.WRITING, F)], 1.0, {F}),
    "each further write restarts the settle window": (
        [(0, Change.WRITING, F), (0.8, Change.WRITING, F)],
        1.5,
        None,
    ),
    "a write then its close: at once": ([(0, Change.WRITING, F), (0.2, Change.DONE, F)], 0.2, {F}),
    "an emptied file is a write in progress even when closed": ([(0, Change.DONE, F, True)], 0.5, None),
    "an emptied file is published once settled": ([(0, Change.DONE, F, True)], 1.0, {F}),
    "a deleted file waits a short grace": ([(0, Change.GONE, F)], 0.05, None),
    "a deleted file after the grace": ([(0, Change.GONE, F)], 0.1, {F}),
    "deleted then rewritten and closed (an editor's save)": (
        [(0, Change.GONE, F), (0.01, Change.WRITING, F), (0.02, Change.DONE, F)],
        0.02,
        {F},
    ),
    "a touch is a completed save": ([(0, Change.TOUCHED, F)], 0.0, {F}),
    "a touch during a write changes nothing": ([(0, Change.WRITING, F), (0.1, Change.TOUCHED, F)], 0.5, None),
    "a writer that never stops is published at max wait": (
        [(t / 2, Change.WRITING, F) for t in range(0, 40)],
        10.0,
        {F},
    ),
    "a flavor with one file still being written is held back whole": (
        [(0, Change.WRITING, G), (0.1, Change.DONE, F)],
        0.5,
        None,
    ),
    "another flavor is not held back": (
        [(0, Change.WRITING, G), (0.1, Change.DONE, OTHER)],
        0.1,
        {OTHER},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_settle_rule(case: str) -> None:
    observations, at, expected = CASES[case]
    settle = tracker()
    for observation in observations:
        when, change, path, *emptied = observation
        settle.note(change, path, float(when), emptied=bool(emptied and emptied[0]))
    batch = settle.take(at)
    assert (batch.paths if batch is not None else None) == expected


def test_a_structure_change_waits_for_writes_in_progress_then_takes_everything() -> None:
    settle = tracker()
    settle.note(Change.WRITING, F, 0.0)
    settle.note(Change.STRUCTURE, "/flavors/new", 0.1)
    settle.note(Change.DONE, OTHER, 0.1)
    assert settle.take(0.1) is not None  # the other flavor alone
    assert settle.take(0.5) is None  # the rescan would read the unfinished file
    batch = settle.take(1.0)
    assert batch is not None and batch.paths is None and batch.structure and settle.empty


def test_due_says_when_to_wake_up() -> None:
    settle = tracker()
    assert settle.due() is None
    settle.note(Change.WRITING, F, 2.0)
    assert settle.due() == pytest.approx(3.0)
    settle.note(Change.DONE, OTHER, 2.5)
    assert settle.due() == pytest.approx(2.5)


FLAVOR, ROOT = WatchSpec(Role.FLAVOR), WatchSpec(Role.ROOT)
PARENT = WatchSpec(Role.PARENT, frozenset({"flavors"}))
# (spec, entry name, op, is_dir, is_link) -> Change
CLASSIFY = [
    (FLAVOR, "parameters.yaml", "closed", False, False, Change.DONE),
    (FLAVOR, "parameters.yaml", "moved_to", False, False, Change.DONE),
    (FLAVOR, "parameters.yml", "modified", False, False, Change.WRITING),
    (FLAVOR, "parameters.yaml", "created", False, False, Change.WRITING),
    (FLAVOR, "parameters.yaml", "created", False, True, Change.DONE),  # a new symlink is complete
    (FLAVOR, "parameters.yaml", "deleted", False, False, Change.GONE),
    (FLAVOR, "parameters.yaml", "moved_from", False, False, Change.GONE),
    (FLAVOR, "parameters.yaml", "attrib", False, False, Change.TOUCHED),
    (FLAVOR, "..data", "moved_to", False, True, Change.DONE),  # the ConfigMap swap
    (FLAVOR, "..data_tmp", "created", False, True, Change.IGNORED),
    (FLAVOR, "..2024_01_01_00_00_00.1", "created", True, False, Change.IGNORED),
    (FLAVOR, "d", "created", True, False, Change.NESTED),
    (FLAVOR, "d", "moved_to", True, False, Change.NESTED),
    (FLAVOR, "d", "deleted", True, False, Change.IGNORED),
    (FLAVOR, ".parameters.yaml.swp", "modified", False, False, Change.IGNORED),
    (FLAVOR, "parameters.yaml~", "closed", False, False, Change.IGNORED),
    (FLAVOR, ".parameters.yaml.tmp", "closed", False, False, Change.IGNORED),
    (FLAVOR, "notes.txt", "closed", False, False, Change.IGNORED),
    (ROOT, "new-flavor", "created", True, False, Change.STRUCTURE),
    (ROOT, "gone", "deleted", True, False, Change.STRUCTURE),
    (ROOT, "renamed", "moved_to", True, False, Change.STRUCTURE),
    (ROOT, ".churn.staging", "created", True, False, Change.IGNORED),
    (ROOT, ".git", "created", True, False, Change.IGNORED),
    (ROOT, "README.md", "modified", False, False, Change.IGNORED),
    (PARENT, "flavors", "created", True, False, Change.STRUCTURE),
    (PARENT, "unrelated", "created", True, False, Change.IGNORED),
]


@pytest.mark.parametrize(("spec", "name", "op", "is_dir", "is_link", "expected"), CLASSIFY)
def test_classify(spec: WatchSpec, name: str, op: str, is_dir: bool, is_link: bool, expected: Change) -> None:
    assert classify(spec, name, op, is_dir=is_dir, is_link=lambda: is_link) is expected


def test_a_requested_rescan_is_not_held_back_by_writes() -> None:
    settle = tracker()
    settle.note(Change.WRITING, F, 0.0)
    settle.request_full(0.1, "inotify queue overflow", immediate=True)
    batch = settle.take(0.1)
    assert batch is not None and batch.paths is None and batch.first == 0.0
