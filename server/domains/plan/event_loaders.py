"""Batch loaders behind the relations of `Event` that are lists: its photos and its history.
One SQL statement per batch whatever the number of events (the by-ID loaders of the event's type,
fields, meta fields and owner are in loaders.py and accounts/loaders.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable

from sqlalchemy import func, select

from server.db.paging import Page, PageRequest
from server.domains.accounts.grouped_pages import keyset_pages_by, shared_counts
from server.domains.plan.access import visible
from server.domains.plan.models import EventHistory, EventPhoto
from server.runtime import Runtime
from server.security.principal import Principal

# A nested connection's dataloader key: (event id, first, after, last, before).
PageKey = tuple[uuid.UUID, int | None, str | None, int | None, str | None]

HISTORY_ORDER = [EventHistory.changed_at, EventHistory.id]  # newest first (descending)


async def load_event_photo_lists(rt: Runtime, principal: Principal,
                                 event_ids: list[uuid.UUID]) -> list[list[EventPhoto]]:
    """The photos and Figma links of each event, in their order."""
    wanted = list(dict.fromkeys(event_ids))
    if not wanted or not principal.authenticated or not principal.organization_ids:
        return [[] for _ in event_ids]
    async with rt.db.session() as s:
        rows = (await s.execute(select(EventPhoto).where(EventPhoto.event_id.in_(wanted), *visible(EventPhoto, principal))
                                .order_by(EventPhoto.event_id, EventPhoto.sort_order, EventPhoto.id))).scalars().all()
    by_event: dict[uuid.UUID, list[EventPhoto]] = {}
    for row in rows:
        by_event.setdefault(row.event_id, []).append(row)
    return [by_event.get(i, []) for i in event_ids]


def _empty() -> Page:
    async def zero() -> int:
        return 0

    return Page(items=[], cursors=[], has_next_page=False, has_previous_page=False, count=zero)


async def load_event_history_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """A page of each event's history, newest first: one statement per distinct page request
    (usually one for the whole batch), plus one count for the batch when `totalCount` is asked."""
    by_request: dict[tuple, list[uuid.UUID]] = {}
    for event_id, *request in keys:
        by_request.setdefault(tuple(request), []).append(event_id)
    results: dict[PageKey, Page] = {}
    can_read = principal.authenticated and bool(principal.organization_ids)
    for request, events in by_request.items():
        ids = list(dict.fromkeys(events))
        pages: dict[Hashable, Page] = {}
        if can_read:
            where = visible(EventHistory, principal)

            async def fetch_counts(ids: list[uuid.UUID] = ids, where: list = where) -> dict[Hashable, int]:
                async with rt.db.session() as s:
                    rows = await s.execute(select(EventHistory.event_id, func.count())
                                           .where(EventHistory.event_id.in_(ids), *where)
                                           .group_by(EventHistory.event_id))
                return dict(rows.all())

            st = rt.settings
            pages = await keyset_pages_by(rt.db, EventHistory, select(EventHistory).where(*where),
                                          EventHistory.event_id, ids, HISTORY_ORDER, PageRequest(*request),
                                          shared_counts(fetch_counts), descending=True,
                                          default=st.page_size_default, maximum=st.page_size_max)
        for event_id in events:
            results[(event_id, *request)] = pages.get(event_id) or _empty()
    return [results[k] for k in keys]


__all__ = ["PageKey", "load_event_history_pages", "load_event_photo_lists"]
