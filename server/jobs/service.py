"""Job lifecycle: create (enqueue after commit), claim, progress, finish, cancel, sweep.

Every state change is one conditional UPDATE, so two workers racing for a job, or a cancel racing
a finish, leave exactly one winner. A claim increments `attempts`, and the worker's later changes
are conditioned on that attempt number: a worker whose job was given to another attempt (the
sweeper revived it after a lost heartbeat) can no longer change it. Each change publishes
`job:{id}` with the state it produced (see `server.jobs.events`) after commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from redis.exceptions import RedisError
from sqlalchemy import and_, func, or_, select, true, update

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.errors import DomainError, ErrorCode, not_found
from server.jobs.dispatch import send_job
from server.jobs.events import job_event
from server.jobs.models import Job, JobStatus
from server.pubsub.publish import job_channel, publish, publish_after_commit
from server.runtime import Runtime
from server.security.principal import Principal

log = logging.getLogger("insights.jobs")

RETRY_BASE_MS = 1000
RETRY_MAX_MS = 60_000
CANCEL_POLL_SECONDS = 5.0  # `watch_cancel` re-reads the row this often, in case a job event was lost

# (job id, attempt) of the job the current task is running; set by the worker around a handler so
# that `report_progress` is fenced to that attempt without handlers passing it around.
_running: ContextVar[tuple[uuid.UUID, int] | None] = ContextVar("insights_running_job", default=None)


class JobCancelled(Exception):
    """Raised inside a running job when someone asked to cancel it."""


class JobLost(Exception):
    """Raised inside a running job that this attempt no longer owns (finished or taken over)."""


class JobFailed(Exception):
    """Raised by a job handler for an expected failure (a warehouse that refuses the connection,
    a query that fails): the job fails at once, without retries, and its `error` is this message
    (no traceback), so whoever watches the job reads why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


async def payload_row(rt: Runtime, job: Job, model: Any, key: str, what: str) -> Any:
    """The row of `model` whose id the job's payload names under `key`, of the job's own
    organization; JobFailed ("the job names no <what>" / "the <what> was deleted") otherwise."""
    try:
        row_id = uuid.UUID(str((job.payload or {}).get(key)))
    except ValueError:
        raise JobFailed(f"the job names no {what}") from None
    async with rt.db.session() as s:
        row = await s.get(model, row_id)
    if row is None or row.organization_id != job.organization_id:
        raise JobFailed(f"the {what} was deleted")
    return row


@contextlib.contextmanager
def running_attempt(job_id: uuid.UUID, attempt: int) -> Iterator[None]:
    token = _running.set((job_id, attempt))
    try:
        yield
    finally:
        _running.reset(token)


def _attempt_for(job_id: uuid.UUID, attempt: int | None) -> int | None:
    if attempt is not None:
        return attempt
    current = _running.get()
    return current[1] if current is not None and current[0] == job_id else None


def _owned(job_id: uuid.UUID, attempt: int | None):  # noqa: ANN202
    attempt = _attempt_for(job_id, attempt)
    return true() if attempt is None else Job.attempts == attempt


def retry_delay_ms(attempts: int) -> int:
    """Backoff before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, ... up to 60 s."""
    return min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** max(0, attempts - 1))


def create_job(uow: UnitOfWork, rt: Runtime, *, kind: str, organization_id: uuid.UUID | None,
               requested_by_id: uuid.UUID | None = None, payload: dict | None = None, queue: str = "default",
               subject_type: str | None = None, subject_id: str | None = None, max_attempts: int | None = None) -> Job:
    """Add a pending job to the unit of work; its message is sent only once the transaction commits."""
    now = utcnow()
    job = Job(id=uuid.uuid4(), kind=kind, organization_id=organization_id, requested_by_id=requested_by_id,
              payload=payload or {}, queue=queue, subject_type=subject_type, subject_id=subject_id,
              status=JobStatus.pending, progress=0.0, attempts=0, enqueued_at=now, created_at=now, updated_at=now,
              cancel_requested=False, max_attempts=max_attempts or rt.settings.job_max_attempts)
    uow.session.add(job)

    async def enqueue() -> None:
        await send_job(job.id, kind, queue, redis=rt.redis)

    uow.after_commit(enqueue)
    publish_after_commit(uow, rt.redis, job_channel(job.id), job_event(job))
    return job


