"""A Dramatiq worker running inside the API process (zero-config mode and tests).

Only one per process: Dramatiq's AsyncIO middleware keeps one global event loop thread, which a
second worker would replace (and stop, when it stops) under the first one.
"""

from __future__ import annotations

import logging
import threading

import dramatiq

from server.settings import Settings
from workers import runtime
from workers.broker import QUEUES, WORKER_TIMEOUT_MS, boot_process, setup_broker, sync_actors

log = logging.getLogger("insights.worker")

_lock = threading.Lock()
_active: InProcessWorker | None = None


def active() -> InProcessWorker | None:
    """The in-process worker running in this process, if any."""
    return _active


class InProcessWorker:
    def __init__(self, settings: Settings, redis_url: str, database_url: str, threads: int = 1,
                 queues: tuple[str, ...] = QUEUES):
        self.settings, self.redis_url, self.database_url = settings, redis_url, database_url
        self.threads, self.queues = threads, queues
        self.worker: dramatiq.Worker | None = None

    def __enter__(self) -> InProcessWorker:
        global _active
        with _lock:
            if _active is not None:
                raise RuntimeError("an in-process worker is already running in this process")
            _active = self
        try:
            broker = setup_broker(self.redis_url)
            boot_process(broker)
            runtime.configure(self.settings, self.database_url, self.redis_url)
            import workers.actors  # noqa: F401  declares the actors (on the process-wide broker)

            sync_actors(broker)

            self.worker = dramatiq.Worker(broker, queues=set(self.queues), worker_threads=self.threads,
                                          worker_timeout=WORKER_TIMEOUT_MS)
            self.worker.start()
        except BaseException:
            _active = None
            raise
        log.info("in-process worker started (%d thread(s), queues %s)", self.threads, ",".join(self.queues))
        return self

    def pause(self) -> None:
        """Stop taking messages (they wait in Redis) until `resume()`; blocks until paused."""
        if self.worker is not None:
            self.worker.pause()

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.resume()

    def __exit__(self, *exc: object) -> None:
        global _active
        try:
            if self.worker is not None:
                self.worker.stop(timeout=5000)
                self.worker = None
        finally:
            with _lock:
                if _active is self:
                    _active = None
