"""Platform actors: organization export and periodic maintenance. Thin: the work is in services."""

from __future__ import annotations

import dramatiq

from server.domains.accounts import maintenance
from server.domains.platform import export
from workers.runtime import run_job


@dramatiq.actor(actor_name="organization_export", queue_name="default", time_limit=30 * 60 * 1000)
async def organization_export(job_id: str) -> None:
    await run_job(job_id, export.run_export)


@dramatiq.actor(actor_name="accounts_cleanup", queue_name="default", time_limit=5 * 60 * 1000)
async def accounts_cleanup(job_id: str) -> None:
    await run_job(job_id, maintenance.run_cleanup)