async def _change(rt: Runtime, job_id: uuid.UUID, where: Any, values: dict, *, announce: bool = True) -> Job | None:
    """One conditional UPDATE; the changed row (or None when the condition did not hold)."""
    async with rt.db.session() as s:
        row = (await s.execute(
            update(Job).where(Job.id == job_id, where)
            .values(**{"updated_at": func.clock_timestamp(), **values})
            .returning(Job).execution_options(synchronize_session=False))).scalar_one_or_none()
        await s.commit()
    if row is not None and announce:
        await publish(rt.redis, job_channel(job_id), job_event(row))
    return row


async def get_job(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    """The row as the workers see it (no tenant check: for workers and the sweeper)."""
    async with rt.db.session() as s:
        return await s.get(Job, job_id)


async def claim(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    """Take a pending job for this worker; None when it is gone, finished, running elsewhere or cancelled."""
    now = utcnow()
    return await _change(rt, job_id, and_(Job.status == JobStatus.pending, Job.cancel_requested.is_(False)),
                         {"status": JobStatus.running, "attempts": Job.attempts + 1, "started_at": now,
                          "heartbeat_at": now, "finished_at": None, "error": None})


async def heartbeat(rt: Runtime, job_id: uuid.UUID, attempt: int) -> bool:
    """Tell the sweeper this attempt is alive; False when it no longer owns a running job."""
    row = await _change(rt, job_id, and_(Job.status == JobStatus.running, Job.attempts == attempt),
                        {"heartbeat_at": utcnow(), "updated_at": Job.updated_at}, announce=False)
    return row is not None


async def report_progress(rt: Runtime, job_id: uuid.UUID, progress: float, message: str | None = None) -> None:
    """Record progress (0..1) and heartbeat. Raises JobCancelled when a cancel was requested, and
    JobLost when this attempt no longer owns the job."""
    owned = _owned(job_id, None)
    row = await _change(rt, job_id, and_(Job.status == JobStatus.running, Job.cancel_requested.is_(False), owned),
                        {"progress": max(0.0, min(1.0, float(progress))), "message": message,
                         "heartbeat_at": utcnow()})
    if row is not None:
        return
    current = await get_job(rt, job_id)
    attempt = _attempt_for(job_id, None)
    if (current is not None and current.status == JobStatus.running and current.cancel_requested
            and (attempt is None or current.attempts == attempt)):
        raise JobCancelled(str(job_id))
    raise JobLost(str(job_id))


@contextlib.asynccontextmanager
async def watch_cancel(rt: Runtime, job_id: uuid.UUID,
                       poll_seconds: float = CANCEL_POLL_SECONDS) -> AsyncIterator[asyncio.Event]:
    """An event set as soon as someone asks to cancel the job, for work that cannot wait for its
    next `report_progress` (a long warehouse query: see Connector.stop_when). The job's channel
    says so at once; the row is also re-read every `poll_seconds` (a lost event, Redis away)."""
    requested = asyncio.Event()
    watcher = asyncio.create_task(_watch_cancel(rt, job_id, requested, poll_seconds), name=f"cancel-watch-{job_id}")
    try:
        yield requested
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


async def _watch_cancel(rt: Runtime, job_id: uuid.UUID, requested: asyncio.Event, poll_seconds: float) -> None:
    pubsub = rt.redis.pubsub(ignore_subscribe_messages=True)
    listening = True
    try:
        try:  # subscribed before reading the row: a cancel after the read is announced to us
            await pubsub.subscribe(job_channel(job_id))
        except (RedisError, OSError) as e:
            log.warning("job %s: cannot listen for a cancel (%s); polling", job_id, e)
            listening = False
        while True:
            job = await get_job(rt, job_id)
            if job is None or job.status.finished:
                return
            if job.cancel_requested:
                requested.set()
                return
            if listening:
                try:
                    if await _cancel_announced(pubsub, poll_seconds):
                        requested.set()
                        return
                except (RedisError, OSError) as e:
                    log.warning("job %s: lost the cancel listener (%s); polling", job_id, e)
                    listening = False
            else:
                await asyncio.sleep(poll_seconds)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()


async def _cancel_announced(pubsub: Any, seconds: float) -> bool:
    """Whether an event of the job saying a cancel was requested arrives within `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        message = await pubsub.get_message(timeout=left)
        if message is None or message.get("type") != "message":
            continue
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            if orjson.loads(message["data"])["job"].get("cancel_requested"):
                return True
    return False


async def succeed(rt: Runtime, job_id: uuid.UUID, result: dict | None = None, attempt: int | None = None) -> Job | None:
    return await _change(rt, job_id, and_(Job.status == JobStatus.running, _owned(job_id, attempt)),
                         {"status": JobStatus.succeeded, "progress": 1.0, "result": result or {},
                          "finished_at": utcnow(), "message": None})


async def fail_or_retry(rt: Runtime, job_id: uuid.UUID, error: str, attempt: int | None = None) -> Job | None:
    """A failed attempt: back to pending (re-sent with backoff) while attempts remain, else failed.
    A job someone asked to cancel ends cancelled instead of being retried."""
    error = error[:4000]
    job = await get_job(rt, job_id)
    attempt = _attempt_for(job_id, attempt)
    if job is None or job.status != JobStatus.running or (attempt is not None and job.attempts != attempt):
        return None
    owned = and_(Job.status == JobStatus.running, Job.attempts == job.attempts)
    now = utcnow()
    if job.cancel_requested:
        return await _change(rt, job_id, owned, {"status": JobStatus.cancelled, "error": error, "finished_at": now})
    if job.attempts < job.max_attempts:
        delay_ms = retry_delay_ms(job.attempts)
        # enqueued_at is when the message becomes due, so the sweeper does not re-send it early.
        row = await _change(rt, job_id, owned, {"status": JobStatus.pending, "error": error, "message": None,
                                                "enqueued_at": now + timedelta(milliseconds=delay_ms)})
        if row is not None:
            await send_job(job_id, job.kind, job.queue, delay_ms=delay_ms, redis=rt.redis)
        return row
    return await _change(rt, job_id, owned, {"status": JobStatus.failed, "error": error, "finished_at": now})


async def fail(rt: Runtime, job_id: uuid.UUID, error: str, attempt: int | None = None) -> Job | None:
    """An expected failure (JobFailed): failed now, whatever attempts remain (cancelled instead
    when a cancel was requested meanwhile)."""
    job = await get_job(rt, job_id)
    status = JobStatus.cancelled if job is not None and job.cancel_requested else JobStatus.failed
    return await _change(rt, job_id, and_(Job.status == JobStatus.running, _owned(job_id, attempt)),
                         {"status": status, "error": error[:4000], "finished_at": utcnow(), "message": None})


async def mark_cancelled(rt: Runtime, job_id: uuid.UUID, attempt: int | None = None) -> Job | None:
    """A running job stopped because a cancel was requested."""
    return await _change(rt, job_id, and_(Job.status == JobStatus.running, Job.cancel_requested.is_(True),
                                          _owned(job_id, attempt)),
                         {"status": JobStatus.cancelled, "finished_at": utcnow(), "message": None})


async def dead_letter(rt: Runtime, job_id: uuid.UUID, error: str) -> Job | None:
    """A message no worker can handle (e.g. no actor for its kind): the job fails, visibly."""
    return await _change(rt, job_id, Job.status.in_([JobStatus.pending, JobStatus.running]),
                         {"status": JobStatus.failed, "error": error[:4000], "finished_at": utcnow()})


async def cancel(rt: Runtime, principal: Principal, job_id: uuid.UUID) -> Job:
    """Pending jobs stop at once; running ones at their next progress report."""
    job = await get_visible(rt, principal, job_id)
    principal.require_write()
    if job.requested_by_id != principal.user_id:
        if job.organization_id is None:
            raise not_found("job")
        principal.require_role(job.organization_id, _editor(), "job")
    for _ in range(3):  # the job may move on between our read and our update: re-decide
        if job.status.finished:
            raise DomainError(ErrorCode.CONFLICT, f"job already {job.status.value}", ["input", "id"])
        if job.status == JobStatus.pending:
            row = await _change(rt, job_id, Job.status == JobStatus.pending,
                                {"status": JobStatus.cancelled, "cancel_requested": True, "finished_at": utcnow()})
        else:
            row = await _change(rt, job_id, Job.status == JobStatus.running, {"cancel_requested": True})
        if row is not None:
            return row
        job = await get_visible(rt, principal, job_id)
    return job


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


@dataclass
class Swept:
    resent: list[uuid.UUID] = field(default_factory=list)    # lost messages sent again
    revived: list[uuid.UUID] = field(default_factory=list)   # running without heartbeat: back to pending, sent
    failed: list[uuid.UUID] = field(default_factory=list)    # running without heartbeat, no attempts left
    cancelled: list[uuid.UUID] = field(default_factory=list)  # lost while a cancel was requested

    @property
    def total(self) -> int:
        return len(self.resent) + len(self.revived) + len(self.failed) + len(self.cancelled)


async def sweep(rt: Runtime, now: datetime | None = None) -> Swept:
    """Recover jobs whose message or worker was lost: pending too long (message lost: sent again),
    or running without a heartbeat (worker lost: sent again while attempts remain, else failed)."""
    now = now or utcnow()
    resend_before = now - timedelta(seconds=rt.settings.job_resend_after_seconds)
    stale_before = now - timedelta(seconds=rt.settings.job_stale_running_seconds)
    stamp = func.clock_timestamp()
    stale = and_(Job.status == JobStatus.running, Job.heartbeat_at < stale_before)
    out = Swept()
    async with rt.db.session() as s:
        cancelled = (await s.execute(
            update(Job).where(or_(and_(stale, Job.cancel_requested.is_(True)),
                                  and_(Job.status == JobStatus.pending, Job.cancel_requested.is_(True))))
            .values(status=JobStatus.cancelled, finished_at=now, updated_at=stamp)
            .returning(Job).execution_options(synchronize_session=False))).scalars().all()
        failed = (await s.execute(
            update(Job).where(stale, Job.attempts >= Job.max_attempts)
            .values(status=JobStatus.failed, error="worker lost (no heartbeat)", finished_at=now, updated_at=stamp)
            .returning(Job).execution_options(synchronize_session=False))).scalars().all()
        revived = (await s.execute(
            update(Job).where(stale)
            .values(status=JobStatus.pending, enqueued_at=now, message=None, updated_at=stamp)
            .returning(Job).execution_options(synchronize_session=False))).scalars().all()
        lost = (await s.execute(
            update(Job).where(Job.status == JobStatus.pending, Job.enqueued_at < resend_before,
                              Job.cancel_requested.is_(False))
            .values(enqueued_at=now, updated_at=Job.updated_at)
            .returning(Job.id, Job.kind, Job.queue).execution_options(synchronize_session=False))).all()
        await s.commit()
    for job in [*cancelled, *failed, *revived]:
        await publish(rt.redis, job_channel(job.id), job_event(job))
    for job in revived:
        await send_job(job.id, job.kind, job.queue, redis=rt.redis)
    for job_id, kind, queue in lost:
        await send_job(job_id, kind, queue, redis=rt.redis)
    out.cancelled = [j.id for j in cancelled]
    out.failed = [j.id for j in failed]
    out.revived = [j.id for j in revived]
    out.resent = [j[0] for j in lost]
    if out.total:
        log.info("sweeper: %d re-sent, %d revived, %d failed, %d cancelled",
                 len(out.resent), len(out.revived), len(out.failed), len(out.cancelled))
    return out
