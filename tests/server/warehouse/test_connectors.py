"""The connectors against real engines: PostgreSQL (a warehouse database on the test server),
DuckDB (a file) and ClickHouse (the connector's SQL executed by chDB), all holding the same
generated events whose counts are known in Python. BigQuery's SQL is compiled and checked."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlglot
from sqlglot import exp

from server.domains.warehouse.connectors import ConnectionSpec, ConnectorError, open_connector, sql
from server.domains.warehouse.connectors.bigquery import BigQueryConnector, parse_credentials
from server.domains.warehouse.connectors.sql import (
    SqlError,
    Statement,
    base_column,
    count_by_bucket,
    describe_statement,
    json_value,
    parse_base_query,
    sample_statement,
    select_from_base,
)
from server.domains.warehouse.models import DataSourceType, ScanInterval
from tests.support.warehouse import END, START, UTC, count_by

ENGINES = ["postgres", "duckdb", "clickhouse"]
BASE = "SELECT * FROM events"


@pytest.fixture(params=ENGINES)
def engine(request, pg_warehouse, duckdb_warehouse, chdb_warehouse):  # noqa: ANN001, ANN201
    """(dialect, a function making a connector for a spec with overrides)."""
    import dataclasses

    if request.param == "postgres":
        spec, _ = pg_warehouse
        return "postgres", lambda **o: open_connector(dataclasses.replace(spec, **o))
    if request.param == "duckdb":
        spec, _ = duckdb_warehouse
        return "duckdb", lambda **o: open_connector(dataclasses.replace(spec, **o))
    spec, connector = chdb_warehouse
    return "clickhouse", lambda **o: connector(dataclasses.replace(spec, **o))


def as_counts(rows: list[tuple]) -> dict[tuple, int]:
    return {tuple(r[:-1]): int(r[-1]) for r in rows}


# --- counts per bucket: the scan's aggregate, every interval, every engine -----------------------

@pytest.mark.parametrize("interval", list(ScanInterval))
async def test_count_by_bucket_matches_python(engine, warehouse_rows, interval):
    dialect, make = engine
    base = parse_base_query(BASE, dialect)
    statement = count_by_bucket(base, dialect, time_column="ts", interval=interval, start=START, end=END,
                                group_by={"name": base_column("name")})
    async with make() as conn:
        rows = await conn.fetch(statement)
    assert [c.name for c in rows.columns] == ["bucket", "name", "n"]
    assert as_counts(rows.rows) == count_by(warehouse_rows, interval, "name")
    assert sum(r[-1] for r in rows.rows) == len(warehouse_rows)
    assert [r[0] for r in rows.rows] == sorted(r[0] for r in rows.rows)  # ORDER BY bucket


@pytest.mark.parametrize("interval", [ScanInterval.FIFTEEN_MINUTES, ScanInterval.ONE_DAY, ScanInterval.ONE_WEEK])
async def test_naive_timestamps_are_utc(engine, warehouse_rows, interval):
    dialect, make = engine
    statement = count_by_bucket(parse_base_query(BASE, dialect), dialect, time_column="ts_naive", interval=interval,
                                start=START, end=END)
    async with make() as conn:
        rows = await conn.fetch(statement)
    assert as_counts(rows.rows) == count_by(warehouse_rows, interval)


async def test_a_chunk_is_half_open_and_chunks_add_up(engine, warehouse_rows):
    """[start, end) chunks: the row exactly at the Monday midnight edge is counted once."""
    dialect, make = engine
    base = parse_base_query(BASE, dialect)
    edge = dt.datetime(2024, 1, 8, tzinfo=UTC)
    total: dict[tuple, int] = {}
    async with make() as conn:
        for start, end in ((START, edge), (edge, END)):
            statement = count_by_bucket(base, dialect, time_column="ts", interval=ScanInterval.ONE_HOUR,
                                        start=start, end=end, group_by={"country": base_column("country")})
            part = as_counts((await conn.fetch(statement)).rows)
            assert part == count_by(warehouse_rows, ScanInterval.ONE_HOUR, "country", start=start, end=end)
            assert not set(part) & set(total)
            total.update(part)
    assert total == count_by(warehouse_rows, ScanInterval.ONE_HOUR, "country")
    assert any(key[1] is None for key in total)  # NULL breakdown values come back as None


async def test_json_paths_and_group_rules_shape(engine, warehouse_rows):
    dialect, make = engine
    base = parse_base_query(BASE, dialect)
    statement = count_by_bucket(base, dialect, time_column="ts", interval=ScanInterval.ONE_DAY, start=START, end=END,
                                group_by={"title": json_value("props.page.title", dialect),
                                          "amount": json_value("props.amount", dialect)})
    async with make() as conn:
        rows = await conn.fetch(statement)
    expected: dict[tuple, int] = {}
    for r in warehouse_rows:
        amount = r["props"].get("amount")
        key = (sql.bucket_start_of(int(r["ts"].timestamp()) // 1, ScanInterval.ONE_DAY), r["props"]["page"]["title"],
               None if amount is None else str(amount))
        expected[key] = expected.get(key, 0) + 1
    assert as_counts(rows.rows) == expected


# --- the other operations ---------------------------------------------------------------------

async def test_test_describe_fetch_stream_tables(engine, warehouse_rows):
    dialect, make = engine
    base = parse_base_query("SELECT id, ts, name, country FROM events", dialect)
    async with make() as conn:
        message = await conn.test()
        assert message.startswith("connected to ") and any(ch.isdigit() for ch in message)
        columns = await conn.describe(describe_statement(base))
        assert [c.name for c in columns] == ["id", "ts", "name", "country"] and all(c.type for c in columns)
        sample = await conn.fetch(sample_statement(base, 5, time_column="ts", since=START), limit=5)
        assert len(sample.rows) == 5
        newest = sorted(warehouse_rows, key=lambda r: r["ts"], reverse=True)[:5]
        assert [r[0] for r in sample.rows] == [r["id"] for r in newest]
        limited = await conn.fetch(Statement(select_from_base(base, exp.Star())), limit=7)
        assert len(limited.rows) == 7
        chunks = [c async for c in conn.stream(Statement(select_from_base(base, base_column("id"))), chunk_rows=500)]
        assert all(len(c.rows) <= 500 for c in chunks) and len(chunks) >= len(warehouse_rows) // 500
        assert sorted(r[0] for c in chunks for r in c.rows) == [r["id"] for r in warehouse_rows]
        tables = await conn.tables()
    events = [t for t in tables if t.name == "events"]
    assert len(events) == 1
    assert {c.name for c in events[0].columns} >= {"id", "ts", "name", "country", "props", "app_version"}


async def test_stopping_a_stream_early_frees_the_connection(engine):
    dialect, make = engine
    base = parse_base_query(BASE, dialect)
    async with make() as conn:
        async with conn.stream(Statement(select_from_base(base, base_column("id"))), chunk_rows=100) as chunks:
            async for chunk in chunks:
                assert len(chunk.rows) == 100
                break
        # The connection is usable again at once (cursor, transaction and locks released).
        assert (await conn.fetch(Statement(select_from_base(base, exp.Count(this=exp.Star()))))).rows[0][0] > 0


async def test_unknown_column_and_bad_query_are_connector_errors(engine):
    dialect, make = engine
    base = parse_base_query(BASE, dialect)
    async with make() as conn:
        with pytest.raises(ConnectorError) as e:
            await conn.describe(describe_statement(parse_base_query("SELECT * FROM no_such_table", dialect)))
        assert e.value.kind == "query" and "no_such_table" in e.value.message
        # A hostile column name is an identifier, quoted: it names a missing column and runs nothing else.
        hostile = 'name"; DROP TABLE events; --'
        with pytest.raises(ConnectorError):
            await conn.fetch(count_by_bucket(base, dialect, time_column="ts", interval=ScanInterval.ONE_HOUR,
                                             start=START, end=END, group_by={"x": base_column(hostile)}))
        assert (await conn.fetch(Statement(select_from_base(base, exp.Count(this=exp.Star()))))).rows[0][0] > 0


async def test_parameter_values_are_bound_not_spliced(engine):
    dialect, make = engine
    base = parse_base_query(BASE, dialect)
    quote = "x' OR '1'='1"
    statement = Statement(select_from_base(base, exp.Count(this=exp.Star())).where(
        exp.EQ(this=base_column("name"), expression=sql.param("needle"))), {"needle": quote})
    async with make() as conn:
        assert (await conn.fetch(statement)).rows[0][0] == 0
        statement.params["needle"] = "page.view"
        assert (await conn.fetch(statement)).rows[0][0] > 0
    text, _ = make().render(statement)
    assert quote not in text and "page.view" not in text


# --- engine-specific safety ----------------------------------------------------------------------

async def test_postgres_runs_read_only_with_a_server_side_timeout(pg_warehouse):
    spec, _ = pg_warehouse
    import dataclasses

    async with open_connector(spec) as conn:
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(Statement(select_from_base(parse_base_query("SELECT nextval('a_sequence') AS v",
                                                                         "postgres"), exp.Star())))
        assert "read-only" in e.value.message
    async with open_connector(dataclasses.replace(spec, timeout_seconds=1)) as conn:
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(Statement(select_from_base(parse_base_query("SELECT pg_sleep(5) AS s", "postgres"),
                                                        exp.Star())))
        assert e.value.kind == "timeout"


async def test_postgres_connection_failures_say_why(pg_warehouse):
    spec, _ = pg_warehouse
    import dataclasses

    with pytest.raises(ConnectorError) as e:
        async with open_connector(dataclasses.replace(spec, database="no_such_database_xyz")):
            pass
    assert "no_such_database_xyz" in e.value.message
    with pytest.raises(ConnectorError) as e:
        async with open_connector(dataclasses.replace(spec, host="127.0.0.1", port=1, timeout_seconds=3)):
            pass
    assert e.value.kind in ("connect", "timeout")


async def test_duckdb_cannot_touch_other_files_or_write(duckdb_warehouse, tmp_path):
    spec, path = duckdb_warehouse
    async with open_connector(spec) as conn:
        for query in ("SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_text('/etc/hostname')"):
            with pytest.raises(ConnectorError) as e:
                await conn.fetch(Statement(select_from_base(parse_base_query(query, "duckdb"), exp.Star())))
            assert "disabled" in e.value.message
    import dataclasses

    with pytest.raises(ConnectorError) as e:
        async with open_connector(dataclasses.replace(spec, database=str(tmp_path / "missing.duckdb"))):
            pass
    assert e.value.kind == "config"


async def test_duckdb_timeout_interrupts_the_query(duckdb_warehouse):
    spec, _ = duckdb_warehouse
    import dataclasses

    heavy = parse_base_query("SELECT count(*) AS n FROM range(100000000000) a", "duckdb")
    async with open_connector(dataclasses.replace(spec, timeout_seconds=1)) as conn:
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(Statement(select_from_base(heavy, exp.Star())))
        assert e.value.kind == "timeout"


# --- the base query --------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "clickhouse", "bigquery"])
@pytest.mark.parametrize("query", [
    "SELECT * FROM events", "select a, b from events where a = 'x';",
    "WITH recent AS (SELECT * FROM events) SELECT * FROM recent",
    "SELECT a FROM t1 UNION ALL SELECT a FROM t2",
])
def test_base_query_accepts_one_select(dialect, query):
    assert isinstance(parse_base_query(query, dialect), exp.Query)


@pytest.mark.parametrize("query, message", [
    ("", "empty"), ("   ;", "empty"),
    ("SELECT 1; SELECT 2", "exactly one"),
    ("SELECT 1; DROP TABLE events", "exactly one"),
    ("DELETE FROM events", "SELECT"),
    ("INSERT INTO events SELECT * FROM events", "SELECT"),
    ("UPDATE events SET a = 1", "SELECT"),
    ("DROP TABLE events", "SELECT"),
    ("SELECT * INTO copy FROM events", "only read"),
    ("SELECT * FROM (", "not valid"),
    ("SET search_path = evil", "SELECT"),
])
def test_base_query_refuses_the_rest(query, message):
    with pytest.raises(SqlError) as e:
        parse_base_query(query, "postgres")
    assert message in str(e.value)


def test_base_query_is_rendered_from_what_was_parsed():
    base = parse_base_query("SELECT * FROM events /* '; DROP TABLE x; -- */ WHERE name = 'a'", "postgres")
    text = select_from_base(base, exp.Star()).sql(dialect="postgres")
    assert text.startswith("SELECT * FROM (SELECT * FROM events") and text.endswith(") AS base")
    assert "DROP" not in sqlglot.parse_one(text, read="postgres").sql().upper().split("/*")[0]


@pytest.mark.parametrize("path, error", [("props", "not a JSON path"), ("props..a", "not a JSON path"),
                                         ("props.a'b", "may only use"), ("", "not a JSON path")])
def test_json_path_validation(path, error):
    with pytest.raises(SqlError) as e:
        json_value(path, "postgres")
    assert error in str(e.value)


# --- BigQuery: the SQL compiled by sqlglot and checked -------------------------------------------

BQ_EXPECTED = {
    ScanInterval.FIFTEEN_MINUTES: "DIV(UNIX_SECONDS(TIMESTAMP(`base`.`ts`)), 900) * 900",
    ScanInterval.ONE_HOUR: "TIMESTAMP_TRUNC(TIMESTAMP(`base`.`ts`), HOUR)",
    ScanInterval.SIX_HOURS: "DIV(UNIX_SECONDS(TIMESTAMP(`base`.`ts`)), 21600) * 21600",
    ScanInterval.ONE_DAY: "TIMESTAMP_TRUNC(TIMESTAMP(`base`.`ts`), DAY)",
    ScanInterval.ONE_WEEK: "TIMESTAMP_TRUNC(TIMESTAMP(`base`.`ts`), WEEK(MONDAY))",
}


@pytest.mark.parametrize("interval", list(ScanInterval))
def test_bigquery_sql_compiles(interval):
    from google.cloud import bigquery

    base = parse_base_query("SELECT * FROM `my-project.analytics.events` WHERE event_name != 'debug'", "bigquery")
    statement = count_by_bucket(base, "bigquery", time_column="ts", interval=interval, start=START, end=END,
                                group_by={"title": json_value("props.page.title", "bigquery")}, limit=1000)
    conn = BigQueryConnector(ConnectionSpec(db_type=DataSourceType.BIGQUERY, database="my-project"))
    text, params = conn.render(statement)
    assert BQ_EXPECTED[interval] in text
    assert "JSON_VALUE(`base`.`props`, '$.page.title')" in text
    assert "FROM (SELECT * FROM `my-project.analytics.events` WHERE event_name <> 'debug') AS base" in text
    assert "`base`.`ts` >= @t_from AND `base`.`ts` < @t_to" in text and text.endswith("LIMIT @row_limit")
    assert "2024" not in text  # the bounds are parameters
    assert [(p.name, p.type_, p.value) for p in params] == [
        ("t_from", "TIMESTAMP", START), ("t_to", "TIMESTAMP", END), ("row_limit", "INT64", 1000)]
    assert all(isinstance(p, bigquery.ScalarQueryParameter) for p in params)
    reparsed = sqlglot.parse_one(text, read="bigquery")  # compiles as BigQuery SQL
    assert isinstance(reparsed, exp.Select)
    assert {p.name for p in reparsed.find_all(exp.Parameter)} >= {"t_from", "t_to", "row_limit"}


def test_bigquery_credentials_must_be_a_service_account_key():
    assert parse_credentials(None) is None and parse_credentials("") is None
    for bad in ("not json", json.dumps({"type": "authorized_user"}), json.dumps(["x"])):
        with pytest.raises(ConnectorError) as e:
            parse_credentials(bad)
        assert e.value.kind == "config" and "service-account" in e.value.message
    key = {"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": "-----x"}
    assert parse_credentials(json.dumps(key)) == key


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "clickhouse", "bigquery"])
def test_rendered_sql_reparses_in_its_dialect(dialect):
    """Every statement helper renders SQL its own dialect parses back, with the placeholders of
    the dialect's driver (ClickHouse's `{name:Type}` as the ClickHouse connector renders them)."""
    from server.domains.warehouse.connectors import ClickHouseConnector, ConnectionSpec

    base = parse_base_query("SELECT * FROM events", dialect)
    for statement in (describe_statement(base), sample_statement(base, 10, time_column="ts", since=START),
                      count_by_bucket(base, dialect, time_column="ts", interval=ScanInterval.SIX_HOURS, start=START,
                                      end=END, group_by={"n2": base_column("name")}, limit=5)):
        if dialect == "clickhouse":
            text, _ = ClickHouseConnector(ConnectionSpec(db_type=DataSourceType.CLICKHOUSE, database="wh")).render(statement)
        else:
            text = statement.sql(dialect)
        assert sqlglot.parse_one(text, read=dialect) is not None


async def test_two_duckdb_connections_to_one_file_at_once(duckdb_warehouse):
    """DuckDB shares one instance per file in a process; the second connection finds its settings
    already made and locked, and must still open (two scans of one data source at the same time)."""
    spec, _ = duckdb_warehouse
    async with open_connector(spec) as first, open_connector(spec) as second:
        query = Statement(select_from_base(parse_base_query("SELECT * FROM events", "duckdb"), exp.Star()))
        one = await first.fetch(query, limit=5)
        two = await second.fetch(query, limit=5)
        assert one.rows == two.rows and len(one.rows) == 5
