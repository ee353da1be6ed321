"""The `Job` node: status, progress and result of long-running work."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graph.core.node import Node, register_node, to_global_id
from graph.core.scalars import JSON
from server.jobs import service as jobs
from server.jobs.models import Job as JobRow
from server.jobs.models import JobStatus as JobStatusEnum

JobStatus = strawberry.enum(JobStatusEnum, name="JobStatus")


@strawberry.type(description="Long-running work (exports, scans, analyses). Poll it or subscribe with `jobUpdated`.")
class Job(Node):
    kind: str
    status: JobStatus
    progress: float = strawberry.field(description="0..1")
    message: str | None = strawberry.field(description="What the job is doing now.")
    result: JSON | None
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    organization_id: strawberry.ID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: JobRow) -> "Job":
        return cls(
            id=to_global_id("Job", row.id), kind=row.kind, status=row.status, progress=row.progress,
            message=row.message, result=row.result, error=row.error, attempts=row.attempts,
            max_attempts=row.max_attempts, cancel_requested=row.cancel_requested,
            organization_id=to_global_id("Organization", row.organization_id) if row.organization_id else None,
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
        )


register_node("Job", Job, jobs.load_jobs)
