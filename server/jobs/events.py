"""The `job:{id}` event: which job changed, and the state that change produced.

Most events only say what changed (`{type, id}`) and subscribers re-read the row. A job event also
carries the job's state right after the change, because a job can pass through several states
(running, progress 0.1, 0.5, 0.9, succeeded) within milliseconds: re-reading the row at delivery
time would coalesce them, and `jobUpdated` promises every status and progress change.
Subscribers still check visibility with a fresh loader per event.

Ordering: every change after creation stamps `updated_at` with the database clock
(`clock_timestamp()`, taken under the row lock), so snapshots of one job are totally ordered
whichever process made them. The creation state (pending, no attempt yet) is always the oldest.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from server.jobs.models import Job, JobStatus

_UUIDS = ("organization_id", "requested_by_id")
_TIMES = ("created_at", "updated_at", "enqueued_at", "started_at", "heartbeat_at", "finished_at")
_PLAIN = ("kind", "queue", "subject_type", "subject_id", "progress", "message", "result", "error", "attempts",
          "max_attempts", "cancel_requested")


def job_event(job: Job) -> dict:
    state: dict = {name: getattr(job, name) for name in _PLAIN}
    state["status"] = job.status.value
    for name in _UUIDS:
        value = getattr(job, name)
        state[name] = str(value) if value is not None else None
    for name in _TIMES:
        value = getattr(job, name)
        state[name] = value.isoformat() if value is not None else None
    return {"type": "Job", "id": str(job.id), "job": state}


def job_from_event(message: dict) -> Job | None:
    """The job state an event carries, as a detached row; None for events without one (resync)."""
    state = message.get("job") if isinstance(message, dict) else None
    if not isinstance(state, dict) or message.get("type") != "Job":
        return None
    try:
        values: dict = {name: state.get(name) for name in _PLAIN}
        values["status"] = JobStatus(state["status"])
        for name in _UUIDS:
            values[name] = uuid.UUID(state[name]) if state.get(name) else None
        for name in _TIMES:
            values[name] = datetime.fromisoformat(state[name]) if state.get(name) else None
        return Job(id=uuid.UUID(message["id"]), **values)
    except (KeyError, ValueError, TypeError):
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def version(job: Job) -> tuple[int, datetime]:
    """Sort key of a job's states: the creation state first, then by database change time."""
    if job.status == JobStatus.pending and job.attempts == 0 and not job.cancel_requested:
        return (0, _EPOCH)
    return (1, job.updated_at or _EPOCH)
