"""Tracking-plan tables (seed 003): projects, event types and their owners, fields, meta fields,
events and their history, variables and their observed values, relations, event photos and their
comments.

Conventions every plan table follows:
- `organization_id` (the tenant) and `project_id` on every row, so a service filters by tenant
  and project with one indexed predicate and never needs a join to find out whose a row is.
- Children reference their parent with ON DELETE CASCADE: deleting a project (or an event type,
  an event, a photo) removes everything under it in one statement.
- Enums are stored by value (lower case, as the seed spells them); Python members and GraphQL
  values are UPPER case.
- Orderable rows have `sort_order` (the seed's `order`/`sort_order`) and are listed by
  `(sort_order, id)`, the keyset that the composite indexes below serve.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (ARRAY, BigInteger, CheckConstraint, Enum, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, TimestampMixin, utcnow

DEFAULT_COLOR = "#6366f1"
DEFAULT_RELATION_TYPE = "belongs_to"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored by value (lower case, as the seed spells them); GraphQL shows UPPER names.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class EventStatus(str, enum.Enum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    READY_FOR_DEV = "ready_for_dev"
    IMPLEMENTED = "implemented"
    LIVE = "live"
    DEPRECATED = "deprecated"
    ARCHIVED = "archived"


class FieldType(str, enum.Enum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    ENUM = "enum"
    URL = "url"


class MetaFieldType(str, enum.Enum):
    STRING = "string"
    URL = "url"
    BOOLEAN = "boolean"
    ENUM = "enum"
    DATE = "date"


class Sensitivity(str, enum.Enum):
    NONE = "none"
    PII = "pii"
    PHI = "phi"
    FINANCIAL = "financial"
    SECRET = "secret"


class VariableType(str, enum.Enum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"
    STRING_ARRAY = "string_array"
    NUMBER_ARRAY = "number_array"


class PhotoKind(str, enum.Enum):
    PHOTO = "photo"
    FIGMA = "figma"


def _org() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))


def _project() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))


class Project(IdMixin, TimestampMixin, Base):
    """A tracking plan. The slug is unique within the organization and may change (update)."""

    __tablename__ = "projects"
    organization_id: Mapped[uuid.UUID] = _org()
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    __table_args__ = (
        UniqueConstraint("organization_id", "slug", name="uq_projects_org_slug"),
        Index("ix_projects_org_name", "organization_id", "name", "id"),
        Index("ix_projects_org_created", "organization_id", "created_at", "id"),
    )


class EventType(IdMixin, TimestampMixin, Base):
    """A family of events sharing field definitions (e.g. `page_view`). The name is fixed once created."""

    __tablename__ = "event_types"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    name: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    color: Mapped[str] = mapped_column(String(7), default=DEFAULT_COLOR, server_default=DEFAULT_COLOR)
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (
        # Unique ignoring case: `Page_View` and `page_view` would be the same warehouse event.
        Index("uq_event_types_project_name_lower", "project_id", func.lower(text("name")), unique=True),
        Index("ix_event_types_project_order", "project_id", "sort_order", "id"),
    )


class EventTypeOwner(IdMixin, Base):
    """A user answerable for an event type; `granted_by_id` remembers who made them one."""

    __tablename__ = "event_type_owners"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    granted_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    __table_args__ = (UniqueConstraint("event_type_id", "user_id", name="uq_event_type_owners_type_user"),)


class Field(IdMixin, TimestampMixin, Base):
    """A property definition of an event type, with its data contract (what scans check)."""

    __tablename__ = "fields"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(255))
    field_type: Mapped[FieldType] = mapped_column(_enum(FieldType, "field_type"))
    is_required: Mapped[bool] = mapped_column(default=False, server_default="false")
    enum_options: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sensitivity: Mapped[Sensitivity] = mapped_column(_enum(Sensitivity, "sensitivity"), default=Sensitivity.NONE,
                                                     server_default=Sensitivity.NONE.value)
    contract_required_max_null_rate: Mapped[float | None] = mapped_column(Float)
    contract_regex: Mapped[str | None] = mapped_column(Text)
    contract_min_value: Mapped[float | None] = mapped_column(Float)
    contract_max_value: Mapped[float | None] = mapped_column(Float)
    contract_max_bad_rate: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    __table_args__ = (
        UniqueConstraint("event_type_id", "name", name="uq_fields_type_name"),
        Index("ix_fields_type_order", "event_type_id", "sort_order", "id"),
        Index("ix_fields_project", "project_id"),
        CheckConstraint("contract_max_bad_rate >= 0 AND contract_max_bad_rate <= 1", name="max_bad_rate_range"),
    )


class MetaField(IdMixin, TimestampMixin, Base):
    """A project-wide context field every event may carry (owner team, Jira link, ...)."""

    __tablename__ = "meta_fields"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    name: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(255))
    field_type: Mapped[MetaFieldType] = mapped_column(_enum(MetaFieldType, "meta_field_type"))
    is_required: Mapped[bool] = mapped_column(default=False, server_default="false")
    enum_options: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    default_value: Mapped[str | None] = mapped_column(Text)
    link_template: Mapped[str | None] = mapped_column(Text)
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sensitivity: Mapped[Sensitivity] = mapped_column(_enum(Sensitivity, "sensitivity"), default=Sensitivity.NONE,
                                                     server_default=Sensitivity.NONE.value)
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_meta_fields_project_name"),
        Index("ix_meta_fields_project_order", "project_id", "sort_order", "id"),
    )


class Event(IdMixin, TimestampMixin, Base):
    """One tracked event of the plan.

    `field_values` and `meta_values` are JSONB lists of `{"field_id"|"meta_field_id": "<uuid>",
    "value": ...}` objects (the seed's arrays of objects), GIN-indexed (jsonb_path_ops) so the
    list filters `field value` / `meta value` are containment lookups. `tags` is a text[] with a
    GIN index for the tag filter and the tags list. Name search uses a pg_trgm index that the
    migration creates when the extension is available (ILIKE works without it, only slower).
    """

    __tablename__ = "events"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus, "event_status"), default=EventStatus.DRAFT,
                                                server_default=EventStatus.DRAFT.value)
    sunset_at: Mapped[datetime | None]
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    reviewed: Mapped[bool] = mapped_column(default=False, server_default="false")
    metric_breakdown_columns: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    field_values: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    meta_values: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_seen_at: Mapped[datetime | None]
    drift_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (
        # A duplicate event name within a type is a conflict, whatever the case.
        Index("uq_events_type_name_lower", "event_type_id", func.lower(text("name")), unique=True),
        Index("ix_events_project_order", "project_id", "sort_order", "id"),
        Index("ix_events_type_order", "event_type_id", "sort_order", "id"),
        Index("ix_events_project_status", "project_id", "status"),
        Index("ix_events_project_last_seen", "project_id", "last_seen_at"),
        Index("ix_events_tags", "tags", postgresql_using="gin"),
        Index("ix_events_field_values", "field_values", postgresql_using="gin",
              postgresql_ops={"field_values": "jsonb_path_ops"}),
        Index("ix_events_meta_values", "meta_values", postgresql_using="gin",
              postgresql_ops={"meta_values": "jsonb_path_ops"}),
        CheckConstraint("char_length(name) >= 1", name="name_not_empty"),
    )


class EventHistory(IdMixin, Base):
    """Who changed what on an event, when: `changes` is `{field: {"old": ..., "new": ...}}`."""

    __tablename__ = "event_history"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32), default="updated", server_default="updated")
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    changes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    __table_args__ = (Index("ix_event_history_event_changed", "event_id", "changed_at", "id"),)


class Variable(IdMixin, TimestampMixin, Base):
    """A reusable placeholder of the plan (`page_name`, ...). The usage counters and sample values
    are refreshed by scans; `event_count` may also be computed from the plan."""

    __tablename__ = "variables"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    name: Mapped[str] = mapped_column(String(100))
    source_name: Mapped[str | None] = mapped_column(String(255))
    variable_type: Mapped[VariableType] = mapped_column(_enum(VariableType, "variable_type"),
                                                        default=VariableType.STRING,
                                                        server_default=VariableType.STRING.value)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    event_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    context_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    low_context_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    high_context_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sample_values: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_variables_project_name"),
        CheckConstraint("name ~ '^[a-z][a-z0-9_]*$'", name="name_pattern"),
    )


class VariableValue(IdMixin, Base):
    """A value observed for a variable (by scans or entered), with how often and when last seen."""

    __tablename__ = "variable_values"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    variable_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variables.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(Text)
    event_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    occurrences: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_seen_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("variable_id", "value", name="uq_variable_values_variable_value"),
        Index("ix_variable_values_variable_occurrences", "variable_id", "occurrences", "id"),
    )


class Relation(IdMixin, TimestampMixin, Base):
    """A join between two event types' fields (`order.user_id` belongs to `user.id`). The service
    checks that each field belongs to its event type; the FKs make deleting either side remove it."""

    __tablename__ = "relations"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    source_event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"), index=True)
    source_field_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"), index=True)
    target_event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"), index=True)
    target_field_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"), index=True)
    relation_type: Mapped[str] = mapped_column(String(100), default=DEFAULT_RELATION_TYPE,
                                               server_default=DEFAULT_RELATION_TYPE)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    __table_args__ = (
        Index("ix_relations_project_created", "project_id", "created_at", "id"),
        # The same join of the same two fields, said twice, is a conflict.
        UniqueConstraint("source_field_id", "target_field_id", "relation_type", name="uq_relations_fields_type"),
    )


class EventPhoto(IdMixin, TimestampMixin, Base):
    """A screenshot (bytes in the storage backend under `storage_key`) or a Figma link of an event."""

    __tablename__ = "event_photos"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[PhotoKind] = mapped_column(_enum(PhotoKind, "photo_kind"), default=PhotoKind.PHOTO)
    storage_backend: Mapped[str | None] = mapped_column(String(16))  # local, s3, gcs; None for Figma links
    storage_key: Mapped[str | None] = mapped_column(String(1000))
    original_filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    external_url: Mapped[str | None] = mapped_column(String(2000))  # the Figma spec link
    title: Mapped[str] = mapped_column(String(500), default="", server_default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    __table_args__ = (Index("ix_event_photos_event_order", "event_id", "sort_order", "id"),)


class PhotoComment(IdMixin, TimestampMixin, Base):
    """A threaded comment on a photo; deleting a comment deletes its replies."""

    __tablename__ = "photo_comments"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    photo_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_photos.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("photo_comments.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("ix_photo_comments_photo_created", "photo_id", "created_at", "id"),
        CheckConstraint("char_length(body) BETWEEN 1 AND 4000", name="body_length"),
    )
