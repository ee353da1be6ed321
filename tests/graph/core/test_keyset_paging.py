"""`keyset_page` against a table of its own in the test database: every page forward and backward,
in both sort directions, with ties on the first sort column and rows inserted between fetches."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import DateTime, insert, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.db.engine import Database
from server.db.paging import PageRequest, encode_cursor, keyset_page
from server.errors import DomainError, ErrorCode

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class ProbeBase(DeclarativeBase):
    pass


class Probe(ProbeBase):
    __tablename__ = f"test_paging_probe_{uuid.uuid4().hex[:8]}"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    n: Mapped[int]


ORDER = [Probe.created_at, Probe.id]


@pytest.fixture
async def db(database_url):  # noqa: ANN001, ANN201
    database = Database(database_url, 2)
    async with database.engine.begin() as conn:
        await conn.run_sync(ProbeBase.metadata.create_all)
    try:
        yield database
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(ProbeBase.metadata.drop_all)
        await database.dispose()


async def add(db: Database, rows: list[tuple[datetime, int]]) -> None:
    async with db.session() as s:
        await s.execute(insert(Probe), [{"id": uuid.uuid4(), "created_at": t, "n": n} for t, n in rows])
        await s.commit()


async def all_keys(db: Database, descending: bool) -> list[tuple]:
    async with db.session() as s:
        rows = (await s.execute(select(Probe))).scalars().all()
    return sorted(((r.created_at, r.id) for r in rows), reverse=descending)


def keys(page) -> list[tuple]:  # noqa: ANN001
    return [(r.created_at, r.id) for r in page.items]


def stmt():  # noqa: ANN201
    return select(Probe)


async def seed(db: Database, count: int = 23) -> None:
    # 5 distinct timestamps, so most rows tie on created_at and only `id` orders them
    await add(db, [(T0 + timedelta(minutes=i % 5), i) for i in range(count)])


@pytest.mark.parametrize("descending", [True, False])
async def test_forward_walk_sees_every_row_once_while_rows_are_inserted(db, descending):
    await seed(db)
    expected = await all_keys(db, descending)
    # Rows that sort before every cursor of the walk (so are not part of it) arrive between fetches.
    ahead = T0 + timedelta(days=1) if descending else T0 - timedelta(days=1)
    seen, after, pages = [], None, 0
    while True:
        page = await keyset_page(db, stmt(), ORDER, PageRequest(first=5, after=after), descending=descending)
        pages += 1
        assert page.has_previous_page is (after is not None)
        assert [encode_cursor(list(k)) for k in keys(page)] == page.cursors
        seen += keys(page)
        await add(db, [(ahead, 1000 + pages)])
        if not page.has_next_page:
            break
        after = page.cursors[-1]
    assert seen == expected  # the right order, no duplicates, no gaps
    assert len(set(seen)) == 23 and pages == 5
    assert await page.count() == 23 + pages


@pytest.mark.parametrize("descending", [True, False])
async def test_backward_walk_sees_every_row_once_while_rows_are_inserted(db, descending):
    await seed(db)
    expected = await all_keys(db, descending)
    behind = T0 - timedelta(days=1) if descending else T0 + timedelta(days=1)  # after the end of the order
    seen, before, pages = [], None, 0
    while True:
        page = await keyset_page(db, stmt(), ORDER, PageRequest(last=4, before=before), descending=descending)
        pages += 1
        assert page.has_next_page is (before is not None)
        seen = keys(page) + seen
        if before is not None:
            await add(db, [(behind, 2000 + pages)])
        if not page.has_previous_page:
            break
        before = page.cursors[0]
    assert seen == expected
    assert pages == 6


async def test_pages_meet_in_the_middle(db):
    await seed(db, 10)
    expected = await all_keys(db, True)
    first = await keyset_page(db, stmt(), ORDER, PageRequest(first=4))
    rest = await keyset_page(db, stmt(), ORDER, PageRequest(first=100, after=first.cursors[-1]))
    assert keys(first) + keys(rest) == expected
    window = await keyset_page(db, stmt(), ORDER, PageRequest(after=first.cursors[0], before=rest.cursors[2]))
    assert keys(window) == expected[1:6]


async def test_defaults_and_limits(db):
    await seed(db, 60)
    page = await keyset_page(db, stmt(), ORDER, PageRequest())
    assert len(page.items) == 50 and page.has_next_page  # first defaults to 50
    page = await keyset_page(db, stmt(), ORDER, PageRequest(first=7), default=3, maximum=7)
    assert len(page.items) == 7
    empty = await keyset_page(db, stmt(), ORDER, PageRequest(first=0))
    assert empty.items == [] and empty.cursors == []


def _cursor(raw: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(raw)).decode().rstrip("=")


@pytest.mark.parametrize("request_, field", [
    (PageRequest(first=2, last=2), "first"),
    (PageRequest(first=501), "first"),
    (PageRequest(last=501), "last"),
    (PageRequest(first=-1), "first"),
    (PageRequest(after="not a cursor"), "after"),
    (PageRequest(before=_cursor([1, 2, 3])), "before"),  # wrong width
    (PageRequest(after=_cursor(["yesterday", "x"])), "after"),  # wrong types must not reach SQL
    (PageRequest(after=_cursor([{"d": "2024-05-01T12:00:00+00:00"}, 5])), "after"),
    (PageRequest(after=_cursor([{"d": "2024-05-01T12:00:00"}, {"u": str(uuid.uuid4())}])), "after"),  # naive time
    (PageRequest(after=_cursor([{"d": "soon"}, {"u": str(uuid.uuid4())}])), "after"),
    (PageRequest(after=_cursor({"d": 1})), "after"),
])
async def test_bad_requests_are_validation_errors(db, request_, field):
    with pytest.raises(DomainError) as e:
        await keyset_page(db, stmt(), ORDER, request_)
    assert e.value.code == ErrorCode.VALIDATION
    assert e.value.field == [field]
