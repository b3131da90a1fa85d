"""What a provider tells the job it runs in: "I am about to create something paid".

``await note_external(ref)`` from inside a job (any depth: the runner sets a context
variable for the job's task) records ``ref`` on the job record.  From then on a lost
worker fails the job instead of running it again (``Redo.UNTIL_EXTERNAL``): the
Replicate provider calls it right before it creates a prediction, and again with the
prediction id, so a redo can only happen while nothing has been paid for.  Outside a
job (tests, scripts) it does nothing.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

from mvcore import logs

if TYPE_CHECKING:
    from mvcore.jobs.records import JobStore

current_attempt: ContextVar[tuple[JobStore, str, str] | None] = ContextVar("mvcore_job_attempt", default=None)


async def note_external(ref: str) -> None:
    """Record that this job's provider call created (or is creating) ``ref``; never raises."""
    current = current_attempt.get()
    if current is None:
        return
    store, job_id, worker = current
    try:
        await store.note_external(job_id, worker, ref)
    except Exception as exc:  # the note is a safety net: its failure must not fail the call
        logs.event("job_note_failed", logging.WARNING, job_id=job_id, error=repr(exc)[:300])
