"""The scan config's limits in the scan engine, against the real warehouses with known counts:
`cardinalityThreshold` (a breakdown column with more distinct values in a chunk than the threshold
is not tracked per value: only its Other row, named in the stats), `scanRowLimit` (field
observation reads only the newest N rows, and says so in its stats), and the sample value a drift
keeps, in every dialect."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import timedelta

from sqlalchemy import select

from server.domains.plan.models import Field, FieldType
from server.domains.warehouse import observe, scan
from server.domains.warehouse.connectors import open_connector
from server.domains.warehouse.connectors.sql import bucket_start_of
from server.domains.warehouse.models import (
    BreakdownBucket,
    ContractRule,
    ContractViolation,
    DataSourceType,
    DriftType,
    MetricScope,
    ScanConfig,
    ScanInterval,
    SchemaDrift,
)
from server.domains.warehouse.scan_configs import CARDINALITY_MAX
from tests.server.jobs.support import make_org, make_user, owner, rt  # noqa: F401  fixtures
from tests.server.warehouse.test_scan import make_config, make_world, warehouse  # noqa: F401  fixture
from tests.support.warehouse import END, START, epoch_of

DAY = timedelta(days=1)


def value_of(row: dict, column: str) -> str:
    v = row["props"]["page"]["title"] if column == "props.page.title" else row[column]
    return "(null)" if v is None else str(v)


def expected_breakdowns(rows: list[dict], column: str, threshold: int, limit: int,
                        keep=lambda r: True) -> tuple[set, int]:  # noqa: ANN001
    """The (bucket, value, is_other, count) rows of one column over daily chunks, computed in
    Python: a chunk whose distinct values of the column (over all its rows) exceed `threshold`
    gets one Other row per bucket; otherwise the top `limit` values per bucket and Other. Also
    how many chunks were folded."""
    out, folded, day = set(), 0, START
    while day < END:
        in_chunk = [r for r in rows if day <= r["ts"] < day + DAY]
        high = len({value_of(r, column) for r in in_chunk}) > threshold
        folded += high
        per_bucket: dict[int, Counter] = defaultdict(Counter)
        for r in in_chunk:
            if keep(r):
                per_bucket[bucket_start_of(epoch_of(r["ts"]), ScanInterval.ONE_HOUR)][value_of(r, column)] += 1
        for b, values in per_bucket.items():
            if high:
                out.add((b, "", True, sum(values.values())))
                continue
            items = sorted(values.items(), key=lambda x: (-x[1], x[0]))
            out |= {(b, v, False, n) for v, n in items[:limit]}
            if items[limit:]:
                out.add((b, "", True, sum(n for _, n in items[limit:])))
        day += DAY
    return out, folded


async def breakdown_rows(rt, config: ScanConfig, kind: MetricScope, column: str) -> set:  # noqa: ANN001
    async with rt.db.session() as s:
        rows = (await s.execute(select(BreakdownBucket).where(
            BreakdownBucket.scan_config_id == config.id, BreakdownBucket.scope_kind == kind,
            BreakdownBucket.column == column))).scalars().all()
    return {(epoch_of(r.bucket_start), r.value, r.is_other, r.count) for r in rows}


# --- cardinalityThreshold ------------------------------------------------------------------------

async def test_columns_above_the_cardinality_threshold_keep_only_their_other_row(rt, warehouse, warehouse_rows):  # noqa: ANN001
    """Threshold 3: country (DE, FR, US and NULL: 4 values a day) is folded, the page title (3
    values) is tracked per value, at the boundary; for the project and for each event."""
    db_type, connect = warehouse
    world = await make_world(rt)
    columns = ["country", "props.page.title"]
    config = await make_config(rt, world, db_type, metric_breakdown_columns=columns, cardinality_threshold=3)
    async with connect() as conn:
        stats = await scan.scan_range(rt, conn, config, START, END)
    country, folded = expected_breakdowns(warehouse_rows, "country", 3, 2)
    title, not_folded = expected_breakdowns(warehouse_rows, "props.page.title", 3, 2)
    assert folded == 8 and not_folded == 0  # the data is what the test means
    assert {r for r in country if not r[2]} == set()
    assert await breakdown_rows(rt, config, MetricScope.PROJECT, "country") == country
    assert await breakdown_rows(rt, config, MetricScope.PROJECT, "props.page.title") == title
    assert any(not r[2] for r in title)
    assert stats["highCardinality"] == {"country": 8}
    # Event scope: the same rule over the chunk's rows, the counts of the event's rows.
    async with rt.db.session() as s:
        rows = (await s.execute(select(BreakdownBucket).where(
            BreakdownBucket.scan_config_id == config.id, BreakdownBucket.scope_kind == MetricScope.EVENT,
            BreakdownBucket.scope_id == world.events["page.view"], BreakdownBucket.column == "country"))).scalars().all()
    page_view, _ = expected_breakdowns(warehouse_rows, "country", 3, 2, keep=lambda r: r["name"] == "page.view")
    assert {(epoch_of(r.bucket_start), r.value, r.is_other, r.count) for r in rows} == page_view


async def test_an_id_column_is_high_cardinality_by_default_and_memory_stays_per_group(rt, duckdb_warehouse,
                                                                                     warehouse_rows):  # noqa: ANN001
    world = await make_world(rt)
    config = await make_config(rt, world, DataSourceType.DUCKDB, metric_breakdown_columns=["id", "country"])
    assert config.cardinality_threshold == 100
    async with open_connector(duckdb_warehouse[0]) as conn:
        base = scan.sql.parse_base_query(config.base_query, conn.dialect)
        counts = await scan.aggregate_chunk(conn, config, base, START, START + DAY)
        # Not one entry per id: one per (event type, event, bucket), with the FOLDED value.
        ids = {k: n for k, n in counts.breakdowns.items() if k[0] == "id"}
        assert counts.high_cardinality == {"id"} and {k[3] for k in ids} == {scan.FOLDED}
        assert len(ids) == len(counts.names) and sum(ids.values()) == counts.rows
        stats = await scan.scan_range(rt, conn, config, START, END)
        # The same warehouse with the threshold at its maximum: every id tracked (top 2 + Other).
        tracked = await make_config(rt, world, DataSourceType.DUCKDB, metric_breakdown_columns=["id"],
                                    cardinality_threshold=CARDINALITY_MAX)
        tracked_stats = await scan.scan_range(rt, conn, tracked, START, END)
    assert stats["highCardinality"] == {"id": 8} and stats["rows"] == len(warehouse_rows)
    assert await breakdown_rows(rt, config, MetricScope.PROJECT, "id") == expected_breakdowns(
        warehouse_rows, "id", 100, 2)[0]
    assert await breakdown_rows(rt, config, MetricScope.PROJECT, "country") == expected_breakdowns(
        warehouse_rows, "country", 100, 2)[0]
    assert "highCardinality" not in tracked_stats
    per_value = await breakdown_rows(rt, tracked, MetricScope.PROJECT, "id")
    assert per_value == expected_breakdowns(warehouse_rows, "id", CARDINALITY_MAX, 2)[0]
    assert sum(1 for r in per_value if not r[2]) > 100


# --- scanRowLimit ----------------------------------------------------------------------------------

async def violation(rt, config: ScanConfig, field_id) -> ContractViolation:  # noqa: ANN001
    async with rt.db.session() as s:
        return (await s.execute(select(ContractViolation).where(
            ContractViolation.scan_config_id == config.id, ContractViolation.field_id == field_id,
            ContractViolation.rule == ContractRule.REQUIRED))).scalar_one()


async def test_scan_row_limit_observes_only_the_newest_rows(rt, warehouse, warehouse_rows):  # noqa: ANN001
    db_type, connect = warehouse
    world = await make_world(rt)
    limited = await make_config(rt, world, db_type, scan_row_limit=500)
    unlimited = await make_config(rt, world, db_type)
    roomy = await make_config(rt, world, db_type, scan_row_limit=len(warehouse_rows) + 1)
    async with connect() as conn:
        plan = await scan.load_plan(rt, world.project)
        got = {c.id: await observe.observe_fields(rt, conn, c, plan, START, END) for c in (limited, unlimited, roomy)}
    assert got[limited.id]["observedRows"] == 500
    assert (got[limited.id]["scanRowLimit"], got[limited.id]["observeRowLimitReached"]) == (500, True)
    assert got[unlimited.id]["observedRows"] == len(warehouse_rows)
    assert "scanRowLimit" not in got[unlimited.id] and "observeRowLimitReached" not in got[unlimited.id]
    assert got[roomy.id]["observedRows"] == len(warehouse_rows) and got[roomy.id]["observeRowLimitReached"] is False

    # The required-country contract of page events, judged on the newest 500 rows only.
    newest = sorted(warehouse_rows, key=lambda r: r["ts"], reverse=True)[:500]
    pages = [r for r in newest if r["event_type"] == "page"]
    v = await violation(rt, limited, world.fields["page.country"])
    assert (v.checked_rows, v.bad_rows) == (len(pages), sum(1 for r in pages if r["country"] is None))
    all_pages = [r for r in warehouse_rows if r["event_type"] == "page"]
    v = await violation(rt, unlimited, world.fields["page.country"])
    assert (v.checked_rows, v.bad_rows) == (len(all_pages), sum(1 for r in all_pages if r["country"] is None))


# --- drift samples ---------------------------------------------------------------------------------

async def test_drifts_keep_one_observed_sample_value(rt, warehouse, warehouse_rows):  # noqa: ANN001
    """A sample that shows the drift: for text seen where a number is declared, a non-numeric
    value; none for a missing field. Refreshed (and truncated) by the next observation."""
    db_type, connect = warehouse
    world = await make_world(rt)
    config = await make_config(rt, world, db_type)
    async with rt.db.unit_of_work() as uow:  # a number the second observation sees as long text
        uow.session.add(Field(id=uuid.uuid4(), organization_id=world.org, project_id=world.project,
                              event_type_id=world.types["checkout"], name="blob", display_name="blob",
                              field_type=FieldType.NUMBER, sort_order=9))
    async with connect() as conn:
        plan = await scan.load_plan(rt, world.project)
        await observe.observe_fields(rt, conn, config, plan, START, END)
        async with rt.db.session() as s:
            drifts = {(r.event_type_id, r.field_name, r.drift_type): r for r in (await s.execute(
                select(SchemaDrift).where(SchemaDrift.project_id == world.project))).scalars().all()}
        checkout = [r for r in warehouse_rows if r["event_type"] == "checkout"]
        assert drifts[(world.types["checkout"], "title", DriftType.NEW_FIELD)].sample_value == min(
            r["props"]["page"]["title"] for r in checkout)
        assert drifts[(world.types["checkout"], "country", DriftType.TYPE_CHANGED)].sample_value == min(
            r["country"] for r in checkout if r["country"] is not None)
        assert drifts[(world.types["page"], "amount", DriftType.MISSING_FIELD)].sample_value is None
        # A later observation of other rows (the checkout rows titled Pricing, with a long
        # `blob`) refreshes them; the declared field without values has no sample.
        props = "props::text" if db_type == DataSourceType.POSTGRES else "CAST(props AS VARCHAR)"
        config.base_query = (f"SELECT *, repeat('x', 300) AS blob FROM events "
                             f"WHERE event_type <> 'checkout' OR {props} LIKE '%Pricing%'")
        await observe.observe_fields(rt, conn, config, await scan.load_plan(rt, world.project), START, END)
    async with rt.db.session() as s:
        samples = {(r.field_name, r.drift_type): r.sample_value for r in (await s.execute(
            select(SchemaDrift).where(SchemaDrift.event_type_id == world.types["checkout"]))).scalars().all()}
    assert samples[("title", DriftType.NEW_FIELD)] == "Pricing"
    assert samples[("blob", DriftType.TYPE_CHANGED)] == "x" * observe.SAMPLE_VALUE_MAX
