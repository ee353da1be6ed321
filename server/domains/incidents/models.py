"""Incidents domain tables: webhook configs, raw deliveries, alerts, incidents, their timeline,
change events (deployments), and per-organization correlation settings."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ARRAY, Computed, Enum, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, TimestampMixin, utcnow
from server.domains.incidents.correlation import CorrelationSettings as _EngineSettings

_ENGINE = _EngineSettings()  # the correlation engine's defaults are the settings' defaults


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored by value (lower case, as the providers and seeds spell them); GraphQL shows UPPER names.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class AlertStatus(str, enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


class IncidentStatus(str, enum.Enum):
    INVESTIGATING = "investigating"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    MERGED = "merged"


class AiStatus(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    COMPLETE = "complete"
    ERROR = "error"


class DeliveryStatus(str, enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class WebhookConfig(IdMixin, TimestampMixin, Base):
    """Where a monitoring tool posts: an `ins_` key (hashed), the provider it speaks, an optional
    HMAC secret (encrypted, because verifying needs it back), and delivery statistics."""

    __tablename__ = "webhook_configs"
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_key_expires_at: Mapped[datetime | None]
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    rate_limit_per_minute: Mapped[int] = mapped_column(default=1200)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class WebhookConfigStats(Base):
    """Delivery counters of a webhook config, spread over a few rows (`shard`) and read as their sum.

    Every delivery updates one row (a random shard) in its own transaction; with a single row per
    config, concurrent deliveries of one config queue on that row's lock from the update until
    their commits. Measured with bench/ingest_grafana.py --shim-only, 2 server processes, 32
    senders: one row 500 deliveries/s, p99 300 ms; 32 shards 615 deliveries/s, p99 170 ms."""

    __tablename__ = "webhook_config_stats"
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_configs.id", ondelete="CASCADE"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    deliveries_accepted: Mapped[int] = mapped_column(default=0)
    deliveries_rejected: Mapped[int] = mapped_column(default=0)
    last_delivery_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    last_error_at: Mapped[datetime | None]


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """One inbound request, stored raw in the same transaction as what was derived from it, so a
    fixed normalizer can replay it."""

    __tablename__ = "webhook_deliveries"
    # No index of its own on created_at (the mixin's): every list and the duplicate check go through
    # the composite indexes below, and each index costs every delivery an insert.
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_configs.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    http_status: Mapped[int] = mapped_column(Integer)
    provider_delivery_id: Mapped[str | None] = mapped_column(String(255))
    body_sha256: Mapped[str] = mapped_column(String(64))
    raw_body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # lists never load it
    content_type: Mapped[str | None] = mapped_column(String(255))
    headers: Mapped[dict] = mapped_column(default=dict)
    size: Mapped[int] = mapped_column(Integer, default=0)  # bytes received (raw_body may be empty: see deliveries.py)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(40))
    duplicate_of_id: Mapped[uuid.UUID | None]
    alert_ids: Mapped[list] = mapped_column(ARRAY(String(36)), default=list)
    incident_ids: Mapped[list] = mapped_column(ARRAY(String(36)), default=list)
    change_event_ids: Mapped[list] = mapped_column(ARRAY(String(36)), default=list)
    replayed_at: Mapped[datetime | None]
    __table_args__ = (
        Index("ix_deliveries_org_created", "organization_id", "created_at", "id"),
        Index("ix_deliveries_config_created", "config_id", "created_at", "id"),
        Index("ix_deliveries_config_provider_id", "config_id", "provider_delivery_id",
              postgresql_where=text("provider_delivery_id IS NOT NULL")),
        Index("ix_deliveries_config_body", "config_id", "body_sha256", "created_at"),
    )


# GIN indexes of incidents: a small pending list, merged often and quickly (migration 0006).
_SMALL_PENDING = {"gin_pending_list_limit": 128}
WINDOW_BIN = "5 minutes"


def window_bin(expression: str) -> str:
    """SQL: the timestamp `expression` floored to WINDOW_BIN, as `window_at` is."""
    return f"date_bin('{WINDOW_BIN}', {expression}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"


WINDOW_AT_SQL = window_bin("last_alert_at")


class Incident(IdMixin, TimestampMixin, Base):
    __tablename__ = "incidents"
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[IncidentStatus] = mapped_column(_enum(IncidentStatus, "incident_status"))
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    priority: Mapped[str] = mapped_column(String(2))
    service: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    source_alert_id: Mapped[str | None] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(255))
    business_unit: Mapped[str | None] = mapped_column(String(255))
    service_tier: Mapped[str | None] = mapped_column(String(64))
    ai_status: Mapped[AiStatus] = mapped_column(_enum(AiStatus, "ai_status"), default=AiStatus.IDLE)
    started_at: Mapped[datetime]
    last_alert_at: Mapped[datetime]
    # `last_alert_at` floored to 5 minutes: the open-incidents index keys on it, so the update of
    # every repeated alert (which moves last_alert_at) stays a HOT update (migration 0006).
    window_at: Mapped[datetime] = mapped_column(Computed(WINDOW_AT_SQL, persisted=True))
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    merged_at: Mapped[datetime | None]
    correlated_alert_count: Mapped[int] = mapped_column(default=0)
    affected_services: Mapped[list] = mapped_column(ARRAY(String(255)), default=list)
    # Denormalized for correlation: what an open incident already holds.
    fingerprints: Mapped[list] = mapped_column(ARRAY(String(512)), default=list)
    group_keys: Mapped[list] = mapped_column(ARRAY(String(512)), default=list)
    # Fingerprints a user moved or unlinked out of this incident: correlation never brings them back.
    detached_fingerprints: Mapped[list] = mapped_column(ARRAY(String(512)), default=list)
    # What the correlation engine remembers about the incident (when each service and each distinct
    # title last alerted, the environment): see server/domains/incidents/facts.py.
    correlation_facts: Mapped[dict] = mapped_column(default=dict)
    # Bumped by every change (ORM version counter; ingestion's Core updates bump it too): ingestion
    # caches each incident's parsed correlation facts per revision.
    revision: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": revision}
    __table_args__ = (
        Index("ix_incidents_org_created", "organization_id", "created_at", "id"),
        Index("ix_incidents_org_started", "organization_id", "started_at", "id"),
        Index("ix_incidents_org_status_started", "organization_id", "status", "started_at"),
        Index("ix_incidents_org_environment_started", "organization_id", "environment", "started_at"),
        Index("ix_incidents_org_source_started", "organization_id", "source", "started_at"),
        Index("ix_incidents_affected_services", "affected_services", postgresql_using="gin",
              postgresql_with=_SMALL_PENDING),
        Index("ix_incidents_title_words", text("to_tsvector('simple', title)"), postgresql_using="gin",
              postgresql_with=_SMALL_PENDING),
        Index("ix_incidents_open", "organization_id", "window_at",
              postgresql_where=text("status IN ('investigating', 'acknowledged')")),
    )


class Alert(IdMixin, TimestampMixin, Base):
    __tablename__ = "alerts"
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # Lookups by incident use ix_alerts_incident_status (incident_id, status).
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_configs.id", ondelete="SET NULL"))
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_alert_id: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(512))
    group_key: Mapped[str | None] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus, "alert_status"))
    acknowledged: Mapped[bool] = mapped_column(default=False)
    service: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[str | None] = mapped_column(String(2))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime]
    occurrence_count: Mapped[int] = mapped_column(default=1)
    labels: Mapped[dict] = mapped_column(default=dict)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    correlation_reason: Mapped[str | None] = mapped_column(String(32))
    correlation_score: Mapped[float | None] = mapped_column(Float)
    correlation_detail: Mapped[str | None] = mapped_column(String(500))
    __table_args__ = (
        Index("ix_alerts_org_created", "organization_id", "created_at", "id"),
        # The latest alerts of a fingerprint or group key: the incidents that hold it (ingestion
        # finds its candidates by them; an index on the incidents' own key arrays was rewritten
        # whole, hundreds of GIN entries, on every incident update).
        Index("ix_alerts_org_fingerprint", "organization_id", "fingerprint", "created_at"),
        Index("ix_alerts_org_group_key", "organization_id", "group_key", "created_at",
              postgresql_where=text("group_key IS NOT NULL")),
        # The firing alerts of an incident: does it still have any (auto-resolve)? Not a partial
        # index on status = 'firing': with the statistics of a young table the planner took that
        # one for the open-alert lookup by fingerprint (a scan of every firing alert per lookup).
        Index("ix_alerts_incident_status", "incident_id", "status"),
        Index("ix_alerts_org_service_created", "organization_id", "service", "created_at"),
        # At most one open alert per fingerprint: a repeat updates it (dedup).
        Index("uq_alerts_open_fingerprint", "organization_id", "fingerprint", unique=True,
              postgresql_where=text("status = 'firing'")),
    )


class TimelineEntry(IdMixin, TimestampMixin, Base):
    """Every change to an incident, in order: created, alert correlated, acknowledged, merged, ..."""

    __tablename__ = "incident_timeline"
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(1000))
    data: Mapped[dict] = mapped_column(default=dict)
    __table_args__ = (Index("ix_timeline_incident_created", "incident_id", "created_at", "id"),)


class ChangeEvent(IdMixin, TimestampMixin, Base):
    """A deployment (Jenkins/CloudBees): one per build, updated by its later phases."""

    __tablename__ = "change_events"
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_configs.id", ondelete="SET NULL"))
    # Deferred: a delivery's row is written after what it brings in (delivery_rows), in its transaction.
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="SET NULL",
                                                                     deferrable=True, initially="DEFERRED"))
    provider: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(1000))
    service: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    commit: Mapped[str | None] = mapped_column(String(255))
    branch: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    url: Mapped[str | None] = mapped_column(String(2000))
    labels: Mapped[dict] = mapped_column(default=dict)
    __table_args__ = (
        Index("uq_change_events_org_fingerprint", "organization_id", "fingerprint", unique=True),
        Index("ix_change_events_org_occurred", "organization_id", "occurred_at", "id"),
        Index("ix_change_events_service", "organization_id", "service", "occurred_at"),
    )


class CorrelationSettings(TimestampMixin, Base):
    """Per organization: the correlation knobs and the learned service co-occurrence model."""

    __tablename__ = "correlation_settings"
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    window_minutes: Mapped[int] = mapped_column(default=_ENGINE.window_minutes)
    title_similarity_threshold: Mapped[float] = mapped_column(Float, default=_ENGINE.title_similarity_threshold)
    cooccurrence_threshold: Mapped[float] = mapped_column(Float, default=_ENGINE.cooccurrence_threshold)
    cooccurrence_min_support: Mapped[int] = mapped_column(default=_ENGINE.cooccurrence_min_support)
    use_fingerprint_group: Mapped[bool] = mapped_column(default=True)
    use_service: Mapped[bool] = mapped_column(default=True)
    use_title: Mapped[bool] = mapped_column(default=True)
    use_cooccurrence: Mapped[bool] = mapped_column(default=True)
    cooccurrence_window_minutes: Mapped[int] = mapped_column(default=_ENGINE.cooccurrence_window_minutes)
    fingerprint_horizon_minutes: Mapped[int | None] = mapped_column(default=_ENGINE.fingerprint_horizon_minutes)
    auto_resolve: Mapped[bool] = mapped_column(default=True)
    cooccurrence_model: Mapped[dict] = mapped_column(default=dict)
