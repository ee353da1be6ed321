"""`projectCreateDemo`: a new project filled with a realistic demo tracking plan
(server/domains/plan/demo.py)."""

from __future__ import annotations

import strawberry

from graph.core.errors import UserError, mutate
from graph.jobs.types import Job
from graph.plan.mutations import decode_input_id
from graph.plan.types import Project
from graph.warehouse.types import DataSource, ScanConfig
from server.domains.plan import demo


@strawberry.input
class ProjectCreateDemoInput:
    organization_id: strawberry.ID
    name: str | None = strawberry.field(
        default=None, description="1 to 255 characters; `Demo tracking plan` when absent. The slug is derived from "
                                  "it and made unique in the organization (`-2`, `-3`, ...).")


@strawberry.type
class ProjectCreateDemoPayload:
    project: Project | None = None
    data_source: DataSource | None = strawberry.field(
        default=None, description="The demo warehouse: a DuckDB file of generated events for the demo plan (a few weeks "
                                  "with daily and weekly seasonality, a release, a tracking bug, shadow events).")
    scan_config: ScanConfig | None = strawberry.field(default=None, description="The scan config `demo` over it.")
    job: Job | None = strawberry.field(
        default=None, description="The first scan of `scanConfig`, queued with the demo: when it succeeds the metric "
                                  "series are filled. Follow it with `jobUpdated`.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DemoMutation:
    @strawberry.mutation(description="Create a project holding a demo tracking plan (event types, dozens of events "
                                     "with fields, tags and owners, meta fields, variables with values, relations) "
                                     "and a demo warehouse (a DuckDB data source of generated events and the scan "
                                     "config `demo`, whose first scan is queued) in one transaction. Editors and owners.")
    async def project_create_demo(self, info: strawberry.Info, input: ProjectCreateDemoInput) -> ProjectCreateDemoPayload:
        ctx = info.context

        async def work() -> ProjectCreateDemoPayload:
            row, warehouse = await demo.create_demo_project(
                ctx.rt, ctx.principal, decode_input_id(input.organization_id, "Organization", "organizationId"),
                name=input.name, request_id=ctx.request_id)
            return ProjectCreateDemoPayload(project=Project.from_row(row),
                                            data_source=DataSource.from_row(warehouse.data_source),
                                            scan_config=ScanConfig.from_row(warehouse.scan_config),
                                            job=Job.from_row(warehouse.job) if warehouse.job is not None else None)

        return await mutate(ProjectCreateDemoPayload, work)
