"""The scheduler tick: turn due `schedules` rows into jobs and re-send lost jobs.

Due rows are claimed with FOR UPDATE SKIP LOCKED, so several schedulers can run side by side
without running a schedule twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.db.base import utcnow
from server.jobs import service as jobs
from server.jobs.models import Schedule
from server.runtime import Runtime

log = logging.getLogger("insights.scheduler")

# Built-in maintenance schedules: (name, job kind, interval seconds).
BUILTIN = [("accounts-cleanup", "accounts_cleanup", 3600)]


async def ensure_builtin(rt: Runtime) -> None:
    """Create the built-in schedules that do not exist yet (safe with several schedulers starting)."""
    now = utcnow()
    async with rt.db.unit_of_work() as uow:
        for name, kind, interval in BUILTIN:
            await uow.session.execute(
                pg_insert(Schedule).values(id=uuid.uuid4(), name=name, job_kind=kind, interval_seconds=interval,
                                           next_run_at=now, enabled=True, payload={}, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=[Schedule.name]))


async def run_due(rt: Runtime, limit: int = 100) -> int:
    """Create a job for every due schedule and advance it; returns how many ran."""
    now = utcnow()
    async with rt.db.unit_of_work() as uow:
        due = (await uow.session.execute(
            select(Schedule).where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
            .order_by(Schedule.next_run_at).limit(limit).with_for_update(skip_locked=True))).scalars().all()
        for sched in due:
            jobs.create_job(uow, rt, kind=sched.job_kind, organization_id=None, payload=dict(sched.payload),
                            subject_type="Schedule", subject_id=str(sched.id))
            sched.last_run_at = now
            # Skip missed runs rather than firing a burst after downtime.
            step = timedelta(seconds=max(1, sched.interval_seconds))
            missed = max(0, (now - sched.next_run_at) // step)
            sched.next_run_at = sched.next_run_at + (missed + 1) * step
    return len(due)


async def tick(rt: Runtime) -> None:
    """Run due schedules, then recover lost jobs; one failing does not stop the other."""
    try:
        await run_due(rt)
    finally:
        try:
            from server.domains.warehouse.scan_configs import run_due_scans

            await run_due_scans(rt)  # scan configs are scheduled in their own table (next_run_at)
        finally:
            await jobs.sweep(rt)


async def run_forever(rt: Runtime, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await ensure_builtin(rt)
            break
        except Exception:
            log.exception("could not create the built-in schedules; retrying")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), rt.settings.scheduler_tick_seconds)
    log.info("scheduler running (tick %.1f s)", rt.settings.scheduler_tick_seconds)
    while not stop.is_set():
        try:
            await tick(rt)
        except Exception:
            log.exception("scheduler tick failed; retrying")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), rt.settings.scheduler_tick_seconds)


@contextlib.asynccontextmanager
async def run_scheduler_in_background(rt: Runtime) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_forever(rt, stop), name="scheduler")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
