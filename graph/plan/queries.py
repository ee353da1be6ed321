"""Project queries: `projects(organizationId:)` (a keyset-paged connection), `project(id:)` and
`projectBySlug(organizationId:, slug:)`. The activity feeds are `activity(organizationId:,
projectId:)` in graph/platform/queries.py (the audit log, filtered by project)."""

from __future__ import annotations

import enum

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.node import decode_id, load_one
from graph.plan.types import Project
from server.db.paging import PageRequest, keyset_page
from server.domains.plan import loaders, projects
from server.domains.plan.models import Project as ProjectRow
from server.errors import invalid


@strawberry.enum(name="ProjectOrder", description="Sort order of `projects`; ties are broken by ID.")
class ProjectOrder(enum.Enum):
    NAME_ASC = "name_asc"
    CREATED_AT_DESC = "created_at_desc"

    @property
    def columns(self) -> list:
        return [ProjectRow.name, ProjectRow.id] if self is ProjectOrder.NAME_ASC else [ProjectRow.created_at, ProjectRow.id]

    @property
    def descending(self) -> bool:
        return self is ProjectOrder.CREATED_AT_DESC


@strawberry.type
class PlanQuery:
    @strawberry.field(description="Projects of an organization, by name unless `orderBy` says otherwise. Members "
                                  "(a project-bound API key sees its project only).")
    async def projects(self, info: strawberry.Info, organization_id: strawberry.ID,
                       order_by: list[ProjectOrder] | None = None, first: int | None = None,
                       after: str | None = None, last: int | None = None,
                       before: str | None = None) -> Connection[Project]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        if order_by and len(order_by) > 1:
            raise invalid("give one ordering", ["orderBy"])
        order = order_by[0] if order_by else ProjectOrder.NAME_ASC
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, projects.projects_query(ctx.principal, org), order.columns,
                                 PageRequest(first, after, last, before), descending=order.descending,
                                 default=s.page_size_default, maximum=s.page_size_max)
        return connection_from_page(page, Project.from_row)

    @strawberry.field(description="A project you can see, by ID.")
    async def project(self, info: strawberry.Info, id: strawberry.ID) -> Project | None:
        return await load_one(info, loaders.load_projects, Project, decode_id(id, "Project"))

    @strawberry.field(description="A project you can see, by its slug in an organization.")
    async def project_by_slug(self, info: strawberry.Info, organization_id: strawberry.ID, slug: str) -> Project | None:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        row = await projects.project_by_slug(ctx.rt, ctx.principal, org, slug)
        return Project.from_row(row) if row else None
