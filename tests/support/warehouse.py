"""Warehouses for tests: the same generated events, with counts known in Python, loaded into a
real PostgreSQL database (on the test server), a real DuckDB file, and chDB (ClickHouse's engine
in-process), plus `ChdbConnector`: the ClickHouse connector with its two server calls run on chDB,
so the SQL it renders is executed by ClickHouse for real.

    rows = generate_events()                      # list[dict], deterministic
    expected = count_by(rows, ScanInterval.ONE_HOUR, "name")   # {(bucket epoch, name): count}

The warehouse table is `events`:

    id            bigint
    ts            timestamptz (ClickHouse: DateTime64(6, 'UTC'))
    ts_naive      timestamp without time zone, the same instant as UTC wall-clock time
    event_type    text ('page', 'checkout', 'account')
    category      text, action text    (event name format `{category}.{action}`)
    name          text                 (= category.action)
    country       text, NULL for some rows
    app_version   text
    props         JSON (PostgreSQL jsonb, DuckDB JSON, ClickHouse String): {"page": {"title": ..},
                  "amount": <number, checkout only>}

Tests use the fixtures in tests/server/warehouse/conftest.py (`pg_warehouse`, `duckdb_warehouse`,
`chdb_warehouse`); GraphQL tests can import them too.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from server.domains.warehouse.connectors.base import ColumnInfo, ConnectionSpec, Rows
from server.domains.warehouse.connectors.clickhouse import ClickHouseConnector
from server.domains.warehouse.connectors.sql import bucket_start_of
from server.domains.warehouse.models import DataSourceType, ScanInterval

UTC = dt.timezone.utc
START = dt.datetime(2024, 1, 3, tzinfo=UTC)  # a Wednesday: 8 days span the ISO week boundary of Monday 8th
DAYS = 8
END = START + dt.timedelta(days=DAYS)
EVENTS = [("page", "page", "view"), ("page", "page", "scroll"), ("checkout", "checkout", "started"),
          ("checkout", "checkout", "completed"), ("account", "account", "signup")]
COUNTRIES = ["DE", "FR", "US", None]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0"]
TITLES = ["Home", "Pricing", "Docs"]


def generate_events(n: int = 3000, seed: int = 7) -> list[dict[str, Any]]:
    """`n` events between START and END, plus rows exactly on and just before bucket edges."""
    rnd = random.Random(seed)
    span = int((END - START).total_seconds())
    instants = [START + dt.timedelta(seconds=rnd.randrange(span), microseconds=rnd.randrange(1_000_000))
                for _ in range(n)]
    edges = [dt.datetime(2024, 1, 8, tzinfo=UTC),                      # a Monday midnight (week, day, hour, 6h, 15m)
             dt.datetime(2024, 1, 7, 23, 59, 59, 999999, tzinfo=UTC),  # the instant before
             dt.datetime(2024, 1, 4, 6, 0, tzinfo=UTC), dt.datetime(2024, 1, 4, 5, 59, 59, 999999, tzinfo=UTC),
             dt.datetime(2024, 1, 4, 12, 15, tzinfo=UTC), dt.datetime(2024, 1, 4, 12, 14, 59, 999999, tzinfo=UTC)]
    rows = []
    for i, ts in enumerate(sorted(instants + edges)):
        event_type, category, action = EVENTS[rnd.randrange(len(EVENTS))]
        props: dict[str, Any] = {"page": {"title": TITLES[rnd.randrange(len(TITLES))]}}
        if event_type == "checkout":
            props["amount"] = rnd.randrange(1, 500)
        rows.append({"id": i + 1, "ts": ts, "ts_naive": ts.replace(tzinfo=None), "event_type": event_type,
                     "category": category, "action": action, "name": f"{category}.{action}",
                     "country": COUNTRIES[rnd.randrange(len(COUNTRIES))],
                     "app_version": VERSIONS[min(2, int((ts - START).total_seconds() // (3 * 86400)))],
                     "props": props})
    return rows


def epoch_of(ts: dt.datetime) -> int:
    """Whole seconds since the epoch, floored (as the warehouses floor it)."""
    delta = ts - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86400 + delta.seconds


def count_by(rows: list[dict], interval: ScanInterval, *keys: str, start: dt.datetime = START,
             end: dt.datetime = END) -> dict[tuple, int]:
    """{(bucket epoch, *values of keys): count} for rows in [start, end)."""
    out: Counter = Counter()
    for r in rows:
        if start <= r["ts"] < end:
            out[(bucket_start_of(epoch_of(r["ts"]), interval), *(r[k] for k in keys))] += 1
    return dict(out)


# --- PostgreSQL -----------------------------------------------------------------------------

PG_DDL = """CREATE TABLE events (id bigint PRIMARY KEY, ts timestamptz NOT NULL, ts_naive timestamp NOT NULL,
  event_type text NOT NULL, category text NOT NULL, action text NOT NULL, name text NOT NULL, country text,
  app_version text NOT NULL, props jsonb NOT NULL);
CREATE INDEX events_ts ON events (ts);
CREATE SEQUENCE a_sequence;"""


async def create_pg_warehouse(admin_url: str, rows: list[dict]) -> tuple[str, str]:
    """A new database on the test server holding `events`; (database name, asyncpg URL)."""
    name = f"insights_wh_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(PG_DDL)
        await conn.copy_records_to_table(
            "events", columns=["id", "ts", "ts_naive", "event_type", "category", "action", "name", "country",
                               "app_version", "props"],
            records=[(r["id"], r["ts"], r["ts_naive"], r["event_type"], r["category"], r["action"], r["name"],
                      r["country"], r["app_version"], json.dumps(r["props"])) for r in rows])
    finally:
        await conn.close()
    return name, url


async def drop_pg_warehouse(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def pg_spec(admin_url: str, database: str, **overrides: Any) -> ConnectionSpec:
    """A spec for a database on the admin URL's server (postgresql://user@host:port/db)."""
    from urllib.parse import urlparse

    u = urlparse(admin_url)
    values: dict[str, Any] = dict(db_type=DataSourceType.POSTGRES, host=u.hostname or "127.0.0.1", port=u.port or 5432,
                                  database=database, username=u.username or "postgres", password=u.password,
                                  timeout_seconds=20, extra={"sslmode": "disable"})
    values.update(overrides)
    return ConnectionSpec(**values)


