"""Labelled alert storms for the correlation engine: reproducible (seeded), with known grouping.

A fictional shop (checkout, payments, inventory, search, auth, db-primary, redis-cache, cdn,
api-gateway, recommendations, notifications, shipping) in prod and staging. A storm is eight hours
of alerts from concurrent incidents (about 24, plus the staging twins of some) and background
noise, each alert labelled with the incident (`group`) that really caused it. What makes it hard:

- cascades (db-primary -> payments/inventory -> checkout, redis-cache -> auth/search, ...) whose
  services share no title: only the co-occurrence learned from `history` links them. The history
  (600 past incidents) is drawn like the storms: 60 % single background alerts, solo deploy
  regressions, random node failures, cascades with dropouts, so the learned associations are weak
  (a service is in 10-40 % of its partner's incidents), as in real organizations;
- noisy titles: numbers, hosts, pods, request ids, UUIDs, IPs, "[FIRING:1]"-style prefixes;
- flapping alerts (firing, resolved, firing again; same fingerprint) and rules firing on 1-8
  hosts (one fingerprint per host, a shared group key for 60 % of rules);
- node failures: 2-4 unrelated services alerting about one node, related only by the title;
  background alerts with generic titles (high CPU, memory, CrashLoopBackOff) that are not;
- unrelated background alerts of a service, separated from its other alerts by more than the
  window; the same regression released to staging and prod at once (same titles, two incidents);
- alerts without a service (5 %) or without an environment (3 %): the latter can join a
  same-service incident of the other environment, as they would in production.

Unrelated incidents are kept apart, in one environment, from incidents and background alerts of
the same or a RELATED service within the window: there the truth is unknowable (a payments alert
five minutes into a db-primary outage is part of it for any person or program). `collisions`
(default 0) lets that share of incidents and background alerts ignore the rule, for a harder set
whose extra errors no correlator can avoid; bench/correlation_quality.py reports both.

    .venv/bin/python bench/correlation_data.py [--seeds 1 2] [--collisions 0.1] [--out storms.json]

tests/fixtures/correlation/storms.json holds seeds 1 and 2 (the first two, not picked by score),
written by ``--seeds 1 2 --out tests/fixtures/correlation/storms.json``.

`generate(seed)` returns a dict: {version, seed, start, window_minutes, collisions,
forced_collisions, history: [[service]], alerts: [{id, at (seconds after start), status,
fingerprint, group_key, title, service, environment, group, kind}]}; resolved events carry only
id, at, status, fingerprint, group.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from pathlib import Path

START = "2025-03-14T08:00:00+00:00"
WINDOW_MINUTES = 30  # the default correlation window the storms are built around

SERVICES = [
    "checkout", "payments", "inventory", "search", "auth", "db-primary", "redis-cache", "cdn",
    "api-gateway", "recommendations", "notifications", "shipping",
]

# Each service's own alert rules: (rule, title template). Placeholders are filled with noise.
RULES: dict[str, list[tuple[str, str]]] = {
    "db-primary": [
        ("pg_conn", "PostgreSQL connections exhausted on {dbhost}: {n}/500 used"),
        ("pg_lag", "Replication lag {n}s on replica {dbhost}"),
        ("pg_slow", "Slow queries on db-primary: p95 {ms}ms over last {m}m"),
        ("pg_disk", "Disk usage {pct}% on {dbhost} /var/lib/postgresql"),
        ("pg_locks", "Lock waits piling up on orders table ({n} blocked sessions)"),
    ],
    "payments": [
        ("pay_err", "payments: error rate {pct}% above 5% threshold"),
        ("pay_psp", "Payment provider timeouts ({n} in 5m), last txn {uuid}"),
        ("pay_lat", "payments API p99 latency {ms}ms"),
        ("pay_refund", "Refund worker queue depth {n}"),
    ],
    "checkout": [
        ("co_5xx", "checkout 5xx rate {pct}% on {pod}"),
        ("co_lat", "Checkout latency p99 {ms}ms > 1500ms"),
        ("co_fail", "Cart submit failures: {n} orders affected"),
        ("co_apdex", "Checkout Apdex dropped to 0.{n}"),
    ],
    "inventory": [
        ("inv_sync", "Inventory sync job failed for warehouse WH-{n}"),
        ("inv_stale", "Stock levels stale for {m} minutes"),
        ("inv_lat", "inventory-api p95 latency {ms}ms"),
    ],
    "search": [
        ("se_lat", "Search query latency p99 {ms}ms on {pod}"),
        ("se_index", "Search index lag {n} documents behind"),
        ("se_empty", "Zero-result searches spiked to {pct}%"),
    ],
    "auth": [
        ("au_login", "Login failures spiking: {n}/min from {ip}"),
        ("au_token", "Token validation errors {pct}% on {pod}"),
        ("au_session", "Session store unreachable from auth ({n} retries)"),
    ],
    "redis-cache": [
        ("rc_mem", "Redis memory {pct}% of maxmemory on {cachehost}"),
        ("rc_evict", "Redis evictions {n}/s on {cachehost}"),
        ("rc_conn", "Redis connection refused from {ip}:6379"),
    ],
    "cdn": [
        ("cdn_5xx", "CDN edge 5xx ratio {pct}% in POP {pop}"),
        ("cdn_origin", "CDN origin fetch errors {n}/min"),
        ("cdn_cert", "TLS handshake failures at edge {pop}"),
    ],
    "api-gateway": [
        ("gw_5xx", "api-gateway upstream 5xx {pct}% route /v{n}/orders"),
        ("gw_lat", "Gateway p99 latency {ms}ms on {pod}"),
        ("gw_ratelimit", "Rate limiter rejecting {pct}% of requests"),
    ],
    "recommendations": [
        ("rec_model", "Recommendation model fallback served {pct}% of requests"),
        ("rec_lat", "recommendations p95 latency {ms}ms"),
    ],
    "notifications": [
        ("no_queue", "Notification queue backlog {n} messages"),
        ("no_smtp", "SMTP relay rejecting mail: {n} bounces in 10m"),
        ("no_push", "Push delivery failures {pct}%"),
    ],
    "shipping": [
        ("sh_label", "Shipping label API errors {n}/min"),
        ("sh_rates", "Carrier rate lookup timeouts ({n} in 5m)"),
    ],
}

# Titles any service can produce: the trap for title similarity (background noise uses these too).
GENERIC_RULES = [
    ("cpu", "High CPU usage on {host} ({pct}%)"),
    ("mem", "Memory usage {pct}% on {host}"),
    ("oom", "Container OOMKilled: {pod}"),
    ("crash", "Pod {pod} in CrashLoopBackOff"),
]
NODE_RULES = [
    ("node_notready", "Node {node} NotReady"),
    ("node_evict", "Pod {pod} evicted from node {node} (DiskPressure)"),
]

# Incident kinds: root services, then downstream (service, probability, parent) in onset order.
CASCADES: dict[str, tuple[list[str], list[tuple[str, float, str]]]] = {
    "db_outage": (["db-primary"], [("payments", 0.85, "db-primary"), ("inventory", 0.6, "db-primary"),
                                   ("checkout", 0.8, "payments"), ("api-gateway", 0.3, "checkout")]),
    "cache_outage": (["redis-cache"], [("auth", 0.75, "redis-cache"), ("search", 0.6, "redis-cache"),
                                       ("recommendations", 0.45, "redis-cache")]),
    "cdn_degradation": (["cdn"], [("api-gateway", 0.4, "cdn")]),
    "auth_failure": (["auth"], [("api-gateway", 0.7, "auth"), ("checkout", 0.5, "auth")]),
    "payment_provider": (["payments"], [("checkout", 0.85, "payments"), ("notifications", 0.3, "payments")]),
    "queue_backlog": (["notifications"], [("shipping", 0.65, "notifications")]),
    "search_index": (["search"], [("inventory", 0.4, "search"), ("recommendations", 0.3, "search")]),
}
BACKGROUND_SHARE = 0.6  # of past incidents: a storm has ~60 background alerts for ~30 incidents
# Services that fail together: those of one cascade, directly or through another (checkout and
# db-primary). An alert of one near an outage of the other is taken for part of it by any
# correlator (and by people), so the generator keeps them apart but for a few hard cases.
RELATED: dict[str, set[str]] = {service: set() for service in SERVICES}
for _roots, _downstream in CASCADES.values():
    _cluster = set(_roots) | {_service for _service, _probability, _parent in _downstream}
    for _service in _cluster:
        RELATED[_service] |= _cluster - {_service}

KIND_WEIGHTS = {
    "db_outage": 0.12, "cache_outage": 0.10, "cdn_degradation": 0.06, "auth_failure": 0.08,
    "payment_provider": 0.08, "queue_backlog": 0.06, "search_index": 0.07, "deploy_regression": 0.33,
    "node_failure": 0.10,
}


class _Noise:
    """Fills title placeholders with the values that change every time an alert fires."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def hexid(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def fill(self, template: str, service: str, node: str) -> str:
        r = self.rng
        values = {
            "n": r.randint(2, 900), "m": r.randint(5, 60), "ms": r.randint(800, 9000), "pct": r.randint(6, 99),
            "uuid": f"{self.hexid(8)}-{self.hexid(4)}-4{self.hexid(3)}-a{self.hexid(3)}-{self.hexid(12)}",
            "ip": f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            "pod": f"{service}-{self.hexid(9)}-{self.hexid(5)}",
            "host": r.choice([f"{service}-{r.randint(1, 12):02d}", f"ip-10-0-{r.randint(0, 255)}-{r.randint(1, 254)}"]),
            "dbhost": f"pg-{r.choice(['main', 'replica'])}-{r.randint(1, 3)}.internal",
            "cachehost": f"cache-{r.randint(1, 6)}.internal",
            "pop": r.choice(["FRA", "AMS", "IAD", "SIN", "GRU"]) + str(r.randint(1, 9)),
            "node": node,
        }
        title = template.format(**values)
        prefix = r.random()
        if prefix < 0.12:
            title = f"[FIRING:{r.randint(1, 4)}] {title}"
        elif prefix < 0.2:
            title = f"CRITICAL: {title}"
        return title


