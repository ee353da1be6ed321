from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graph.core.node import decode_id
from graph.jobs.types import Job
from server.errors import DomainError, ErrorCode, not_found
from server.jobs import service as jobs
from server.jobs.events import job_from_event, version
from server.pubsub.hub import SubscriberDropped
from server.pubsub.publish import job_channel


@strawberry.type
class JobsSubscription:
    @strawberry.subscription(description="The job now, then again at every status or progress change, until it finishes.")
    async def job_updated(self, info: strawberry.Info, id: strawberry.ID) -> AsyncGenerator[Job, None]:
        ctx = info.context
        job_id = decode_id(id, "Job")
        ctx.principal.require_user()
        async with ctx.rt.hub.subscribe(job_channel(job_id)) as events:
            # Subscribe first, then read: a change between the two is never missed.
            row = (await jobs.load_jobs(ctx.rt, ctx.principal, [job_id]))[0]
            if row is None:
                raise not_found("job")
            last = row
            yield Job.from_row(row)
            if row.status.finished:
                return
            try:
                async for event in events:
                    # Fresh loaders per event: the caller may have lost access since the last one.
                    ctx.reset_loaders()
                    current = await ctx.loader(jobs.load_jobs).load(job_id)
                    if current is None:
                        raise not_found("job")
                    # The state this change produced; a resync (no state) re-reads the row.
                    state = job_from_event(event) or current
                    if version(state) <= version(last):
                        continue  # already shown (an event older than our first read)
                    last = state
                    yield Job.from_row(state)
                    if state.status.finished:
                        return
            except SubscriberDropped:
                raise DomainError(ErrorCode.RATE_LIMITED,
                                  "this subscription fell too far behind its updates and was closed; subscribe again") from None
