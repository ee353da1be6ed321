"""Project mutations: thin wrappers that decode IDs, call server/domains/plan/projects.py and shape
the payload. Expected failures come back as `userErrors` (graph.core.errors.mutate)."""

from __future__ import annotations

import strawberry

from graph.core.errors import UserError, mutate
from graph.core.node import to_global_id
from graph.plan.common import decode_input_id, maybe
from graph.plan.inputs import ProjectCreateInput, ProjectDeleteInput, ProjectUpdateInput
from graph.plan.types import Project
from server.domains.plan import projects


@strawberry.type
class ProjectCreatePayload:
    project: Project | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProjectUpdatePayload:
    project: Project | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProjectDeletePayload:
    deleted_project_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PlanMutation:
    @strawberry.mutation(description="Create a project (tracking plan) in an organization. Editors and owners.")
    async def project_create(self, info: strawberry.Info, input: ProjectCreateInput) -> ProjectCreatePayload:
        ctx = info.context

        async def work() -> ProjectCreatePayload:
            row = await projects.create_project(
                ctx.rt, ctx.principal, decode_input_id(input.organization_id, "Organization", "organizationId"),
                name=input.name, slug=input.slug, description=input.description, request_id=ctx.request_id)
            return ProjectCreatePayload(project=Project.from_row(row))

        return await mutate(ProjectCreatePayload, work)

    @strawberry.mutation(description="Change a project's name, slug or description (absent fields stay). Editors and owners.")
    async def project_update(self, info: strawberry.Info, input: ProjectUpdateInput) -> ProjectUpdatePayload:
        ctx = info.context

        async def work() -> ProjectUpdatePayload:
            row = await projects.update_project(
                ctx.rt, ctx.principal, decode_input_id(input.id, "Project", "id"), name=maybe(input.name),
                slug=maybe(input.slug), description=maybe(input.description), request_id=ctx.request_id)
            return ProjectUpdatePayload(project=Project.from_row(row))

        return await mutate(ProjectUpdatePayload, work)

    @strawberry.mutation(description="Delete a project with everything in it (event types, events, fields, variables, "
                                     "relations, photos). Owners only.")
    async def project_delete(self, info: strawberry.Info, input: ProjectDeleteInput) -> ProjectDeletePayload:
        ctx = info.context

        async def work() -> ProjectDeletePayload:
            row = await projects.delete_project(ctx.rt, ctx.principal, decode_input_id(input.id, "Project", "id"),
                                                request_id=ctx.request_id)
            return ProjectDeletePayload(deleted_project_id=to_global_id("Project", row.id))

        return await mutate(ProjectDeletePayload, work)
