"""Warehouse tables (seed 003's data-sources, scans, metrics and reconciliation tags).

- `data_sources`: organization-wide warehouse connections. The password (for BigQuery: the
  service-account JSON) is stored Fernet-encrypted (server/security/secrets.py) and never read back
  through the API, which only says `passwordSet`.
- `scan_configs`: what to scan in a data source for one project, how to name and group the rows,
  the bucket interval, and the schedule (`enabled`, `next_run_at`; the scheduler claims due rows
  with FOR UPDATE SKIP LOCKED, like `schedules`). `scanned_until` is the watermark of the last
  successful scan (where the next incremental scan starts).
- `scan_jobs`: one row per scan / preview / replay / event-groups run, pointing at its `jobs` row
  (status, progress, error live there), with the time range it covered and its stats.
- Metric series, built for speed (see MetricBucket): narrow rows without a surrogate key, whose
  primary key is the idempotency key of a scan chunk (a re-run upserts the same rows) and also the
  index of every range query of one series.
- Reconciliation: shadow events (names seen in the warehouse but missing from the plan), schema
  drifts (fields new, missing or of another type than declared) and field-contract violations.

Every row carries `organization_id` (the tenant); every row but `data_sources` also carries
`project_id`. Enums are stored by value (lower case, as the seed spells them; the intervals as
`15m`..`1w`); Python members and GraphQL values are UPPER case.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

from sqlalchemy import (ARRAY, BigInteger, Boolean, CheckConstraint, Enum, Float, ForeignKey, Index, Integer,
                        PrimaryKeyConstraint, String, Text, UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, TimestampMixin, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored by value (lower case / `15m`), GraphQL shows the UPPER member names.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


def _org() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))


def _project() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))


# --- enums -----------------------------------------------------------------------------------

class DataSourceType(str, enum.Enum):
    POSTGRES = "postgres"
    CLICKHOUSE = "clickhouse"
    BIGQUERY = "bigquery"
    DUCKDB = "duckdb"


class ConnectionTestStatus(str, enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


class ScanInterval(str, enum.Enum):
    """Bucket width of a scan config's metric series (and of its replay chunks)."""

    FIFTEEN_MINUTES = "15m"
    ONE_HOUR = "1h"
    SIX_HOURS = "6h"
    ONE_DAY = "1d"
    ONE_WEEK = "1w"

    @property
    def seconds(self) -> int:
        return _INTERVAL_SECONDS[self]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)


_INTERVAL_SECONDS = {ScanInterval.FIFTEEN_MINUTES: 900, ScanInterval.ONE_HOUR: 3600,
                     ScanInterval.SIX_HOURS: 6 * 3600, ScanInterval.ONE_DAY: 86400, ScanInterval.ONE_WEEK: 7 * 86400}


class ScanJobKind(str, enum.Enum):
    SCAN = "scan"                  # the scheduled/incremental scan of a config
    PREVIEW = "preview"            # sample rows of an unsaved config (no scan_config_id)
    REPLAY = "replay"              # re-compute metrics over a given time range, chunk by chunk
    EVENT_GROUPS = "event_groups"  # apply the config's event group rules


class MetricScope(str, enum.Enum):
    """What a metric series counts. `scope_id` is the project's, the event type's, the plan
    event's or the shadow event's id respectively."""

    PROJECT = "project"
    EVENT_TYPE = "event_type"
    EVENT = "event"
    SHADOW_EVENT = "shadow_event"  # names missing from the plan (coverage needs their counts over time)


class ShadowEventStatus(str, enum.Enum):
    NEW = "new"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


class DriftType(str, enum.Enum):
    NEW_FIELD = "new_field"
    MISSING_FIELD = "missing_field"
    TYPE_CHANGED = "type_changed"


class DriftStatus(str, enum.Enum):
    OPEN = "open"
    ACCEPTED = "accepted"
    SNOOZED = "snoozed"
    FALSE_POSITIVE = "false_positive"


class ContractRule(str, enum.Enum):
    REQUIRED = "required"  # null rate above contract_required_max_null_rate
    ENUM = "enum"          # values outside the field's enum options
    REGEX = "regex"        # values not matching contract_regex
    RANGE = "range"        # numbers outside contract_min_value..contract_max_value


# A breakdown / app-version value that was NULL in the warehouse (key columns cannot be NULL).
NULL_VALUE = "(null)"
# Samples kept per shadow event.
MAX_SAMPLES = 5


# --- data sources ----------------------------------------------------------------------------

