"""Batch loaders of the incidents domain: `async def load_x(rt, principal, keys) -> list`, one SQL
statement per batch, results in key order, `None` (or an empty page) for whatever the principal may
not see. Incidents, alerts, change events and timeline entries are visible to the members of their
organization; children carry their parent's organization, so filtering them by the principal's
organizations is the tenant check.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import aliased

from server.db.paging import Page, PageRequest
from server.domains.accounts.grouped_pages import keyset_pages_by, shared_counts
from server.domains.incidents.models import Alert, ChangeEvent, Incident, TimelineEntry
from server.runtime import Runtime
from server.security.principal import Principal

# A nested connection's dataloader key: (parent id, first, after, last, before).
PageKey = tuple[uuid.UUID, int | None, str | None, int | None, str | None]
# Related changes of an incident: (incident id, hours before its start, at most this many).
RelatedKey = tuple[uuid.UUID, float, int]

RELATED_HOURS_DEFAULT = 2.0
RELATED_LIMIT_MAX = 100


def page_key(parent_id: uuid.UUID, first: int | None = None, after: str | None = None, last: int | None = None,
             before: str | None = None) -> PageKey:
    return (parent_id, first, after, last, before)


async def _by_id(rt: Runtime, principal: Principal, model: type, ids: list[uuid.UUID]) -> list[Any]:
    orgs = principal.organization_ids
    if not orgs or not principal.authenticated:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(model).where(model.id.in_(ids), model.organization_id.in_(orgs)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]


async def load_incidents(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Incident | None]:
    return await _by_id(rt, principal, Incident, ids)


async def load_alerts(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Alert | None]:
    return await _by_id(rt, principal, Alert, ids)


async def load_change_events(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ChangeEvent | None]:
    return await _by_id(rt, principal, ChangeEvent, ids)


async def load_timeline_entries(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[TimelineEntry | None]:
    return await _by_id(rt, principal, TimelineEntry, ids)


# --- nested connections --------------------------------------------------------------------------

def _empty() -> Page:
    async def zero() -> int:
        return 0

    return Page(items=[], cursors=[], has_next_page=False, has_previous_page=False, count=zero)


async def _pages(rt: Runtime, principal: Principal, keys: list[PageKey], model: type, column: Any, order: list,
                 descending: bool) -> list[Page]:
    """One query per distinct page request (usually one) for every parent of the batch, plus one
    count query for the batch when a `totalCount` is asked for."""
    orgs = principal.organization_ids if principal.authenticated else []
    by_request: dict[tuple, list[uuid.UUID]] = {}
    for parent, *request in keys:
        by_request.setdefault(tuple(request), []).append(parent)
    results: dict[PageKey, Page] = {}
    for request, parents in by_request.items():
        ids = list(dict.fromkeys(parents))
        pages: dict[Hashable, Page] = {}
        if orgs:
            visible = select(model).where(model.organization_id.in_(orgs))

            async def fetch_counts(ids: list[uuid.UUID] = ids) -> dict[Hashable, int]:
                async with rt.db.session() as s:
                    rows = await s.execute(select(column, func.count()).where(
                        column.in_(ids), model.organization_id.in_(orgs)).group_by(column))
                return dict(rows.all())

            s = rt.settings
            pages = await keyset_pages_by(rt.db, model, visible, column, ids, order, PageRequest(*request),
                                          shared_counts(fetch_counts), descending=descending,
                                          default=s.page_size_default, maximum=s.page_size_max)
        for parent in parents:
            results[(parent, *request)] = pages.get(parent) or _empty()
    return [results[k] for k in keys]


async def load_alert_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """The alerts of incidents, in arrival order."""
    return await _pages(rt, principal, keys, Alert, Alert.incident_id, [Alert.created_at, Alert.id], descending=False)


async def load_timeline_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """The timelines of incidents, oldest entry first."""
    return await _pages(rt, principal, keys, TimelineEntry, TimelineEntry.incident_id,
                        [TimelineEntry.created_at, TimelineEntry.id], descending=False)


async def load_merged_incident_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """The incidents merged into each incident, oldest first."""
    return await _pages(rt, principal, keys, Incident, Incident.merged_into_id, [Incident.created_at, Incident.id],
                        descending=False)


async def load_related_changes(rt: Runtime, principal: Principal, keys: list[RelatedKey]) -> list[list[ChangeEvent]]:
    """Deployments to an incident's services (its service and every affected one) in the `hours`
    before it started, newest first; environments must agree when both are known. One query per
    distinct (hours, limit), with a LATERAL join served by ix_change_events_service."""
    orgs = principal.organization_ids if principal.authenticated else []
    by_shape: dict[tuple[float, int], list[uuid.UUID]] = {}
    for incident_id, hours, limit in keys:
        by_shape.setdefault((hours, limit), []).append(incident_id)
    found: dict[RelatedKey, list[ChangeEvent]] = {}
    for (hours, limit), ids in by_shape.items():
        if not orgs or limit <= 0:
            continue
        services = func.array_append(Incident.affected_services, Incident.service)
        related = (
            select(ChangeEvent)
            .where(ChangeEvent.organization_id == Incident.organization_id,
                   ChangeEvent.service == func.any(services),
                   ChangeEvent.occurred_at <= Incident.started_at,
                   ChangeEvent.occurred_at >= Incident.started_at - timedelta(hours=hours),
                   or_(Incident.environment.is_(None), ChangeEvent.environment.is_(None),
                       ChangeEvent.environment == Incident.environment))
            .order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc()).limit(limit)
            .lateral("related")
        )
        change = aliased(ChangeEvent, related)
        stmt = (select(Incident.id.label("incident_id"), change).join(related, true())
                .where(and_(Incident.id.in_(list(dict.fromkeys(ids))), Incident.organization_id.in_(orgs))))
        async with rt.db.session() as s:
            rows = (await s.execute(stmt)).all()
        for row in rows:
            found.setdefault((row.incident_id, hours, limit), []).append(row[1])
    return [found.get(k, []) for k in keys]


# --- subscriptions: one read per event and process ------------------------------------------------

EVENT_CACHE_SIZE = 2048


async def incident_for_event(rt: Runtime, principal: Principal, incident_id: uuid.UUID,
                             event_id: str | None) -> Incident | None:
    """The incident as it is after the event `event_id`, if the principal may see it.

    Every subscriber of an organization's incident events receives the same message; reading the
    row once per message and process (not once per subscriber) keeps fan-out to many subscribers
    cheap. The read happens after the message arrived, so it is as fresh as a per-subscriber read;
    the tenant check is still each subscriber's own. Without an event id it reads alone.
    """
    if not principal.authenticated:
        return None
    if event_id is None:
        return (await load_incidents(rt, principal, [incident_id]))[0]
    cache: OrderedDict = rt.extras.setdefault("incidents.event_rows", OrderedDict())
    key = (event_id, incident_id)
    pending = cache.get(key)
    if pending is None:
        pending = asyncio.ensure_future(_read_incident(rt, incident_id))
        cache[key] = pending
        while len(cache) > EVENT_CACHE_SIZE:
            cache.popitem(last=False)
    try:
        row = pending.result() if pending.done() else await asyncio.shield(pending)
    except Exception:
        cache.pop(key, None)
        raise
    if row is None or principal.role_in(row.organization_id) is None:
        return None
    return row


async def _read_incident(rt: Runtime, incident_id: uuid.UUID) -> Incident | None:
    async with rt.db.session() as s:
        return await s.get(Incident, incident_id)


__all__ = [
    "RELATED_HOURS_DEFAULT", "RELATED_LIMIT_MAX", "incident_for_event", "load_alert_pages", "load_alerts",
    "load_change_events", "load_incidents", "load_merged_incident_pages", "load_related_changes",
    "load_timeline_entries", "load_timeline_pages", "page_key",
]
