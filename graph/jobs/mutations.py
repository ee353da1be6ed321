from __future__ import annotations

import strawberry

from graph.core.errors import UserError, mutate
from graph.core.node import decode_id
from graph.jobs.types import Job
from server.jobs import service as jobs


@strawberry.input
class JobCancelInput:
    id: strawberry.ID


@strawberry.type
class JobCancelPayload:
    job: Job | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class JobsMutation:
    @strawberry.mutation(description="Cancel a pending job at once, or a running one at its next progress step.")
    async def job_cancel(self, info: strawberry.Info, input: JobCancelInput) -> JobCancelPayload:
        ctx = info.context

        async def work() -> JobCancelPayload:
            row = await jobs.cancel(ctx.rt, ctx.principal, decode_id(input.id, "Job", "input.id"))
            return JobCancelPayload(job=Job.from_row(row))

        return await mutate(JobCancelPayload, work)
