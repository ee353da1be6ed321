"""`GET /metrics`: Prometheus text exposition of this process, plus job counts from the database."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from server import metrics
from server.jobs.models import Job


async def metrics_endpoint(request: Request) -> Response:
    rt = request.app.state.runtime
    try:
        async with rt.db.session() as s:
            rows = (await s.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))).all()
        metrics.jobs_by_status.clear()
        for kind, status, count in rows:
            metrics.jobs_by_status.labels(kind, status.value).set(count)
    except Exception:  # the database being down must not hide the process metrics
        pass
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
