"""Job lifecycle: create (enqueue after commit), claim, progress, finish, cancel, sweep.

Every state change is one conditional UPDATE, so two workers racing for a job, or a cancel racing
a finish, leave exactly one winner. Each change publishes `job:{id}` after commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.errors import DomainError, ErrorCode, not_found
from server.jobs.dispatch import send_job
from server.jobs.models import Job, JobStatus
from server.pubsub.publish import job_channel, publish, publish_after_commit
from server.runtime import Runtime
from server.security.principal import Principal


class JobCancelled(Exception):
    """Raised inside a running job when someone asked to cancel it."""


def create_job(uow: UnitOfWork, rt: Runtime, *, kind: str, organization_id: uuid.UUID | None,
               requested_by_id: uuid.UUID | None = None, payload: dict | None = None, queue: str = "default",
               subject_type: str | None = None, subject_id: str | None = None, max_attempts: int | None = None) -> Job:
    """Add a pending job to the unit of work; its message is sent only once the transaction commits."""
    job = Job(id=uuid.uuid4(), kind=kind, organization_id=organization_id, requested_by_id=requested_by_id,
              payload=payload or {}, queue=queue, subject_type=subject_type, subject_id=subject_id,
              status=JobStatus.pending, progress=0.0, attempts=0, enqueued_at=utcnow(),
              max_attempts=max_attempts or rt.settings.job_max_attempts)
    uow.session.add(job)

    async def enqueue() -> None:
        await send_job(job.id, kind, queue)

    uow.after_commit(enqueue)
    publish_after_commit(uow, rt.redis, job_channel(job.id), {"type": "Job", "id": str(job.id)})
    return job


async def _change(rt: Runtime, job_id: uuid.UUID, where: Any, values: dict) -> Job | None:
    async with rt.db.session() as s:
        row = (await s.execute(update(Job).where(Job.id == job_id, where).values(**values, updated_at=utcnow())
                               .returning(Job))).scalar_one_or_none()
        await s.commit()
    if row is not None:
        await publish(rt.redis, job_channel(job_id), {"type": "Job", "id": str(job_id)})
    return row


async def claim(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    """Take a pending job for this worker; None when it is gone, finished, running elsewhere or cancelled."""
    now = utcnow()
    return await _change(rt, job_id, and_(Job.status == JobStatus.pending, Job.cancel_requested.is_(False)),
                         {"status": JobStatus.running, "attempts": Job.attempts + 1, "started_at": now,
                          "heartbeat_at": now, "error": None})


async def report_progress(rt: Runtime, job_id: uuid.UUID, progress: float, message: str | None = None) -> None:
    """Record progress (0..1) and heartbeat; raises JobCancelled when a cancel was requested."""
    row = await _change(rt, job_id, and_(Job.status == JobStatus.running, Job.cancel_requested.is_(False)),
                        {"progress": max(0.0, min(1.0, progress)), "message": message, "heartbeat_at": utcnow()})
    if row is None:
        raise JobCancelled(str(job_id))


async def succeed(rt: Runtime, job_id: uuid.UUID, result: dict | None = None) -> Job | None:
    return await _change(rt, job_id, Job.status == JobStatus.running,
                         {"status": JobStatus.succeeded, "progress": 1.0, "result": result or {},
                          "finished_at": utcnow(), "message": None})


async def fail_or_retry(rt: Runtime, job_id: uuid.UUID, error: str) -> Job | None:
    """A failed attempt: back to pending (re-sent with backoff) while attempts remain, else failed."""
    async with rt.db.session() as s:
        job = await s.get(Job, job_id)
    if job is None or job.status != JobStatus.running:
        return None
    if job.attempts < job.max_attempts and not job.cancel_requested:
        row = await _change(rt, job_id, Job.status == JobStatus.running,
                            {"status": JobStatus.pending, "error": error[:4000], "enqueued_at": utcnow()})
        if row is not None:
            await send_job(job_id, job.kind, job.queue, delay_ms=min(60_000, 1000 * 2 ** job.attempts))
        return row
    return await _change(rt, job_id, Job.status == JobStatus.running,
                         {"status": JobStatus.failed, "error": error[:4000], "finished_at": utcnow()})


async def mark_cancelled(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    return await _change(rt, job_id, Job.status.in_([JobStatus.pending, JobStatus.running]),
                         {"status": JobStatus.cancelled, "finished_at": utcnow()})


async def cancel(rt: Runtime, principal: Principal, job_id: uuid.UUID) -> Job:
    """Pending jobs stop at once; running ones at their next progress report."""
    job = await get_visible(rt, principal, job_id)
    principal.require_write()
    if job.requested_by_id != principal.user_id:
        if job.organization_id is None:
            raise not_found("job")
        principal.require_role(job.organization_id, _editor(), "job")
    if job.status.finished:
        raise DomainError(ErrorCode.CONFLICT, f"job already {job.status.value}", ["input", "id"])
    pending = await _change(rt, job_id, Job.status == JobStatus.pending,
                            {"status": JobStatus.cancelled, "cancel_requested": True, "finished_at": utcnow()})
    if pending is not None:
        return pending
    running = await _change(rt, job_id, Job.status == JobStatus.running, {"cancel_requested": True})
    if running is not None:
        return running
    return await get_visible(rt, principal, job_id)


def _editor():  # noqa: ANN202
    from server.domains.accounts.models import Role

    return Role.editor


def _visible(principal: Principal):  # noqa: ANN202
    orgs = principal.organization_ids
    own = Job.requested_by_id == principal.user_id if principal.user_id else False
    return or_(Job.organization_id.in_(orgs), and_(Job.organization_id.is_(None), own))


async def get_visible(rt: Runtime, principal: Principal, job_id: uuid.UUID) -> Job:
    principal.require_user()
    jobs = await load_jobs(rt, principal, [job_id])
    if jobs[0] is None:
        raise not_found("job")
    return jobs[0]


async def load_jobs(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Job | None]:
    if not principal.authenticated:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(Job).where(Job.id.in_(ids), _visible(principal)))).scalars().all()
    found = {j.id: j for j in rows}
    return [found.get(i) for i in ids]


def jobs_query(principal: Principal, organization_id: uuid.UUID | None = None, kind: str | None = None,
               statuses: list[JobStatus] | None = None):  # noqa: ANN201
    q = select(Job).where(_visible(principal))
    if organization_id is not None:
        q = q.where(Job.organization_id == organization_id)
    if kind:
        q = q.where(Job.kind == kind)
    if statuses:
        q = q.where(Job.status.in_(statuses))
    return q


async def sweep(rt: Runtime, now: datetime | None = None) -> int:
    """Re-send jobs whose message was lost: pending too long, or running without a heartbeat."""
    now = now or utcnow()
    resend_before = now - timedelta(seconds=rt.settings.job_resend_after_seconds)
    stale_before = now - timedelta(seconds=rt.settings.job_stale_running_seconds)
    async with rt.db.session() as s:
        stale = (await s.execute(
            update(Job).where(Job.status == JobStatus.running, Job.heartbeat_at < stale_before,
                              Job.attempts >= Job.max_attempts)
            .values(status=JobStatus.failed, error="worker lost (no heartbeat)", finished_at=now)
            .returning(Job.id))).scalars().all()
        revived = (await s.execute(
            update(Job).where(Job.status == JobStatus.running, Job.heartbeat_at < stale_before)
            .values(status=JobStatus.pending, enqueued_at=now).returning(Job.id, Job.kind, Job.queue))).all()
        lost = (await s.execute(
            update(Job).where(Job.status == JobStatus.pending, Job.enqueued_at < resend_before,
                              Job.cancel_requested.is_(False))
            .values(enqueued_at=now).returning(Job.id, Job.kind, Job.queue))).all()
        await s.commit()
    for job_id in stale:
        await publish(rt.redis, job_channel(job_id), {"type": "Job", "id": str(job_id)})
    for job_id, kind, queue in [*revived, *lost]:
        await send_job(job_id, kind, queue)
    return len(revived) + len(lost)
