"""The Dramatiq broker: Redis (external or embedded), async actors, no Dramatiq-level retries
(attempts and backoff live on the job row, where they are visible and survive restarts)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, AsyncIO, Callbacks, CurrentMessage, Pipelines, ShutdownNotifications, TimeLimit

QUEUES = ("default", "scans", "ai", "alerts")
_current_url: str | None = None


def setup_broker(redis_url: str) -> dramatiq.Broker:
    """Install the broker once per process (idempotent for the same URL)."""
    global _current_url
    if _current_url == redis_url:
        return dramatiq.get_broker()
    broker = RedisBroker(url=redis_url, middleware=[
        AgeLimit(), TimeLimit(time_limit=30 * 60 * 1000), ShutdownNotifications(), Callbacks(), Pipelines(),
        CurrentMessage(), AsyncIO(),
    ])
    for queue in QUEUES:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    _current_url = redis_url
    return broker
