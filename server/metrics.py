"""Prometheus metrics of one process, served as text at `GET /metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry(auto_describe=True)

graphql_requests = Counter(
    "insights_graphql_requests_total", "GraphQL operations by operation name and type.",
    ["operation", "type"], registry=registry,
)
graphql_errors = Counter(
    "insights_graphql_errors_total", "GraphQL errors by operation name and error code.",
    ["operation", "code"], registry=registry,
)
graphql_latency = Histogram(
    "insights_graphql_duration_seconds", "GraphQL operation latency by operation name.",
    ["operation"], registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
http_requests = Counter(
    "insights_http_requests_total", "HTTP requests by route and status.", ["route", "status"], registry=registry,
)
webhook_batch_size = Histogram(
    "insights_webhook_batch_size", "Webhook deliveries stored per transaction (see server/domains/incidents/inbound.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry,
)
rate_limited = Counter("insights_rate_limited_total", "Requests refused by the rate limit.", registry=registry)
websocket_connections = Gauge(
    "insights_websocket_connections", "Open GraphQL websocket connections.", registry=registry,
)
jobs_by_status = Gauge(
    "insights_jobs", "Jobs by kind and status (read from the database at scrape time).",
    ["kind", "status"], registry=registry,
)
