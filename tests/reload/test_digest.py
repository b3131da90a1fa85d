"""Per-flavor content digest: the same for the same values on every machine, in metadata.config,
the status endpoint and job records -- generation numbers are per process, the digest is not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from litestar.testing import TestClient

from mvcore.api.app import create_app
from mvcore.config.store import FlavorStore
from mvcore.testing.settings import offline_settings

from . import make_tree, params

REPO = Path(__file__).resolve().parents[2]
TREE = {"default": params("front", 4), "example": params("wide", 5) + 'video_type: "reel"\n'}


def test_same_content_same_digest_anywhere(tmp_path: Path, make_store: Callable[..., FlavorStore]) -> None:
    one = make_store(make_tree(tmp_path / "machine-a" / "flavors", TREE)).current
    two = make_store(make_tree(tmp_path / "elsewhere" / "b" / "flavors", TREE)).current
    first, second = one.resolve("example"), two.resolve("example")
    assert first.digest.startswith("sha256:") and first.digest == second.digest
    # the provenance names each machine's own files; the digest does not depend on them
    assert first.configs["parameters"].provenance != second.configs["parameters"].provenance
    assert first.meta()["digest"] == first.digest
    # another process with another hash seed computes the same digest
    code = (
        "import sys; from pathlib import Path; from mvcore.config.plugins import PluginHost;"
        "from mvcore.config.store import FlavorStore;"
        "s = FlavorStore([Path(sys.argv[1])], PluginHost(entry_points=False));"
        "print(s.current.resolve('example').digest)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "elsewhere" / "b" / "flavors")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == first.digest


def test_digest_follows_the_values(tmp_path: Path, make_store: Callable[..., FlavorStore]) -> None:
    root = make_tree(tmp_path / "flavors", TREE)
    store = make_store(root)
    before = store.current.resolve("example").digest
    assert store.current.resolve("nonexistent").digest == store.current.resolve("default").digest
    (root / "example" / "parameters.yaml").write_text(params("wide", 6) + 'video_type: "reel"\n')
    store.rebuild()
    after = store.current.resolve("example").digest
    assert after != before
    # back to the first values: the first digest again (content-addressed, not generation-numbered)
    (root / "example" / "parameters.yaml").write_text(params("wide", 5) + 'video_type: "reel"\n')
    store.rebuild()
    assert store.current.resolve("example").digest == before


def test_digest_in_responses_status_and_job_records(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path, flavors_from=REPO / "flavors")
    request = {"idea": "a digest", "character_description": "a tester", "config_flavor": "example"}
    with TestClient(create_app(settings)) as client:
        status = client.get("/api/mv/flavors/status").json()
        digest = status["flavors"]["example"]["digest"]
        assert digest.startswith("sha256:")
        body = client.post("/api/mv/create_scenes", json=request).json()
        assert body["metadata"]["config"]["digest"] == digest
        assert client.get("/api/mv/flavors/example").json()["digest"] == digest
        queued = client.post("/api/mv/create_scenes", params={"async": "true"}, json=request)
        assert queued.status_code == 202, queued.text
        job_url = f"/api/mv/jobs/{queued.json()['job_id']}"
        record = client.get(job_url).json()
        assert record["config"]["digest"] == digest and record["config"]["flavor_used"] == "example"
        deadline = time.monotonic() + 30
        while record["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            record = client.get(job_url).json()
        assert record["status"] == "succeeded", record
        assert record["result"]["metadata"]["config"]["digest"] == digest
