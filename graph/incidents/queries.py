"""Incident queries: `incidents`, `incident`, `alerts`, `changeEvents` (keyset-paged connections)."""

from __future__ import annotations

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.node import decode_id, load_one
from graph.incidents.inputs import AlertFilter, ChangeEventFilter, IncidentFilter
from graph.incidents.types import Alert, ChangeEvent, Incident, IncidentOrder
from server.db.paging import PageRequest, keyset_page
from server.domains.incidents import loaders, queries
from server.domains.incidents.models import Alert as AlertRow
from server.domains.incidents.models import ChangeEvent as ChangeEventRow
from server.errors import invalid


def _incident_filter(f: IncidentFilter | None) -> queries.IncidentFilter:
    if f is None:
        return queries.IncidentFilter()
    return queries.IncidentFilter(statuses=list(f.status or []), severities=list(f.severity or []), service=f.service,
                                  environment=f.environment, source=f.source, started_after=f.started_after,
                                  started_before=f.started_before, text=f.text)


def _alert_filter(f: AlertFilter | None) -> queries.AlertFilter:
    if f is None:
        return queries.AlertFilter()
    incident_id = decode_id(f.incident_id, "Incident", "filter.incidentId") if f.incident_id else None
    return queries.AlertFilter(statuses=list(f.status or []), severities=list(f.severity or []), service=f.service,
                               environment=f.environment, provider=f.provider, fingerprint=f.fingerprint,
                               incident_id=incident_id)


def _change_filter(f: ChangeEventFilter | None) -> queries.ChangeEventFilter:
    if f is None:
        return queries.ChangeEventFilter()
    return queries.ChangeEventFilter(service=f.service, environment=f.environment, provider=f.provider,
                                     occurred_after=f.occurred_after, occurred_before=f.occurred_before)


@strawberry.type
class IncidentsQuery:
    @strawberry.field(description="Incidents of an organization; newest start first unless `orderBy` says otherwise.")
    async def incidents(self, info: strawberry.Info, organization_id: strawberry.ID, filter: IncidentFilter | None = None,
                        order_by: list[IncidentOrder] | None = None, first: int | None = None,
                        after: str | None = None, last: int | None = None,
                        before: str | None = None) -> Connection[Incident]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        if order_by and len(order_by) > 1:
            raise invalid("give one ordering (incidents are sorted by one time, then by ID)", ["orderBy"])
        order = order_by[0] if order_by else IncidentOrder.STARTED_AT_DESC
        stmt = queries.incidents_query(ctx.principal, org, _incident_filter(filter))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, stmt, order.columns, PageRequest(first, after, last, before),
                                 descending=order.descending, default=s.page_size_default, maximum=s.page_size_max)
        return connection_from_page(page, Incident.from_row)

    @strawberry.field(description="An incident you can see, by ID.")
    async def incident(self, info: strawberry.Info, id: strawberry.ID) -> Incident | None:
        return await load_one(info, loaders.load_incidents, Incident, decode_id(id, "Incident"))

    @strawberry.field(description="Alerts of an organization, newest first.")
    async def alerts(self, info: strawberry.Info, organization_id: strawberry.ID, filter: AlertFilter | None = None,
                     first: int | None = None, after: str | None = None, last: int | None = None,
                     before: str | None = None) -> Connection[Alert]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        stmt = queries.alerts_query(ctx.principal, org, _alert_filter(filter))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, stmt, [AlertRow.created_at, AlertRow.id], PageRequest(first, after, last, before),
                                 default=s.page_size_default, maximum=s.page_size_max)
        return connection_from_page(page, Alert.from_row)

    @strawberry.field(description="Change events (deployments) of an organization, most recent first.")
    async def change_events(self, info: strawberry.Info, organization_id: strawberry.ID,
                            filter: ChangeEventFilter | None = None, first: int | None = None,
                            after: str | None = None, last: int | None = None,
                            before: str | None = None) -> Connection[ChangeEvent]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        stmt = queries.change_events_query(ctx.principal, org, _change_filter(filter))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, stmt, [ChangeEventRow.occurred_at, ChangeEventRow.id],
                                 PageRequest(first, after, last, before), default=s.page_size_default,
                                 maximum=s.page_size_max)
        return connection_from_page(page, ChangeEvent.from_row)