def _history(rng: random.Random, incidents: int) -> list[list[str]]:
    """Past incidents' service sets, drawn like the storms: what the co-occurrence model learns.

    As in the storms, most past incidents are single background alerts (share `BACKGROUND_SHARE`),
    so a service that often alerts alone gets a weaker association, as it should.
    """
    out = []
    kinds, weights = zip(*KIND_WEIGHTS.items())
    for _ in range(incidents):
        kind = "background" if rng.random() < BACKGROUND_SHARE else rng.choices(kinds, weights)[0]
        if kind in ("background", "deploy_regression"):
            services = [rng.choice(SERVICES)]
        elif kind == "node_failure":
            services = rng.sample(SERVICES, rng.randint(2, 4))
        else:
            services = _cascade_services(rng, kind)
        out.append(sorted(services))
    return out


def _cascade_services(rng: random.Random, kind: str) -> list[str]:
    roots, downstream = CASCADES[kind]
    present = set(roots)
    for service, probability, parent in downstream:
        if parent in present and rng.random() < probability:
            present.add(service)
    return sorted(present)


def generate(seed: int = 1, *, hours: float = 8.0, incidents: int = 24, background: int = 60,
             history_incidents: int = 600, collisions: float = 0.0) -> dict:
    """One storm with ground truth; the same seed gives the same storm.

    Incidents start at random times. When one would hit a service in an environment where another
    incident alerts, within the window, on the same service or one it depends on (RELATED), it is
    moved to another time, except with probability `collisions`: those stay, as cases no
    correlator can separate (two outages of dependent services at once), and cost precision.
    """
    rng = random.Random(seed)
    noise = _Noise(rng)
    horizon = hours * 3600
    margin = (WINDOW_MINUTES + 5) * 60
    events: list[dict] = []
    kinds, weights = zip(*KIND_WEIGHTS.items())
    counter = {"fp": 0}

    def fingerprint(*parts: object) -> str:
        counter["fp"] += 1
        raw = ":".join(map(str, parts)) + f":{seed}:{counter['fp']}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    def fire_rule(out: list[dict], group: str, kind: str, service: str, env: str, rule: tuple[str, str],
                  onset: float, node: str, hosts: int | None = None) -> None:
        """One rule firing on 1-8 hosts, each host its own fingerprint, some flapping."""
        name, template = rule
        hosts = hosts or rng.choices([1, 2, 3, 5, 8], [0.45, 0.2, 0.15, 0.12, 0.08])[0]
        group_key = f"{env}/{service}/{name}/{fingerprint(group)[:6]}" if rng.random() < 0.6 else None
        for _ in range(hosts):
            fp = fingerprint(env, service, name)
            at = onset + rng.uniform(0, 240)
            firings = 1 + (rng.choices([1, 2, 3], [0.5, 0.3, 0.2])[0] if rng.random() < 0.35 else 0)
            for _ in range(firings):
                out.append({
                    "at": at, "status": "firing", "fingerprint": fp, "group_key": group_key,
                    "title": noise.fill(template, service, node),
                    "service": service if rng.random() >= 0.05 else None,
                    "environment": env if rng.random() >= 0.03 else None,
                    "group": group, "kind": kind, "_where": (service, env),
                })
                at += rng.uniform(60, 300)
                out.append({"at": at, "status": "resolved", "fingerprint": fp, "group": group})
                at += rng.uniform(60, 480)

    def fire_service(out: list[dict], group: str, kind: str, service: str, env: str, onset: float, node: str) -> None:
        own = RULES[service]
        chosen = [rng.choice(own)]
        if rng.random() < 0.4:
            chosen.append(rng.choice(own + GENERIC_RULES))
        for rule in dict.fromkeys(chosen):
            fire_rule(out, group, kind, service, env, rule, onset + rng.uniform(0, 120), node)

    def incident(group: str, kind: str, env: str, start: float) -> list[dict]:
        out: list[dict] = []
        node = f"node-{rng.randint(1, 40)}.eu-west-1.compute.internal"
        if kind == "deploy_regression":
            service = rng.choice(SERVICES)
            fire_service(out, group, kind, service, env, start, node)
            if rng.random() < 0.35:  # the same release hit the other environment too: same titles
                twin_env = "staging" if env == "prod" else "prod"
                fire_service(out, f"{group}-twin", kind, service, twin_env, start + rng.uniform(-300, 300), node)
        elif kind == "node_failure":
            for service in rng.sample(SERVICES, rng.randint(2, 4)):
                fire_rule(out, group, kind, service, env, rng.choice(NODE_RULES), start + rng.uniform(0, 180),
                          node, hosts=1)
        else:
            roots, downstream = CASCADES[kind]
            onset = {root: start for root in roots}
            for root in roots:
                fire_service(out, group, kind, root, env, start, node)
            for service, probability, parent in downstream:
                if parent in onset and rng.random() < probability:
                    onset[service] = onset[parent] + rng.uniform(30, 360)
                    fire_service(out, group, kind, service, env, onset[service], node)
        return out

    def collides(batch: list[dict], related: bool) -> bool:
        """Does `batch` alert, in one environment, on a service that others alert on within the
        window (or, with `related`, on a service depending on it)?"""
        spans: dict[tuple, tuple[float, float]] = {}
        for e in batch:
            if e["status"] == "firing":
                low, high = spans.get(e["_where"], (e["at"], e["at"]))
                spans[e["_where"]] = (min(low, e["at"]), max(high, e["at"]))
        for e in events:
            if e["status"] != "firing":
                continue
            service, env = e["_where"]
            for (other, other_env), (low, high) in spans.items():
                near = other == service or (related and service in RELATED[other])
                if near and env == other_env and low - margin <= e["at"] <= high + margin:
                    return True
        return False

    forced = 0  # incidents that found no time free of related activity: they collide anyway
    for number in range(incidents):
        kind = rng.choices(kinds, weights)[0]
        env = "prod" if rng.random() < 0.7 else "staging"
        allow_collision = rng.random() < collisions
        for attempt in range(100):
            batch = incident(f"incident-{number}", kind, env, rng.uniform(0, horizon - 3600))
            if allow_collision or not collides(batch, related=True):
                break
        else:
            forced += 1
        events.extend(batch)

    # Background: single (sometimes flapping) alerts with nothing else on that service and
    # environment within window + 5 minutes on either side (nor, but for a share `collisions`, on
    # a service depending on it); generic titles half of the time.
    placed = 0
    for attempt in range(background * 50):
        if placed == background:
            break
        service = rng.choice(SERVICES)
        env = "prod" if rng.random() < 0.6 else "staging"
        rule = rng.choice(RULES[service] + GENERIC_RULES)
        batch: list[dict] = []
        fire_rule(batch, f"background-{placed}", "background", service, env, rule, rng.uniform(0, horizon), "", hosts=1)
        if not collides(batch, related=rng.random() >= collisions):
            events.extend(batch)
            placed += 1

    events.sort(key=lambda e: (e["at"], e["status"] != "firing"))
    alerts = []
    for number, event in enumerate(events):
        event.pop("_where", None)
        alerts.append({"id": number, **event, "at": round(event["at"], 1)})
    return {
        "version": 1, "seed": seed, "start": START, "window_minutes": WINDOW_MINUTES,
        "collisions": collisions, "forced_collisions": forced,
        "history": _history(rng, history_incidents), "alerts": alerts,
    }


