"""Publishing change events on Redis channels. Messages only say what changed (`{type, id, ...}`);
subscribers re-read the rows with fresh loaders."""

from __future__ import annotations

import logging

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.db.engine import UnitOfWork

log = logging.getLogger("insights.pubsub")


def job_channel(job_id) -> str:  # noqa: ANN001
    return f"job:{job_id}"


def org_channel(org_id, topic: str) -> str:  # noqa: ANN001
    return f"org:{org_id}:{topic}"


async def publish(redis: aioredis.Redis, channel: str, message: dict) -> None:
    """Best effort: a lost event costs a client one refresh, never data."""
    try:
        await redis.publish(channel, orjson.dumps(message))
    except (RedisError, OSError) as e:
        log.warning("publish to %s failed: %s", channel, e)


def publish_after_commit(uow: UnitOfWork, redis: aioredis.Redis, channel: str, message: dict) -> None:
    async def send() -> None:
        await publish(redis, channel, message)

    uow.after_commit(send)
