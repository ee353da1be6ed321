"""Pieces several benchmarks share: a private Redis database and percentiles."""

from __future__ import annotations

import uuid

import redis as sync_redis

LOCK = "insights:test-session"  # the same lock the test suite takes on a Redis database


def take_redis_db(base: str) -> tuple[str, sync_redis.Redis, str]:
    """A Redis database no test session or other benchmark is using, flushed: (url, client, lock token)."""
    token = uuid.uuid4().hex
    for n in range(15, 0, -1):
        url = f"{base}/{n}"
        client = sync_redis.Redis.from_url(url)
        if client.set(LOCK, token, nx=True, ex=3600):
            client.flushdb()
            client.set(LOCK, token, ex=3600)
            return url, client, token
        client.close()
    raise SystemExit("no free Redis database")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]