class DataSource(IdMixin, TimestampMixin, Base):
    """A warehouse connection of an organization (owners manage them).

    `database_name` is the database (PostgreSQL, ClickHouse), the project (BigQuery) or the file
    (DuckDB, a path under the DuckDB directory setting). `port` is None where it means nothing
    (BigQuery, DuckDB). `extra_params` are per-type client options (e.g. `sslmode`, `dataset`,
    `location`, `secure`), validated by the connector of the type."""

    __tablename__ = "data_sources"
    organization_id: Mapped[uuid.UUID] = _org()
    name: Mapped[str] = mapped_column(String(255))
    db_type: Mapped[DataSourceType] = mapped_column(_enum(DataSourceType, "data_source_type"))
    host: Mapped[str] = mapped_column(String(500), default="", server_default="")
    port: Mapped[int | None] = mapped_column(Integer)
    database_name: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255), default="", server_default="")
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    extra_params: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    last_test_at: Mapped[datetime | None]
    last_test_status: Mapped[ConnectionTestStatus | None] = mapped_column(_enum(ConnectionTestStatus, "data_source_test_status"))
    last_test_message: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    __table_args__ = (
        Index("uq_data_sources_org_name_lower", "organization_id", func.lower(text("name")), unique=True),
        Index("ix_data_sources_org_name", "organization_id", "name", "id"),
        CheckConstraint("port IS NULL OR port BETWEEN 1 AND 65535", name="port_range"),
        CheckConstraint("timeout_seconds IS NULL OR timeout_seconds >= 1", name="timeout_positive"),
    )


# --- scan configs and jobs -------------------------------------------------------------------

class ScanConfig(IdMixin, TimestampMixin, Base):
    """How to scan one data source for one project (seed: scan config)."""

    __tablename__ = "scan_configs"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    # NO ACTION (not CASCADE): the service refuses to delete a data source that configs use
    # unless asked to delete them too; an organization's deletion removes both in one statement.
    data_source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_sources.id"), index=True)
    event_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("event_types.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    base_query: Mapped[str] = mapped_column(Text)
    event_type_column: Mapped[str | None] = mapped_column(String(255))
    time_column: Mapped[str | None] = mapped_column(String(255))
    event_name_format: Mapped[str | None] = mapped_column(Text)  # `{category}.{action}`
    json_value_paths: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    # [{"name": "...", "match": "...", ...}]: the rule format is the scans engineer's (validation.py).
    event_group_rules: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    metric_breakdown_columns: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    metric_breakdown_values_limit: Mapped[int | None] = mapped_column(Integer)
    distribution_drift_fields: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    cardinality_threshold: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    interval: Mapped[ScanInterval] = mapped_column(_enum(ScanInterval, "scan_interval"),
                                                   default=ScanInterval.ONE_HOUR,
                                                   server_default=ScanInterval.ONE_HOUR.value)
    replay_chunk_interval: Mapped[ScanInterval | None] = mapped_column(_enum(ScanInterval, "scan_interval"))
    scan_lookback_hours: Mapped[int | None] = mapped_column(Integer)
    scan_row_limit: Mapped[int | None] = mapped_column(Integer)
    metrics_row_limit: Mapped[int | None] = mapped_column(Integer)
    app_version_column: Mapped[str | None] = mapped_column(String(255))
    app_version_keep_releases: Mapped[int | None] = mapped_column(Integer)
    # Scheduling: the scheduler runs enabled configs whose next_run_at is due, then advances it
    # by `interval`. `scanned_until`: end of the last successfully scanned range (watermark).
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    scanned_until: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    __table_args__ = (
        Index("uq_scan_configs_project_name_lower", "project_id", func.lower(text("name")), unique=True),
        Index("ix_scan_configs_project_name", "project_id", "name", "id"),
        Index("ix_scan_configs_due", "next_run_at", postgresql_where=text("enabled")),
        CheckConstraint("cardinality_threshold >= 1", name="cardinality_threshold_min"),
        CheckConstraint("metric_breakdown_values_limit IS NULL OR metric_breakdown_values_limit >= 1",
                        name="breakdown_limit_min"),
        CheckConstraint("scan_lookback_hours IS NULL OR scan_lookback_hours >= 1", name="lookback_min"),
        CheckConstraint("scan_row_limit IS NULL OR scan_row_limit >= 1", name="scan_row_limit_min"),
        CheckConstraint("metrics_row_limit IS NULL OR metrics_row_limit >= 1", name="metrics_row_limit_min"),
        CheckConstraint("app_version_keep_releases IS NULL OR app_version_keep_releases >= 1",
                        name="keep_releases_min"),
    )


class ScanJob(IdMixin, Base):
    """One run against a warehouse. Status, progress, error and timing live on the `jobs` row
    (`job_id`); this row keeps what is specific to scans: which config (None for a preview of an
    unsaved config, which names its data source), the kind, the time range and the stats."""

    __tablename__ = "scan_jobs"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    scan_config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scan_configs.id", ondelete="CASCADE"))
    data_source_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("data_sources.id", ondelete="CASCADE"),
                                                             index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[ScanJobKind] = mapped_column(_enum(ScanJobKind, "scan_job_kind"))
    range_from: Mapped[datetime | None]
    range_to: Mapped[datetime | None]
    # e.g. {"rows": 123, "buckets": 48, "events": 12, "shadowEvents": 2, "drifts": 1, "chunks": 3}
    stats: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    finished_at: Mapped[datetime | None]
    __table_args__ = (
        # scanJobs(scanConfigId:) newest first.
        Index("ix_scan_jobs_config_created", "scan_config_id", "created_at", "id"),
        Index("ix_scan_jobs_project_created", "project_id", "created_at", "id"),
    )


# --- metric series ---------------------------------------------------------------------------

class MetricBucket(Base):
    """Count of rows of one scope in one time bucket, as one scan config saw them.

    Narrow on purpose (no surrogate id, no timestamps): a year of 15-minute buckets for a
    thousand events is 35 million rows. The primary key
    `(scan_config_id, scope_kind, scope_id, interval, bucket_start)` is both the idempotency key
    (a re-scanned chunk upserts: `INSERT .. ON CONFLICT (pk) DO UPDATE SET count = excluded.count`)
    and the index of a series' range query (`WHERE scan_config_id, scope_kind, scope_id, interval
    AND bucket_start BETWEEN ..` is one index range scan, in time order). The second index serves
    project-wide windows (`topEvents`, `windowTotals`, `overview`, data source stats): all events
    of a project in a time range, index-only (it INCLUDEs scope_id, count, scan_config_id and interval).

    `interval` is part of the key so a config whose interval changed keeps its old series apart.
    `scope_id` is never NULL: the project's id for PROJECT scope. `organization_id` is kept (every
    row names its tenant) without a foreign key: the rows go with their project or scan config
    (ON DELETE CASCADE, both indexed here), and an organization's deletion reaches them through
    its projects, so a second cascade trigger scanning these large tables by organization would
    only cost time."""

    __tablename__ = "metric_buckets"
    organization_id: Mapped[uuid.UUID]  # no FK: see MetricBucket
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    scan_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scan_configs.id", ondelete="CASCADE"))
    scope_kind: Mapped[MetricScope] = mapped_column(_enum(MetricScope, "metric_scope"))
    scope_id: Mapped[uuid.UUID]
    interval: Mapped[ScanInterval] = mapped_column(_enum(ScanInterval, "scan_interval"))
    bucket_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        PrimaryKeyConstraint("scan_config_id", "scope_kind", "scope_id", "interval", "bucket_start",
                             name="pk_metric_buckets"),
        # scan_config_id and interval included too: project-wide windows join each row to its
        # config's current interval (overview, topEvents, windowTotals, coverage) index-only.
        Index("ix_metric_buckets_project_window", "project_id", "scope_kind", "bucket_start",
              postgresql_include=["scope_id", "count", "scan_config_id", "interval"]),
    )