# --- DuckDB ---------------------------------------------------------------------------------

def create_duckdb_warehouse(path: Path, rows: list[dict]) -> Path:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("""CREATE TABLE events (id BIGINT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, ts_naive TIMESTAMP NOT NULL,
          event_type VARCHAR NOT NULL, category VARCHAR NOT NULL, action VARCHAR NOT NULL, name VARCHAR NOT NULL,
          country VARCHAR, app_version VARCHAR NOT NULL, props JSON NOT NULL)""")
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(r["id"], r["ts"], r["ts_naive"], r["event_type"], r["category"], r["action"], r["name"],
                          r["country"], r["app_version"], json.dumps(r["props"])) for r in rows])
    finally:
        con.close()
    return path


def duckdb_spec(path: Path, **overrides: Any) -> ConnectionSpec:
    values: dict[str, Any] = dict(db_type=DataSourceType.DUCKDB, database=str(path), timeout_seconds=20)
    values.update(overrides)
    return ConnectionSpec(**values)


# --- ClickHouse on chDB ---------------------------------------------------------------------

CH_DDL = """CREATE TABLE {db}.events (id Int64, ts DateTime64(6, 'UTC'), ts_naive DateTime64(6),
  event_type String, category String, action String, name String, country Nullable(String),
  app_version String, props String) ENGINE = MergeTree ORDER BY ts"""


def _ch_ts(ts: dt.datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def create_chdb_warehouse(rows: list[dict], database: str = "wh") -> Any:
    """A chDB session (in-process ClickHouse, in memory) with `events` in `database`."""
    from chdb import session

    s = session.Session()
    s.query(f"CREATE DATABASE IF NOT EXISTS {database}")
    s.query(CH_DDL.format(db=database))
    s.query(f"USE {database}")
    batch = 1000
    for i in range(0, len(rows), batch):
        lines = "\n".join(json.dumps({**r, "ts": _ch_ts(r["ts"]), "ts_naive": _ch_ts(r["ts"]),
                                      "props": json.dumps(r["props"])}) for r in rows[i:i + batch])
        s.query(f"INSERT INTO {database}.events FORMAT JSONEachRow\n{lines}")
    return s


class ChdbConnector(ClickHouseConnector):
    """The ClickHouse connector whose two server calls (`execute`, `execute_blocks`) run on a
    chDB session instead of HTTP: everything else (rendering, parameters as `{name:Type}`,
    streaming, errors) is the real connector's."""

    session: Any = None  # set by the fixture

    def _open(self) -> Any:
        if self.session is None:
            raise RuntimeError("ChdbConnector.session is not set")
        return self.session

    async def close(self) -> None:
        self.client = None  # the session belongs to the fixture

    @staticmethod
    def _rows(table: Any) -> Rows:
        columns = [ColumnInfo(f.name, str(f.type)) for f in table.schema]
        return Rows(columns, [tuple(r.values()) for r in table.to_pylist()])

    def execute(self, sql: str, params: dict[str, Any], limit: int | None = None) -> Rows:
        with self._lock:
            rows = self._rows(self.client.query(sql, "ArrowTable", params=params or None))
        if limit is not None:
            rows.rows = rows.rows[:limit]
        return rows

    def execute_blocks(self, sql: str, params: dict[str, Any]) -> Iterator[Rows]:
        # chDB answers whole results; hand them out in blocks like the HTTP stream does.
        rows = self.execute(sql, params)
        for i in range(0, max(1, len(rows.rows)), 1000):
            yield Rows(rows.columns, rows.rows[i:i + 1000])


def chdb_spec(**overrides: Any) -> ConnectionSpec:
    values: dict[str, Any] = dict(db_type=DataSourceType.CLICKHOUSE, host="chdb", port=8123, database="wh",
                                  timeout_seconds=20)
    values.update(overrides)
    return ConnectionSpec(**values)



# --- fixtures (imported by the conftest of each test package that uses them) -------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def warehouse_rows() -> list[dict]:
    return generate_events()


@pytest.fixture(scope="session")
async def pg_warehouse(services, warehouse_rows):  # noqa: ANN001, ANN201
    """A PostgreSQL warehouse database with `events`: (ConnectionSpec, database name)."""
    admin, _ = services
    name, _ = await create_pg_warehouse(admin, warehouse_rows)
    yield pg_spec(admin, name), name
    await drop_pg_warehouse(admin, name)


@pytest.fixture(scope="session")
def duckdb_warehouse(tmp_path_factory, warehouse_rows):  # noqa: ANN001, ANN201
    """A DuckDB file with `events`: (ConnectionSpec, path)."""
    path = create_duckdb_warehouse(tmp_path_factory.mktemp("duckdb") / "events.duckdb", warehouse_rows)
    return duckdb_spec(path), path


@pytest.fixture(scope="session")
def chdb_warehouse(warehouse_rows):  # noqa: ANN001, ANN201
    """chDB with `wh.events`, and ChdbConnector bound to it: (ConnectionSpec, connector class)."""
    session = create_chdb_warehouse(warehouse_rows)
    connector = type("BoundChdbConnector", (ChdbConnector,), {"session": session})
    yield chdb_spec(), connector
    session.close()
