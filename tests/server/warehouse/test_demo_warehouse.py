"""The demo warehouse (server/domains/warehouse/demo_warehouse.py): the generated DuckDB file has
exactly the rows its seeded count matrix says (per event per day), tells the stories it promises
(seasonality, a release, a tracking bug, shadow events), is deterministic; `create_demo_project`
adds the data source, the scan config `demo` and its first scan job, and a scan of the file fills
the metric series with those exact counts."""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb
import numpy as np
import pytest
from sqlalchemy import select, text

from server.domains.plan import demo_data
from server.domains.plan.demo import create_demo_project
from server.domains.plan.models import Event
from server.domains.warehouse import demo_warehouse as dw
from server.domains.warehouse import scan
from server.domains.warehouse.connectors import open_connector
from server.domains.warehouse.data_sources import duckdb_dir_for, spec_for
from server.domains.warehouse.models import (NULL_VALUE, AppVersionBucket, BreakdownBucket, DataSource,
                                             DataSourceType, MetricBucket, MetricScope, ScanConfig, ScanInterval,
                                             ScanJob, ScanJobKind, ShadowEvent)
from server.jobs.models import Job
from tests.server.jobs.support import make_org, make_user, owner, principal_of, rt  # noqa: F401  fixtures

UTC = dt.timezone.utc
END = dt.datetime(2024, 6, 29, 15, 20, tzinfo=UTC)  # a Saturday afternoon
SPAN = dw.span_for(END)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):  # noqa: ANN001, ANN201
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    rows = dw.write_file(path, END)
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    yield path, rows, con
    con.close()


def per_day(con, where: str = "TRUE") -> dict[tuple[str, int], int]:  # noqa: ANN001
    """{(event name, generator day): rows} counted in the file."""
    start = SPAN.start.strftime("%Y-%m-%d %H:%M:%S")
    return {(name, int(day)): int(n) for name, day, n in con.execute(f"""
        SELECT event_name, date_diff('day', TIMESTAMPTZ '{start}+00', event_time), count(*)
        FROM events WHERE {where} GROUP BY ALL""").fetchall()}


def test_the_span_is_whole_days_up_to_the_hour_of_end():
    assert SPAN.start == dt.datetime(2024, 6, 1, tzinfo=UTC)
    assert SPAN.hours == dw.DAYS * 24 + 15 and SPAN.end == dt.datetime(2024, 6, 29, 15, tzinfo=UTC)


def test_rows_per_event_and_day_are_exactly_the_count_matrix(demo_file):
    path, rows, con = demo_file
    expected = dw.daily_counts(SPAN)
    counted = per_day(con)
    assert rows == sum(int(v.sum()) for v in expected.values()) == int(dw.cell_counts(SPAN).sum())
    assert counted == {(name, day): int(n) for name, days in expected.items() for day, n in enumerate(days) if n}
    # Known values of the seeded generator (change them only when changing the generator on purpose).
    assert rows == 141_492
    assert [int(x) for x in expected["Checkout Started"][18:24]] == [
        counted.get(("Checkout Started", d), 0) for d in range(18, 24)]
    # Every row is inside the span, in time order with unique ids.
    first, last, ids, distinct_ids, ordered = con.execute("""
        SELECT min(event_time), max(event_time), count(*), count(DISTINCT event_id),
               bool_and(event_id = rn) FROM (SELECT *, row_number() OVER (ORDER BY event_time, event_id) AS rn FROM events)
        """).fetchone()
    assert SPAN.start <= first and last < SPAN.end and ids == distinct_ids == rows and ordered


def test_the_same_seed_writes_the_same_file_and_another_seed_does_not(tmp_path, demo_file):
    _, _, con = demo_file
    digest = "SELECT sum(hash(event_id, event_time, event_name, platform, app_version, country, user_id, " \
             "properties::VARCHAR)) FROM events"
    again = tmp_path / "again.duckdb"
    dw.write_file(again, END)
    other = tmp_path / "other.duckdb"
    dw.write_file(other, END, seed=dw.SEED + 1)
    with duckdb.connect(str(again), read_only=True) as c2, duckdb.connect(str(other), read_only=True) as c3:
        assert c2.execute(digest).fetchone() == con.execute(digest).fetchone() != c3.execute(digest).fetchone()
    assert not list(tmp_path.glob(".*.tmp*"))  # written aside, then renamed


