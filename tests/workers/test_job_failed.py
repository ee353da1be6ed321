"""`JobFailed`: a handler's expected failure fails the job at once, with its message as the error
(no traceback, no retries), on the live server's real Dramatiq worker."""

from __future__ import annotations

import dramatiq
import pytest

from server.jobs import service as jobs
from server.jobs.models import JobStatus
from tests.server.jobs.support import wait_for_status
from workers.runtime import run_job

runs: dict[str, int] = {}


async def _refused(rt, job):  # noqa: ANN001, ANN202
    runs[str(job.id)] = runs.get(str(job.id), 0) + 1
    await jobs.report_progress(rt, job.id, 0.5, "connecting")
    raise jobs.JobFailed("PostgreSQL: cannot connect to db.internal:5432: Connection refused")


@pytest.fixture(scope="module")
def refused_actor(live):  # noqa: ANN001, ANN201
    broker = dramatiq.get_broker()
    if "test_refused" not in broker.actors:
        async def actor_fn(job_id: str) -> None:
            await run_job(job_id, _refused)

        dramatiq.actor(actor_fn, actor_name="test_refused", queue_name="default", broker=broker)
    return broker


async def test_job_failed_fails_at_once_with_its_message(rt, refused_actor):
    async with rt.db.unit_of_work() as uow:
        job = jobs.create_job(uow, rt, kind="test_refused", organization_id=None, max_attempts=3)
    row = await wait_for_status(rt, job.id, JobStatus.failed, JobStatus.succeeded, timeout=15)
    assert row.status == JobStatus.failed and row.attempts == 1 and runs[str(job.id)] == 1
    assert row.error == "PostgreSQL: cannot connect to db.internal:5432: Connection refused"
    assert row.message is None and row.finished_at is not None
