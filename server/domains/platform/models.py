"""Audit log entries; the activity feed is the subset of them worth showing to people."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, TimestampMixin


class AuditEntry(IdMixin, TimestampMixin, Base):
    __tablename__ = "audit_log"
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID | None]
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_api_key_id: Mapped[uuid.UUID | None]
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(String(500))
    in_activity: Mapped[bool] = mapped_column(default=True)
    before: Mapped[dict | None]
    after: Mapped[dict | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_org_created", "organization_id", "created_at", "id"),
        Index("ix_audit_action", "action"),
        Index("ix_audit_actor_email", "actor_email"),
        # Project activity feeds: newest first within a project (the org feed uses ix_audit_org_created).
        Index("ix_audit_project_created", "project_id", "created_at", "id"),
    )
