from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graph.core.node import decode_id
from graph.jobs.types import Job
from server.errors import not_found
from server.jobs import service as jobs
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
            yield Job.from_row(row)
            if row.status.finished:
                return
            async for _ in events:
                ctx.reset_loaders()
                row = await ctx.loader(jobs.load_jobs).load(job_id)
                if row is None:
                    return
                yield Job.from_row(row)
                if row.status.finished:
                    return
