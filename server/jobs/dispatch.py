"""Sending a job's Dramatiq message. The API never imports `workers/`: a message names its actor
by the job's kind, and whichever process runs the actor picks it up."""

from __future__ import annotations

import asyncio
import logging
import uuid

import dramatiq
from dramatiq import Message

log = logging.getLogger("insights.jobs")


def job_message(job_id: uuid.UUID, kind: str, queue: str) -> Message:
    return Message(queue_name=queue, actor_name=kind, args=(str(job_id),), kwargs={}, options={})


async def send_job(job_id: uuid.UUID, kind: str, queue: str, delay_ms: int | None = None) -> bool:
    """True when the broker took the message; False leaves the job for the sweeper to re-send."""
    try:
        broker = dramatiq.get_broker()
        await asyncio.to_thread(broker.enqueue, job_message(job_id, kind, queue), delay=delay_ms)
        return True
    except Exception as e:  # broker down: the job row stays pending and is re-sent later
        log.warning("could not enqueue job %s (%s): %s", job_id, kind, e)
        return False
