"""The one `jobs` table every long-running piece of work is tracked in, and DB-driven schedules."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, TimestampMixin


class JobStatus(str, enum.Enum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class Job(IdMixin, TimestampMixin, Base):
    __tablename__ = "jobs"
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32), default="default")
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, name="job_status"), default=JobStatus.pending)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str | None] = mapped_column(String(500))
    payload: Mapped[dict] = mapped_column(default=dict)
    result: Mapped[dict | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    __table_args__ = (
        Index("ix_jobs_org_created", "organization_id", "created_at", "id"),
        Index("ix_jobs_status_enqueued", "status", "enqueued_at"),
    )


class Schedule(IdMixin, TimestampMixin, Base):
    """A recurring job; the scheduler claims due rows with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "schedules"
    name: Mapped[str] = mapped_column(String(100), unique=True)
    job_kind: Mapped[str] = mapped_column(String(64))
    interval_seconds: Mapped[int]
    next_run_at: Mapped[datetime] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    payload: Mapped[dict] = mapped_column(default=dict)
