"""Warehouse types: the `Node`s DataSource, ScanConfig, ScanJob, ShadowEvent and SchemaDrift, the
warehouse enums (UPPER case in GraphQL, lower case / `15m`.. in the database), and the data
source's schema and stats.

Layout of each node type, for whoever adds fields (as in graph/plan/types.py): the scalar
columns as plain fields, foreign keys as `strawberry.Private` `*_row_id` attributes, `from_row(row)`
building it, relations as async resolvers through the operation's dataloaders
(server/domains/warehouse/loaders.py, which also enforce who may see what). Every node type is
registered with `register_node` at the bottom, so `node(id:)` loads it with the tenant check.
Counts of warehouse rows are `BigInt` (they outgrow GraphQL's 32-bit Int); a time series point
is `MetricPoint { bucket count }`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from graph.accounts.types import Organization, User
from graph.core.node import Node, load_one, register_node, to_global_id
from graph.core.scalars import JSON, BigInt
from graph.jobs.types import Job
from graph.plan.types import Event, EventType, Project, _event_type, _project, _user
from server.domains.accounts import loaders as account_loaders
from server.domains.plan import loaders as plan_loaders
from server.domains.warehouse import data_sources, loaders
from server.domains.warehouse.models import ConnectionTestStatus as ConnectionTestStatusEnum
from server.domains.warehouse.models import DataSource as DataSourceRow
from server.domains.warehouse.models import DataSourceType as DataSourceTypeEnum
from server.domains.warehouse.models import DriftStatus as DriftStatusEnum
from server.domains.warehouse.models import DriftType as DriftTypeEnum
from server.domains.warehouse.models import ScanConfig as ScanConfigRow
from server.domains.warehouse.models import ScanInterval as ScanIntervalEnum
from server.domains.warehouse.models import ScanJob as ScanJobRow
from server.domains.warehouse.models import ScanJobKind as ScanJobKindEnum
from server.domains.warehouse.models import SchemaDrift as SchemaDriftRow
from server.domains.warehouse.models import ShadowEvent as ShadowEventRow
from server.domains.warehouse.models import ShadowEventStatus as ShadowEventStatusEnum
from server.jobs import service as jobs

DataSourceType = strawberry.enum(DataSourceTypeEnum, name="DataSourceType",
                                 description="The warehouse a data source connects to (DUCKDB: a database file on the server).")
ConnectionTestStatus = strawberry.enum(ConnectionTestStatusEnum, name="ConnectionTestStatus",
                                       description="Outcome of a data source's last connection test.")
ScanInterval = strawberry.enum(ScanIntervalEnum, name="ScanInterval",
                               description="Width of metric buckets: 15 minutes, 1 hour, 6 hours, 1 day, 1 week (from Monday, UTC).")
ScanJobKind = strawberry.enum(ScanJobKindEnum, name="ScanJobKind",
                              description="What a scan job does: SCAN a config, PREVIEW an unsaved one, REPLAY metrics "
                                          "over a range, apply EVENT_GROUPS.")
ShadowEventStatus = strawberry.enum(ShadowEventStatusEnum, name="ShadowEventStatus",
                                    description="A warehouse event missing from the plan: NEW, ACCEPTED into the plan, DISMISSED.")
DriftType = strawberry.enum(DriftTypeEnum, name="DriftType",
                            description="How a field's warehouse shape differs from the plan.")
DriftStatus = strawberry.enum(DriftStatusEnum, name="DriftStatus", description="What was decided about a schema drift.")


async def _data_source(info: strawberry.Info, data_source_id: uuid.UUID | None) -> "DataSource | None":
    return await load_one(info, data_sources.load_data_sources, DataSource, data_source_id)


async def _scan_config(info: strawberry.Info, scan_config_id: uuid.UUID | None) -> "ScanConfig | None":
    return await load_one(info, loaders.load_scan_configs, ScanConfig, scan_config_id)


@strawberry.type(description="A point of a time series: the bucket's start and its count.")
class MetricPoint:
    bucket: datetime
    count: BigInt


@strawberry.type(description="A column of a warehouse table and its type, as the warehouse names it.")
class DataSourceColumn:
    name: str
    type: str


@strawberry.type(description="A table (or view) of a warehouse.")
class DataSourceTable:
    schema: str = strawberry.field(description="Its schema (PostgreSQL, DuckDB), database (ClickHouse) or dataset (BigQuery).")
    name: str
    columns: list[DataSourceColumn]


@strawberry.type(description="The tables and columns of a data source's warehouse, read when asked.")
class DataSourceSchema:
    tables: list[DataSourceTable]
    truncated: bool = strawberry.field(description="True when there were more tables than the first 1000 listed.")
    error: str | None = strawberry.field(description="Why the warehouse could not be read (then `tables` is empty).")

    @classmethod
    def from_result(cls, r: data_sources.SchemaResult) -> "DataSourceSchema":
        return cls(tables=[DataSourceTable(schema=t.schema, name=t.name,
                                           columns=[DataSourceColumn(name=c.name, type=c.type) for c in t.columns])
                           for t in r.tables], truncated=r.truncated, error=r.error)


@strawberry.type(description="What a data source's scans counted in a window of hours.")
class DataSourceStats:
    events_tracked: int = strawberry.field(description="Plan events with rows in the window.")
    volume_window: BigInt = strawberry.field(description="Rows in the window (project totals of its scan configs).")
    window_hours: int
    throughput: list[MetricPoint] = strawberry.field(description="Rows per hour, one point per hour of the window, oldest first.")

    @classmethod
    def from_stats(cls, s: data_sources.Stats) -> "DataSourceStats":
        return cls(events_tracked=s.events_tracked, volume_window=s.volume_window, window_hours=s.window_hours,
                   throughput=[MetricPoint(bucket=b, count=c) for b, c in s.throughput])


@strawberry.type(description="A warehouse connection of an organization. Owners manage data sources; members read them. "
                             "The password is never shown: `passwordSet` says whether one is stored.")
class DataSource(Node):
    name: str
    db_type: DataSourceType
    host: str = strawberry.field(description="Empty for DuckDB (and for BigQuery's default endpoint).")
    port: int | None = strawberry.field(description="Null for BigQuery and DuckDB.")
    database_name: str = strawberry.field(description="The database; the GCP project for BigQuery; the file for DuckDB.")
    username: str
    password_set: bool
    timeout_seconds: int | None = strawberry.field(description="Null: the server's default (`INSIGHTS_WAREHOUSE_TIMEOUT_SECONDS`).")
    extra_params: JSON
    last_test_at: datetime | None
    last_test_status: ConnectionTestStatus | None
    last_test_message: str | None
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    organization_row_id: strawberry.Private[uuid.UUID]
    created_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: DataSourceRow) -> "DataSource":
        return cls(id=to_global_id("DataSource", row.id), name=row.name, db_type=row.db_type, host=row.host,
                   port=row.port, database_name=row.database_name, username=row.username,
                   password_set=row.password_encrypted is not None, timeout_seconds=row.timeout_seconds,
                   extra_params=dict(row.extra_params or {}), last_test_at=row.last_test_at,
                   last_test_status=row.last_test_status, last_test_message=row.last_test_message,
                   created_at=row.created_at, updated_at=row.updated_at, row_id=row.id,
                   organization_row_id=row.organization_id, created_by_row_id=row.created_by_id)

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, account_loaders.load_organizations, Organization, self.organization_row_id)

    @strawberry.field(description="Who created it (null once they left your organizations).")
    async def created_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.created_by_row_id)

    @strawberry.field(description="Tables and columns of the warehouse, read now with the data source's timeout "
                                  "(editors and owners; a warehouse that cannot answer gives `error`).")
    async def schema(self, info: strawberry.Info) -> DataSourceSchema:
        ctx = info.context
        return DataSourceSchema.from_result(await data_sources.read_schema(ctx.rt, ctx.principal, self.row_id))

    @strawberry.field(description="Events tracked, volume and hourly throughput over the last `windowHours` "
                                  "(1 to 720, default 48), from what its scan configs counted.")
    async def stats(self, info: strawberry.Info, window_hours: int = data_sources.WINDOW_DEFAULT) -> DataSourceStats | None:
        hours = data_sources.check_window(window_hours)
        s = await info.context.loader(data_sources.load_stats).load((self.row_id, hours))
        return DataSourceStats.from_stats(s) if s else None


@strawberry.type(description="How one data source is scanned for one project: the base query, how rows name events, "
                             "the bucket interval and the schedule.")
class ScanConfig(Node):
    name: str
    base_query: str
    event_type_column: str | None
    time_column: str | None
    event_name_format: str | None = strawberry.field(description="`{column}` placeholders, e.g. `{category}.{action}`.")
    json_value_paths: list[str]
    event_group_rules: JSON
    metric_breakdown_columns: list[str]
    metric_breakdown_values_limit: int | None
    distribution_drift_fields: list[str]
    cardinality_threshold: int
    interval: ScanInterval
    replay_chunk_interval: ScanInterval | None
    scan_lookback_hours: int | None
    scan_row_limit: int | None
    metrics_row_limit: int | None
    app_version_column: str | None
    app_version_keep_releases: int | None
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    scanned_until: datetime | None = strawberry.field(description="End of the last range scanned successfully.")
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    data_source_row_id: strawberry.Private[uuid.UUID]
    event_type_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: ScanConfigRow) -> "ScanConfig":
        return cls(id=to_global_id("ScanConfig", row.id), name=row.name, base_query=row.base_query,
                   event_type_column=row.event_type_column, time_column=row.time_column,
                   event_name_format=row.event_name_format, json_value_paths=list(row.json_value_paths or []),
                   event_group_rules=list(row.event_group_rules or []),
                   metric_breakdown_columns=list(row.metric_breakdown_columns or []),
                   metric_breakdown_values_limit=row.metric_breakdown_values_limit,
                   distribution_drift_fields=list(row.distribution_drift_fields or []),
                   cardinality_threshold=row.cardinality_threshold, interval=row.interval,
                   replay_chunk_interval=row.replay_chunk_interval, scan_lookback_hours=row.scan_lookback_hours,
                   scan_row_limit=row.scan_row_limit, metrics_row_limit=row.metrics_row_limit,
                   app_version_column=row.app_version_column, app_version_keep_releases=row.app_version_keep_releases,
                   enabled=row.enabled, next_run_at=row.next_run_at, last_run_at=row.last_run_at,
                   scanned_until=row.scanned_until, created_at=row.created_at, updated_at=row.updated_at,
                   row_id=row.id, project_row_id=row.project_id, data_source_row_id=row.data_source_id,
                   event_type_row_id=row.event_type_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)

    @strawberry.field(description="Null for an API key bound to a project (data sources are organization-wide).")
    async def data_source(self, info: strawberry.Info) -> DataSource | None:
        return await _data_source(info, self.data_source_row_id)

    @strawberry.field(description="The event type every scanned row belongs to (null: named by `eventTypeColumn`).")
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.event_type_row_id)


@strawberry.type(description="One scan, preview, replay or event-groups run; its status and progress are its `job`'s.")
class ScanJob(Node):
    kind: ScanJobKind
    range_from: datetime | None
    range_to: datetime | None
    stats: JSON
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    scan_config_row_id: strawberry.Private[uuid.UUID | None]
    data_source_row_id: strawberry.Private[uuid.UUID | None]
    job_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: ScanJobRow) -> "ScanJob":
        return cls(id=to_global_id("ScanJob", row.id), kind=row.kind, range_from=row.range_from, range_to=row.range_to,
                   stats=dict(row.stats or {}), error=row.error, created_at=row.created_at,
                   finished_at=row.finished_at, row_id=row.id, project_row_id=row.project_id,
                   scan_config_row_id=row.scan_config_id, data_source_row_id=row.data_source_id,
                   job_row_id=row.job_id)

    @strawberry.field(description="Status, progress, result and error of the run.")
    async def job(self, info: strawberry.Info) -> Job | None:
        return await load_one(info, jobs.load_jobs, Job, self.job_row_id)

    @strawberry.field(description="Null for the preview of an unsaved config.")
    async def scan_config(self, info: strawberry.Info) -> ScanConfig | None:
        return await _scan_config(info, self.scan_config_row_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)


@strawberry.type(description="An event name seen in the warehouse but missing from the plan.")
class ShadowEvent(Node):
    name: str
    event_type_name: str = strawberry.field(description="The warehouse's event type value ('' when the config has none).")
    total_count: BigInt
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    samples: JSON = strawberry.field(description="Up to 5 sample rows.")
    status: ShadowEventStatus
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    event_type_row_id: strawberry.Private[uuid.UUID | None]
    scan_config_row_id: strawberry.Private[uuid.UUID | None]
    accepted_event_row_id: strawberry.Private[uuid.UUID | None]
    resolved_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: ShadowEventRow) -> "ShadowEvent":
        return cls(id=to_global_id("ShadowEvent", row.id), name=row.name, event_type_name=row.event_type_name,
                   total_count=row.total_count, first_seen_at=row.first_seen_at, last_seen_at=row.last_seen_at,
                   samples=list(row.samples or []), status=row.status, resolved_at=row.resolved_at,
                   created_at=row.created_at, updated_at=row.updated_at, row_id=row.id, project_row_id=row.project_id,
                   event_type_row_id=row.event_type_id, scan_config_row_id=row.scan_config_id,
                   accepted_event_row_id=row.accepted_event_id, resolved_by_row_id=row.resolved_by_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)

    @strawberry.field(description="The plan's event type it matched, if any.")
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.event_type_row_id)

    @strawberry.field
    async def scan_config(self, info: strawberry.Info) -> ScanConfig | None:
        return await _scan_config(info, self.scan_config_row_id)

    @strawberry.field(description="The plan event it became (when accepted).")
    async def accepted_event(self, info: strawberry.Info) -> Event | None:
        return await load_one(info, plan_loaders.load_events, Event, self.accepted_event_row_id)

    @strawberry.field
    async def resolved_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.resolved_by_row_id)


@strawberry.type(description="A field of an event type whose warehouse shape differs from the plan.")
class SchemaDrift(Node):
    field_name: str
    drift_type: DriftType
    observed_type: str | None
    declared_type: str | None
    sample_value: str | None
    status: DriftStatus
    note: str | None = strawberry.field(description="The note left with the last decision.")
    snoozed_until: datetime | None
    resolved_at: datetime | None
    detected_at: datetime
    last_seen_at: datetime | None
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    event_type_row_id: strawberry.Private[uuid.UUID]
    scan_config_row_id: strawberry.Private[uuid.UUID | None]
    resolved_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: SchemaDriftRow) -> "SchemaDrift":
        return cls(id=to_global_id("SchemaDrift", row.id), field_name=row.field_name, drift_type=row.drift_type,
                   observed_type=row.observed_type, declared_type=row.declared_type, sample_value=row.sample_value,
                   status=row.status, note=row.resolution_note, snoozed_until=row.snoozed_until,
                   resolved_at=row.resolved_at, detected_at=row.detected_at, last_seen_at=row.last_seen_at,
                   row_id=row.id, project_row_id=row.project_id, event_type_row_id=row.event_type_id,
                   scan_config_row_id=row.scan_config_id, resolved_by_row_id=row.resolved_by_id)

    @strawberry.field
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.event_type_row_id)

    @strawberry.field
    async def scan_config(self, info: strawberry.Info) -> ScanConfig | None:
        return await _scan_config(info, self.scan_config_row_id)

    @strawberry.field(description="Who made the last decision.")
    async def resolved_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.resolved_by_row_id)


register_node("DataSource", DataSource, data_sources.load_data_sources)
register_node("ScanConfig", ScanConfig, loaders.load_scan_configs)
register_node("ScanJob", ScanJob, loaders.load_scan_jobs)
register_node("ShadowEvent", ShadowEvent, loaders.load_shadow_events)
register_node("SchemaDrift", SchemaDrift, loaders.load_schema_drifts)
