from __future__ import annotations

from datetime import datetime

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.node import decode_id, register_node
from graph.core.selection import selects_in_connection
from graph.platform.types import ActivityItem, AuditEntry
from server.db.paging import PageRequest, keyset_page
from server.domains.accounts.models import Role
from server.domains.platform import audit
from server.domains.platform.loaders import load_audit_entries
from server.domains.platform.models import AuditEntry as AuditRow

ACTIVITY_MAX = 100


register_node("AuditEntry", AuditEntry, load_audit_entries)


@strawberry.input
class AuditLogFilter:
    action: str | None = strawberry.field(default=None, description="Exact action, or a prefix ending in '.' (e.g. `membership.`).")
    user_email: str | None = None
    project_id: strawberry.ID | None = None
    since: datetime | None = None
    until: datetime | None = None


def _order():  # noqa: ANN202
    return [AuditRow.created_at, AuditRow.id]


@strawberry.type
class PlatformQuery:
    @strawberry.field(description="Every recorded change in an organization, newest first. Owners only.")
    async def audit_log(self, info: strawberry.Info, organization_id: strawberry.ID,
                        filter: AuditLogFilter | None = None, first: int | None = None, after: str | None = None,
                        last: int | None = None, before: str | None = None) -> Connection[AuditEntry]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        ctx.principal.require_member(org)
        if ctx.principal.roles.get(org) != Role.owner:
            from server.errors import forbidden

            raise forbidden("the audit log is for owners")
        f = filter or AuditLogFilter()
        q = audit.audit_query(ctx.principal, org, action=f.action, user_email=f.user_email,
                              project_id=decode_id(f.project_id, "Project", "filter.projectId") if f.project_id else None,
                              since=f.since, until=f.until)
        page = await keyset_page(ctx.rt.db, q, _order(), PageRequest(first, after, last, before),
                                 default=ctx.settings.page_size_default, maximum=ctx.settings.page_size_max)
        conn = connection_from_page(page, AuditEntry.from_row)
        if selects_in_connection(info, "actor"):
            await AuditEntry.prefetch_actors(info, [e.node for e in conn.edges])
        return conn

    @strawberry.field(description="What happened lately in an organization (or one of its projects), newest first.")
    async def activity(self, info: strawberry.Info, organization_id: strawberry.ID,
                       project_id: strawberry.ID | None = None, first: int = 20,
                       after: str | None = None) -> Connection[ActivityItem]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        ctx.principal.require_member(org)
        if not 1 <= first <= ACTIVITY_MAX:
            from server.errors import invalid

            raise invalid(f"`first` must be between 1 and {ACTIVITY_MAX}", ["first"])
        q = audit.audit_query(ctx.principal, org, activity_only=True,
                              project_id=decode_id(project_id, "Project", "projectId") if project_id else None)
        page = await keyset_page(ctx.rt.db, q, _order(), PageRequest(first, after), maximum=ACTIVITY_MAX)
        return connection_from_page(page, ActivityItem.from_row)
