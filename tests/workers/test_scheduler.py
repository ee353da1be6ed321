"""The scheduler tick: due schedules claimed with FOR UPDATE SKIP LOCKED, one job per due run,
`next_run_at` advanced past now; several schedulers side by side."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from server.db.base import utcnow
from server.jobs.models import Job, JobStatus, Schedule
from workers import scheduler


async def make_schedule(rt, *, due_in: float, interval: int = 60, enabled: bool = True) -> Schedule:  # noqa: ANN001
    sched = Schedule(id=uuid.uuid4(), name=f"test-{uuid.uuid4().hex[:12]}", job_kind="accounts_cleanup",
                     interval_seconds=interval, next_run_at=utcnow() + timedelta(seconds=due_in), enabled=enabled,
                     payload={"from": "test"})
    async with rt.db.unit_of_work() as uow:
        uow.session.add(sched)
    return sched


async def jobs_of(rt, sched: Schedule) -> list[Job]:  # noqa: ANN001
    async with rt.db.session() as s:
        return list((await s.execute(select(Job).where(Job.subject_type == "Schedule",
                                                        Job.subject_id == str(sched.id)))).scalars())


async def reload(rt, sched: Schedule) -> Schedule:  # noqa: ANN001
    async with rt.db.session() as s:
        return await s.get(Schedule, sched.id)


async def test_concurrent_schedulers_create_exactly_one_job_per_due_schedule(rt):
    due = [await make_schedule(rt, due_in=-5) for _ in range(12)]
    later = await make_schedule(rt, due_in=3600)
    disabled = await make_schedule(rt, due_in=-5, enabled=False)
    before = utcnow()
    counts = await asyncio.gather(*(scheduler.run_due(rt) for _ in range(4)))
    assert sum(counts) >= len(due)  # every due schedule ran (others' due rows may be in the table too)
    for sched in due:
        created = await jobs_of(rt, sched)
        assert len(created) == 1, f"{sched.name}: {len(created)} jobs"
        assert created[0].kind == "accounts_cleanup" and created[0].payload == {"from": "test"}
        row = await reload(rt, sched)
        assert row.next_run_at == sched.next_run_at + timedelta(seconds=60) and row.next_run_at > before
        assert row.last_run_at is not None and row.last_run_at >= before
    assert await jobs_of(rt, later) == [] and await jobs_of(rt, disabled) == []
    # Run again: nothing is due any more.
    await scheduler.run_due(rt)
    assert all([len(await jobs_of(rt, s)) == 1 for s in due])


async def test_a_locked_schedule_is_skipped_not_waited_for(rt):
    locked = await make_schedule(rt, due_in=-1)
    free = await make_schedule(rt, due_in=-1)
    async with rt.db.session() as other:  # another scheduler in the middle of its tick
        await other.execute(select(Schedule).where(Schedule.id == locked.id).with_for_update())
        started = time.monotonic()
        await asyncio.wait_for(scheduler.run_due(rt), 5)
        assert time.monotonic() - started < 2
        assert await jobs_of(rt, locked) == [] and len(await jobs_of(rt, free)) == 1
        await other.rollback()
    await scheduler.run_due(rt)
    assert len(await jobs_of(rt, locked)) == 1


async def test_missed_runs_are_skipped_not_fired_in_a_burst(rt):
    sched = await make_schedule(rt, due_in=-10.5 * 60, interval=60)
    now = utcnow()
    await scheduler.run_due(rt)
    assert len(await jobs_of(rt, sched)) == 1
    row = await reload(rt, sched)
    assert row.next_run_at == sched.next_run_at + timedelta(seconds=11 * 60)
    assert now < row.next_run_at <= now + timedelta(seconds=60)


async def test_schedule_jobs_are_enqueued_and_run_by_the_worker(rt, live):
    sched = await make_schedule(rt, due_in=-1)
    await scheduler.run_due(rt)
    (job,) = await jobs_of(rt, sched)
    deadline = time.monotonic() + 10
    while (await _status(rt, job.id)) != JobStatus.succeeded:
        assert time.monotonic() < deadline, f"schedule job is {await _status(rt, job.id)}"
        await asyncio.sleep(0.05)


async def _status(rt, job_id):  # noqa: ANN001, ANN202
    async with rt.db.session() as s:
        return (await s.get(Job, job_id)).status


async def test_builtin_schedules_are_created_once_by_concurrent_schedulers(rt):
    await asyncio.gather(*(scheduler.ensure_builtin(rt) for _ in range(4)))
    async with rt.db.session() as s:
        for name, kind, _ in scheduler.BUILTIN:
            count = (await s.execute(select(func.count()).select_from(Schedule).where(Schedule.name == name))).scalar()
            assert count == 1
            assert (await s.execute(select(Schedule.job_kind).where(Schedule.name == name))).scalar() == kind
