"""One Runtime (engine + Redis client) per worker event loop, and the wrapper every job actor uses."""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable

from server.jobs import service as jobs
from server.jobs.models import Job
from server.runtime import Runtime
from server.settings import Settings

log = logging.getLogger("insights.worker")

_config: dict = {}
_runtimes: dict[int, Runtime] = {}


def configure(settings: Settings, database_url: str, redis_url: str) -> None:
    _config.update(settings=settings, database_url=database_url, redis_url=redis_url)


def configured() -> bool:
    return bool(_config)


def get_runtime() -> Runtime:
    loop = asyncio.get_running_loop()
    rt = _runtimes.get(id(loop))
    if rt is None:
        if not _config:
            settings = Settings()
            if not settings.database_url or not settings.redis_url:
                raise RuntimeError("worker needs INSIGHTS_DATABASE_URL and INSIGHTS_REDIS_URL")
            configure(settings, settings.database_url, settings.redis_url)
        rt = Runtime.create(_config["settings"], _config["database_url"], _config["redis_url"])
        _runtimes[id(loop)] = rt
    return rt


async def close_runtimes() -> None:
    for key, rt in list(_runtimes.items()):
        await rt.close()
        _runtimes.pop(key, None)


Handler = Callable[[Runtime, Job], Awaitable[dict | None]]


async def run_job(job_id: str, handler: Handler) -> None:
    """Claim the job (skip it if finished or taken), run the handler, record the outcome."""
    rt = get_runtime()
    jid = uuid.UUID(job_id)
    job = await jobs.claim(rt, jid)
    if job is None:
        log.info("job %s not claimable (finished, cancelled or running elsewhere)", job_id)
        return
    try:
        result = await handler(rt, job)
    except jobs.JobCancelled:
        await jobs.mark_cancelled(rt, jid)
        log.info("job %s cancelled", job_id)
    except Exception as e:
        log.exception("job %s (%s) failed", job_id, job.kind)
        await jobs.fail_or_retry(rt, jid, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
    else:
        await jobs.succeed(rt, jid, result)
