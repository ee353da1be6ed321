"""The broker set-up: one broker per Redis in a process; the process-wide one is the first; a job
is always sent through the broker on its sender's Redis."""

from __future__ import annotations

import dramatiq
import redis.asyncio as aioredis

from server.domains.platform import export
from server.jobs.dispatch import broker_for
from server.jobs.models import JobStatus
from tests.server.jobs.support import principal_of, wait_for_status
from tests.support.live import free_port
from workers.broker import WORKER_TIMEOUT_MS, setup_broker


async def test_a_second_app_on_another_redis_does_not_take_over_sending(rt, live, owner, redis_url):
    account, org = owner
    main = setup_broker(redis_url)
    assert setup_broker(redis_url) is main and dramatiq.get_broker() is main
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    other = setup_broker(dead_url)  # what a second app's lifespan does (e.g. a health test)
    assert other is not main and dramatiq.get_broker() is main
    assert "organization_export" in other.actors  # a worker on it could run our jobs too
    dead = aioredis.from_url(dead_url)
    try:
        assert broker_for(rt.redis) is main and broker_for(dead) is other
    finally:
        await dead.aclose()
    # Jobs of the main app still reach its worker.
    job = await export.request_export(rt, await principal_of(rt, account), org)
    await wait_for_status(rt, job.id, JobStatus.succeeded)


def test_in_process_worker_polls_every_100_ms_when_idle(live):  # noqa: ANN001
    from workers import inprocess

    worker = inprocess.active().worker
    assert WORKER_TIMEOUT_MS == 100 and worker.worker_timeout == WORKER_TIMEOUT_MS
    assert {c.worker_timeout for c in worker.consumers.values()} == {WORKER_TIMEOUT_MS}
    assert len(worker.workers) == 2  # the live server's two worker threads
