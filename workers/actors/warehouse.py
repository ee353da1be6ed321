"""Warehouse actors: thin, the work is in server/domains/warehouse. Each job kind is an actor of
the same name on the `scans` queue; a handler raises `jobs.JobFailed(message)` for an expected
failure (the job fails at once with that message, no retry).

To add one (scan, preview, replay, event groups): write `async def run_x(rt, job) -> dict` in the
domain (it reads `job.payload`, calls `jobs.report_progress` between phases, which also raises
JobCancelled when someone cancelled, and queries the warehouse through scan.py's `_warehouse`, so
a cancel stops a long query at once), create the job with `jobs.create_job(uow, rt, kind=X_KIND,
queue="scans", ...)` in the service, and declare the actor here with `actor_name=X_KIND`.
"""

from __future__ import annotations

import dramatiq

from server.domains.warehouse import data_sources, scan_configs, scan_jobs
from workers.runtime import run_job


@dramatiq.actor(actor_name=data_sources.TEST_KIND, queue_name=data_sources.QUEUE, time_limit=15 * 60 * 1000)
async def data_source_test(job_id: str) -> None:
    await run_job(job_id, data_sources.run_test)


@dramatiq.actor(actor_name=scan_configs.SCAN_KIND, queue_name=scan_configs.QUEUE, time_limit=6 * 3600 * 1000)
async def scan_run(job_id: str) -> None:
    await run_job(job_id, scan_jobs.run_scan)


@dramatiq.actor(actor_name=scan_configs.REPLAY_KIND, queue_name=scan_configs.QUEUE, time_limit=12 * 3600 * 1000)
async def metrics_replay(job_id: str) -> None:
    await run_job(job_id, scan_jobs.run_replay)


@dramatiq.actor(actor_name=scan_configs.PREVIEW_KIND, queue_name=scan_configs.QUEUE, time_limit=15 * 60 * 1000)
async def scan_preview(job_id: str) -> None:
    await run_job(job_id, scan_jobs.run_preview)


@dramatiq.actor(actor_name=scan_configs.EVENT_GROUPS_KIND, queue_name=scan_configs.QUEUE, time_limit=15 * 60 * 1000)
async def event_groups_apply(job_id: str) -> None:
    await run_job(job_id, scan_jobs.run_event_groups)
