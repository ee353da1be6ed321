"""Scanning events in a warehouse into hourly buckets with one breakdown: rows per second and the
scanning process's peak memory, at 1M and 10M rows (memory must not grow with the row count).

Warehouses, generated inside them (no rows pass through Python):
- PostgreSQL: a throwaway database on the local server, `events` filled by `generate_series`
  (UNLOGGED, with a BRIN index on the time column, as a time-ordered events table would have);
- DuckDB: a file filled by `range()`.
Both hold `events_1m` and `events_10m` over the same 30 days: 6 event types, 24 event names,
3 platforms (the breakdown), so the scan's groups (720 hours x 24 names x 3 platforms) are the
same at both sizes and only the rows differ.

What runs is the scan engine's aggregation (server/domains/warehouse/scan.py: `chunks_of` +
`aggregate_chunk` for every chunk of a config with interval 1h, replay chunk 1d, event type
column, event name format and breakdown `platform`): one `GROUP BY` query per day in the
warehouse, its result streamed and summed per scope. Writing the sums to the metric tables is
left out (its cost follows the number of groups, not of rows). Each scan runs in a child process,
whose figures are its own: wall time, rows/s, RSS before the scan and VmHWM (peak RSS) after.
Baseline (same run, same warehouse): a plain `SELECT count(*)` over the same rows, so the ratio
is the cost of bucketing and grouping.

    .venv/bin/python -m bench.warehouse_scan [--rows 1000000,10000000] [--only pg|duckdb]

Uses the PostgreSQL at localhost (BENCH_DATABASE_ADMIN_URL); the database and the DuckDB file are
removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

from bench.common import ADMIN, create_database, drop_database

UTC = timezone.utc
START = datetime(2024, 6, 1, tzinfo=UTC)
DAYS = 30
TYPES = ["page_view", "screen_view", "auth", "commerce", "search", "onboarding"]


def table(rows: int) -> str:
    return f"events_{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"events_{rows}"


def pg_sql(rows: int) -> str:
    span = DAYS * 86400
    return f"""
CREATE UNLOGGED TABLE {table(rows)} AS
SELECT i AS event_id,
       timestamptz '{START.isoformat()}' + make_interval(secs => (i - 1) * {span}.0 / {rows}) AS event_time,
       (ARRAY{TYPES!r})[1 + i % 6] AS event_type,
       'event ' || (i % 24) AS event_name,
       (ARRAY['web', 'ios', 'android'])[1 + (i / 7) % 3] AS platform,
       '{{"k": 1}}'::jsonb AS properties
FROM generate_series(1, {rows}) AS i;
CREATE INDEX ON {table(rows)} USING brin (event_time);
ANALYZE {table(rows)};"""


def duckdb_sql(rows: int) -> str:
    span = DAYS * 86400
    return f"""
