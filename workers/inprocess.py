"""A Dramatiq worker running inside the API process (zero-config mode and tests)."""

from __future__ import annotations

import logging

import dramatiq

from server.settings import Settings
from workers import runtime
from workers.broker import QUEUES, setup_broker

log = logging.getLogger("insights.worker")

# Low, so an idle worker notices a new message within ~100 ms.
WORKER_TIMEOUT_MS = 100


class InProcessWorker:
    def __init__(self, settings: Settings, redis_url: str, database_url: str, threads: int = 1,
                 queues: tuple[str, ...] = QUEUES):
        self.settings, self.redis_url, self.database_url = settings, redis_url, database_url
        self.threads, self.queues = threads, queues
        self.worker: dramatiq.Worker | None = None

    def __enter__(self) -> "InProcessWorker":
        broker = setup_broker(self.redis_url)
        runtime.configure(self.settings, self.database_url, self.redis_url)
        import workers.actors  # noqa: F401  declares the actors

        self.worker = dramatiq.Worker(broker, queues=set(self.queues), worker_threads=self.threads,
                                      worker_timeout=WORKER_TIMEOUT_MS)
        self.worker.start()
        log.info("in-process worker started (%d thread(s), queues %s)", self.threads, ",".join(self.queues))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=5000)
            self.worker = None
