"""Metric series reads at scale: 90 days of hourly buckets for a project total, 10 event types and
300 events (about 670,000 `metric_buckets` rows, written straight into the database with COPY:
setup, not measured), served by the real app under uvicorn.

Measured through HTTP, `--requests` sequential requests each:
- `metricSeries` over the full 90 days (2,160 zero-filled hourly points) for the PROJECT,
  EVENT_TYPE and EVENT scopes, each request for another scope id (cycling) so the cache of one
  series does not flatter it: p50/p99 latency;
- the baseline: the same EVENT series served as orjson by a plain route that runs the same
  service code (server/domains/warehouse/metrics.metric_series), so the ratio is GraphQL's cost;
- the same EVENT series read as `firstBucket counts` (a list of integers) instead of
  `points { bucket count }` (2,160 objects for GraphQL to resolve);
- `metricSeries` over the default 7 days (168 points), EVENT scope;
- `eventSeries` of 100 events over 7 days (16,800 counts in one response);
- SQL statements per request of each (server-side count).

    .venv/bin/python -m bench.metric_series [--requests 200] [--events 300] [--days 90]

Uses the PostgreSQL and Redis at localhost (a throwaway database is created and dropped;
BENCH_DATABASE_ADMIN_URL and BENCH_REDIS_URL to change).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

EVENT_TYPES = 10
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")

SERIES = """query Series($p: ID!, $scope: MetricScopeInput!, $from: DateTime, $to: DateTime) {
  metricSeries(projectId: $p, scope: $scope, from: $from, to: $to) {
    scope interval total points { bucket count } scanConfig { id } } }"""
COUNTS = SERIES.replace("points { bucket count }", "firstBucket counts")
MANY = """query Many($p: ID!, $first: Int!) { eventSeries(projectId: $p, first: $first) {
  totalCount series { scopeId total firstBucket counts } } }"""


async def plain_series(request: Request) -> Response:
    """The same series as orjson, through the same service code as the resolver (minus GraphQL)."""
    from graph.core.node import to_global_id
    from server.domains.warehouse import metrics
    from server.domains.warehouse.models import MetricScope
    from server.security.authn import authenticate

    rt = request.app.state.runtime
    principal = await authenticate(rt.db, rt.settings.signing_key(), request.headers.get("authorization"), None)
    q = request.query_params
    s = await metrics.metric_series(rt, principal, uuid.UUID(q["project"]), MetricScope(q["kind"]),
                                    uuid.UUID(q["id"]) if q.get("id") else None,
                                    datetime.fromisoformat(q["from"]), datetime.fromisoformat(q["to"]))
    body = {"metricSeries": {"scope": s.kind.name, "interval": s.interval.name if s.interval else None,
                             "total": s.total, "points": [{"bucket": b.isoformat(), "count": c} for b, c in s.points],
                             "scanConfig": {"id": to_global_id("ScanConfig", s.scan_config_id)}}}
    return Response(orjson.dumps({"data": body}), media_type="application/json")


def make_app() -> ASGIApp:
    from bench.overhead_app import CountStatements
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(rate_limit_per_minute=10_000_000, rate_limit_per_hour=10_000_000)
    app = create_app(settings, os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"])
    app.router.routes.append(Route("/bench/plain-series", plain_series))
    app.add_middleware(CountStatements)
    return app


async def build(db_url: str, org_id: uuid.UUID, project_id: uuid.UUID, n_events: int, days: int,
                now: datetime) -> dict:
    """Event types, events, a data source, a scan config and hourly buckets of every scope (COPY)."""
    import asyncpg
    from sqlalchemy import insert

    from server.db.engine import Database
    from server.domains.plan.models import Event, EventStatus, EventType
    from server.domains.warehouse.models import DataSource, DataSourceType, ScanConfig, ScanInterval

    rnd = random.Random(6)
    scope = {"organization_id": org_id, "project_id": project_id}
    types = [{**scope, "id": uuid.uuid4(), "name": f"type_{t}", "display_name": f"Type {t}", "sort_order": t,
              "created_at": now, "updated_at": now} for t in range(EVENT_TYPES)]
    events = [{**scope, "id": uuid.uuid4(), "event_type_id": types[i % EVENT_TYPES]["id"], "name": f"event_{i:04d}",
               "status": EventStatus.LIVE, "sort_order": i, "tags": [], "metric_breakdown_columns": [],
               "field_values": [], "meta_values": [], "drift_count": 0, "created_at": now, "updated_at": now}
              for i in range(n_events)]
    ds_id, config_id = uuid.uuid4(), uuid.uuid4()
    last_hour = now.replace(minute=0, second=0, microsecond=0)
    db = Database(db_url)
    try:
        async with db.unit_of_work() as uow:
            s = uow.session
            await s.execute(insert(EventType).values(types))
            await s.execute(insert(Event).values(events))
            await s.execute(insert(DataSource).values(id=ds_id, organization_id=org_id, name="bench",
                                                      db_type=DataSourceType.DUCKDB, database_name="bench.duckdb"))
            await s.execute(insert(ScanConfig).values(id=config_id, **scope, data_source_id=ds_id, name="bench",
                                                      base_query="SELECT * FROM events", time_column="ts",
                                                      interval=ScanInterval.ONE_HOUR, scanned_until=last_hour))
    finally:
        await db.dispose()
    hours = [last_hour - timedelta(hours=h) for h in range(days * 24 - 1, -1, -1)]
    per_event = {e["id"]: [max(0, int(rnd.gauss(50, 15))) for _ in hours] for e in events}
    per_type: dict[uuid.UUID, list[int]] = {t["id"]: [0] * len(hours) for t in types}
    for e in events:
        counts = per_event[e["id"]]
        acc = per_type[e["event_type_id"]]
        for i, c in enumerate(counts):
            acc[i] += c
    total = [sum(t[i] for t in per_type.values()) for i in range(len(hours))]

    def records(kind: str, scope_id: uuid.UUID, counts: list[int]):  # noqa: ANN202
        return ((org_id, project_id, config_id, kind, scope_id, "1h", at, c) for at, c in zip(hours, counts) if c)

    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    columns = ["organization_id", "project_id", "scan_config_id", "scope_kind", "scope_id", "interval",
               "bucket_start", "count"]
    rows = 0
    try:
        batches = [list(records("project", project_id, total))]
        batches += [list(records("event_type", t, c)) for t, c in per_type.items()]
        batches += [list(records("event", e, c)) for e, c in per_event.items()]
        for batch in batches:
            await conn.copy_records_to_table("metric_buckets", records=batch, columns=columns)
            rows += len(batch)
        await conn.execute("ANALYZE metric_buckets")
    finally:
        await conn.close()
    return {"types": [t["id"] for t in types], "events": [e["id"] for e in events], "rows": rows,
            "points": len(hours)}


def pcts(lat: list[float]) -> tuple[float, float]:
    lat = sorted(lat)
    return statistics.median(lat) * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


async def timed(n: int, send) -> list[float]:  # noqa: ANN001
    out = []
    for i in range(n):
        t = time.perf_counter()
        r = await send(i)
        out.append(time.perf_counter() - t)
        if r.status_code != 200 or "errors" in r.json():
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--days", type=int, default=90)
    args = ap.parse_args()

    from bench.common import served_project
    from graph.core.node import from_global_id, to_global_id

    async with served_project("bench.metric_series:make_app", REDIS_BASE, "Bench metrics", "bench-metrics") as (
            base, db_url, proc, token, user, org, project_gid):
        project_id = from_global_id(project_gid)[1]
        now = datetime.now(timezone.utc)
        t = time.perf_counter()
        world = await build(db_url, from_global_id(org["id"])[1], project_id, args.events, args.days, now)
        print(f"data: {args.days} days of hourly buckets for 1 project, {EVENT_TYPES} event types, {args.events} "
              f"events: {world['rows']:,} metric_buckets rows (written in {time.perf_counter() - t:.1f} s)\n")

        frm = (now - timedelta(days=args.days)).isoformat()
        to = now.isoformat()
        scopes = {
            "PROJECT": lambda i: {"kind": "PROJECT"},
            "EVENT_TYPE": lambda i: {"kind": "EVENT_TYPE", "id": to_global_id("EventType", world["types"][i % EVENT_TYPES])},
            "EVENT": lambda i: {"kind": "EVENT", "id": to_global_id("Event", world["events"][i % len(world["events"])])},
        }
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            def series(kind: str, i: int, count: bool = False, week: bool = False,  # noqa: ANN202
                       compact: bool = False):
                v = {"p": project_gid, "scope": scopes[kind](i)}
                if not week:
                    v |= {"from": frm, "to": to}
                return client.post("/graphql", headers={"x-count-statements": "1"} if count else None,
                                   json={"query": COUNTS if compact else SERIES, "operationName": "Series",
                                         "variables": v})

            def plain(i: int):  # noqa: ANN202
                return client.get("/bench/plain-series", params={
                    "project": str(project_id), "kind": "event", "id": str(world["events"][i % len(world["events"])]),
                    "from": frm, "to": to})

            def many(count: bool = False):  # noqa: ANN202
                return client.post("/graphql", headers={"x-count-statements": "1"} if count else None,
                                   json={"query": MANY, "operationName": "Many",
                                         "variables": {"p": project_gid, "first": 100}})

            first = (await series("EVENT", 0)).json()["data"]["metricSeries"]
            assert len(first["points"]) in (world["points"], world["points"] + 1), len(first["points"])
            base_json = (await plain(0)).json()["data"]["metricSeries"]
            assert base_json["total"] == first["total"] and len(base_json["points"]) == len(first["points"])
            proj = (await series("PROJECT", 0)).json()["data"]["metricSeries"]
            print(f"one 90-day series: {len(first['points'])} points; project total {proj['total']:,} rows\n")
            print("SQL statements per request:")
            for kind in scopes:
                r = await series(kind, 1, count=True)
                print(f"  metricSeries {kind:<10} {r.headers['x-sql-statements']}")
            r = await many(count=True)
            print(f"  eventSeries of 100 events  {r.headers['x-sql-statements']}")

            await timed(20, lambda i: series("EVENT", i))  # warm-up
            await timed(20, plain)
            n = args.requests
            print(f"\nlatency over {n} sequential requests:")
            rows = [("plain JSON, EVENT 90 days (baseline)", await timed(n, plain))]
            for kind in scopes:
                rows.append((f"metricSeries {kind}, 90 days", await timed(n, lambda i, k=kind: series(k, i))))
            rows.append(("metricSeries EVENT, 90 days, `counts`",
                         await timed(n, lambda i: series("EVENT", i, compact=True))))
            rows.append(("metricSeries EVENT, default 7 days", await timed(n, lambda i: series("EVENT", i, week=True))))
            rows.append(("eventSeries, 100 events x 7 days, counts", await timed(max(10, n // 10), lambda i: many())))
            for label, lat in rows:
                p50, p99 = pcts(lat)
                print(f"  {label:<40} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
            print(f"  GraphQL / plain p50 (EVENT, 90 days): points {pcts(rows[3][1])[0] / pcts(rows[0][1])[0]:.2f}x, "
                  f"counts {pcts(rows[4][1])[0] / pcts(rows[0][1])[0]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
