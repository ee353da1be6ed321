"""Keyset pages of many parents' children in one SQL statement.

`server.db.paging.keyset_page` pages one list; a nested connection (`organizations { members }`)
would run it once per parent. Here one `row_number() OVER (PARTITION BY parent ...)` query returns
the page of every parent at once, with the same cursors and page rules as `keyset_page`, so a
dataloader can batch nested connections into a constant number of statements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import aliased

from server.db.engine import Database
from server.db.paging import Page, PageRequest, decode_cursor, encode_cursor


async def keyset_pages_by(
    db: Database,
    model: type,
    stmt: Select,
    group_column: Any,
    group_ids: list[Hashable],
    order: list,
    request: PageRequest,
    count: Callable[[Hashable], Callable[[], Awaitable[int]]],
    *,
    descending: bool = False,
    default: int = 50,
    maximum: int = 500,
) -> dict[Hashable, Page]:
    """The page of `stmt` (rows of `model`, filtered to what the caller may see) for each group id.

    `order` are the sort columns, the last one unique; `count(group_id)` gives each page's lazy
    `totalCount`. Cursors are the same encoded sort keys `keyset_page` uses.
    """
    req = request.validated(default, maximum)
    backward = req.last is not None
    limit = req.last if backward else req.first
    run_desc = descending != backward
    rows: list[Any] = []
    if limit > 0 and group_ids:
        q = stmt.where(group_column.in_(group_ids))
        for cursor, field, forward_cmp in ((req.after, "after", True), (req.before, "before", False)):
            if cursor is not None:
                row_value, bound = tuple_(*order), tuple_(*decode_cursor(cursor, len(order), field, order))
                q = q.where(row_value > bound if forward_cmp != descending else row_value < bound)
        ordering = [c.desc() if run_desc else c.asc() for c in order]
        rank = func.row_number().over(partition_by=group_column, order_by=ordering).label("_rank")
        sub = q.add_columns(rank).subquery()
        entity = aliased(model, sub)
        async with db.session() as s:
            rows = list((await s.execute(select(entity).where(sub.c._rank <= limit + 1)
                                         .order_by(sub.c._rank))).scalars().all())
    grouped: dict[Hashable, list[Any]] = {g: [] for g in group_ids}
    for row in rows:
        grouped[getattr(row, group_column.key)].append(row)
    return {g: _page(items, limit, backward, req, order, count(g)) for g, items in grouped.items()}


def _page(items: list[Any], limit: int, backward: bool, req: PageRequest, order: list,
          count: Callable[[], Awaitable[int]]) -> Page:
    more = len(items) > limit
    items = items[:limit]
    if backward:
        items.reverse()
    return Page(
        items=items,
        cursors=[encode_cursor([getattr(r, c.key) for c in order]) for r in items],
        has_next_page=more if not backward else req.before is not None,
        has_previous_page=more if backward else req.after is not None,
        count=count,
    )


def shared_counts(fetch: Callable[[], Awaitable[dict[Hashable, int]]]) -> Callable[[Hashable], Callable[[], Awaitable[int]]]:
    """Per-group lazy `totalCount`s backed by one query for the whole batch, run on first use."""
    lock = asyncio.Lock()
    counts: dict[Hashable, int] | None = None

    async def all_counts() -> dict[Hashable, int]:
        nonlocal counts
        async with lock:
            if counts is None:
                counts = await fetch()
        return counts

    def for_group(group_id: Hashable) -> Callable[[], Awaitable[int]]:
        async def count() -> int:
            return (await all_counts()).get(group_id, 0)

        return count

    return for_group