def test_the_streams_are_the_plans_events_plus_shadow_ones():
    plan = {(e[0], e[1]): e[2] for e in demo_data.EVENTS}
    for event_type, name, rate, platforms in dw.STREAMS:
        assert rate > 0 and platforms in ("web", "app", "all")
        if name in dw.SHADOW:
            assert not any(n.lower() == name.lower() for _, n in plan), name
        else:
            assert plan[(event_type, name)] in ("live", "implemented", "deprecated"), name
    live = {k for k, status in plan.items() if status == "live"}
    assert live <= {(s[0], s[1]) for s in dw.STREAMS}  # every live event has data
    assert len(dw.SHADOW) >= 3


def test_daily_and_weekly_seasonality(demo_file):
    _, _, con = demo_file
    by_hour = dict(con.execute("SELECT hour(event_time), count(*) FROM events GROUP BY 1").fetchall())
    assert min(by_hour, key=by_hour.get) in (2, 3, 4) and max(by_hour, key=by_hour.get) in (18, 19, 20)
    assert by_hour[19] > 5 * by_hour[3]
    by_weekday = dict(con.execute("""SELECT isodow(event_time), count(*) FROM events
        WHERE event_time < TIMESTAMPTZ '2024-06-29 00:00:00+00' GROUP BY 1""").fetchall())  # 4 whole weeks
    weekdays = np.mean([by_weekday[d] for d in range(1, 6)])
    assert by_weekday[6] < 0.85 * weekdays and by_weekday[7] < 0.85 * weekdays


def test_the_release_the_bug_and_the_null_field(demo_file):
    _, _, con = demo_file
    release = SPAN.start + dt.timedelta(days=dw.DAYS - dw.RELEASE_DAYS_AGO)
    before = con.execute("SELECT count(*) FROM events WHERE app_version = $v AND event_time < $t",
                         {"v": dw.NEW_VERSION, "t": release}).fetchone()[0]
    assert before == 0
    share_last_day = con.execute("""SELECT avg((app_version = $v)::INT) FROM events
        WHERE platform <> 'web' AND event_time >= TIMESTAMPTZ '2024-06-28 00:00:00+00'""",
                                 {"v": dw.NEW_VERSION}).fetchone()[0]
    assert 0.8 < share_last_day < 0.95
    assert con.execute("SELECT count(*) FROM events WHERE platform = 'web' AND app_version IS NOT NULL").fetchone()[0] == 0
    daily = dw.daily_counts(SPAN)
    push = daily["Push Notification Opened"]
    assert push[:dw.DAYS - dw.RELEASE_DAYS_AGO].sum() == 0 and push[-3:].min() > 0  # arrives with the release
    search = daily["Search Performed"]
    assert search[-7:].mean() > 1.2 * search[:7].mean()  # its volume shifted with the release
    checkout = daily["Checkout Started"]
    bug = slice(dw.DAYS - dw.BUG_DAYS_AGO[0], dw.DAYS - dw.BUG_DAYS_AGO[1])
    assert checkout[bug].max() < 0.2 * np.median(checkout[:bug.start])  # the tracking bug
    nulls = per_day(con, "event_name = 'Order Completed' AND properties->>'currency' IS NULL")
    assert set(d for _, d in nulls) == set(range(dw.DAYS - dw.NULL_DAYS_AGO[0], dw.DAYS - dw.NULL_DAYS_AGO[1]))
    assert all(n == daily["Order Completed"][d] for (_, d), n in nulls.items())  # every row of those days
    kinds = dict(con.execute("""SELECT event_type, any_value(json_keys(properties)) FROM events GROUP BY 1""").fetchall())
    assert set(kinds) == {t[0] for t in demo_data.EVENT_TYPES} and all(kinds.values())


