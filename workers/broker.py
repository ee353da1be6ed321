"""The Dramatiq broker: Redis (external or embedded), async actors, no Dramatiq-level retries
(attempts and backoff live on the job row, where they are visible and survive restarts)."""

from __future__ import annotations

import logging
import uuid

import dramatiq
import dramatiq.broker
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from server.jobs.dispatch import register_broker

log = logging.getLogger("insights.worker")

QUEUES = ("default", "scans", "ai", "alerts")
# How long an idle consumer waits between polls of Redis (ms): an idle worker notices a new message
# within about this long. Dramatiq's default is 1000; every worker we start (in-process or
# `insights worker`) should pass this.
WORKER_TIMEOUT_MS = 100
_brokers: dict[str, dramatiq.Broker] = {}  # by Redis URL


class WorkerRuntimes(Middleware):
    """Closes the per-event-loop engines and Redis clients before the AsyncIO middleware stops the
    loop (after-hooks run in reverse order, so this must be added after AsyncIO)."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        from workers import runtime

        thread = get_event_loop_thread()
        if thread is None:
            return
        try:
            thread.run_coroutine(runtime.close_runtimes())
        except Exception:
            log.warning("closing worker runtimes failed", exc_info=True)


class JobDeadLetters(Middleware):
    """A message no actor can handle goes to Dramatiq's dead letters; fail its job visibly instead
    of leaving it pending for the sweeper to re-send forever."""

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        error = getattr(message, "_exception", None)
        if not isinstance(error, ActorNotFound) or not message.args:
            return
        try:
            job_id = uuid.UUID(str(message.args[0]))
        except ValueError:
            return
        from dramatiq.asyncio import get_event_loop_thread

        from server.jobs import service as jobs
        from workers import runtime

        thread = get_event_loop_thread()
        if thread is None:
            return

        async def fail() -> None:
            await jobs.dead_letter(runtime.get_runtime(), job_id,
                                   f"no worker handles job kind {message.actor_name!r}")

        try:
            thread.run_coroutine(fail())
        except Exception:
            log.warning("could not fail dead-lettered job %s", job_id, exc_info=True)


def boot_process(broker: dramatiq.Broker) -> None:
    """What Dramatiq's CLI does once per worker process, for workers we start ourselves: without it
    the TimeLimit middleware's timer thread never starts and time limits are not enforced."""
    if getattr(broker, "_insights_process_booted", False):
        return
    broker._insights_process_booted = True
    broker.emit_after("process_boot")


def setup_broker(redis_url: str) -> dramatiq.Broker:
    """The broker on this Redis, created once per process and URL.

    The first one becomes Dramatiq's process-wide broker (the one `@dramatiq.actor` declares on);
    a broker for another Redis (a second app in the same process, e.g. in tests) gets the same
    actors but does not take the process-wide place, and the API sends each job through the
    broker on its own Redis (see `server.jobs.dispatch`)."""
    broker = _brokers.get(redis_url)
    if broker is not None:
        return broker
    pool = redis.ConnectionPool.from_url(redis_url, socket_timeout=10, socket_connect_timeout=3,
                                         health_check_interval=30)
    broker = RedisBroker(connection_pool=pool, middleware=[
        AgeLimit(), TimeLimit(time_limit=30 * 60 * 1000), ShutdownNotifications(), Callbacks(), Pipelines(),
        CurrentMessage(), AsyncIO(), WorkerRuntimes(), JobDeadLetters(),
    ])
    for queue in QUEUES:
        broker.declare_queue(queue)
    current = dramatiq.broker.global_broker
    if current is not None:  # ours, or Dramatiq's implicit default: its actors are declared here too
        sync_actors(broker)
    if current is None or current not in _brokers.values():
        if current is not None:
            for name in current.get_declared_actors():
                current.get_actor(name).broker = broker
        dramatiq.set_broker(broker)
    _brokers[redis_url] = broker
    register_broker(broker, pool.connection_kwargs)
    return broker


def sync_actors(broker: dramatiq.Broker) -> None:
    """Declare on `broker` the actors declared on the process-wide broker that it lacks."""
    current = dramatiq.broker.global_broker
    if current is None or current is broker:
        return
    for name in current.get_declared_actors():
        if name not in broker.actors:
            broker.declare_actor(current.get_actor(name))
