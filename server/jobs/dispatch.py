"""Sending a job's Dramatiq message. The API never imports `workers/`: a message names its actor
by the job's kind, and whichever process runs the actor picks it up.

A message goes to the broker on the same Redis as the sending runtime: a process may hold more
than one app (tests start servers against another, even an unreachable, Redis), and Dramatiq's
process-wide default broker belongs to only one of them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import dramatiq
import redis.asyncio as aioredis
from dramatiq import Message

log = logging.getLogger("insights.jobs")
SEND_TIMEOUT = 10.0  # seconds; past it the job stays pending and the sweeper sends it again

_brokers: dict[tuple, dramatiq.Broker] = {}


def redis_key(connection_kwargs: dict) -> tuple:
    """What identifies a Redis database, from a (sync or asyncio) connection pool's kwargs."""
    path = connection_kwargs.get("path")
    where = (path,) if path else (connection_kwargs.get("host", "localhost"), int(connection_kwargs.get("port", 6379)))
    return (*where, int(connection_kwargs.get("db") or 0))


def register_broker(broker: dramatiq.Broker, connection_kwargs: dict) -> None:
    _brokers[redis_key(connection_kwargs)] = broker


def broker_for(redis: aioredis.Redis | None) -> dramatiq.Broker:
    if redis is not None:
        broker = _brokers.get(redis_key(redis.connection_pool.connection_kwargs))
        if broker is not None:
            return broker
    return dramatiq.get_broker()


def job_message(job_id: uuid.UUID, kind: str, queue: str) -> Message:
    return Message(queue_name=queue, actor_name=kind, args=(str(job_id),), kwargs={}, options={})


async def send_job(job_id: uuid.UUID, kind: str, queue: str, delay_ms: int | None = None,
                   redis: aioredis.Redis | None = None) -> bool:
    """True when the broker took the message; False leaves the job for the sweeper to re-send.
    `redis`: the sender's Redis client, to pick the broker on the same Redis."""
    try:
        broker = broker_for(redis)
        await asyncio.wait_for(asyncio.to_thread(broker.enqueue, job_message(job_id, kind, queue), delay=delay_ms),
                               SEND_TIMEOUT)
        return True
    except Exception as e:  # broker down: the job row stays pending and is re-sent later
        log.warning("could not enqueue job %s (%s): %s", job_id, kind, e)
        return False
