"""Keyset (cursor) pagination in SQL.

A cursor is the sort key of a row (its order columns, the last one unique: usually `id`), so
paging never skips or repeats rows when others are inserted, and costs the same on page 1000 as
on page 1. All order columns run in one direction, which lets one row-value comparison
`(a, b) < (:a, :b)` use a composite index.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Select, func, select, tuple_

from server.db.engine import Database
from server.errors import invalid

T = TypeVar("T")


@dataclass
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self, default: int, maximum: int) -> "PageRequest":
        if self.first is not None and self.last is not None:
            raise invalid("pass either `first` or `last`, not both", ["first"])
        for name in ("first", "last"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= maximum:
                raise invalid(f"`{name}` must be between 0 and {maximum}", [name])
        if self.first is None and self.last is None:
            return PageRequest(default, self.after, None, self.before)
        return self


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]


def _encode_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"d": v.isoformat()}
    if isinstance(v, uuid.UUID):
        return {"u": str(v)}
    if hasattr(v, "value"):  # enums
        return v.value
    return v


def _decode_value(v: Any) -> Any:
    if isinstance(v, dict):
        if "d" in v:
            return datetime.fromisoformat(v["d"])
        if "u" in v:
            return uuid.UUID(v["u"])
    return v


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([_encode_value(v) for v in values])).decode().rstrip("=")


def _typed(value: Any, column: Any) -> Any:
    """`value` as the Python type of `column`, or ValueError: a tampered cursor must not reach SQL."""
    try:
        expected = column.type.python_type
    except (AttributeError, NotImplementedError):
        return value
    if isinstance(expected, type) and issubclass(expected, enum.Enum):
        return expected(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise ValueError(f"{value!r} is not a {expected.__name__}")
    if isinstance(value, datetime) and getattr(column.type, "timezone", False) and value.tzinfo is None:
        raise ValueError("naive datetime")
    return value


def decode_cursor(cursor: str, width: int, field: str, columns: list | None = None) -> list[Any]:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != width:
            raise ValueError
        values = [_decode_value(v) for v in raw]
        return [_typed(v, c) for v, c in zip(values, columns)] if columns is not None else values
    except Exception:
        raise invalid("malformed cursor", [field]) from None


async def keyset_page(
    db: Database,
    stmt: Select,
    order: list,
    request: PageRequest,
    *,
    descending: bool = True,
    default: int = 50,
    maximum: int = 500,
    key: Callable[[Any], list[Any]] | None = None,
) -> Page:
    """Run `stmt` (already filtered to what the caller may see) one page at a time.

    `order` are the sort columns, the last one unique. `key(row)` gives a row's sort values;
    by default the attributes named like the columns.
    """
    req = request.validated(default, maximum)
    key = key or (lambda row: [getattr(row, c.key) for c in order])
    backward = req.last is not None
    limit = req.last if backward else req.first
    run_desc = descending != backward  # walking backward flips the direction
    q = stmt
    for cursor, field, forward_cmp in ((req.after, "after", True), (req.before, "before", False)):
        if cursor is None:
            continue
        values = decode_cursor(cursor, len(order), field, order)
        greater = forward_cmp != descending  # rows after the cursor in the requested order
        row_value, bound = tuple_(*order), tuple_(*values)
        q = q.where(row_value > bound if greater else row_value < bound)
    q = q.order_by(*[c.desc() if run_desc else c.asc() for c in order]).limit(limit + 1)
    async with db.session() as s:
        rows = list((await s.execute(q)).scalars().all()) if limit > 0 else []
    more = len(rows) > limit
    rows = rows[:limit]
    if backward:
        rows.reverse()

    async def count() -> int:
        async with db.session() as s:
            return (await s.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))).scalar_one()

    return Page(
        items=rows,
        cursors=[encode_cursor(key(r)) for r in rows],
        has_next_page=more if not backward else req.before is not None,
        has_previous_page=more if backward else req.after is not None,
        count=count,
    )
