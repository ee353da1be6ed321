"""Sustained webhook ingestion: Grafana deliveries of 5 alerts each, POSTed to `/api/grafana/alerts`
of the real app under uvicorn (its own process), stored in PostgreSQL with dedup and correlation.

Prints deliveries/s, alerts/s, p50/p99 latency, and, as the baseline measured in the same run,
the same HTTP stack answering a route that touches no database (`GET /api/v1/webhooks/schema/generic`).
Targets: >= 2,000 alerts/s and p99 < 50 ms on a 2-core machine.

    .venv/bin/python -m bench.ingest_grafana [--seconds 60] [--concurrency 12] [--orgs 1] [--profile FILE]

The workload: a pool of 1,500 alert fingerprints over 60 services in 6 environments; each delivery
picks 5 of them (mostly firing, some resolved), so new alerts correlate into open incidents
(same service / title) while repeats of open ones are deduplicated; 3 % of deliveries are exact
re-sends of an earlier one (a duplicate delivery, answered `duplicate: true`). Alerts/s counts the
alerts of accepted, non-duplicate deliveries.

Uses the PostgreSQL and Redis at localhost (a throwaway database is created and dropped); the load
generator is this process (httpx, bounded concurrency), the server another. `--profile FILE` runs
py-spy on the server for the measured period and writes its collapsed stacks to FILE (and a
summary of the hottest frames to stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

import asyncpg
import httpx
import orjson

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
ALERTS_PER_DELIVERY = 5
SERVICES = [f"svc-{i:02d}" for i in range(60)]
ENVIRONMENTS = ["production", "staging", "eu-prod", "us-prod", "canary", "dev"]
SYMPTOMS = ["HighLatency", "ErrorRate", "PodCrashLooping", "DiskPressure", "CPUThrottling", "QueueBacklog",
            "ConnectionPoolExhausted", "CertificateExpiry", "ReplicationLag", "MemoryLeak"]
SEVERITIES = ["critical", "warning", "high", "info", "p2", "error"]


async def analyze(db_url: str) -> None:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def make_app():  # noqa: ANN201
    """uvicorn factory (`bench.ingest_grafana:make_app`): the real app, no in-process worker."""
    from server.app import create_app
    from server.settings import Settings

    return create_app(Settings(), os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"], worker_threads=0)


class Workload:
    def __init__(self, seed: int = 7, fingerprints: int = 1500):
        self.rng = random.Random(seed)
        self.pool = []
        for i in range(fingerprints):
            service = SERVICES[i % len(SERVICES)]
            self.pool.append({
                "fingerprint": f"{i:016x}",
                "service": service,
                "env": ENVIRONMENTS[(i // len(SERVICES)) % len(ENVIRONMENTS)],
                "alertname": f"{service.replace('-', '')}{SYMPTOMS[i % len(SYMPTOMS)]}",
                "severity": SEVERITIES[i % len(SEVERITIES)],
            })
        self.sent: collections.deque[bytes] = collections.deque(maxlen=500)
        self.n = 0

    def empty(self) -> bytes:
        """A valid delivery without alerts: what the shim costs without ingestion."""
        self.n += 1
        return orjson.dumps({"receiver": "insights", "status": "firing", "alerts": [], "groupKey": f"e{self.n}",
                             "version": "1", "truncatedAlerts": 0})

    def delivery(self) -> bytes:
        self.n += 1
        if self.sent and self.rng.random() < 0.03:
            return self.rng.choice(self.sent)  # a re-send: duplicate delivery
        alerts = []
        for a in self.rng.sample(self.pool, ALERTS_PER_DELIVERY):
            status = "resolved" if self.rng.random() < 0.15 else "firing"
            alerts.append({
                "status": status,
                "labels": {"alertname": a["alertname"], "service": a["service"], "env": a["env"],
                           "severity": a["severity"], "team": "bench", "instance": f"{a['service']}-{self.n % 7}"},
                "annotations": {"summary": f"{a['alertname']} on {a['service']} ({self.n})"},
                "startsAt": "2026-11-24T09:00:00Z",
                "endsAt": "2026-11-24T09:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": f"https://grafana.example/alerting/{a['fingerprint']}/view",
                "fingerprint": a["fingerprint"],
                "values": {"B": self.rng.random()},
            })
        body = orjson.dumps({"receiver": "insights", "status": "firing", "orgId": 1, "alerts": alerts,
                             "groupKey": f"{{}}:{{n={self.n}}}", "groupLabels": {}, "commonLabels": {"team": "bench"},
                             "commonAnnotations": {}, "externalURL": "https://grafana.example/", "version": "1",
                             "truncatedAlerts": 0, "title": "[FIRING]", "state": "alerting", "message": "bench"})
        self.sent.append(body)
        return body


async def setup(base: str, orgs: int) -> list[str]:
    """A user, `orgs` organizations and one Grafana webhook config each (through GraphQL)."""
    from tests.support.client import GQL, create_org, register_and_login

    gql = GQL(base)
    token, _ = await register_and_login(gql)
    keys = []
    for i in range(orgs):
        org = await create_org(gql, token, f"Bench {i}")
        data = await gql("""mutation($i: WebhookConfigCreateInput!) { webhookConfigCreate(input: $i) {
          key userErrors { message } } }""", {"i": {"organizationId": org["id"], "name": "grafana", "provider": "GRAFANA",
                                                     "rateLimitPerMinute": 1_000_000}}, token=token)
        keys.append(data["webhookConfigCreate"]["key"])
    await gql.aclose()
    return keys


async def run_load(base: str, keys: list[str], seconds: float, concurrency: int, workload: Workload,
                   empty: bool = False) -> dict:
    latencies: list[float] = []
    outcome = collections.Counter()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker(i: int) -> None:
            headers = {"content-type": "application/json", "authorization": f"Bearer {keys[i % len(keys)]}"}
            while time.perf_counter() < deadline:
                body = workload.empty() if empty else workload.delivery()
                t = time.perf_counter()
                r = await client.post("/api/grafana/alerts", content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 202:
                    outcome[f"http {r.status_code}"] += 1
                    if outcome[f"http {r.status_code}"] <= 3:
                        print(f"  unexpected {r.status_code}: {r.text[:300]}", file=sys.stderr)
                    continue
                answer = orjson.loads(r.content)
                if answer["duplicate"]:
                    outcome["duplicate"] += 1
                else:
                    outcome["accepted"] += 1
                    outcome["alerts"] += 0 if empty else ALERTS_PER_DELIVERY

        started = time.perf_counter()
        await asyncio.gather(*[worker(i) for i in range(concurrency)])
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "outcome": outcome, "elapsed": elapsed}


WRK_SCRIPT = r"""
local bodies = {}
local threads = {}
local counter = 1
function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end
function init(args)
   local path, keys, nthreads = args[1], args[2], tonumber(args[3])
   local list = {}
   for k in string.gmatch(keys, "[^,]+") do table.insert(list, k) end
   local key = list[(id - 1) % #list + 1]
   local i = 0
   for line in io.lines(path) do
      if i % nthreads == id - 1 then table.insert(bodies, line) end
      i = i + 1
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. key
   n, accepted, duplicate, other = 0, 0, 0, 0
end
function request()
   n = n + 1
   return wrk.format(nil, nil, nil, bodies[(n - 1) % #bodies + 1])
end
function response(status, headers, body)
   if status == 202 then
      if string.find(body, '"duplicate":true', 1, true) then duplicate = duplicate + 1 else accepted = accepted + 1 end
   else
      other = other + 1
   end
end
function done(summary, latency, requests)
   local a, d, o = 0, 0, 0
   for _, t in ipairs(threads) do
      a = a + t:get("accepted"); d = d + t:get("duplicate"); o = o + t:get("other")
   end
   io.write(string.format("WRK accepted=%d duplicate=%d other=%d p50=%d p99=%d max=%d seconds=%f errors=%d\n",
      a, d, o, latency:percentile(50), latency:percentile(99), latency.max, summary.duration / 1e6,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def run_wrk(base: str, keys: list[str], seconds: float, concurrency: int, bodies: list[bytes], threads: int = 2) -> dict:
    """wrk (C, cheap on CPU) posting `bodies` in order, spread over its threads."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        body_file, script = os.path.join(tmp, "bodies.jsonl"), os.path.join(tmp, "ingest.lua")
        with open(body_file, "wb") as f:
            f.write(b"\n".join(bodies) + b"\n")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT)
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "10s",
                              "-s", script, base + "/api/grafana/alerts", "--", body_file, ",".join(keys), str(threads)],
                             capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    fields = dict(item.split("=") for item in line.split()[1:])
    outcome = collections.Counter({"accepted": int(fields["accepted"]), "duplicate": int(fields["duplicate"])})
    if int(fields["other"]):
        outcome["http other"] = int(fields["other"])
    if int(fields["errors"]):
        outcome["socket errors"] = int(fields["errors"])
    return {"outcome": outcome, "elapsed": float(fields["seconds"]), "p50": int(fields["p50"]) / 1000,
            "p99": int(fields["p99"]) / 1000, "max": int(fields["max"]) / 1000}


async def run_baseline(base: str, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await client.get("/api/v1/webhooks/schema/generic")
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "elapsed": elapsed}


async def batch_sizes(base: str) -> str:
    """Deliveries per transaction, from the server's /metrics (one process's, with --workers > 1)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        text = (await client.get("/metrics")).text
    values = {}
    for line in text.splitlines():
        if line.startswith(("insights_webhook_batch_size_count", "insights_webhook_batch_size_sum")):
            name, value = line.split()
            values[name] = float(value)
    count, total = values.get("insights_webhook_batch_size_count", 0), values.get("insights_webhook_batch_size_sum", 0)
    return f"transactions: {count:.0f} for {total:.0f} deliveries (mean batch {total / max(count, 1):.1f})"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] * 1000 if s else float("nan")


async def table_counts(db_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        out = {}
        for name, sql in (("deliveries", "SELECT count(*) FROM webhook_deliveries"),
                          ("duplicate deliveries", "SELECT count(*) FROM webhook_deliveries WHERE status = 'duplicate'"),
                          ("alerts (rows)", "SELECT count(*) FROM alerts"),
                          ("alert repeats deduplicated", "SELECT coalesce(sum(occurrence_count - 1), 0) FROM alerts"),
                          ("incidents", "SELECT count(*) FROM incidents"),
                          ("correlated alerts", "SELECT count(*) FROM alerts WHERE correlation_reason IS NOT NULL"),
                          ("config accepted counter", "SELECT sum(deliveries_accepted) FROM webhook_config_stats")):
            out[name] = await conn.fetchval(sql)
        return out
    finally:
        await conn.close()


def summarize_profile(path: str, top: int = 25) -> None:
    """Self and total time per frame from py-spy's collapsed stacks."""
    own, total, samples = collections.Counter(), collections.Counter(), 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            samples += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    print(f"\nprofile: {samples} samples; hottest frames (self %, total %):")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / samples:5.1f}  {100 * total[frame] / samples:5.1f}  {frame[:150]}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--orgs", type=int, default=1, help="organizations (one config each); wrk: one per wrk thread")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--loadgen", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--shim-only", action="store_true",
                    help="deliveries without alerts: the cost of the REST shim and delivery storage alone")
    ap.add_argument("--profile", help="write py-spy collapsed stacks of the server to this file")
    ap.add_argument("--windows", type=int, default=1,
                    help="wrk: measure in this many consecutive runs and print each (shows drift as data grows)")
    args = ap.parse_args()

    from bench.common import create_database, drop_database, start_app, stop_app, wait_healthy
    from server.migrate import upgrade

    slow_ms = os.environ.get("BENCH_LOG_SLOW_MS")  # diagnostics: PostgreSQL logs statements slower than this
    extra = [x.strip() for x in os.environ.get("BENCH_DB_SETTINGS", "").split(";") if x.strip()]  # e.g. auto_explain
    name, db_url = await create_database(*([f"log_min_duration_statement = {int(slow_ms)}"] if slow_ms else []), *extra)
    proc = spy = None
    try:
        upgrade(db_url)
        proc, base = start_app("bench.ingest_grafana:make_app", db_url, REDIS, "--workers", str(args.workers),
                               INSIGHTS_RATE_LIMIT_PER_MINUTE="100000", INSIGHTS_RATE_LIMIT_PER_HOUR="1000000",
                               INSIGHTS_DB_POOL_SIZE=str(max(10, args.concurrency + 4)))
        await wait_healthy(base, attempts=300)
        keys = await setup(base, args.orgs)
        workload = Workload()
        make = workload.empty if args.shim_only else workload.delivery
        per_delivery = 0 if args.shim_only else ALERTS_PER_DELIVERY

        baseline = await run_baseline(base, min(10.0, args.seconds / 3), args.concurrency)
        if args.loadgen == "wrk":
            run_wrk(base, keys, args.warmup, args.concurrency, [make() for _ in range(int(args.warmup * 1000))])
            bodies = [make() for _ in range(int(min(args.seconds * 1000, 80_000)))]
        else:
            await run_load(base, keys, args.warmup, args.concurrency, workload, empty=args.shim_only)
        # Statistics as a running server has them (autovacuum analyzes a table within a minute of
        # its first thousand rows); a brand-new database's make the planner guess.
        await analyze(db_url)
        if args.profile:
            py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
            spy = subprocess.Popen([py_spy, "record", "--pid", str(proc.pid), "--subprocesses", "--format", "raw",
                                    "--output", args.profile, "--duration", str(int(args.seconds)), "--rate", "200",
                                    "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu_before = _cpu_seconds(proc.pid)
        db_pids = await backend_pids(db_url)
        db_cpu_before = sum(_cpu_seconds(p, children=False) for p in db_pids)
        if args.loadgen == "wrk":
            windows, per = [], len(bodies) // args.windows
            for w in range(args.windows):
                windows.append(run_wrk(base, keys, args.seconds / args.windows, args.concurrency,
                                       bodies[w * per:(w + 1) * per]))
                if args.windows > 1:
                    r = windows[-1]
                    print(f"  window {w + 1}: {sum(r['outcome'].values()) / r['elapsed']:7.1f} deliveries/s, "
                          f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms")
            result = {"outcome": sum((r["outcome"] for r in windows), collections.Counter()),
                      "elapsed": sum(r["elapsed"] for r in windows)}
            # one window: wrk's percentiles; several: the median of the medians and the worst p99
            p50 = statistics.median(r["p50"] for r in windows)
            p99, worst = max(r["p99"] for r in windows), max(r["max"] for r in windows)
        else:
            result = await run_load(base, keys, args.seconds, args.concurrency, workload, empty=args.shim_only)
            lat = result["latencies"]
            p50, p99, worst = pct(lat, 0.5), pct(lat, 0.99), max(lat) * 1000
        server_cpu = _cpu_seconds(proc.pid) - cpu_before
        db_cpu = sum(_cpu_seconds(p, children=False) for p in db_pids) - db_cpu_before
        if spy:
            spy.wait(60)

        out, elapsed = result["outcome"], result["elapsed"]
        deliveries = out["accepted"] + out["duplicate"]
        alerts = out["accepted"] * per_delivery
        print(f"Grafana deliveries of {per_delivery} alerts ({'shim only' if args.shim_only else 'with correlation'}), "
              f"{args.concurrency} concurrent senders ({args.loadgen}), {args.orgs} organization(s), "
              f"{args.workers} server process(es), {elapsed:.0f} s:")
        print(f"  deliveries/s  {deliveries / elapsed:8.1f}   ({out['accepted']} accepted, {out['duplicate']} duplicates"
              + "".join(f", {v} {k}" for k, v in out.items() if k not in ("accepted", "duplicate", "alerts")) + ")")
        if not args.shim_only:
            print(f"  alerts/s      {alerts / elapsed:8.1f}   (target >= 2000: {'met' if alerts / elapsed >= 2000 else 'MISSED'})")
        print(f"  latency       p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   max {worst:6.1f} ms"
              f"   (target p99 < 50 ms: {'met' if p99 < 50 else 'MISSED'})")
        print(f"  server CPU    {1000 * server_cpu / max(deliveries, 1):6.2f} ms per delivery "
              f"({100 * server_cpu / elapsed:.0f} % of one core)")
        print(f"  database CPU  {1000 * db_cpu / max(deliveries, 1):6.2f} ms per delivery "
              f"({100 * db_cpu / elapsed:.0f} % of one core; the server's {len(db_pids)} PostgreSQL backends)")
        b = baseline["latencies"]
        print(f"  baseline (same stack, no database: GET schema, httpx): {len(b) / baseline['elapsed']:.0f} req/s, "
              f"p50 {pct(b, 0.5):.2f} ms, p99 {pct(b, 0.99):.2f} ms")
        print(f"  ratio ingest/baseline: throughput {deliveries / elapsed / (len(b) / baseline['elapsed']):.2f}")
        await asyncio.sleep(1)  # requests still in flight when the load generator stopped
        print("  " + await batch_sizes(base))
        counts = await table_counts(db_url)
        print("  database: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if args.profile:
            summarize_profile(args.profile)
    finally:
        stop_app(proc)
        if os.environ.get("BENCH_KEEP_DATABASE"):
            print(f"  kept database {name} (BENCH_KEEP_DATABASE)")
        else:
            await drop_database(name)


async def backend_pids(db_url: str) -> list[int]:
    """The PostgreSQL backends connected to the bench database (the server's pool, once warmed up)."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid()")
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


def _cpu_seconds(pid: int, children: bool = True) -> float:
    """CPU time (user + system) of a process and its children processes (uvicorn workers)."""
    total = 0.0
    pids = [pid]
    try:
        for line in open(f"/proc/{pid}/task/{pid}/children").read().split() if children else ():
            pids.append(int(line))
    except OSError:
        pass
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


if __name__ == "__main__":
    asyncio.run(main())
