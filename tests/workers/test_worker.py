"""Jobs on a real Dramatiq worker: the live server's in-process worker (Redis broker, AsyncIO
middleware, 2 threads). Test-only actors are declared on the running broker: Dramatiq looks an
actor up by name when a message arrives, so actors declared after the worker started are found."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from datetime import timedelta

import dramatiq
import orjson
import pytest

from server.db.base import utcnow
from server.domains.platform import export
from server.jobs import service as jobs
from server.jobs.dispatch import job_message
from server.jobs.models import JobStatus
from server.pubsub.hub import PubSubHub
from server.pubsub.publish import job_channel
from workers import inprocess
from workers.runtime import run_job
from tests.server.jobs.support import get_job, insert_job, principal_of, wait_for, wait_for_status

# What the test actors saw, by job id (they run on the worker's threads and event loop).
calls: dict[str, list[float]] = {}
progress_steps: dict[str, list[int]] = {}
_lock = threading.Lock()


def _record(table: dict, job_id: str, value) -> None:  # noqa: ANN001
    with _lock:
        table.setdefault(job_id, []).append(value)


async def _failing(rt, job):  # noqa: ANN001, ANN202
    _record(calls, str(job.id), time.monotonic())
    raise ValueError("boom from the test actor")


async def _slow(rt, job):  # noqa: ANN001, ANN202
    _record(calls, str(job.id), time.monotonic())
    for step in range(200):
        await jobs.report_progress(rt, job.id, step / 200, f"step {step}")
        _record(progress_steps, str(job.id), step)
        await asyncio.sleep(0.02)
    return {"steps": 200}


async def _sleepy(rt, job):  # noqa: ANN001, ANN202
    _record(calls, str(job.id), time.monotonic())
    await asyncio.sleep(30)


@pytest.fixture(scope="module")
def test_actors(live):  # noqa: ANN001, ANN201
    broker = dramatiq.get_broker()
    declared = {"test_failing": (_failing, {}), "test_slow": (_slow, {}), "test_sleepy": (_sleepy, {"time_limit": 300})}
    for name, (handler, options) in declared.items():
        if name in broker.actors:
            continue

        async def actor_fn(job_id: str, _handler=handler) -> None:  # noqa: ANN001
            await run_job(job_id, _handler)

        dramatiq.actor(actor_fn, actor_name=name, queue_name="default", broker=broker, **options)
    return broker


async def create(rt, kind: str, org=None, account=None, max_attempts: int | None = None):  # noqa: ANN001, ANN201
    async with rt.db.unit_of_work() as uow:
        job = jobs.create_job(uow, rt, kind=kind, organization_id=org,
                              requested_by_id=account.user_id if account else None, max_attempts=max_attempts)
    return job


@contextlib.asynccontextmanager
async def paused_worker():  # noqa: ANN201
    worker = inprocess.active()
    assert worker is not None, "the live server runs an in-process worker"
    await asyncio.to_thread(worker.pause)
    try:
        yield worker
    finally:
        worker.resume()


async def test_export_runs_on_the_worker_and_publishes_every_change(rt, live, owner):
    account, org = owner
    principal = await principal_of(rt, account)
    hub = PubSubHub(rt.redis)
    await hub.start()
    try:
        async with paused_worker() as worker:
            job = await export.request_export(rt, principal, org)
            async with hub.subscribe(job_channel(job.id)) as events:
                assert (await get_job(rt, job.id)).status == JobStatus.pending
                worker.resume()
                seen = []
                async for event in events:
                    state = event["job"]
                    seen.append((state["status"], state["progress"], state["message"]))
                    if state["status"] in ("succeeded", "failed", "cancelled"):
                        break
    finally:
        await hub.stop()
    assert seen == [("running", 0.0, None), ("running", 0.1, "exporting accounts"),
                    ("running", 0.5, "exporting the audit log"), ("running", 0.9, "writing the file"),
                    ("succeeded", 1.0, None)]
    row = await get_job(rt, job.id)
    assert row.status == JobStatus.succeeded and row.attempts == 1
    path = export.export_path(rt, org, job.id)
    data = orjson.loads(path.read_bytes())
    assert data["format"] == "insights-organization-export" and data["organizationId"] == str(org)
    assert [m["email"] for m in data["members"]] == [account.email]
    assert [e["action"] for e in data["auditLog"]] == ["organization.export"]
    assert row.result["counts"]["members"] == 1 and row.result["bytes"] == path.stat().st_size


async def test_failing_actor_retries_with_backoff_then_fails(rt, test_actors):
    job = await create(rt, "test_failing", max_attempts=3)
    row = await wait_for_status(rt, job.id, JobStatus.failed, timeout=15)
    assert row.attempts == 3 and "ValueError: boom from the test actor" in row.error
    times = calls[str(job.id)]
    assert len(times) == 3
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s of backoff
    await asyncio.sleep(0.5)
    assert len(calls[str(job.id)]) == 3  # no attempt after the last one


async def test_time_limit_interrupts_the_job_and_records_it(rt, test_actors):
    job = await create(rt, "test_sleepy", max_attempts=1)
    row = await wait_for_status(rt, job.id, JobStatus.failed, timeout=10)
    assert "interrupted" in row.error and row.attempts == 1


async def test_cancel_running_job_stops_at_next_progress(rt, test_actors, owner):
    account, org = owner
    job = await create(rt, "test_slow", org, account)
    await wait_for(lambda: _has(progress_steps, str(job.id), 3), 5, what="progress")
    await jobs.cancel(rt, await principal_of(rt, account), job.id)
    row = await wait_for_status(rt, job.id, JobStatus.cancelled, timeout=5)
    assert row.cancel_requested and row.progress < 1.0 and row.finished_at is not None
    steps = len(progress_steps[str(job.id)])
    await asyncio.sleep(0.3)
    assert len(progress_steps[str(job.id)]) == steps < 200  # the handler stopped


async def _has(table: dict, key: str, n: int) -> bool:
    return len(table.get(key, ())) >= n


async def test_cancelled_pending_job_is_skipped_by_the_worker(rt, test_actors, owner):
    account, org = owner
    job = await insert_job(rt, kind="test_slow", organization_id=org, requested_by_id=account.user_id)
    await jobs.cancel(rt, await principal_of(rt, account), job.id)
    # Its message arrives anyway (sent before the cancel, say): the worker must skip it.
    sent = await asyncio.to_thread(test_actors.enqueue, job_message(job.id, "test_slow", "default"))

    async def acked() -> bool:
        return not await rt.redis.hexists("dramatiq:default.msgs", sent.options["redis_message_id"])

    await wait_for(acked, 5, what="the worker to process the message")
    row = await get_job(rt, job.id)
    assert row.status == JobStatus.cancelled and row.attempts == 0 and row.started_at is None
    assert str(job.id) not in calls


async def test_lost_message_is_resent_by_the_sweeper_and_runs(rt, live, owner):
    account, org = owner
    old = utcnow() - timedelta(seconds=rt.settings.job_resend_after_seconds + 1)
    job = await insert_job(rt, organization_id=org, requested_by_id=account.user_id, enqueued_at=old)
    await asyncio.sleep(0.5)
    assert (await get_job(rt, job.id)).status == JobStatus.pending  # nothing was sent: nothing runs
    swept = await jobs.sweep(rt)
    assert job.id in swept.resent
    row = await wait_for_status(rt, job.id, JobStatus.succeeded)
    assert row.attempts == 1 and export.export_path(rt, org, job.id).exists()


async def test_job_of_a_lost_worker_is_revived_by_the_sweeper_and_runs(rt, live, owner):
    account, org = owner
    stale = utcnow() - timedelta(seconds=rt.settings.job_stale_running_seconds + 1)
    job = await insert_job(rt, organization_id=org, requested_by_id=account.user_id, status=JobStatus.running,
                           attempts=1, started_at=stale, heartbeat_at=stale)
    swept = await jobs.sweep(rt)
    assert job.id in swept.revived
    row = await wait_for_status(rt, job.id, JobStatus.succeeded)
    assert row.attempts == 2


async def test_message_for_unknown_kind_fails_the_job(rt, live):
    job = await create(rt, f"no_such_kind_{uuid.uuid4().hex[:6]}")
    row = await wait_for_status(rt, job.id, JobStatus.failed, timeout=5)
    assert "no worker handles job kind" in row.error and row.attempts == 0


async def test_only_one_in_process_worker_per_process(live, settings, database_url, redis_url):
    with pytest.raises(RuntimeError, match="already running"):
        inprocess.InProcessWorker(settings, redis_url, database_url).__enter__()
    assert inprocess.active() is not None
