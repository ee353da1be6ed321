"""Ingestion runs a constant number of SQL statements per delivery, whatever its size: the
settings (cached for a moment), the organization lock, one SELECT, one write."""

from __future__ import annotations

from server.db import statements
from tests.server.incidents.pipeline.support import alert, change, ingest
from tests.support.sql import count_statements


async def _count(rt, org, *alerts, changes=()) -> tuple[int, list[str]]:  # noqa: ANN001
    seen: list[str] = []
    n = await count_statements(lambda: ingest(rt, org, *alerts, changes=changes), seen)
    return n, seen


async def test_statements_do_not_grow_with_the_alerts_of_a_delivery(rt, owner):
    account, org = owner
    statements.install(rt.db.engine)
    from tests.server.jobs.support import make_org

    other = await make_org(rt, account, "Second")
    small, seen = await _count(rt, org, alert("fp-0"))
    assert small == 4, seen  # settings, lock, load, write
    big, seen = await _count(rt, other, *[alert(f"fp-{i}", title=f"Checkout replica {i} slow") for i in range(40)])
    assert big == small, seen
    # repeats of those 40 open alerts plus 40 new ones (3 while the settings are cached)
    again, seen = await _count(rt, other, *[alert(f"fp-{i}") for i in range(80)])
    assert again <= small, seen
    # all 80 resolve: the incident resolves and its services are learned (model read + upsert)
    resolve, seen = await _count(rt, other, *[alert(f"fp-{i}", status="resolved") for i in range(80)])
    assert resolve <= small + 2, seen
    deploys, seen = await _count(rt, org, changes=tuple(change(f"b-{i}") for i in range(30)))
    assert deploys == 1, seen
