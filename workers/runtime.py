"""One Runtime (engine + Redis client) per worker event loop, and the wrapper every job actor uses."""

from __future__ import annotations

import asyncio
import contextlib
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
# id(loop) -> (loop, runtime); the loop is kept to tell a live loop from a new one at a reused id.
_runtimes: dict[int, tuple[asyncio.AbstractEventLoop, Runtime]] = {}


def configure(settings: Settings, database_url: str, redis_url: str) -> None:
    _config.update(settings=settings, database_url=database_url, redis_url=redis_url)


def configured() -> bool:
    return bool(_config)


def get_runtime() -> Runtime:
    loop = asyncio.get_running_loop()
    entry = _runtimes.get(id(loop))
    if entry is not None and entry[0] is loop:
        return entry[1]
    if not _config:
        settings = Settings()
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("worker needs INSIGHTS_DATABASE_URL and INSIGHTS_REDIS_URL")
        configure(settings, settings.database_url, settings.redis_url)
    rt = Runtime.create(_config["settings"], _config["database_url"], _config["redis_url"])
    _runtimes[id(loop)] = (loop, rt)
    return rt


async def close_runtimes() -> None:
    """Close the runtime of the running loop (others belong to loops we cannot await on)."""
    loop = asyncio.get_running_loop()
    entry = _runtimes.pop(id(loop), None)
    if entry is not None and entry[0] is loop:
        await entry[1].close()


Handler = Callable[[Runtime, Job], Awaitable[dict | None]]


def heartbeat_interval(rt: Runtime) -> float:
    """Often enough that the sweeper never mistakes a busy job for a lost one."""
    return max(0.5, min(30.0, rt.settings.job_stale_running_seconds / 4))


async def _heartbeat(rt: Runtime, job_id: uuid.UUID, attempt: int) -> None:
    interval = heartbeat_interval(rt)
    while True:
        await asyncio.sleep(interval)
        try:
            if not await jobs.heartbeat(rt, job_id, attempt):
                return
        except Exception as e:  # a missed beat is not fatal; the next one may get through
            log.warning("heartbeat of job %s failed: %s", job_id, e)


async def run_job(job_id: str, handler: Handler) -> None:
    """Claim the job (skip it if finished, cancelled or taken), run the handler with a heartbeat,
    and record the outcome: succeeded, cancelled, retried with backoff, or failed."""
    rt = get_runtime()
    jid = uuid.UUID(job_id)
    job = await jobs.claim(rt, jid)
    if job is None:
        log.info("job %s not claimable (finished, cancelled or running elsewhere)", job_id)
        return
    attempt = job.attempts
    beat = asyncio.create_task(_heartbeat(rt, jid, attempt), name=f"heartbeat-{job_id}")
    try:
        with jobs.running_attempt(jid, attempt):
            try:
                result = await handler(rt, job)
            except jobs.JobCancelled:
                await jobs.mark_cancelled(rt, jid, attempt)
                log.info("job %s cancelled", job_id)
            except jobs.JobFailed as e:
                await jobs.fail(rt, jid, e.message, attempt)
                log.info("job %s (%s) failed: %s", job_id, job.kind, e.message)
            except jobs.JobLost:
                log.warning("job %s (attempt %d) was taken over or finished elsewhere; dropping it", job_id, attempt)
            except asyncio.CancelledError:
                # Dramatiq's time limit (or a forced shutdown) cancelled us: record it, then stop.
                await asyncio.shield(jobs.fail_or_retry(rt, jid, "interrupted: time limit exceeded or worker stopped",
                                                        attempt))
                raise
            except Exception as e:
                log.exception("job %s (%s) failed", job_id, job.kind)
                await jobs.fail_or_retry(rt, jid, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}", attempt)
            else:
                await jobs.succeed(rt, jid, result, attempt)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await beat