class BreakdownBucket(Base):
    """Count per value of a breakdown column (top N values of a bucket; the rest summed into one
    row with `is_other` and value ''), per scope and bucket. Key order serves the breakdown
    timeline of one value and the breakdown of a scope by one column over a range."""

    __tablename__ = "metric_breakdown_buckets"
    organization_id: Mapped[uuid.UUID]  # no FK: see MetricBucket
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    scan_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scan_configs.id", ondelete="CASCADE"))
    scope_kind: Mapped[MetricScope] = mapped_column(_enum(MetricScope, "metric_scope"))
    scope_id: Mapped[uuid.UUID]
    interval: Mapped[ScanInterval] = mapped_column(_enum(ScanInterval, "scan_interval"))
    column: Mapped[str] = mapped_column(String(255))
    is_other: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    value: Mapped[str] = mapped_column(Text)  # NULL_VALUE for a NULL; '' for the Other row
    bucket_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        PrimaryKeyConstraint("scan_config_id", "scope_kind", "scope_id", "interval", "column", "is_other", "value",
                             "bucket_start", name="pk_metric_breakdown_buckets"),
    )


class AppVersionBucket(Base):
    """Count per app version (the config's app version column), per scope and bucket."""

    __tablename__ = "app_version_buckets"
    organization_id: Mapped[uuid.UUID]  # no FK: see MetricBucket
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    scan_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scan_configs.id", ondelete="CASCADE"))
    scope_kind: Mapped[MetricScope] = mapped_column(_enum(MetricScope, "metric_scope"))
    scope_id: Mapped[uuid.UUID]
    interval: Mapped[ScanInterval] = mapped_column(_enum(ScanInterval, "scan_interval"))
    version: Mapped[str] = mapped_column(String(255))  # NULL_VALUE for a NULL
    bucket_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        PrimaryKeyConstraint("scan_config_id", "scope_kind", "scope_id", "interval", "version", "bucket_start",
                             name="pk_app_version_buckets"),
    )