async def test_create_demo_project_adds_the_warehouse_and_a_scan_fills_the_series(rt, owner, monkeypatch):  # noqa: F811
    account, org_id = owner
    principal = await principal_of(rt, account)
    # The tests' settings queue no first scan (rt.settings.warehouse_demo_first_scan is off): the
    # config is left to the scheduler, an interval later, and this test scans it itself.
    project, warehouse = await create_demo_project(rt, principal, org_id)
    async with rt.db.session() as s:
        ds = (await s.execute(select(DataSource).where(DataSource.organization_id == org_id))).scalar_one()
        config = (await s.execute(select(ScanConfig).where(ScanConfig.project_id == project.id))).scalar_one()
        scan_jobs = (await s.execute(select(ScanJob).where(ScanJob.scan_config_id == config.id))).scalars().all()
        plan_events = dict((await s.execute(select(Event.name, Event.id).where(Event.project_id == project.id))).all())
    assert (ds.id, config.id, warehouse.job, scan_jobs) == (warehouse.data_source.id, warehouse.scan_config.id, None, [])
    assert config.enabled and config.next_run_at == project.created_at + dt.timedelta(hours=1)
    assert ds.db_type == DataSourceType.DUCKDB and ds.name == "Demo warehouse (demo-tracking-plan)"
    assert ds.database_name == f"demo-{project.id}.duckdb" and ds.host == "" and ds.port is None
    path = duckdb_dir_for(rt.settings, org_id) / ds.database_name
    assert warehouse.path == path and path.is_file()
    assert (config.name, config.base_query, config.time_column, config.event_type_column, config.event_name_format,
            config.metric_breakdown_columns, config.app_version_column, config.interval, config.data_source_id) == (
        "demo", "SELECT * FROM events", "event_time", "event_type", "{event_name}", ["platform"], "app_version",
        ScanInterval.ONE_HOUR, ds.id)
    assert config.scan_lookback_hours >= dw.span_for(project.created_at).hours

    # The file holds the generator's exact counts for the span ending at the creation time.
    span = dw.span_for(project.created_at)
    expected = dw.daily_counts(span)
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == warehouse.rows == sum(
            int(v.sum()) for v in expected.values())
    finally:
        con.close()

    # With the setting on (the default), the first scan is queued with the demo; a second demo
    # also gets its own data source name and file.
    monkeypatch.setattr(rt.settings, "warehouse_demo_first_scan", True)
    project2, warehouse2 = await create_demo_project(rt, principal, org_id)
    assert warehouse2.data_source.name == "Demo warehouse (demo-tracking-plan-2)" and warehouse2.path != path
    async with rt.db.session() as s:
        scan_job = (await s.execute(select(ScanJob).where(
            ScanJob.scan_config_id == warehouse2.scan_config.id))).scalar_one()
        job = await s.get(Job, scan_job.job_id)
    assert (job.id, job.kind, job.payload["scanConfigId"], job.payload["scanJobId"], scan_job.kind) == (
        warehouse2.job.id, "scan_run", str(warehouse2.scan_config.id), str(scan_job.id), ScanJobKind.SCAN)
    assert warehouse2.scan_config.next_run_at == project2.created_at + dt.timedelta(hours=1)

    # A scan of the demo config fills the metric series with the generator's counts.
    async with open_connector(spec_for(rt.settings, ds)) as conn:
        stats = await scan.scan_range(rt, conn, config, span.start, span.end)
    assert stats["rows"] == warehouse.rows
    cells = dw.cell_counts(span)
    async with rt.db.session() as s:
        def series(kind: MetricScope, scope_id: uuid.UUID):  # noqa: ANN202
            return select(MetricBucket.bucket_start, MetricBucket.count).where(
                MetricBucket.scan_config_id == config.id, MetricBucket.scope_kind == kind,
                MetricBucket.scope_id == scope_id, MetricBucket.interval == ScanInterval.ONE_HOUR)

        total = dict((await s.execute(series(MetricScope.PROJECT, project.id))).all())
        checkout = dict((await s.execute(series(MetricScope.EVENT, plan_events["Checkout Started"]))).all())
        shadows = set((await s.execute(select(ShadowEvent.name).where(ShadowEvent.project_id == project.id))).scalars())
        platforms = set((await s.execute(select(BreakdownBucket.value).where(
            BreakdownBucket.scan_config_id == config.id, BreakdownBucket.column == "platform"))).scalars())
        versions = set((await s.execute(select(AppVersionBucket.version).where(
            AppVersionBucket.scan_config_id == config.id))).scalars())
    hour = dt.timedelta(hours=1)
    column_totals = cells.sum(axis=0)
    assert total == {span.start + h * hour: int(column_totals[h]) for h in range(span.hours) if column_totals[h]}
    row = cells[[s[1] for s in dw.STREAMS].index("Checkout Started")]
    assert checkout == {span.start + h * hour: int(row[h]) for h in range(span.hours) if row[h]}
    assert shadows == dw.SHADOW
    assert {"web", "ios", "android"} <= platforms
    assert {dw.NEW_VERSION, dw.OLD_VERSION, "(null)"} <= versions