def summary(storm: dict) -> str:
    firing = [a for a in storm["alerts"] if a["status"] == "firing"]
    groups = Counter(a["group"] for a in firing)
    kinds = Counter(a["kind"] for a in firing)
    background = sum(1 for g in groups if g.startswith("background"))
    return (f"seed {storm['seed']}: {len(firing)} firing alerts ({len(storm['alerts']) - len(firing)} resolved "
            f"events), {len(groups)} true groups ({len(groups) - background} incidents, largest "
            f"{max(groups.values())} alerts; {background} background), "
            f"{sum(1 for a in firing if a['service'] is None)} without service, "
            f"{sum(1 for a in firing if a['environment'] is None)} without environment, "
            f"collisions {storm['collisions']} (+{storm['forced_collisions']} forced), {len(storm['history'])} "
            f"past incidents\n  alerts by kind: {dict(kinds.most_common())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--collisions", type=float, default=0.0)
    parser.add_argument("--out", type=Path, help='write {"version": 1, "storms": [...]} as compact JSON')
    args = parser.parse_args(argv)
    storms = [generate(seed, collisions=args.collisions) for seed in args.seeds]
    for storm in storms:
        print(summary(storm))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"version": 1, "storms": storms}, separators=(",", ":")) + "\n")
        print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