# --- reconciliation --------------------------------------------------------------------------

class ShadowEvent(IdMixin, TimestampMixin, Base):
    """An event name seen in the warehouse but missing from the plan (seed: shadow event /
    candidate). One row per (project, warehouse event type value, name), upserted by scans:
    `total_count` grows, `last_seen_at` moves, `samples` keeps up to MAX_SAMPLES rows (JSON
    objects). Its counts over time are metric buckets of scope SHADOW_EVENT."""

    __tablename__ = "shadow_events"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    scan_config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scan_configs.id", ondelete="SET NULL"))
    event_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("event_types.id", ondelete="SET NULL"))
    event_type_name: Mapped[str] = mapped_column(String(255), default="", server_default="")  # warehouse value
    name: Mapped[str] = mapped_column(String(500))
    total_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    first_seen_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    samples: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    status: Mapped[ShadowEventStatus] = mapped_column(_enum(ShadowEventStatus, "shadow_event_status"),
                                                      default=ShadowEventStatus.NEW,
                                                      server_default=ShadowEventStatus.NEW.value)
    accepted_event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("project_id", "event_type_name", "name", name="uq_shadow_events_project_type_name"),
        Index("ix_shadow_events_project_status_seen", "project_id", "status", "last_seen_at", "id"),
        CheckConstraint(f"jsonb_array_length(samples) <= {MAX_SAMPLES}", name="samples_max"),
    )


class SchemaDrift(IdMixin, TimestampMixin, Base):
    """A field of an event type whose warehouse shape differs from the plan: new (not declared),
    missing (declared, not seen) or of another type. One row per (event type, field, drift type);
    a scan seeing it again updates `last_seen_at` and the sample, and leaves a decided status
    alone (a snooze ends at `snoozed_until`)."""

    __tablename__ = "schema_drifts"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"))
    scan_config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scan_configs.id", ondelete="SET NULL"))
    field_name: Mapped[str] = mapped_column(String(255))
    drift_type: Mapped[DriftType] = mapped_column(_enum(DriftType, "drift_type"))
    observed_type: Mapped[str | None] = mapped_column(String(64))
    declared_type: Mapped[str | None] = mapped_column(String(64))
    sample_value: Mapped[str | None] = mapped_column(Text)
    status: Mapped[DriftStatus] = mapped_column(_enum(DriftStatus, "drift_status"), default=DriftStatus.OPEN,
                                                server_default=DriftStatus.OPEN.value)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    snoozed_until: Mapped[datetime | None]
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_seen_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("event_type_id", "field_name", "drift_type", name="uq_schema_drifts_type_field_kind"),
        Index("ix_schema_drifts_project_status", "project_id", "status", "detected_at", "id"),
        Index("ix_schema_drifts_type_status", "event_type_id", "status"),
    )


class ContractViolation(IdMixin, TimestampMixin, Base):
    """A field contract a scan found broken: the share of bad values (`bad_rate` =
    `bad_rows / checked_rows`) above the field's `contract_max_bad_rate` (or, for REQUIRED, the
    null rate above `contract_required_max_null_rate`). One row per (field, rule, scan config),
    updated by every scan that checks it; `resolved_at` is set when a later scan finds it within
    the threshold again (and cleared when it breaks again)."""

    __tablename__ = "contract_violations"
    organization_id: Mapped[uuid.UUID] = _org()
    project_id: Mapped[uuid.UUID] = _project()
    event_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_types.id", ondelete="CASCADE"))
    field_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"))
    scan_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scan_configs.id", ondelete="CASCADE"))
    rule: Mapped[ContractRule] = mapped_column(_enum(ContractRule, "contract_rule"))
    checked_rows: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bad_rows: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bad_rate: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    threshold: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    sample_values: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    detected_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_seen_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("field_id", "rule", "scan_config_id", name="uq_contract_violations_field_rule_config"),
        Index("ix_contract_violations_project_open", "project_id", "resolved_at", "detected_at"),
        Index("ix_contract_violations_type", "event_type_id"),
    )


__all__ = [
    "AppVersionBucket", "BreakdownBucket", "ContractRule", "ContractViolation", "DataSource", "DataSourceType",
    "DriftStatus", "DriftType", "MAX_SAMPLES", "MetricBucket", "MetricScope", "NULL_VALUE", "ScanConfig",
    "ScanInterval", "ScanJob", "ScanJobKind", "SchemaDrift", "ShadowEvent", "ShadowEventStatus", "ConnectionTestStatus",
]
