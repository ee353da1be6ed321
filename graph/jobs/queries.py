from __future__ import annotations

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.node import decode_id, load_one
from graph.jobs.types import Job, JobStatus
from server.db.paging import PageRequest, keyset_page
from server.jobs import service as jobs
from server.jobs.models import Job as JobRow


@strawberry.type
class JobsQuery:
    @strawberry.field(description="A job you can see, by ID.")
    async def job(self, info: strawberry.Info, id: strawberry.ID) -> Job | None:
        return await load_one(info, jobs.load_jobs, Job, decode_id(id, "Job"))

    @strawberry.field(description="Jobs of an organization, newest first.")
    async def jobs(self, info: strawberry.Info, organization_id: strawberry.ID, kind: str | None = None,
                   statuses: list[JobStatus] | None = None, first: int | None = None, after: str | None = None,
                   last: int | None = None, before: str | None = None) -> Connection[Job]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        ctx.principal.require_member(org)
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, jobs.jobs_query(ctx.principal, org, kind, statuses),
                                 [JobRow.created_at, JobRow.id], PageRequest(first, after, last, before),
                                 default=s.page_size_default, maximum=s.page_size_max)
        return connection_from_page(page, Job.from_row)
