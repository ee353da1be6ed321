"""`jobUpdated` executed through the schema on the tests' own loop (real PostgreSQL, Redis and
hub), so the test decides exactly when the subscriber reads: changes that pile up while it is
busy must each still be pushed, in order, once."""

from __future__ import annotations

import asyncio

import pytest

from graph.context import Context
from graph.core.node import to_global_id
from graph.schema import build_schema
from server.jobs import service as jobs
from server.pubsub.hub import PubSubHub
from server.runtime import Runtime
from tests.server.jobs.support import insert_job, principal_of

SUBSCRIPTION = "subscription($id: ID!) { jobUpdated(id: $id) { status progress message } }"


@pytest.fixture
async def hub_rt(settings, database_url, redis_url):  # noqa: ANN001, ANN201
    runtime = Runtime.create(settings, database_url, redis_url)
    runtime.hub = PubSubHub(runtime.redis)
    await runtime.hub.start()
    await asyncio.wait_for(runtime.hub.connected.wait(), 5)
    yield runtime
    await runtime.close()


async def follow(rt, principal, job_id):  # noqa: ANN001, ANN201
    schema = build_schema(rt.settings)
    stream = await schema.subscribe(SUBSCRIPTION, {"id": to_global_id("Job", job_id)}, Context(rt, principal))
    assert hasattr(stream, "__anext__"), stream
    return stream


async def test_changes_that_pile_up_are_each_pushed_in_order(hub_rt, owner):
    rt = hub_rt
    account, org = owner
    job = await insert_job(rt, queue="service-tests", organization_id=org, requested_by_id=account.user_id)
    stream = await follow(rt, await principal_of(rt, account), job.id)
    first = await stream.__anext__()
    assert first.errors is None and first.data["jobUpdated"]["status"] == "pending"
    # The subscriber is not reading now: every change below is queued for it.
    claimed = await jobs.claim(rt, job.id)
    with jobs.running_attempt(job.id, claimed.attempts):
        for step in range(1, 6):
            await jobs.report_progress(rt, job.id, step / 10, f"step {step}")
    await jobs.succeed(rt, job.id, {}, attempt=claimed.attempts)
    await asyncio.sleep(0.2)  # all events delivered to the hub
    seen = []
    async with asyncio.timeout(5):
        async for result in stream:
            assert result.errors is None, result.errors
            update = result.data["jobUpdated"]
            seen.append((update["status"], update["progress"], update["message"]))
    assert seen == [("running", 0.0, None), *[("running", s / 10, f"step {s}") for s in range(1, 6)],
                    ("succeeded", 1.0, None)]
    assert rt.hub.subscriber_count() == 0  # the finished stream let go of its subscription


async def test_events_older_than_the_first_read_are_not_pushed_again(hub_rt, owner):
    rt = hub_rt
    account, org = owner
    job = await insert_job(rt, queue="service-tests", organization_id=org, requested_by_id=account.user_id)
    claimed = await jobs.claim(rt, job.id)
    stream = await follow(rt, await principal_of(rt, account), job.id)
    # Subscribed and read: it shows `running`. A stale copy of an older event arrives late.
    first = await stream.__anext__()
    assert first.data["jobUpdated"]["status"] == "running"
    from server.jobs.events import job_event
    from server.pubsub.publish import job_channel, publish

    stale = await jobs.get_job(rt, job.id)
    stale.status, stale.attempts, stale.updated_at = type(stale.status).pending, 0, None
    await publish(rt.redis, job_channel(job.id), job_event(stale))
    await jobs.succeed(rt, job.id, {}, attempt=claimed.attempts)
    async with asyncio.timeout(5):
        rest = [r.data["jobUpdated"]["status"] async for r in stream]
    assert rest == ["succeeded"]


async def test_subscriber_losing_access_gets_not_found(hub_rt, owner):
    rt = hub_rt
    account, org = owner
    job = await insert_job(rt, queue="service-tests", organization_id=org, requested_by_id=account.user_id)
    principal = await principal_of(rt, account)
    stream = await follow(rt, principal, job.id)
    assert (await stream.__anext__()).data["jobUpdated"]["status"] == "pending"
    principal.roles.clear()  # as if the membership ended: the next event's fresh read hides the job
    await jobs.claim(rt, job.id)
    async with asyncio.timeout(5):
        result = await stream.__anext__()
    assert result.errors and result.errors[0].extensions["code"] == "NOT_FOUND"
