"""`GET /metrics`: Prometheus text exposition of this process, plus job counts from the database."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from server import metrics
from server.jobs.models import Job

log = logging.getLogger("insights.metrics")


async def metrics_endpoint(request: Request) -> Response:
    rt = request.app.state.runtime

    async def job_counts() -> list:
        async with rt.db.session() as s:
            return (await s.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))).all()

    try:
        rows = await asyncio.wait_for(job_counts(), 2.0)
    except Exception:  # the database being down must not hide (or hang) the process metrics
        log.warning("/metrics: job counts unavailable", exc_info=True)
        rows = []
    metrics.jobs_by_status.clear()  # never report an earlier scrape's counts as current
    for kind, status, count in rows:
        metrics.jobs_by_status.labels(kind, status.value).set(count)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
