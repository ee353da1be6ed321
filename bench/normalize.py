"""Webhook normalization throughput: the pure normalizers alone, no database, no HTTP.

Two deliveries in their providers' real formats: a Grafana unified-alerting notification with 5
alerts, and a Datadog monitor notification (one alert). For each it prints normalizations/s and
alerts/s, best of several rounds.

Baseline, measured in the same run: parsing the same delivery's raw bytes with orjson (what the
REST shim does before normalizing), so the ratio says how much normalization adds to the cheapest
step every delivery already pays. Context: ingestion must reach >= 2,000 alerts/s end to end on
2 cores, so normalization should sit far above that (target > 50,000 alerts/s).

    .venv/bin/python -m bench.normalize [--seconds 0.5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.domains.incidents.normalizers import normalize  # noqa: E402

TARGET_ALERTS_PER_S = 50_000


def grafana_delivery(n: int = 5) -> dict:
    alerts = []
    for i in range(n):
        labels = {
            "alertname": f"CheckoutHighLatency{i}",
            "env": "production",
            "grafana_folder": "Payments",
            "service": "checkout-api" if i % 2 else "payments-gateway",
            "severity": ("critical", "warning", "info")[i % 3],
            "team": "payments",
            "pod": f"checkout-api-84d7c9b6f-{i:05d}",
        }
        alerts.append({
            "status": "firing",
            "labels": labels,
            "annotations": {
                "summary": f"p99 latency of checkout-api is 1.{i}s (threshold 1.2s)",
                "runbook_url": "https://runbooks.northwind.io/checkout/latency",
            },
            "startsAt": "2026-11-24T09:13:40Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": f"https://grafana.northwind.io/alerting/grafana/fe5kq8a9x3k0w{i}/view?orgId=1",
            "fingerprint": f"541d21a527c2aff{i}",
            "silenceURL": "https://grafana.northwind.io/alerting/silence/new?alertmanager=grafana&orgId=1",
            "dashboardURL": "https://grafana.northwind.io/d/checkout-overview?orgId=1",
            "panelURL": "https://grafana.northwind.io/d/checkout-overview?orgId=1&viewPanel=7",
            "ruleUID": f"fe5kq8a9x3k0w{i}",
            "values": {"B": 1.84, "C": 1},
            "valueString": "[ var='B' labels={service=checkout-api} value=1.84 ]",
            "orgId": 1,
        })
    return {
        "receiver": "insights-webhook", "status": "firing", "alerts": alerts,
        "groupLabels": {"team": "payments"}, "commonLabels": {"team": "payments"}, "commonAnnotations": {},
        "externalURL": "https://grafana.northwind.io/", "appVersion": "12.4.2", "version": "1",
        "groupKey": '{}/{team="payments"}:{team="payments"}', "truncatedAlerts": 0, "orgId": 1,
        "title": f"[FIRING:{n}] payments", "state": "alerting", "message": "**Firing**\n" * 40,
    }


def datadog_delivery() -> dict:
    return {
        "id": "8062937823429874123",
        "title": "[P2] [Triggered on {env:production,service:checkout-api}] Checkout API p99 latency above 800ms",
        "body": "%%%\n@webhook-insights\np99 latency of checkout-api is 1.12s (threshold 0.8s).\n\n"
                "[[Monitor Status](https://app.datadoghq.com/monitors/98765432?group=env%3Aproduction)]\n%%%",
        "date": "1795511523000", "last_updated": "1795511523000", "event_type": "query_alert_monitor",
        "org": {"id": "318804", "name": "Northwind Commerce"},
        "alert_id": "98765432", "alert_title": "[Triggered on {env:production,service:checkout-api}] Checkout API p99",
        "alert_status": "p99:trace.http.request over env:production,service:checkout-api was > 0.8",
        "alert_transition": "Triggered", "alert_type": "error", "alert_priority": "P2",
        "alert_metric": "trace.http.request", "alert_query": "avg(last_5m):p99:trace.http.request{*} > 0.8",
        "alert_scope": "env:production, service:checkout-api", "alert_cycle_key": "7081620447491431234",
        "aggreg_key": "4d1a7f0c2b9e83a56c0f1e2d3b4a5968", "hostname": "", "priority": "normal",
        "tags": "env:production,monitor,service:checkout-api,team:payments",
        "link": "https://app.datadoghq.com/event/jump_to?event_id=8062937823429874123",
        "snapshot": "https://p.datadoghq.com/snapshot/view/dd-snapshots-prod/org_318804/x.png",
    }


def rate(fn, seconds: float, rounds: int) -> float:
    """Best calls/s over `rounds` rounds of about `seconds` each."""
    batch = 1
    while True:  # size a batch that takes ~10 ms
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        if time.perf_counter() - t0 > 0.01:
            break
        batch *= 2
    best = 0.0
    for _ in range(rounds):
        calls, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for _ in range(batch):
                fn()
            calls += batch
        best = max(best, calls / elapsed)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    cases = [("grafana", grafana_delivery(5)), ("datadog", datadog_delivery())]
    print(f"{'delivery':<22}{'normalize/s':>13}{'alerts/s':>12}{'parse/s (orjson)':>18}{'norm/parse time':>17}")
    ok = True
    for provider, body in cases:
        raw = orjson.dumps(body)
        n_alerts = len(normalize(provider, body).alerts)
        norm = rate(lambda p=provider, b=body: normalize(p, b), args.seconds, args.rounds)
        parse = rate(lambda r=raw: orjson.loads(r), args.seconds, args.rounds)
        alerts_per_s = norm * n_alerts
        ok &= alerts_per_s >= TARGET_ALERTS_PER_S
        label = f"{provider} ({n_alerts} alert{'s' if n_alerts > 1 else ''})"
        print(f"{label:<22}{norm:>13,.0f}{alerts_per_s:>12,.0f}{parse:>18,.0f}{parse / norm:>16.1f}x")
    print(f"target > {TARGET_ALERTS_PER_S:,} alerts/s: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
