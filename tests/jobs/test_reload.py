"""A flavor reload between enqueue and run does not change the job: the task carries its config."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from mvcore.api.app import create_app

from .conftest import SCENES, Workers, make_settings
from .test_redis import Api


def test_reload_between_enqueue_and_run_changes_nothing(
    workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MVCORE_JOB_HEARTBEAT_TIMEOUT", "2")
    settings = make_settings(tmp_path, redis_url=workers.url)
    app = create_app(settings)
    services = app.state["services"]
    payload = {**SCENES, "config_flavor": "test_flavor"}
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client)
        before = client.get("/health").json()["generation"]
        old_job = api.submit("/api/mv/create_scenes", payload)  # no worker is running yet
        assert api.job(old_job)["status"] == "queued"

        parameters = settings.flavors_dirs[0] / "test_flavor" / "parameters.yaml"
        text = parameters.read_text()
        assert "number_of_scenes: 2" in text
        parameters.write_text(text.replace("number_of_scenes: 2", "number_of_scenes: 5"))
        event = services.store.rebuild("test edit")
        assert event is not None and "test_flavor" in event.changed
        after = client.get("/health").json()["generation"]
        assert after > before
        new_job = api.submit("/api/mv/create_scenes", payload)

        workers.start()
        old = api.wait_status(old_job, "succeeded", "failed")
        new = api.wait_status(new_job, "succeeded", "failed")
        assert old["status"] == new["status"] == "succeeded"
        assert len(old["result"]["scenes"]) == 2  # the value at enqueue time
        assert old["result"]["metadata"]["config"]["generation"] == before
        assert old["result"]["metadata"]["parameters_used"]["number_of_scenes"] == 2
        assert len(new["result"]["scenes"]) == 5
        assert new["result"]["metadata"]["config"]["generation"] == after
