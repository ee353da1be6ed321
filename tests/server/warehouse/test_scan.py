"""The scan engine against real warehouses with known counts: PostgreSQL (a database on the test
server), DuckDB (a file) and ClickHouse (chDB runs the SQL the ClickHouse connector renders).
Exact bucket counts per project, event type, event and breakdown value (with Other), idempotent
re-runs, shadow events with samples, schema drifts and contract violations."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from server.domains.plan.models import Event, EventStatus, EventType, Field, FieldType, Project
from server.domains.warehouse import observe, scan, scan_jobs
from server.domains.warehouse.connectors import open_connector
from server.domains.warehouse.models import (
    BreakdownBucket,
    ContractRule,
    ContractViolation,
    DataSource,
    DataSourceType,
    DriftType,
    MetricBucket,
    MetricScope,
    ScanConfig,
    ScanInterval,
    SchemaDrift,
    ShadowEvent,
)
from tests.server.jobs.support import make_org, make_user, owner, rt  # noqa: F401  fixtures
from tests.support.warehouse import END, START, count_by, epoch_of

BASE = "SELECT * FROM events"


@dataclasses.dataclass
class World:
    org: uuid.UUID
    project: uuid.UUID
    types: dict[str, uuid.UUID]
    events: dict[str, uuid.UUID]
    fields: dict[str, uuid.UUID]


async def make_world(rt) -> World:  # noqa: ANN001
    account = await make_user(rt, "Scanner")
    org = await make_org(rt, account, f"Scan org {uuid.uuid4().hex[:6]}")
    pid = uuid.uuid4()
    types, events, fields = {}, {}, {}
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        s.add(Project(id=pid, organization_id=org, name="Shop", slug=f"shop-{pid.hex[:6]}"))
        await s.flush()
        for name in ("page", "checkout"):  # `account` is not in the plan
            types[name] = uuid.uuid4()
            s.add(EventType(id=types[name], organization_id=org, project_id=pid, name=name, display_name=name))
        await s.flush()
        for et, name in (("page", "page.view"), ("checkout", "checkout.started"), ("checkout", "checkout.completed")):
            events[name] = uuid.uuid4()
            s.add(Event(id=events[name], organization_id=org, project_id=pid, event_type_id=types[et], name=name,
                        status=EventStatus.LIVE))
        specs = [
            ("checkout", "amount", FieldType.NUMBER, dict(contract_min_value=1, contract_max_value=100,
                                                          contract_max_bad_rate=0.1)),
            ("page", "amount", FieldType.NUMBER, {}),                              # page rows have none: missing
            ("page", "title", FieldType.ENUM, dict(enum_options=["Home", "Pricing"], contract_max_bad_rate=0.1)),
            ("page", "country", FieldType.STRING, dict(contract_required_max_null_rate=0.1, is_required=True)),
            ("checkout", "country", FieldType.NUMBER, {}),                         # declared number, text seen
        ]
        for i, (et, name, ftype, extra) in enumerate(specs):
            fid = uuid.uuid4()
            fields[f"{et}.{name}"] = fid
            s.add(Field(id=fid, organization_id=org, project_id=pid, event_type_id=types[et], name=name,
                        display_name=name, field_type=ftype, sort_order=i, **extra))
    return World(org, pid, types, events, fields)


async def make_config(rt, world: World, db_type: DataSourceType, **overrides) -> ScanConfig:  # noqa: ANN001, ANN003
    ds = DataSource(id=uuid.uuid4(), organization_id=world.org, name=f"wh {uuid.uuid4().hex[:6]}", db_type=db_type,
                    database_name="unused")
    values = dict(id=uuid.uuid4(), organization_id=world.org, project_id=world.project, data_source_id=ds.id,
                  name=f"scan {uuid.uuid4().hex[:6]}", base_query=BASE, time_column="ts", event_type_column="event_type",
                  event_name_format="{category}.{action}", json_value_paths=["props.page.title", "props.amount"],
                  metric_breakdown_columns=["country"], metric_breakdown_values_limit=2,
                  interval=ScanInterval.ONE_HOUR, replay_chunk_interval=ScanInterval.ONE_DAY,
                  app_version_column="app_version", event_group_rules=[], distribution_drift_fields=[],
                  cardinality_threshold=100)
    values.update(overrides)
    config = ScanConfig(**values)
    async with rt.db.unit_of_work() as uow:
        uow.session.add(ds)
        await uow.session.flush()
        uow.session.add(config)
    return config


@pytest.fixture(params=["postgres", "duckdb", "clickhouse"])
def warehouse(request, pg_warehouse, duckdb_warehouse, chdb_warehouse):  # noqa: ANN001, ANN201
    """(data source type, a function opening a connector)."""
    if request.param == "postgres":
        return DataSourceType.POSTGRES, lambda: open_connector(pg_warehouse[0])
    if request.param == "duckdb":
        return DataSourceType.DUCKDB, lambda: open_connector(duckdb_warehouse[0])
    spec, connector = chdb_warehouse
    return DataSourceType.CLICKHOUSE, lambda: connector(spec)


async def buckets(rt, config: ScanConfig, kind: MetricScope, scope_id: uuid.UUID) -> dict[int, int]:  # noqa: ANN001
    async with rt.db.session() as s:
        rows = (await s.execute(select(MetricBucket.bucket_start, MetricBucket.count).where(
            MetricBucket.scan_config_id == config.id, MetricBucket.scope_kind == kind,
            MetricBucket.scope_id == scope_id))).all()
    return {epoch_of(b): c for b, c in rows}


def project_to(expected: dict[tuple, int], *keep: int) -> dict:
    out: Counter = Counter()
    for key, n in expected.items():
        out[tuple(key[i] for i in keep) if len(keep) > 1 else key[keep[0]]] += n
    return dict(out)


async def test_scan_counts_exactly_and_is_idempotent(rt, warehouse, warehouse_rows):  # noqa: ANN001
    db_type, connect = warehouse
    world = await make_world(rt)
    config = await make_config(rt, world, db_type)
    async with connect() as conn:
        stats = await scan.scan_range(rt, conn, config, START, END)
        assert stats["chunks"] == 8 and stats["rows"] == len(warehouse_rows)

        hourly = count_by(warehouse_rows, ScanInterval.ONE_HOUR)
        assert await buckets(rt, config, MetricScope.PROJECT, world.project) == {k[0]: n for k, n in hourly.items()}
        per_type = count_by(warehouse_rows, ScanInterval.ONE_HOUR, "event_type")
        for name in ("page", "checkout"):
            assert await buckets(rt, config, MetricScope.EVENT_TYPE, world.types[name]) == {
                b: n for (b, t), n in per_type.items() if t == name}
        per_name = count_by(warehouse_rows, ScanInterval.ONE_HOUR, "name")
        for name, eid in world.events.items():
            assert await buckets(rt, config, MetricScope.EVENT, eid) == {b: n for (b, e), n in per_name.items() if e == name}

        # Breakdown by country, top 2 per bucket + Other, NULL as "(null)".
        async with rt.db.session() as s:
            rows = (await s.execute(select(BreakdownBucket).where(
                BreakdownBucket.scan_config_id == config.id, BreakdownBucket.scope_kind == MetricScope.PROJECT))).scalars().all()
        by_country = count_by(warehouse_rows, ScanInterval.ONE_HOUR, "country")
        per_bucket: dict[int, list[tuple[str, int]]] = {}
        for (b, c), n in by_country.items():
            per_bucket.setdefault(b, []).append(("(null)" if c is None else c, n))
        expected = set()
        for b, items in per_bucket.items():
            items.sort(key=lambda x: (-x[1], x[0]))
            expected |= {(b, v, False, n) for v, n in items[:2]}
            if items[2:]:
                expected.add((b, "", True, sum(n for _, n in items[2:])))
        assert {(epoch_of(r.bucket_start), r.value, r.is_other, r.count) for r in rows} == expected
        assert any(r.is_other for r in rows)

        # Shadow events: account.signup (event type not in the plan), page.scroll (not in the plan).
        async with rt.db.session() as s:
            shadows = {(r.event_type_name, r.name): r for r in (await s.execute(
                select(ShadowEvent).where(ShadowEvent.project_id == world.project))).scalars().all()}
        names = Counter(r["name"] for r in warehouse_rows)
        assert {k: v.total_count for k, v in shadows.items()} == {
            ("account", "account.signup"): names["account.signup"], ("page", "page.scroll"): names["page.scroll"]}
        assert shadows[("page", "page.scroll")].event_type_id == world.types["page"]

        # Re-running a chunk (and the whole range) changes nothing.
        before = await buckets(rt, config, MetricScope.PROJECT, world.project)
        await scan.scan_range(rt, conn, config, START, START + (END - START) / 2)
        await scan.scan_range(rt, conn, config, START, END)
        assert await buckets(rt, config, MetricScope.PROJECT, world.project) == before
        async with rt.db.session() as s:
            total = (await s.execute(select(ShadowEvent.total_count).where(
                ShadowEvent.project_id == world.project, ShadowEvent.name == "page.scroll"))).scalar_one()
            last_seen = (await s.execute(select(Event.last_seen_at).where(Event.id == world.events["page.view"]))).scalar_one()
        assert total == names["page.scroll"]
        assert last_seen is not None and START <= last_seen < END

        # Samples and field observations.
        assert await observe.sample_shadow_events(rt, conn, config, START, END) == 2
        found = await observe.observe_fields(rt, conn, config, await scan.load_plan(rt, world.project), START, END)
        assert found["drifts"] > 0 and found["contractViolations"] >= 2
    async with rt.db.session() as s:
        samples = (await s.execute(select(ShadowEvent.samples).where(
            ShadowEvent.project_id == world.project, ShadowEvent.name == "page.scroll"))).scalar_one()
        drifts = {(r.event_type_id, r.field_name, r.drift_type): r for r in (await s.execute(
            select(SchemaDrift).where(SchemaDrift.project_id == world.project))).scalars().all()}
        violations = {(r.field_id, r.rule): r for r in (await s.execute(
            select(ContractViolation).where(ContractViolation.project_id == world.project))).scalars().all()}
    assert len(samples) == 5 and all(row["name"] == "page.scroll" for row in samples)
    assert (world.types["page"], "amount", DriftType.MISSING_FIELD) in drifts
    assert drifts[(world.types["checkout"], "country", DriftType.TYPE_CHANGED)].observed_type == "string"
    # title is declared on page: no new_field; on checkout it is not declared: new_field.
    assert (world.types["page"], "title", DriftType.NEW_FIELD) not in drifts
    assert (world.types["checkout"], "title", DriftType.NEW_FIELD) in drifts
    page_rows = [r for r in warehouse_rows if r["event_type"] == "page" and START <= r["ts"] < END]
    null_country = sum(1 for r in page_rows if r["country"] is None)
    required = violations[(world.fields["page.country"], ContractRule.REQUIRED)]
    assert (required.checked_rows, required.bad_rows) == (len(page_rows), null_country)
    enum = violations[(world.fields["page.title"], ContractRule.ENUM)]
    assert enum.bad_rows == sum(1 for r in page_rows if r["props"]["page"]["title"] not in ("Home", "Pricing"))
    checkout = [r for r in warehouse_rows if r["event_type"] == "checkout"]
    bad_amount = sum(1 for r in checkout if not 1 <= r["props"]["amount"] <= 100)
    rng = violations.get((world.fields["checkout.amount"], ContractRule.RANGE))
    assert rng is not None and rng.bad_rows == bad_amount


@pytest.mark.parametrize("interval", list(ScanInterval))
async def test_every_interval_buckets_like_python(rt, duckdb_warehouse, warehouse_rows, interval):  # noqa: ANN001
    world = await make_world(rt)
    config = await make_config(rt, world, DataSourceType.DUCKDB, interval=interval, replay_chunk_interval=None,
                               metric_breakdown_columns=[], app_version_column=None)
    async with open_connector(duckdb_warehouse[0]) as conn:
        await scan.scan_range(rt, conn, config, START, END)
    expected = count_by(warehouse_rows, interval, start=scan.floor_at(START, interval), end=END)
    assert await buckets(rt, config, MetricScope.PROJECT, world.project) == {k[0]: n for k, n in expected.items()}


async def test_replay_range_only_touches_its_chunks(rt, pg_warehouse, warehouse_rows):  # noqa: ANN001
    from datetime import timedelta

    world = await make_world(rt)
    config = await make_config(rt, world, DataSourceType.POSTGRES)
    a, b = START + timedelta(days=2), START + timedelta(days=3, hours=5)
    async with open_connector(pg_warehouse[0]) as conn:
        stats = await scan.scan_range(rt, conn, config, a, b)
    assert stats["chunks"] == 2
    got = await buckets(rt, config, MetricScope.PROJECT, world.project)
    assert got == {k[0]: n for k, n in count_by(warehouse_rows, ScanInterval.ONE_HOUR, start=a, end=b).items()}


def test_chunks_align_to_buckets():
    from datetime import datetime, timezone

    t = datetime(2024, 1, 3, 10, 37, tzinfo=timezone.utc)
    parts = scan.chunks_of(t, datetime(2024, 1, 5, 1, tzinfo=timezone.utc), ScanInterval.ONE_HOUR, ScanInterval.ONE_DAY)
    assert parts[0][0] == datetime(2024, 1, 3, 10, tzinfo=timezone.utc)
    assert [p[1].hour for p in parts] == [0, 0, 1] and all(x[1] == y[0] for x, y in zip(parts, parts[1:]))


def test_discover_json_paths():
    rows = [{"props": '{"page": {"title": "Home"}, "amount": 3}', "id": 1}, {"props": {"ref": {"a": {"b": 1}}}}]
    assert scan_jobs.discover_json_paths(rows) == ["props.amount", "props.page.title", "props.ref.a.b"]


async def test_scheduler_creates_one_scan_per_due_config(rt):  # noqa: ANN001
    from server.db.base import utcnow
    from server.domains.warehouse import scan_configs
    from server.domains.warehouse.models import ScanJob

    world = await make_world(rt)
    config = await make_config(rt, world, DataSourceType.POSTGRES, next_run_at=utcnow(), enabled=True)
    assert await scan_configs.run_due_scans(rt) >= 1
    await scan_configs.run_due_scans(rt)  # not due any more (and a scan is pending): nothing new
    async with rt.db.session() as s:
        jobs_ = (await s.execute(select(ScanJob).where(ScanJob.scan_config_id == config.id))).scalars().all()
        nxt = (await s.execute(select(ScanConfig.next_run_at).where(ScanConfig.id == config.id))).scalar_one()
    assert len(jobs_) == 1 and nxt > utcnow()
