"""Job lifecycle at the service level: claim, progress, finish, retry, cancel, sweep.

Jobs here use a queue no worker of the test run consumes, so whatever these tests send (re-sends,
retries) stays in Redis where the tests can look at it, and no worker races the test.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import orjson
import pytest
import redis.asyncio as aioredis

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.errors import DomainError, ErrorCode
from server.jobs import service as jobs
from server.jobs.events import job_event, job_from_event, version
from server.jobs.models import JobStatus
from tests.server.jobs.support import add_member, get_job, insert_job, make_org, make_user, principal_of

QUEUE = "service-tests"


async def queued_job_ids(rt, queue: str = QUEUE) -> list[str]:  # noqa: ANN001
    """Job ids of the messages waiting in a Dramatiq queue (its Redis hash of messages)."""
    r: aioredis.Redis = rt.redis
    out = []
    for name in (f"dramatiq:{queue}.msgs", f"dramatiq:{queue}.DQ.msgs"):
        for raw in (await r.hgetall(name)).values():
            out.append(orjson.loads(raw)["args"][0])
    return out


async def test_two_concurrent_claims_have_one_winner(rt):
    job = await insert_job(rt, queue=QUEUE)
    results = await asyncio.gather(*(jobs.claim(rt, job.id) for _ in range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].status == JobStatus.running and winners[0].attempts == 1
    row = await get_job(rt, job.id)
    assert row.status == JobStatus.running and row.attempts == 1 and row.started_at is not None
    assert await jobs.claim(rt, job.id) is None  # a re-delivered message is skipped


@pytest.mark.parametrize("status", [JobStatus.running, JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled])
async def test_claim_skips_jobs_that_are_not_pending(rt, status):
    job = await insert_job(rt, queue=QUEUE, status=status, attempts=1)
    assert await jobs.claim(rt, job.id) is None
    assert (await get_job(rt, job.id)).attempts == 1


async def test_claim_of_missing_job_is_none(rt):
    assert await jobs.claim(rt, uuid.uuid4()) is None


async def test_progress_is_clamped_and_fenced_to_the_attempt(rt):
    job = await insert_job(rt, queue=QUEUE)
    claimed = await jobs.claim(rt, job.id)
    with jobs.running_attempt(job.id, claimed.attempts):
        await jobs.report_progress(rt, job.id, 1.7, "almost")
        assert (await get_job(rt, job.id)).progress == 1.0
        await jobs.report_progress(rt, job.id, -3)
        row = await get_job(rt, job.id)
        assert row.progress == 0.0 and row.message is None
    # An attempt that no longer owns the job (the sweeper gave it to another) changes nothing.
    with jobs.running_attempt(job.id, claimed.attempts - 1):
        with pytest.raises(jobs.JobLost):
            await jobs.report_progress(rt, job.id, 0.5)
    assert await jobs.succeed(rt, job.id, {"x": 1}, attempt=claimed.attempts + 1) is None
    assert await jobs.fail_or_retry(rt, job.id, "boom", attempt=claimed.attempts + 1) is None
    assert (await get_job(rt, job.id)).status == JobStatus.running
    done = await jobs.succeed(rt, job.id, {"x": 1}, attempt=claimed.attempts)
    assert done.status == JobStatus.succeeded and done.result == {"x": 1} and done.progress == 1.0
    assert done.finished_at is not None
    # A finished job takes no more progress.
    with jobs.running_attempt(job.id, claimed.attempts):
        with pytest.raises(jobs.JobLost):
            await jobs.report_progress(rt, job.id, 0.5)


async def test_failed_attempts_retry_with_backoff_then_fail(rt):
    job = await insert_job(rt, queue=QUEUE, max_attempts=3)
    delays = []
    for attempt in (1, 2):
        claimed = await jobs.claim(rt, job.id)
        assert claimed.attempts == attempt
        before = utcnow()
        row = await jobs.fail_or_retry(rt, job.id, f"boom {attempt}", attempt=attempt)
        assert row.status == JobStatus.pending and row.error == f"boom {attempt}"
        delays.append((row.enqueued_at - before).total_seconds())
        assert str(job.id) in await queued_job_ids(rt)  # re-sent, on the delay queue
    assert delays[0] == pytest.approx(1.0, abs=0.3) and delays[1] == pytest.approx(2.0, abs=0.3)
    assert [jobs.retry_delay_ms(n) for n in (1, 2, 3, 10)] == [1000, 2000, 4000, 60_000]
    await jobs.claim(rt, job.id)
    row = await jobs.fail_or_retry(rt, job.id, "boom 3", attempt=3)
    assert row.status == JobStatus.failed and row.error == "boom 3" and row.attempts == 3
    assert row.finished_at is not None


async def test_failure_after_a_cancel_request_ends_cancelled_not_retried(rt, owner):
    account, org = owner
    job = await insert_job(rt, queue=QUEUE, organization_id=org, requested_by_id=account.user_id)
    await jobs.claim(rt, job.id)
    await jobs.cancel(rt, await principal_of(rt, account), job.id)
    row = await jobs.fail_or_retry(rt, job.id, "boom", attempt=1)
    assert row.status == JobStatus.cancelled and row.error == "boom"


async def test_cancel_pending_job_stops_it_at_once(rt, owner):
    account, org = owner
    job = await insert_job(rt, queue=QUEUE, organization_id=org, requested_by_id=account.user_id)
    row = await jobs.cancel(rt, await principal_of(rt, account), job.id)
    assert row.status == JobStatus.cancelled and row.cancel_requested and row.finished_at is not None
    assert await jobs.claim(rt, job.id) is None
    assert (await get_job(rt, job.id)).attempts == 0


async def test_cancel_running_job_stops_it_at_next_progress(rt, owner):
    account, org = owner
    job = await insert_job(rt, queue=QUEUE, organization_id=org, requested_by_id=account.user_id)
    claimed = await jobs.claim(rt, job.id)
    row = await jobs.cancel(rt, await principal_of(rt, account), job.id)
    assert row.status == JobStatus.running and row.cancel_requested
    with jobs.running_attempt(job.id, claimed.attempts):
        with pytest.raises(jobs.JobCancelled):
            await jobs.report_progress(rt, job.id, 0.5)
    done = await jobs.mark_cancelled(rt, job.id, claimed.attempts)
    assert done.status == JobStatus.cancelled and done.finished_at is not None


async def test_cancel_finished_job_is_a_conflict(rt, owner):
    account, org = owner
    principal = await principal_of(rt, account)
    for status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        job = await insert_job(rt, queue=QUEUE, organization_id=org, requested_by_id=account.user_id, status=status)
        with pytest.raises(DomainError) as e:
            await jobs.cancel(rt, principal, job.id)
        assert e.value.code == ErrorCode.CONFLICT
        assert (await get_job(rt, job.id)).status == status


async def test_cancel_is_tenant_and_role_checked(rt, owner):
    account, org = owner
    job = await insert_job(rt, queue=QUEUE, organization_id=org, requested_by_id=account.user_id)
    stranger = await make_user(rt)
    await make_org(rt, stranger, "Other")
    with pytest.raises(DomainError) as e:
        await jobs.cancel(rt, await principal_of(rt, stranger), job.id)
    assert e.value.code == ErrorCode.NOT_FOUND
    viewer = await make_user(rt)
    await add_member(rt, org, viewer, Role.viewer)
    with pytest.raises(DomainError) as e:
        await jobs.cancel(rt, await principal_of(rt, viewer), job.id)
    assert e.value.code == ErrorCode.FORBIDDEN
    assert (await get_job(rt, job.id)).status == JobStatus.pending
    editor = await make_user(rt)
    await add_member(rt, org, editor, Role.editor)
    assert (await jobs.cancel(rt, await principal_of(rt, editor), job.id)).status == JobStatus.cancelled


async def test_sweep_resends_lost_messages(rt):
    old = utcnow() - timedelta(seconds=rt.settings.job_resend_after_seconds + 5)
    lost = await insert_job(rt, queue=QUEUE, enqueued_at=old)
    fresh = await insert_job(rt, queue=QUEUE)
    swept = await jobs.sweep(rt)
    assert lost.id in swept.resent and fresh.id not in swept.resent
    queued = await queued_job_ids(rt)
    assert str(lost.id) in queued and str(fresh.id) not in queued
    row = await get_job(rt, lost.id)
    assert row.status == JobStatus.pending and row.enqueued_at > old
    # Sent again only after another resend period: the sweeper does not flood the queue.
    assert lost.id not in (await jobs.sweep(rt)).resent


async def test_sweep_revives_or_fails_jobs_without_heartbeat(rt):
    stale = utcnow() - timedelta(seconds=rt.settings.job_stale_running_seconds + 5)
    revivable = await insert_job(rt, queue=QUEUE, status=JobStatus.running, attempts=1, max_attempts=3,
                                 heartbeat_at=stale, started_at=stale)
    exhausted = await insert_job(rt, queue=QUEUE, status=JobStatus.running, attempts=3, max_attempts=3,
                                 heartbeat_at=stale, started_at=stale)
    cancelling = await insert_job(rt, queue=QUEUE, status=JobStatus.running, attempts=1, cancel_requested=True,
                                  heartbeat_at=stale, started_at=stale)
    alive = await insert_job(rt, queue=QUEUE, status=JobStatus.running, attempts=1, heartbeat_at=utcnow())
    swept = await jobs.sweep(rt)
    assert revivable.id in swept.revived and exhausted.id in swept.failed and cancelling.id in swept.cancelled
    assert alive.id not in swept.revived + swept.failed + swept.cancelled
    assert (await get_job(rt, revivable.id)).status == JobStatus.pending
    assert str(revivable.id) in await queued_job_ids(rt)
    failed = await get_job(rt, exhausted.id)
    assert failed.status == JobStatus.failed and "heartbeat" in failed.error and failed.finished_at is not None
    assert (await get_job(rt, cancelling.id)).status == JobStatus.cancelled
    assert (await get_job(rt, alive.id)).status == JobStatus.running
    # The revived job runs again as attempt 2; the lost attempt 1 can no longer touch it.
    assert (await jobs.claim(rt, revivable.id)).attempts == 2
    assert await jobs.succeed(rt, revivable.id, {}, attempt=1) is None


async def test_heartbeat_is_fenced_to_the_attempt(rt):
    job = await insert_job(rt, queue=QUEUE)
    claimed = await jobs.claim(rt, job.id)
    before = (await get_job(rt, job.id)).updated_at
    assert await jobs.heartbeat(rt, job.id, claimed.attempts)
    row = await get_job(rt, job.id)
    assert row.heartbeat_at >= claimed.heartbeat_at and row.updated_at == before  # not a visible change
    assert not await jobs.heartbeat(rt, job.id, claimed.attempts + 1)


async def test_dead_letter_fails_pending_job(rt):
    job = await insert_job(rt, queue=QUEUE)
    row = await jobs.dead_letter(rt, job.id, "no worker handles job kind 'x'")
    assert row.status == JobStatus.failed and "no worker" in row.error
    assert await jobs.dead_letter(rt, job.id, "again") is None


async def test_job_events_carry_the_state_and_order_by_database_time(rt):
    job = await insert_job(rt, queue=QUEUE)
    created = job_from_event(orjson.loads(orjson.dumps(job_event(job))))
    claimed = await jobs.claim(rt, job.id)
    with jobs.running_attempt(job.id, claimed.attempts):
        await jobs.report_progress(rt, job.id, 0.25, "a quarter")
    progressed = await get_job(rt, job.id)
    event = orjson.loads(orjson.dumps(job_event(progressed)))
    assert event["type"] == "Job" and event["id"] == str(job.id)
    again = job_from_event(event)
    assert (again.status, again.progress, again.message, again.attempts) == (JobStatus.running, 0.25, "a quarter", 1)
    assert again.updated_at == progressed.updated_at and again.organization_id == progressed.organization_id
    assert version(created) < version(claimed) < version(progressed)
    assert job_from_event({"type": "Resync"}) is None
    assert job_from_event({"type": "Job", "id": "nope", "job": {"status": "pending"}}) is None
