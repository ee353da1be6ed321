"""GraphQL overhead: 100 audit entries (13 fields) with one nested relation (`actor`), served by
the real app under uvicorn, against the same rows served as orjson from a plain route.

Prints requests/s and p50/p99 latency of both, their ratio (target: GraphQL >= 1/3 of plain),
and the SQL statements per request at 10 and 100 records (target: equal).

    .venv/bin/python -m bench.graphql_overhead [--seconds 8] [--concurrency 8]

Uses the PostgreSQL and Redis at localhost (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
import uuid

import httpx

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")

QUERY = """query Audit($org: ID!, $first: Int!) { auditLog(organizationId: $org, first: $first) {
  edges { node { id action actorEmail targetType targetId summary before after requestId createdAt
                 actor { id email name } } } } }"""


async def seed(base: str, db_url: str, rows: int) -> tuple[str, str, uuid.UUID]:
    """A user, an organization and `rows` audit entries written by the audit service."""
    from server.db.engine import Database
    from server.domains.platform import audit
    from server.security.principal import Principal
    from tests.support.client import GQL, create_org, register_and_login

    gql = GQL(base)
    token, user = await register_and_login(gql)
    org = await create_org(gql, token, "Bench Org")
    await gql.aclose()
    from graph.core.node import from_global_id

    _, org_id = from_global_id(org["id"])
    _, user_id = from_global_id(user["id"])
    db = Database(db_url)
    principal = Principal(user_id=user_id, email=user["email"])
    async with db.unit_of_work() as uow:
        for i in range(rows):
            audit.record(uow, principal, "bench.change", organization_id=org_id, target_type="Thing",
                         target_id=uuid.uuid4(), summary=f"changed thing {i}", before={"n": i}, after={"n": i + 1})
    await db.dispose()
    return token, org["id"], org_id


async def load(client: httpx.AsyncClient, make_request, seconds: float, concurrency: int) -> list[float]:  # noqa: ANN001
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            r = await make_request(client)
            latencies.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")

    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return latencies


def summary(name: str, lat: list[float], seconds: float) -> float:
    lat = sorted(lat)
    rps = len(lat) / seconds
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"{name:>8}: {rps:8.1f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(lat)} requests)")
    return rps


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    from bench.common import create_database, drop_database, start_app, stop_app, wait_healthy
    from server.migrate import upgrade

    name, db_url = await create_database()
    proc = None
    try:
        upgrade(db_url)
        proc, base = start_app("bench.overhead_app:make", db_url, REDIS)
        await wait_healthy(base)
        token, org_gid, org_id = await seed(base, db_url, 100)
        headers = {"authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as client:

            def gql(first: int):  # noqa: ANN202
                return lambda c: c.post("/graphql", json={"query": QUERY, "variables": {"org": org_gid, "first": first},
                                                          "operationName": "Audit"})

            def plain(first: int):  # noqa: ANN202
                return lambda c: c.get("/bench/plain-audit", params={"org": str(org_id), "first": first})

            # correctness: both return 100 items with actors
            g = (await gql(100)(client)).json()["data"]["auditLog"]["edges"]
            p = (await plain(100)(client)).json()["items"]
            assert len(g) == len(p) == 100 and g[0]["node"]["actor"]["email"] == p[0]["actor"]["email"]

            print("SQL statements per request (GraphQL):")
            counts = {}
            for first in (10, 100):
                r = await client.post("/graphql", headers={"x-count-statements": "1"},
                                      json={"query": QUERY, "variables": {"org": org_gid, "first": first}})
                counts[first] = int(r.headers["x-sql-statements"])
                print(f"  {first:>3} records: {counts[first]} statements")
            print(f"  constant: {'yes' if counts[10] == counts[100] else 'NO'}")

            if os.environ.get("BENCH_PROFILE"):  # py-spy the server while GraphQL is loaded
                spy = subprocess.Popen(["py-spy", "record", "-p", str(proc.pid), "-o", os.environ["BENCH_PROFILE"],
                                        "-f", "raw", "-d", "6"])
                await load(client, gql(100), 7.0, args.concurrency)
                spy.wait()
            await load(client, plain(100), 1.0, args.concurrency)  # warm-up
            await load(client, gql(100), 1.0, args.concurrency)
            print(f"\n100 records x 13 fields + actor, {args.concurrency} concurrent clients, {args.seconds:.0f} s each:")
            plain_rps = summary("plain", await load(client, plain(100), args.seconds, args.concurrency), args.seconds)
            gql_rps = summary("graphql", await load(client, gql(100), args.seconds, args.concurrency), args.seconds)
            ratio = gql_rps / plain_rps
            print(f"\nratio graphql/plain: {ratio:.2f}  (target >= 0.33: {'met' if ratio >= 1 / 3 else 'MISSED'})")
    finally:
        stop_app(proc)
        await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
