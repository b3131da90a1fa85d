"""Job endpoints: status, progress and result of ``?async=true`` work, listing, cancelling."""

from __future__ import annotations

from typing import get_args

from litestar import Controller, delete, get
from litestar.params import FromPath, FromQuery

from mvcore.api import wire
from mvcore.api.deps import JobsDep
from mvcore.errors import BadInput
from mvcore.storage import keys

STATUSES = list(get_args(wire.Job.__annotations__["status"]))


class JobController(Controller):
    path = "/api/mv/jobs"
    tags = ["jobs"]

    @get("/", summary="Recent jobs")
    async def list_jobs(self, jobs: JobsDep, status: FromQuery[str | None] = None) -> wire.JobList:
        if status is not None and status not in STATUSES:
            raise BadInput(
                f"Unknown status {status!r}",
                alternatives=STATUSES,
                details={"field": "status"},
            )
        found = await jobs.list(status)
        return {"jobs": [wire.typed(wire.Job, j.to_wire()) for j in found]}

    @get("/{job_id:str}", summary="Status, progress and result of a job")
    async def get_job(self, jobs: JobsDep, job_id: FromPath[str]) -> wire.Job:
        return wire.typed(wire.Job, (await jobs.get(keys.parse_id(job_id, "job"))).to_wire())

    @delete("/{job_id:str}", status_code=200, summary="Cancel a queued or running job")
    async def cancel_job(self, jobs: JobsDep, job_id: FromPath[str]) -> wire.Job:
        return wire.typed(wire.Job, (await jobs.cancel(keys.parse_id(job_id, "job"))).to_wire())
