"""``mvcore jobs list|show|cancel|retry``: the job store from a shell (Redis deployments).

In-memory jobs live inside the API process and vanish with it, so these commands
need ``MVCORE_REDIS_URL`` -- the same store every API process and worker uses;
for an in-process server use ``GET/DELETE /api/mv/jobs/...`` instead.  Every
command goes through :class:`~mvcore.jobs.service.JobService`, so the CLI and the
API give the same answers and errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mvcore.errors import BadInput, MvcoreError
from mvcore.jobs.records import STATUSES, JobRecord
from mvcore.settings import Settings

ACTIONS = ("list", "show", "cancel", "retry")


def _line(record: JobRecord) -> str:
    code = ((record.error or {}).get("detail") or {}).get("error", "")
    return (
        f"{record.job_id}  {record.status:<9}  {record.kind:<28}  attempts {record.attempts}/"
        f"{record.max_attempts}  {record.progress:>4.0%}  {code or record.message}"
    )


async def _run(settings: Settings, action: str, job_id: str | None, status: str | None, limit: int) -> Any:
    from mvcore.generators.context import build_context
    from mvcore.jobs.redis_store import RedisJobService

    assert settings.redis_url
    service = RedisJobService(build_context(settings, {}), settings.redis_url)
    await service.start()
    try:
        if action == "list":
            return await service.list(status, limit)
        assert job_id is not None
        if action == "show":
            return await service.get(job_id)
        if action == "cancel":
            return await service.cancel(job_id)
        return await service.retry(job_id)
    finally:
        await service.stop()


def jobs_command(
    settings: Settings, action: str, job_id: str | None = None, status: str | None = None, limit: int = 50
) -> tuple[Any, list[str]]:
    """Run one admin action: (the JSON answer, the lines for a terminal)."""
    if not settings.redis_url:
        raise MvcoreError(
            "`mvcore jobs` needs MVCORE_REDIS_URL (in-memory jobs live only inside the API process)",
            code="NO_JOB_STORE",
            hint="Set MVCORE_REDIS_URL to the API's Redis, or use GET /api/mv/jobs on the server.",
        )
    if status is not None and status not in STATUSES:
        raise BadInput(f"Unknown status {status!r}", alternatives=list(STATUSES), details={"field": "status"})
    if action != "list":
        from mvcore.storage import keys

        job_id = keys.parse_id(job_id or "", "job")
    answer = asyncio.run(_run(settings, action, job_id, status, limit))
    if isinstance(answer, list):
        return {"jobs": [r.to_wire() for r in answer]}, [_line(r) for r in answer] or ["(no jobs)"]
    return answer.to_wire(), [_line(answer)]
