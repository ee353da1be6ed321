from __future__ import annotations

import strawberry

from graph.core.errors import UserError, mutate
from graph.core.node import decode_id
from graph.jobs.types import Job
from server.domains.platform import export


@strawberry.input
class OrganizationExportInput:
    organization_id: strawberry.ID


@strawberry.type
class OrganizationExportPayload:
    job: Job | None = strawberry.field(default=None, description="Follow it with `jobUpdated`; its result has `downloadUrl`.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PlatformMutation:
    @strawberry.mutation(description="Write the organization's data to a JSON file (a job). Owners only.")
    async def organization_export(self, info: strawberry.Info, input: OrganizationExportInput) -> OrganizationExportPayload:
        ctx = info.context

        async def work() -> OrganizationExportPayload:
            org = decode_id(input.organization_id, "Organization", "input.organizationId")
            job = await export.request_export(ctx.rt, ctx.principal, org, ctx.request_id)
            return OrganizationExportPayload(job=Job.from_row(job))

        return await mutate(OrganizationExportPayload, work)
