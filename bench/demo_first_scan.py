"""A newcomer's first charts: from `projectCreateDemo` to a non-empty `metricSeries`.

Starts the real app under uvicorn (in a thread of this process) with its in-process Dramatiq
worker (one thread) against a throwaway PostgreSQL database and a free Redis database, with the
first demo scan on (`warehouse_demo_first_scan`, the default), then, through GraphQL over HTTP:
registers a user, creates an organization and calls `projectCreateDemo`, polling every 50 ms.
Printed, in seconds from sending the mutation:

- (a) file: the demo DuckDB file written (its modification time: it is renamed into place when
  complete) and the mutation's response;
- (b) scan: the first scan's job finished (`job { status }` through GraphQL; its `finishedAt`);
- (c) chart: `metricSeries` of the PROJECT scope over the default range (the last 7 days)
  returning points with counts (the first poll that does, and the first that holds the whole
  week the scan will write);
- peak RSS of this process (server, worker and bench client) during the run: VmHWM, reset
  before the mutation (/proc/self/clear_refs), beside the RSS before it.

    .venv/bin/python -m bench.demo_first_scan [--runs 1]

Uses the PostgreSQL and Redis at localhost (BENCH_DATABASE_ADMIN_URL, BENCH_REDIS_URL to change):
the database is created and dropped, the Redis database flushed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LOCK, create_database, drop_database, take_redis_db  # noqa: E402

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
POLL = 0.05
DEMO = """mutation($input: ProjectCreateDemoInput!) { projectCreateDemo(input: $input) {
  project { id } dataSource { databaseName } job { id status } userErrors { code message } } }"""
JOB = "query($id: ID!) { job(id: $id) { status error result } }"
SERIES = """query($p: ID!) { metricSeries(projectId: $p, scope: {kind: PROJECT}) { total points { bucket count } } }"""


def _status(field: str) -> int:
    """A /proc/self/status figure in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS


async def one_run(gql, token: str, org_id: str, duckdb_dir: Path, timeout: float) -> dict:  # noqa: ANN001
    rss_before = _status("VmRSS")
    _reset_peak()
    wall0, t0 = time.time(), time.perf_counter()
    payload = (await gql(DEMO, {"input": {"organizationId": org_id}}, token=token))["projectCreateDemo"]
    t_mutation = time.perf_counter() - t0
    if payload["userErrors"] or payload["job"] is None:
        raise SystemExit(f"projectCreateDemo: {payload}")
    files = list(duckdb_dir.glob(f"*/{payload['dataSource']['databaseName']}"))
    t_file = files[0].stat().st_mtime - wall0
    project, job = payload["project"]["id"], payload["job"]["id"]
    out: dict = {"file": t_file, "mutation": t_mutation}
    seen: list[tuple[float, list]] = []  # (seconds, the series' points with counts) per poll

    async def poll() -> list:
        series = (await gql(SERIES, {"p": project}, token=token))["metricSeries"]
        points = [p for p in series["points"] if p["count"]]
        seen.append((time.perf_counter() - t0, points))
        return points

    while "scan" not in out:
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"not done after {timeout:.0f} s: {out}")
        await poll()
        status = (await gql(JOB, {"id": job}, token=token))["job"]
        if status["status"] in ("failed", "cancelled"):
            raise SystemExit(f"first scan: {status}")
        if status["status"] == "succeeded":
            out["scan"], out["result"] = time.perf_counter() - t0, status["result"]
        else:
            await asyncio.sleep(POLL)
    final = await poll()
    if not final:
        raise SystemExit("the first scan finished and metricSeries is still empty")
    out["chart"], first = next((t, points) for t, points in seen if points)
    out["chart_points"], out["points"] = len(first), len(final)
    out["week"] = next(t for t, points in seen if points == final)  # the default range, as the scan leaves it
    out["rss_before_mb"] = rss_before / 1024
    out["peak_rss_mb"] = _status("VmHWM") / 1024
    return out


async def main_async(args: argparse.Namespace) -> None:
    from server.migrate import upgrade
    from server.settings import Settings
    from tests.support.client import GQL, create_org, register_and_login
    from tests.support.live import LiveServer

    name, db_url = await create_database()
    redis_url, lock_client, lock_token = take_redis_db(REDIS)
    home = Path(tempfile.mkdtemp(prefix="insights-bench-demo-"))
    server = None
    results = []
    try:
        await asyncio.to_thread(upgrade, db_url)
        settings = Settings(home=home, secret_key="bench-secret-" + "x" * 40, warehouse_demo_first_scan=True,
                            rate_limit_per_minute=10_000_000, rate_limit_per_hour=10_000_000)
        server = LiveServer(settings, db_url, redis_url, worker_threads=1).start()
        gql = GQL(server.url)
        try:
            token, _ = await register_and_login(gql)
            org = await create_org(gql, token, "Bench Demo Org")
            for _ in range(args.runs):
                results.append(await one_run(gql, token, org["id"], settings.duckdb_dir, args.timeout))
        finally:
            await gql.aclose()
    finally:
        if server is not None:
            server.stop()
        if lock_client.get(LOCK) == lock_token.encode():
            lock_client.flushdb()
        lock_client.close()
        await drop_database(name)
        shutil.rmtree(home, ignore_errors=True)

    print(f"projectCreateDemo -> first charts, {args.runs} run(s), 1 in-process worker thread "
          f"(seconds from sending the mutation; median over runs)")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    print(f"  (a) DuckDB file written          {med('file'):7.2f} s   (mutation answered {med('mutation'):.2f} s)")
    print(f"  (c) metricSeries non-empty       {med('chart'):7.2f} s   ({results[-1]['chart_points']} hourly points "
          "with counts at first)")
    print(f"      metricSeries whole week      {med('week'):7.2f} s   ({results[-1]['points']} hourly points)")
    print(f"  (b) first scan job finished      {med('scan'):7.2f} s")
    print(f"  peak RSS {max(r['peak_rss_mb'] for r in results):.0f} MB (RSS before the mutation "
          f"{results[0]['rss_before_mb']:.0f} MB; this process: server, worker and client)")
    for i, r in enumerate(results):
        print(f"  run {i + 1}: file {r['file']:.2f}  chart {r['chart']:.2f}  week {r['week']:.2f}  scan {r['scan']:.2f}"
              f"  peak {r['peak_rss_mb']:.0f} MB")
    stats = results[-1]["result"] or {}
    print("  scan job result: " + ", ".join(f"{k} {v}" for k, v in stats.items() if not isinstance(v, (dict, list))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