CREATE TABLE {table(rows)} AS
SELECT i AS event_id,
       TIMESTAMPTZ '{START.isoformat()}' + to_microseconds(((i - 1) * {span}.0 * 1000000 / {rows})::BIGINT) AS event_time,
       {TYPES!r}[1 + (i % 6)::INT] AS event_type,
       'event ' || (i % 24) AS event_name,
       ['web', 'ios', 'android'][1 + ((i // 7) % 3)::INT] AS platform,
       '{{"k": 1}}'::JSON AS properties
FROM range(1, {rows} + 1) AS t(i);"""


# --- the child: one scan, its own figures -----------------------------------------------------

def _status(key: str) -> int:
    """A /proc/self/status figure in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


async def child(kind: str, target: str, rows: int) -> dict:
    from sqlglot import exp

    from server.domains.warehouse import scan
    from server.domains.warehouse.connectors import ConnectionSpec, open_connector, sql
    from server.domains.warehouse.models import DataSourceType, ScanConfig, ScanInterval

    if kind == "pg":
        u = urlparse(ADMIN)
        spec = ConnectionSpec(db_type=DataSourceType.POSTGRES, host=u.hostname or "127.0.0.1", port=u.port or 5432,
                              database=target, username=u.username or "postgres", password=u.password,
                              timeout_seconds=3600, extra={"sslmode": "disable"})
    else:
        spec = ConnectionSpec(db_type=DataSourceType.DUCKDB, database=target, timeout_seconds=3600)
    config = ScanConfig(id=None, base_query=f"SELECT * FROM {table(rows)}", time_column="event_time",
                        event_type_column="event_type", event_name_format="{event_name}", json_value_paths=[],
                        metric_breakdown_columns=["platform"], metric_breakdown_values_limit=10,
                        interval=ScanInterval.ONE_HOUR, replay_chunk_interval=ScanInterval.ONE_DAY,
                        app_version_column=None, metrics_row_limit=None)
    end = START + timedelta(days=DAYS)
    async with open_connector(spec) as conn:
        base = sql.parse_base_query(config.base_query, conn.dialect)
        count = sql.Statement(sql.select_from_base(base, exp.Count(this=exp.Star())))
        t = time.perf_counter()
        counted = (await conn.fetch(count, None)).rows[0][0]
        baseline_s = time.perf_counter() - t
        rss_before = _status("VmRSS")
        t = time.perf_counter()
        scanned = groups = 0
        for a, b in scan.chunks_of(START, end, config.interval, config.replay_chunk_interval):
            counts = await scan.aggregate_chunk(conn, config, base, a, b)
            scanned += counts.rows
            groups += counts.groups
        scan_s = time.perf_counter() - t
    return {"kind": kind, "rows": rows, "counted": int(counted), "scanned": scanned, "groups": groups,
            "scan_s": scan_s, "baseline_s": baseline_s, "rss_before_mib": rss_before / 1024,
            "peak_mib": _status("VmHWM") / 1024}


def run_child(kind: str, target: str, rows: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.warehouse_scan", "--child", kind, target, str(rows)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the {kind} scan of {rows} rows failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the parent: generate, scan in children, print ------------------------------------------------

async def make_pg(sizes: list[int]) -> tuple[str, dict[int, float]]:
    name, _ = await create_database()
    base, _, _ = ADMIN.rpartition("/")
    conn = await asyncpg.connect(f"{base}/{name}")
    took = {}
    try:
        for rows in sizes:
            t = time.perf_counter()
            await conn.execute(pg_sql(rows))
            took[rows] = time.perf_counter() - t
    finally:
        await conn.close()
    return name, took


def make_duckdb(path: Path, sizes: list[int]) -> dict[int, float]:
    import duckdb

    con = duckdb.connect(str(path))
    took = {}
    try:
        con.execute("SET TimeZone = 'UTC'")
        for rows in sizes:
            t = time.perf_counter()
            con.execute(duckdb_sql(rows))
            took[rows] = time.perf_counter() - t
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return took


def report(r: dict) -> None:
    assert r["scanned"] == r["counted"] == r["rows"], r
    print(f"  {r['rows']:>11,} rows  scan {r['scan_s']:7.2f} s  {r['rows'] / r['scan_s']:>12,.0f} rows/s  "
          f"groups {r['groups']:>7,}  count(*) baseline {r['baseline_s']:6.2f} s (scan/baseline "
          f"{r['scan_s'] / max(r['baseline_s'], 1e-9):5.1f}x)  RSS before scan {r['rss_before_mib']:6.1f} MiB  "
          f"peak (VmHWM) {r['peak_mib']:6.1f} MiB")


async def main(sizes: list[int], only: str | None) -> None:
    print(f"warehouse scan: {DAYS} days, hourly buckets, breakdown `platform`, chunks of 1 day, "
          f"{os.cpu_count()} CPUs")
    if only in (None, "duckdb"):
        with tempfile.TemporaryDirectory(prefix="insights-bench-") as tmp:
            path = Path(tmp) / "events.duckdb"
            took = make_duckdb(path, sizes)
            print("DuckDB (file, connector default: 1 thread)")
            print("  generated with range(): " + ", ".join(f"{n:,} rows in {s:.1f} s" for n, s in took.items()))
            results = [run_child("duckdb", str(path), n) for n in sizes]
            for r in results:
                report(r)
            print(f"  peak memory {results[-1]['rows'] // results[0]['rows']}x the rows: "
                  f"{results[-1]['peak_mib'] / results[0]['peak_mib']:.2f}x")
    if only in (None, "pg"):
        name, took = await make_pg(sizes)
        try:
            print("PostgreSQL (local server, throwaway database)")
            print("  generated with generate_series: " + ", ".join(f"{n:,} rows in {s:.1f} s" for n, s in took.items()))
            results = [run_child("pg", name, n) for n in sizes]
            for r in results:
                report(r)
            print(f"  peak memory {results[-1]['rows'] // results[0]['rows']}x the rows: "
                  f"{results[-1]['peak_mib'] / results[0]['peak_mib']:.2f}x")
        finally:
            await drop_database(name)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(child(sys.argv[2], sys.argv[3], int(sys.argv[4])))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--only", choices=["pg", "duckdb"])
    args = parser.parse_args()
    asyncio.run(main([int(x) for x in args.rows.split(",")], args.only))
