"""Live incident feed fan-out: how long after the webhook's 202 every one of 1,000 websocket
subscribers of `incidentEvents` has the new incident.

One real server (tests/support/live.py LiveServer: uvicorn, the GraphQL view, the REST shim, the
pub/sub hub) runs in its own process against a throwaway PostgreSQL database and a free Redis
database. Subscriber processes open `--subscribers` graphql-transport-ws connections as a member of
one organization, each subscribed to

    subscription { incidentEvents(organizationId: ...) { kind incident { id title status severity } } }

The main process posts `--events` generic alerts, one at a time `--interval` seconds apart, to the
organization's ingest URL (`POST /api/v1/webhooks/ingest/{key}`); each opens a new incident, so each
is one CREATED event. Latency = receipt at a subscriber - the 202 answer to the post (clocks: the
machine's monotonic clock, shared by the processes). Every (event, subscriber) pair counts.

Baseline, measured in the same run over the same connections: a graphql-transport-ws `ping` sent
on every connection at once, until its `pong` (the server's and the clients' websocket fan-out
floor, without pub/sub, database or GraphQL execution). Target: p99 < 100 ms.

Also printed: the server process's CPU time (user + system, from psutil) per webhook delivery
(ingest, correlation, pub/sub and the fan-out to every subscriber) and per ping round, and the
subscriber processes' CPU per delivery (they share the machine's two cores with the server, so
their receiving is part of every figure here). Unlike the latencies these move little when other
work shares the machine, so they compare two versions of the server better than p99 does on a
busy machine.

    .venv/bin/python -m bench.incident_fanout [--subscribers 1000] [--events 40] [--interval 0.3] [--procs 2]
                                              [--ablate share,prepare,runner] [--no-deflate]

`--ablate` switches the fan-out optimizations off in the server process (monkeypatched here, not
settings of the product), to measure what each is worth on the same machine and load:
`share` (one execution per event shared by identical subscriptions, graph/core/shared.py),
`prepare` (the hub prepares each message once before handing it out, server/pubsub/hub.py),
`runner` (graph/core/extensions.StreamingExtensionsRunner).

Uses the PostgreSQL and Redis at localhost (BENCH_DATABASE_ADMIN_URL, BENCH_REDIS_URL to change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LOCK, create_database, drop_database, pct, take_redis_db  # noqa: E402

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
SUBSCRIPTION = """subscription($org: ID!) { incidentEvents(organizationId: $org) {
  kind incident { id title status severity } } }"""


def raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def summary(name: str, ms: list[float]) -> str:
    return (f"{name:<34} p50 {statistics.median(ms):7.1f} ms   p99 {pct(ms, 0.99):7.1f} ms   "
            f"max {max(ms):7.1f} ms   (n={len(ms)})")


# --- the server process ----------------------------------------------------------------------------

ABLATIONS = {
    "share": "each subscriber executes the selection itself (graph/core/shared.py off)",
    "prepare": "no per-message preparation in the hub: each subscriber awaits the shared reads",
    "runner": "Strawberry's own extensions runner for every streamed result",
}


def ablate(names: list[str]) -> None:
    """Switch optimizations off in the server process, to measure what each is worth."""
    if "share" in names:
        import graph.incidents.subscriptions as subscriptions

        subscriptions.share = lambda payload, key: payload
    if "prepare" in names:
        from server.pubsub.hub import PubSubHub

        subscribe = PubSubHub.subscribe
        PubSubHub.subscribe = lambda self, channel, prepare=None: subscribe(self, channel)  # type: ignore[method-assign]
    if "runner" in names:
        import strawberry

        from graph.core.extensions import InsightsSchema

        InsightsSchema.create_extensions_runner = strawberry.Schema.create_extensions_runner  # type: ignore[method-assign]


def run_server(db_url: str, redis_url: str, home: str, out: mp.Queue, stop: mp.Event, profile: str | None,
               gc_thresholds: str | None, ablations: list[str] = ()) -> None:
    raise_file_limit(65536)
    ablate(list(ablations))
    from server.settings import Settings
    from tests.support.live import LiveServer

    settings = Settings(home=Path(home), secret_key="bench-secret-" + "x" * 40, rate_limit_per_minute=1_000_000,
                        rate_limit_per_hour=10_000_000, worker_threads=0)
    server = LiveServer(settings, db_url, redis_url, worker_threads=0)
    if profile is None:
        server.start()
        if gc_thresholds:  # after start-up, so it overrides server.app.tune_gc
            import gc

            gc.set_threshold(*map(int, gc_thresholds.split(",")))
        out.put(server.url)
        stop.wait()
        server.stop()
        return
    import cProfile
    import threading

    def stopper() -> None:
        while not server.server.started:
            time.sleep(0.05)
        out.put(server.url)
        stop.wait()
        server.server.should_exit = True

    threading.Thread(target=stopper, daemon=True).start()
    profiler = cProfile.Profile()
    profiler.runcall(server._run)  # uvicorn in this process's main thread, profiled
    profiler.dump_stats(profile)


# --- subscriber processes ---------------------------------------------------------------------------

def run_subscribers(ws_url: str, token: str, org_id: str, count: int, commands: mp.Queue, results: mp.Queue,
                    deflate: bool) -> None:
    raise_file_limit(count * 2 + 256)
    asyncio.run(_subscribers(ws_url, token, org_id, count, commands, results, deflate))


async def _subscribers(ws_url: str, token: str, org_id: str, count: int, commands: mp.Queue,
                       results: mp.Queue, deflate: bool) -> None:
    from websockets.asyncio.client import connect

    frames: list[list[tuple[float, str]]] = [[] for _ in range(count)]

    def parsed() -> tuple[list[list[tuple[str, float]]], list[list[float]]]:
        received: list[list[tuple[str, float]]] = [[] for _ in range(count)]
        pongs: list[list[float]] = [[] for _ in range(count)]
        for i, socket_frames in enumerate(frames):
            for at, raw in socket_frames:
                msg = json.loads(raw)
                if msg.get("type") == "next":
                    received[i].append((msg["payload"]["data"]["incidentEvents"]["incident"]["id"], at))
                elif msg.get("type") == "pong":
                    pongs[i].append(at)
                elif msg.get("type") == "error":
                    raise RuntimeError(f"subscription error: {msg}")
        return received, pongs
    sockets = []

    async def open_one(i: int) -> None:
        ws = await connect(ws_url, subprotocols=["graphql-transport-ws"], proxy=None, open_timeout=60,
                           max_queue=None, ping_interval=None, compression="deflate" if deflate else None)
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": SUBSCRIPTION, "variables": {"org": org_id}}}))
        sockets.append(ws)

        async def read() -> None:
            # Only timestamp here; frames are parsed once the run is over, so the clients' own work
            # between two receipts stays small.
            async for raw in ws:
                frames[i].append((time.perf_counter(), raw))

        asyncio.get_running_loop().create_task(read())

    for start in range(0, count, 50):  # connect in waves: the server's accept queue is finite
        await asyncio.gather(*(open_one(i) for i in range(start, min(count, start + 50))))
    results.put(("ready", count))
    while True:
        command = await asyncio.to_thread(commands.get)
        if command[0] == "count":  # how many subscribers saw incident `command[1]`
            received, _ = parsed()
            results.put(("count", sum(any(gid == command[1] for gid, _ in r) for r in received)))
        elif command[0] == "ping":
            sent = time.perf_counter()
            for ws in sockets:
                await ws.send('{"type":"ping"}')
            results.put(("pinged", sent))
        elif command[0] == "collect":
            results.put(("collected", *parsed()))
        elif command[0] == "stop":
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            results.put(("stopped",))
            return


# --- the benchmark ---------------------------------------------------------------------------------

async def setup_tenant(http: httpx.AsyncClient) -> tuple[str, str, str]:
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"

    async def gql(query: str, variables: dict, token: str | None = None) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        r = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body = r.json()
        assert not body.get("errors"), body
        return body["data"]

    await gql("mutation($i: UserRegisterInput!) { userRegister(input: $i) { userErrors { message } } }",
              {"i": {"email": email, "password": password}})
    token = (await gql("mutation($i: UserLoginInput!) { userLogin(input: $i) { token } }",
                       {"i": {"email": email, "password": password}}))["userLogin"]["token"]
    org = (await gql("mutation($i: OrganizationCreateInput!) { organizationCreate(input: $i) { organization { id } } }",
                     {"i": {"name": "Fan-out"}}, token))["organizationCreate"]["organization"]["id"]
    key = (await gql("""mutation($i: WebhookConfigCreateInput!) { webhookConfigCreate(input: $i) { key } }""",
                     {"i": {"organizationId": org, "name": "bench", "provider": "GENERIC"}}, token))["webhookConfigCreate"]["key"]
    return token, org, key


async def post_alert(http: httpx.AsyncClient, key: str, n: int) -> tuple[str, float]:
    # words of letters only (the correlation engine ignores ids and numbers): every alert is its own incident
    words = ["".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(3)]
    body = {"title": " ".join(words), "service": words[0], "severity": "high"}
    r = await http.post(f"/api/v1/webhooks/ingest/{key}", json=body)
    answered = time.perf_counter()
    assert r.status_code == 202, r.text
    incidents = r.json()["incidents"]
    assert len(incidents) == 1 and incidents[0] not in _seen, "each alert must open a new incident"
    _seen.add(incidents[0])
    return incidents[0], answered


_seen: set[str] = set()


def ask(commands: list[mp.Queue], results: mp.Queue, command: tuple) -> list[tuple]:
    for q in commands:
        q.put(command)
    return [results.get(timeout=120) for _ in commands]


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def measure(args: argparse.Namespace, db_url: str, redis_url: str) -> tuple[list[float], int, list[float], dict]:
    ctx = mp.get_context("spawn")
    urls, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=run_server, args=(db_url, redis_url, tempfile.mkdtemp(prefix="insights-bench-"),
                                                  urls, stop, args.profile_server, args.server_gc, args.ablate),
                         daemon=True)
    server.start()
    base = urls.get(timeout=60)
    procs, commands, results = [], [], ctx.Queue()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
            token, org, key = await setup_tenant(http)
            ws_url = base.replace("http://", "ws://") + "/graphql"
            per = [args.subscribers // args.procs + (1 if i < args.subscribers % args.procs else 0)
                   for i in range(args.procs)]
            for n in per:
                q = ctx.Queue()
                p = ctx.Process(target=run_subscribers, args=(ws_url, token, org, n, q, results, not args.no_deflate),
                                daemon=True)
                p.start()
                procs.append(p)
                commands.append(q)
            for _ in procs:
                assert results.get(timeout=300)[0] == "ready"
            # warm up until every subscriber receives an event (the last SUBSCRIBEs may still be in flight)
            seen = 0
            for attempt in range(20):
                gid, _ = await post_alert(http, key, -1 - attempt)
                await asyncio.sleep(1.0)
                seen = sum(r[1] for r in ask(commands, results, ("count", gid)))
                if seen == args.subscribers:
                    break
            else:
                raise SystemExit(f"only {seen} of {args.subscribers} subscribers receive events")
            for _ in range(3):  # warm caches and connections
                await post_alert(http, key, -100)
                await asyncio.sleep(args.interval)
            answered: dict[str, float] = {}
            cpu: dict[str, float] = {}
            cpu_before = cpu_seconds(server.pid)
            clients_before = sum(cpu_seconds(p.pid) for p in procs)
            for n in range(args.events):
                gid, at = await post_alert(http, key, n)
                answered[gid] = at
                await asyncio.sleep(args.interval)
            await asyncio.sleep(1.0)
            cpu["event"] = (cpu_seconds(server.pid) - cpu_before) / args.events
            cpu["clients"] = (sum(cpu_seconds(p.pid) for p in procs) - clients_before) / args.events
            rounds: list[list[float]] = [[] for _ in commands]
            cpu_before = cpu_seconds(server.pid)
            for _ in range(args.pings):
                for i, r in enumerate(ask(commands, results, ("ping",))):
                    rounds[i].append(r[1])
                await asyncio.sleep(args.interval)
            await asyncio.sleep(0.5)
            cpu["ping"] = (cpu_seconds(server.pid) - cpu_before) / args.pings
            latencies: list[float] = []
            ping_ms: list[float] = []
            missing = 0
            for i, q in enumerate(commands):
                q.put(("collect",))
                _, received, pongs = results.get(timeout=120)
                for per_socket in received:
                    got = {gid: t for gid, t in per_socket if gid in answered}
                    missing += len(answered) - len(got)
                    latencies += [(t - answered[gid]) * 1000 for gid, t in got.items()]
                for per_socket in pongs:
                    ping_ms += [(t - sent) * 1000 for sent, t in zip(rounds[i], per_socket)]
            ask(commands, results, ("stop",))
    finally:
        for p in procs:
            p.join(10)
        stop.set()
        server.join(20)
    return latencies, missing, ping_ms, cpu


async def main_async(args: argparse.Namespace) -> None:
    from server.migrate import upgrade

    raise_file_limit(args.subscribers * 2 + 1024)
    name, db_url = await create_database()
    redis_url, lock_client, token = take_redis_db(REDIS)
    try:
        await asyncio.to_thread(upgrade, db_url)
        latencies, missing, ping_ms, cpu = await measure(args, db_url, redis_url)
    finally:
        if lock_client.get(LOCK) == token.encode():
            lock_client.flushdb()
        lock_client.close()
        await drop_database(name)
    print(f"incidentEvents fan-out: {args.subscribers} websocket subscribers (graphql-transport-ws, "
          f"{args.procs} client processes), {args.events} webhook deliveries {args.interval:.2f} s apart, "
          f"each opening one incident (CREATED); one server process, {os.cpu_count()} cores; "
          f"server gc thresholds {args.server_gc or 'as the app sets them (server.app.tune_gc)'}, permessage-deflate {'off' if args.no_deflate else 'offered'}"
          + (f"; switched off: {', '.join(args.ablate)}" if args.ablate else ""))
    print(summary("202 -> receipt, every subscriber", latencies))
    print(summary("baseline: ws ping -> pong, all", ping_ms))
    print(f"server CPU per webhook delivery (ingest + fan-out) {cpu['event'] * 1000:6.1f} ms   "
          f"per ping round {cpu['ping'] * 1000:6.1f} ms   (load average {os.getloadavg()[0]:.1f})")
    print(f"subscriber processes' CPU per webhook delivery (receiving) {cpu['clients'] * 1000:6.1f} ms")
    print(f"events missed: {missing} of {args.events * args.subscribers}")
    ratio = pct(latencies, 0.99) / max(pct(ping_ms, 0.99), 1e-3)
    print(f"ratio p99 fan-out / p99 baseline: {ratio:.1f}x")
    verdict = "meets" if pct(latencies, 0.99) < 100 and missing == 0 else "MISSES"
    print(f"target p99 < 100 ms: {verdict} ({pct(latencies, 0.99):.1f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between two alerts")
    parser.add_argument("--pings", type=int, default=20, help="baseline rounds")
    parser.add_argument("--procs", type=int, default=2, help="subscriber processes")
    parser.add_argument("--profile-server", metavar="PATH", help="write the server process's cProfile stats here")
    parser.add_argument("--server-gc", metavar="G0,G1,G2",
                        help="override gc.set_threshold in the server process (default: what server.app.tune_gc sets)")
    parser.add_argument("--ablate", type=lambda v: [a for a in v.split(",") if a], default=[],
                        metavar="share,prepare,runner",
                        help="switch server optimizations off to measure them: " + "; ".join(
                            f"{k}: {v}" for k, v in ABLATIONS.items()))
    parser.add_argument("--no-deflate", action="store_true",
                        help="clients do not offer permessage-deflate (browsers do; the default offers it)")
    args = parser.parse_args()
    if unknown := set(args.ablate) - set(ABLATIONS):
        parser.error(f"--ablate: unknown {', '.join(sorted(unknown))} (known: {', '.join(ABLATIONS)})")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
