"""Tracking-plan events at scale: a plan of 5,000 events over 50 event types (8 fields each, 5 meta
fields, tags, field and meta values, owners) served by the real app under uvicorn.

Measured through HTTP:
- listing 200 events with their type, field values (with field definitions), tags and meta values
  (with meta field definitions): p50/p99 latency over `--requests` sequential requests, for the
  first page, a deep page (after 4,000 events: keyset paging costs the same) and a filtered page;
  the baseline is the same first page served as orjson by a plain route that runs the same service
  code (events_query + keyset_page + the same batch loaders), so the ratio is GraphQL's own cost;
- the SQL statements per request, counted server-side (server/db/statements.py hooks through the
  `x-count-statements` header of bench/overhead_app.py), at 20 and at 200 events (target: equal);
- `eventsBulkCreate` of 1,000 events (each with field values, meta values and tags) in one
  mutation: wall time and SQL statements, `--bulk-runs` times.

The plan is written straight into the database with multi-row INSERTs on the models' tables
(setup, not measured); the user, organization and project are made through the API.

    .venv/bin/python -m bench.plan_events [--requests 200] [--bulk-runs 3]

BENCH_PROFILE=out.txt / BENCH_PROFILE_BULK=out.txt record the server with py-spy (raw format)
while it lists events / runs the bulk creates.

Uses the PostgreSQL and Redis at localhost (a throwaway database is created and dropped;
BENCH_DATABASE_ADMIN_URL and BENCH_REDIS_URL to change).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

EVENT_TYPES = 50
EVENTS_PER_TYPE = 100
FIELDS_PER_TYPE = 8
PAGE = 200
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")

LIST = """query Events($project: ID!, $first: Int!, $after: String, $filter: EventFilter) {
  events(projectId: $project, first: $first, after: $after, filter: $filter) {
    pageInfo { hasNextPage endCursor }
    nodes { id name status tags order
            eventType { id name }
            fields(first: 20) { value field { id name fieldType } }
            metaValues(first: 10) { value metaField { id name } } } } }"""
BULK = """mutation Bulk($input: EventsBulkCreateInput!) { eventsBulkCreate(input: $input) {
  events { id } userErrors { code field message } } }"""


# --- the app: the real one + a plain-JSON baseline of the same page + statement counting ----------

async def plain_events(request: Request) -> Response:
    """The first page of events with type, field values and meta values, as orjson, through the
    same service code as the GraphQL resolvers (minus GraphQL)."""
    from graph.core.node import to_global_id
    from server.db.paging import PageRequest, keyset_page
    from server.domains.plan import events, loaders
    from server.domains.plan.models import Event
    from server.security.authn import authenticate

    rt = request.app.state.runtime
    principal = await authenticate(rt.db, rt.settings.signing_key(), request.headers.get("authorization"), None)
    project = uuid.UUID(request.query_params["project"])
    if (await loaders.load_projects(rt, principal, [project]))[0] is None:
        return Response(b'{"error":"not found"}', status_code=404)
    page = await keyset_page(rt.db, events.events_query(principal, project), [Event.sort_order, Event.id],
                             PageRequest(int(request.query_params.get("first", PAGE))), descending=False)
    type_ids = list({e.event_type_id for e in page.items})
    field_ids = list({uuid.UUID(v["field_id"]) for e in page.items for v in e.field_values})
    meta_ids = list({uuid.UUID(v["meta_field_id"]) for e in page.items for v in e.meta_values})
    types, fields, metas = await asyncio.gather(loaders.load_event_types(rt, principal, type_ids),
                                                loaders.load_fields(rt, principal, field_ids),
                                                loaders.load_meta_fields(rt, principal, meta_ids))
    types = {t.id: t for t in types if t}
    fields = {f.id: f for f in fields if f}
    metas = {m.id: m for m in metas if m}
    nodes = []
    for e in page.items:
        t = types[e.event_type_id]
        fv = sorted(((fields[uuid.UUID(v["field_id"])], v["value"]) for v in e.field_values),
                    key=lambda fv: (fv[0].sort_order, fv[0].name))
        mv = sorted(((metas[uuid.UUID(v["meta_field_id"])], v["value"]) for v in e.meta_values),
                    key=lambda mv: (mv[0].sort_order, mv[0].name))
        nodes.append({"id": to_global_id("Event", e.id), "name": e.name, "status": e.status.name, "tags": e.tags,
                      "order": e.sort_order, "eventType": {"id": to_global_id("EventType", t.id), "name": t.name},
                      "fields": [{"value": v, "field": {"id": to_global_id("Field", f.id), "name": f.name,
                                                        "fieldType": f.field_type.name}} for f, v in fv[:20]],
                      "metaValues": [{"value": v, "metaField": {"id": to_global_id("MetaField", m.id), "name": m.name}}
                                     for m, v in mv[:10]]})
    body = {"events": {"pageInfo": {"hasNextPage": page.has_next_page,
                                    "endCursor": page.cursors[-1] if page.cursors else None}, "nodes": nodes}}
    return Response(orjson.dumps({"data": body}), media_type="application/json")


def make_app() -> ASGIApp:
    """uvicorn factory (run in the server process): default limits (query cost, depth, body size)
    except the rate limit, which a benchmark would trip."""
    from bench.overhead_app import CountStatements
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(rate_limit_per_minute=10_000_000, rate_limit_per_hour=10_000_000)
    app = create_app(settings, os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"])
    app.router.routes.append(Route("/bench/plain-events", plain_events))
    app.add_middleware(CountStatements)
    return app


# --- the plan --------------------------------------------------------------------------------------

async def build_plan(db_url: str, org_id: uuid.UUID, project_id: uuid.UUID, user_id: uuid.UUID) -> dict:
    """50 event types x 8 fields, 5 meta fields and 5,000 events, with multi-row INSERTs."""
    from sqlalchemy import insert, text

    from server.db.engine import Database
    from server.domains.plan.models import Event, EventStatus, EventType, Field, FieldType, MetaField, MetaFieldType

    rnd = random.Random(5)
    now = datetime.now(timezone.utc)
    scope = {"organization_id": org_id, "project_id": project_id}
    kinds = [FieldType.STRING, FieldType.NUMBER, FieldType.BOOLEAN, FieldType.ENUM, FieldType.URL, FieldType.STRING,
             FieldType.JSON, FieldType.STRING]
    types, fields, events = [], [], []
    for t in range(EVENT_TYPES):
        tid = uuid.uuid4()
        types.append({**scope, "id": tid, "name": f"type_{t:02d}", "display_name": f"Type {t}", "sort_order": t,
                      "created_at": now, "updated_at": now})
        for f in range(FIELDS_PER_TYPE):
            kind = kinds[f]
            fields.append({**scope, "id": uuid.uuid4(), "event_type_id": tid, "name": f"prop_{f}",
                           "display_name": f"Property {f}", "field_type": kind, "sort_order": f,
                           "enum_options": ["web", "ios", "android"] if kind is FieldType.ENUM else None,
                           "created_at": now, "updated_at": now})
    metas = [{**scope, "id": uuid.uuid4(), "name": n, "display_name": n.title(), "field_type": k, "sort_order": i,
              "enum_options": ["gold", "silver", "bronze"] if k is MetaFieldType.ENUM else None,
              "created_at": now, "updated_at": now}
             for i, (n, k) in enumerate([("team", MetaFieldType.STRING), ("tier", MetaFieldType.ENUM),
                                         ("jira", MetaFieldType.URL), ("launched", MetaFieldType.DATE),
                                         ("pii", MetaFieldType.BOOLEAN)])]
    tags = [f"tag-{i}" for i in range(30)]
    statuses = list(EventStatus)
    fields_of: dict[uuid.UUID, list[dict]] = {}
    for f in fields:
        fields_of.setdefault(f["event_type_id"], []).append(f)
    order = 0
    for t in types:
        for j in range(EVENTS_PER_TYPE):
            values = [{"field_id": str(f["id"]),
                       "value": "web" if f["field_type"] is FieldType.ENUM else f"${{var_{j % 7}}}" if k == 0
                       else f"value {j}-{k}"} for k, f in enumerate(fields_of[t["id"]])]
            meta = [{"meta_field_id": str(metas[0]["id"]), "value": f"team-{j % 5}"},
                    {"meta_field_id": str(metas[1]["id"]), "value": ["gold", "silver", "bronze"][j % 3]},
                    {"meta_field_id": str(metas[2]["id"]), "value": f"https://jira.example.com/PLAN-{order}"}]
            events.append({**scope, "id": uuid.uuid4(), "event_type_id": t["id"], "name": f"{t['name']}.event_{j:03d}",
                           "description": "Generated for the benchmark", "status": statuses[order % len(statuses)],
                           "owner_id": user_id, "reviewed": j % 2 == 0, "metric_breakdown_columns": ["country"],
                           "tags": rnd.sample(tags, 2 + order % 2), "field_values": values, "meta_values": meta,
                           "sort_order": order, "drift_count": 0,
                           "last_seen_at": now - timedelta(days=order % 60) if order % 3 else None,
                           "created_at": now, "updated_at": now})
            order += 1
    db = Database(db_url)
    try:
        async with db.unit_of_work() as uow:
            for model, rows in ((EventType, types), (Field, fields), (MetaField, metas)):
                await uow.session.execute(insert(model).values(rows))
            for i in range(0, len(events), 1000):
                await uow.session.execute(insert(Event).values(events[i:i + 1000]))
        async with db.session() as s:
            await s.execute(text("ANALYZE events"))
    finally:
        await db.dispose()
    return {"types": types, "fields_of": fields_of, "metas": metas, "tags": tags}


def bulk_items(plan: dict, run: int, n: int = 1000) -> list[dict]:
    """`n` new events spread over the types, each with 3 field values, 2 meta values and 2 tags."""
    from graph.core.node import to_global_id

    items = []
    for i in range(n):
        t = plan["types"][i % EVENT_TYPES]
        fs = plan["fields_of"][t["id"]]
        items.append({"eventTypeId": to_global_id("EventType", t["id"]), "name": f"bulk_{run}_{i:04d}",
                      "status": "IN_REVIEW", "tags": [plan["tags"][i % 30], "bulk"],
                      "fieldValues": [{"fieldId": to_global_id("Field", fs[k]["id"]),
                                       "value": "ios" if fs[k]["field_type"].value == "enum" else f"v{i}"}
                                      for k in (0, 3, 4)],
                      "metaValues": [{"metaFieldId": to_global_id("MetaField", plan["metas"][0]["id"]), "value": "core"},
                                     {"metaFieldId": to_global_id("MetaField", plan["metas"][1]["id"]), "value": "gold"}]})
    return items


# --- measuring -------------------------------------------------------------------------------------

def pcts(lat: list[float]) -> tuple[float, float]:
    lat = sorted(lat)
    return statistics.median(lat) * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


async def timed(client: httpx.AsyncClient, n: int, send) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await send()
        out.append(time.perf_counter() - t)
        if r.status_code != 200 or (r.headers.get("content-type", "").startswith("application/json")
                                    and "errors" in r.json()):
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200, help="sequential requests per measured list query")
    ap.add_argument("--bulk-runs", type=int, default=3, help="eventsBulkCreate calls of 1,000 events")
    args = ap.parse_args()

    from bench.common import served_project
    from graph.core.node import from_global_id

    async with served_project("bench.plan_events:make_app", REDIS_BASE, "Bench plan", "bench-plan") as (
            base, db_url, proc, token, user, org, project_gid):
        t = time.perf_counter()
        plan = await build_plan(db_url, from_global_id(org["id"])[1], from_global_id(project_gid)[1],
                                from_global_id(user["id"])[1])
        print(f"plan: {EVENT_TYPES} event types x {FIELDS_PER_TYPE} fields, 5 meta fields, "
              f"{EVENT_TYPES * EVENTS_PER_TYPE} events (written in {time.perf_counter() - t:.1f} s)\n")

        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            async def list_page(first: int = PAGE, after: str | None = None, filter_: dict | None = None,
                                count: bool = False) -> httpx.Response:
                return await client.post("/graphql", headers={"x-count-statements": "1"} if count else None,
                                         json={"query": LIST, "operationName": "Events",
                                               "variables": {"project": project_gid, "first": first,
                                                             "after": after, "filter": filter_}})

            first_page = (await list_page()).json()["data"]["events"]
            assert len(first_page["nodes"]) == PAGE and all(n["fields"] and n["metaValues"] for n in first_page["nodes"])
            plain = (await client.get("/bench/plain-events", params={"project": str(from_global_id(project_gid)[1])})).json()
            assert plain["data"]["events"]["nodes"] == first_page["nodes"], "baseline differs from GraphQL"
            cursor = None
            for _ in range(20):  # walk to the 21st page: after 4,000 events
                cursor = (await list_page(after=cursor)).json()["data"]["events"]["pageInfo"]["endCursor"]
            deep = (await list_page(after=cursor)).json()["data"]["events"]["nodes"]
            assert deep[0]["order"] == 20 * PAGE
            filt = {"statuses": ["LIVE", "DRAFT", "IN_REVIEW"], "tag": "tag-3", "silentSinceDays": 7}
            filtered = (await list_page(filter_=filt)).json()["data"]["events"]["nodes"]

            print("SQL statements per request (listing events with type, field values, tags, meta values):")
            counts = {}
            for first in (20, PAGE):
                r = await list_page(first, count=True)
                counts[first] = int(r.headers["x-sql-statements"])
                print(f"  {first:>3} events: {counts[first]} statements")
            print(f"  constant: {'yes' if counts[20] == counts[PAGE] else 'NO'}  "
                  f"(2 sign-in + project + page + event types + fields + meta fields)")

            if os.environ.get("BENCH_PROFILE"):  # py-spy the server while it lists events
                spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p",
                                        str(proc.pid), "-o", os.environ["BENCH_PROFILE"],
                                        "-f", "raw", "-d", "10"])
                await timed(client, 40, lambda: list_page())
                spy.wait()
            await timed(client, 10, lambda: list_page())  # warm-up
            await timed(client, 10, lambda: client.get("/bench/plain-events",
                                                       params={"project": str(from_global_id(project_gid)[1])}))
            n = args.requests
            print(f"\nlatency over {n} sequential requests, {PAGE} events each:")
            rows = [
                ("plain JSON, first page (baseline)", await timed(client, n, lambda: client.get(
                    "/bench/plain-events", params={"project": str(from_global_id(project_gid)[1])}))),
                ("GraphQL, first page", await timed(client, n, lambda: list_page())),
                ("GraphQL, page 21 (after 4,000)", await timed(client, n, lambda: list_page(after=cursor))),
                (f"GraphQL, filtered ({len(filtered)} match)", await timed(client, n, lambda: list_page(filter_=filt))),
            ]
            for label, lat in rows:
                p50, p99 = pcts(lat)
                print(f"  {label:<36} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
            ratio = pcts(rows[1][1])[0] / pcts(rows[0][1])[0]
            print(f"  GraphQL / plain p50: {ratio:.2f}x")

            print(f"\neventsBulkCreate of 1,000 events (3 field values, 2 meta values, 2 tags each) into the "
                  f"{EVENT_TYPES * EVENTS_PER_TYPE}-event plan:")
            times = []
            spy = None
            if os.environ.get("BENCH_PROFILE_BULK"):  # py-spy the server during the bulk creates
                spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p",
                                        str(proc.pid), "-o", os.environ["BENCH_PROFILE_BULK"], "-f", "raw"])
            for run in range(args.bulk_runs):
                body = {"query": BULK, "operationName": "Bulk",
                        "variables": {"input": {"projectId": project_gid, "events": bulk_items(plan, run)}}}
                raw = orjson.dumps(body)
                t = time.perf_counter()
                r = await client.post("/graphql", content=raw, headers={"content-type": "application/json",
                                                                          "x-count-statements": "1"})
                elapsed = time.perf_counter() - t
                result = r.json()
                if r.status_code != 200 or result.get("errors") or result["data"]["eventsBulkCreate"]["userErrors"]:
                    raise RuntimeError(f"bulk create failed: {r.status_code} {r.text[:500]}")
                assert len(result["data"]["eventsBulkCreate"]["events"]) == 1000
                times.append(elapsed)
                print(f"  run {run + 1}: {elapsed * 1000:7.0f} ms   {r.headers['x-sql-statements']} SQL statements   "
                      f"request body {len(raw) / 1024:.0f} KiB")
            if spy is not None:
                spy.send_signal(2)
                spy.wait()
            print(f"  median: {statistics.median(times) * 1000:.0f} ms for 1,000 events "
                  f"({statistics.median(times) * 1000 / 1000:.2f} ms per event)")


if __name__ == "__main__":
    asyncio.run(main())
