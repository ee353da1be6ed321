"""The module `insights worker` hands to Dramatiq's CLI (`dramatiq workers.entrypoint ...`).

Dramatiq imports it in every worker process: it installs the Redis broker from
`INSIGHTS_REDIS_URL`, points the per-event-loop runtime at `INSIGHTS_DATABASE_URL`, and declares
the actors. Run workers with `insights worker`, which also makes idle workers poll every 100 ms
(Dramatiq's `dramatiq_worker_timeout`; its own default is one second).
"""

from __future__ import annotations

import logging

from server.settings import Settings
from workers import runtime
from workers.broker import setup_broker

settings = Settings()
if not settings.database_url or not settings.redis_url:
    # ImportError: Dramatiq's CLI reports it ("Failed to import module") and exits with status 2.
    raise ImportError("insights workers need INSIGHTS_DATABASE_URL and INSIGHTS_REDIS_URL")

broker = setup_broker(settings.redis_url)
runtime.configure(settings, settings.database_url, settings.redis_url)
logging.getLogger().setLevel(settings.log_level.upper())

import workers.actors  # noqa: E402,F401  declares the actors on the broker above