def group_by(path, *columns: str) -> dict[tuple, int]:  # noqa: ANN001
    """{(hour, *columns): rows} counted by DuckDB over the generated file (NULL as NULL_VALUE)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        values = "".join(f", coalesce({c}, '{NULL_VALUE}')" for c in columns)
        return {tuple(row[:-1]): int(row[-1]) for row in con.execute(
            f"SELECT date_trunc('hour', event_time){values}, count(*) FROM events GROUP BY ALL").fetchall()}
    finally:
        con.close()


async def test_the_scan_writes_the_files_group_by_counts_in_any_batch_size_and_again(rt, owner, monkeypatch):  # noqa: F811
    """Bucket rows go to PostgreSQL as arrays, INSERT_BATCH rows a statement: with small batches
    (several per chunk) the project's hourly totals, its platform breakdown and its app versions
    are exactly the file's GROUP BY counts, the newest chunk is written first, and scanning the
    range again rewrites the same rows."""
    account, org_id = owner
    project, warehouse = await create_demo_project(rt, await principal_of(rt, account), org_id)
    config, path = warehouse.scan_config, warehouse.path
    span = dw.span_for(project.created_at)
    monkeypatch.setattr(scan, "INSERT_BATCH", 500)

    async def last_seen() -> dict[str, dt.datetime]:
        async with rt.db.session() as s:
            return dict((await s.execute(select(Event.name, Event.last_seen_at).where(
                Event.project_id == project.id, Event.last_seen_at.is_not(None)))).all())

    before = await last_seen()  # the demo plan gives its events a last-seen time of their own

    async def written() -> tuple[dict, dict, dict]:
        project_scope = {"scan_config_id": config.id, "scope_kind": MetricScope.PROJECT, "scope_id": project.id}
        async with rt.db.session() as s:
            totals = (await s.execute(select(MetricBucket.bucket_start, MetricBucket.count)
                                      .filter_by(**project_scope))).all()
            platforms = (await s.execute(select(BreakdownBucket.bucket_start, BreakdownBucket.value,
                                                BreakdownBucket.is_other, BreakdownBucket.count)
                                         .filter_by(**project_scope, column="platform"))).all()
            versions = (await s.execute(select(AppVersionBucket.bucket_start, AppVersionBucket.version,
                                               AppVersionBucket.count).filter_by(**project_scope))).all()
        assert not any(other for _, _, other, _ in platforms)  # 3 platforms: no Other row
        return ({(b,): n for b, n in totals}, {(b, v): n for b, v, _, n in platforms},
                {(b, v): n for b, v, n in versions})

    expected = (group_by(path), group_by(path, "platform"), group_by(path, "app_version"))
    async with open_connector(spec_for(rt.settings, warehouse.data_source)) as conn:
        first = await scan.scan_range(rt, conn, config, span.start, span.end)
        assert await written() == expected
        # Newest chunk first: each chunk is one transaction, so ordered by the id of the transaction
        # that wrote them (xmin), the chunks' buckets go back in time.
        async with rt.db.session() as s:
            by_transaction = (await s.execute(text(
                "SELECT xmin::text::bigint, min(bucket_start) FROM metric_buckets WHERE scan_config_id = :c "
                "GROUP BY 1 ORDER BY 1"), {"c": config.id})).all()
        starts = [start for _, start in by_transaction]
        assert len(starts) == first["chunks"] == 5 and starts == sorted(starts, reverse=True)
        assert len(expected[1]) > 3 * scan.INSERT_BATCH  # several statements per table and chunk
        again = await scan.scan_range(rt, conn, config, span.start, span.end)
    assert await written() == expected
    assert again["rows"] == first["rows"] == warehouse.rows
    # A plan event with rows was last seen at the start of its last hour in the file (or later).
    last_hours = {name: max(before.get(name, hour), hour) for name, hour in before.items()}
    for hour, name in group_by(path, "event_name"):
        if name not in dw.SHADOW:
            last_hours[name] = max(hour, last_hours.get(name, hour))
    assert await last_seen() == last_hours != before  # the scan moved some of them
