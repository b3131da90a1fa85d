"""``mvcore jobs list|show|cancel|retry`` as a user runs it: a subprocess against the real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from .conftest import SCENES, Api, Workers


def mvcore_jobs(workers: Workers, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "mvcore.cli", "jobs", *args],
        env=env or workers.env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workers.tmp,
    )
    body = json.loads(done.stdout) if done.stdout.strip().startswith("{") else done.stdout
    return done.returncode, body, done.stderr


def test_the_jobs_cli_lists_shows_cancels_and_retries(api: Api, workers: Workers) -> None:
    job_id = api.submit("/api/mv/create_scenes", SCENES)  # no worker yet: it waits
    code, listed, _ = mvcore_jobs(workers, "list", "--status", "queued", "--json")
    assert code == 0 and [j["job_id"] for j in listed["jobs"]] == [job_id]
    code, text, _ = mvcore_jobs(workers, "list")
    assert code == 0 and job_id in text and "queued" in text and "attempts 0/3" in text

    code, cancelled, _ = mvcore_jobs(workers, "cancel", job_id, "--json")
    assert code == 0 and cancelled["status"] == "cancelled"
    assert api.job(job_id)["status"] == "cancelled"

    code, retried, _ = mvcore_jobs(workers, "retry", job_id, "--json")
    assert code == 0 and retried["status"] == "queued" and retried["attempts"] == 0
    assert retried["error"] is None
    workers.start()
    done = api.wait_status(job_id, "succeeded", "failed")
    assert done["status"] == "succeeded" and done["attempts"] == 1

    code, shown, _ = mvcore_jobs(workers, "show", job_id, "--json")
    assert code == 0 and shown == api.job(job_id)

    code, refused, _ = mvcore_jobs(workers, "retry", job_id, "--json")
    assert code == 1 and refused["detail"]["error"] == "INVALID_INPUT"
    assert "only failed or cancelled jobs can be retried" in refused["detail"]["message"]


def test_the_jobs_cli_explains_unknown_ids_bad_statuses_and_a_missing_redis(workers: Workers) -> None:
    code, missing, _ = mvcore_jobs(workers, "show", str(uuid.uuid4()), "--json")
    assert code == 1 and missing["detail"]["error"] == "NOT_FOUND"  # not found: exit 1 (usage errors: 2)
    code, bad_id, _ = mvcore_jobs(workers, "show", "../etc/passwd", "--json")
    assert code == 1 and bad_id["detail"]["error"] == "INVALID_ID"
    code, bad_status, _ = mvcore_jobs(workers, "list", "--status", "done", "--json")
    assert code == 1 and bad_status["detail"]["error"] == "INVALID_INPUT"
    assert "queued" in bad_status["detail"]["details"]["valid"]
    env = {k: v for k, v in workers.env().items() if k != "MVCORE_REDIS_URL"}
    code, _, err = mvcore_jobs(workers, "list", env=env)
    assert code == 1 and "needs MVCORE_REDIS_URL" in err
