"""A hinted rebuild (the watcher's: only the edited flavors re-read, the rest carried over) is
indistinguishable from a full re-read of the same files.

A reload among 1,000 flavors carries the untouched ones over whole -- their data, status,
resolution and model-check results are the previous build's objects -- so that an edit costs one
flavor.  That shortcut is only allowed if nothing can tell: after every random step (edits, broken
files, ``extends`` chains that appear, break, cycle or point nowhere, model-bound values the
selected model refuses, flavors added and deleted) two stores over the *same* directory are
compared, one rebuilt with the changed paths as a hint, one re-reading everything.  The app's
plugin host is used, so the model catalogue's checks run as they do in the server.  (A cold
load is not the reference here: a broken or deleted flavor's last good version is history.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mvcore.config.model_checks import ModelIssue, catalogue_for, check_snapshot
from mvcore.config.plugins import PluginHost
from mvcore.config.snapshot import Snapshot
from mvcore.config.store import FlavorStore
from mvcore.providers.catalogue import register

from . import thaw, write

NAMES = ["default", "alpha", "beta", "gamma", "delta"]
FLAVORS = st.sampled_from(NAMES)
PARENTS = st.sampled_from([*NAMES, "missing", None])
PARAMETERS = st.sampled_from(
    [
        'camera_angle: "front"\nnumber_of_scenes: 3\n',
        'camera_angle: "wide"\n',
        "number_of_scenes: 5\nvideo_type: short\n",
        'camera_angle: "unterminated\n',  # syntax error
        "number_of_scenes: 999\n",  # schema error
        "",
    ]
)
IMAGE_PARAMS = st.sampled_from(
    [
        "video_duration: 6\n",
        "video_duration: 5\n",  # google/veo-3.1 takes 4, 6 or 8: a model issue
        'video_aspect_ratio: "1:1"\n',  # veo takes 16:9 or 9:16
        "video_model: acme/unknown-model\nvideo_duration: 5\n",  # not in the catalogue: a warning
        "output_format: webp\n",  # imagen-4 offers jpg / png
        'aspect_ratio: "4:3"\n',
    ]
)


def picture(snapshot: Snapshot) -> dict[str, Any]:
    """Everything a caller can observe of a snapshot, as plain data."""
    return {
        "names": snapshot.names(),
        "resolved": {
            name: {
                type_name: (
                    thaw(config.values),
                    {k: (p.layer, p.file, p.line) for k, p in config.provenance.items()},
                )
                for type_name, config in configs.items()
            }
            for name, configs in snapshot.resolved.items()
        },
        "statuses": {
            name: (str(s.status), s.serving, s.chain, s.extends, s.source, tuple(map(str, s.issues)))
            for name, s in snapshot.statuses.items()
        },
        "issues": sorted(f"{i} {getattr(i, 'flavors', ())}" for i in snapshot.issues),
        "errors": sorted(map(str, snapshot.errors())),
        "digests": {name: snapshot.digest(name) for name in snapshot.resolved},
        "values": {name: snapshot.get("parameters", "camera_angle", name) for name in snapshot.resolved},
    }


def _store(root: Path) -> FlavorStore:
    return FlavorStore([root], register(PluginHost(entry_points=False)))


class HintedEqualsFull(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="mvcore-hinted-"))
        self.root = self.tmp / "flavors"
        write(self.root / "default" / "parameters.yaml", 'camera_angle: "front"\n')
        write(self.root / "alpha" / "parameters.yaml", 'camera_angle: "wide"\n')
        self.hinted = _store(self.root)
        self.full = _store(self.root)
        self.touched: list[Path] = []

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write(self, path: Path, text: str) -> None:
        write(path, text)
        self.touched.append(path)

    def _settle(self) -> None:
        self.hinted.rebuild(reason="hinted", changed_paths=self.touched)
        self.full.rebuild(reason="full")
        self.touched = []

    @rule(name=FLAVORS, text=PARAMETERS)
    def edit_parameters(self, name: str, text: str) -> None:
        self._write(self.root / name / "parameters.yaml", text)
        self._settle()

    @rule(name=FLAVORS, text=IMAGE_PARAMS)
    def edit_image_params(self, name: str, text: str) -> None:
        self._write(self.root / name / "image_params.yaml", text)
        self._settle()

    @rule(name=FLAVORS, parent=PARENTS)
    def set_parent(self, name: str, parent: str | None) -> None:
        manifest = f"description: {name}\n" + (f"extends: {parent}\n" if parent else "")
        self._write(self.root / name / "flavor.yaml", manifest)
        self._settle()

    @rule(name=FLAVORS, both=st.booleans())
    def edit_two_files_at_once(self, name: str, both: bool) -> None:
        self._write(self.root / name / "parameters.yaml", 'camera_angle: "two"\n')
        if both:
            self._write(self.root / name / "image_params.yaml", "video_duration: 4\n")
        self._settle()

    @rule(name=FLAVORS)
    def delete_flavor(self, name: str) -> None:
        folder = self.root / name
        if folder.exists():
            shutil.rmtree(folder)
            self.touched.append(folder)
        self._settle()

    @rule(name=FLAVORS)
    def delete_one_file(self, name: str) -> None:
        path = self.root / name / "image_params.yaml"
        if path.exists():
            os.unlink(path)
            self.touched.append(path)
        self._settle()

    @invariant()
    def hinted_rebuild_is_indistinguishable_from_a_full_one(self) -> None:
        assert picture(self.hinted.current) == picture(self.full.current)

    @invariant()
    def carried_over_model_checks_equal_checking_again(self) -> None:
        for store in (self.hinted, self.full):
            snapshot = store.current
            memoized = sorted(f"{i} {i.flavors}" for i in snapshot.issues if isinstance(i, ModelIssue))
            fresh = sorted(f"{i} {i.flavors}" for i in check_snapshot(snapshot, catalogue_for(store.host)))
            assert memoized == fresh


IN_CI = os.environ.get("CI", "").lower() == "true"
PHASES = tuple(p for p in Phase if p is not Phase.shrink) if IN_CI else tuple(Phase)
TestHintedEqualsFull = HintedEqualsFull.TestCase
TestHintedEqualsFull.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, derandomize=IN_CI, database=None, phases=PHASES
)
