"""Scan configs and their jobs: `scanConfigs(projectId:)`, `scanJobs(scanConfigId:)`,
`scanConfigCreate`/`Update`/`Delete`, `scanRun`, `scanPreview`, `metricsReplay`,
`eventGroupsApply` (each returns a `job`, cancelled through `jobCancel`). Thin wrappers over
server/domains/warehouse/scan_configs.py; expected failures come back as `userErrors`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, to_global_id
from graph.core.scalars import JSON
from graph.jobs.types import Job
from graph.plan.common import decode_input_id, maybe
from graph.warehouse.types import ScanConfig, ScanInterval, ScanJob
from server.db.paging import PageRequest, keyset_page
from server.domains.warehouse import loaders, scan_configs
from server.domains.warehouse.scan_configs import UNSET

_COLUMN = "A column of the base query (1 to 255 characters); the warehouse must return it."
_FORMAT = "`{column}` placeholders naming columns of the base query, e.g. `{category}.{action}` (up to 1000 characters)."
_PATHS = "Dotted paths into JSON columns (`props.page.title`), at most 50."
_RULES = "At most 100 `{name, pattern}` objects: `eventGroupsApply` tags plan events whose name matches `pattern` (a regex) with `name`."


@strawberry.input(description="A new scan config (editors). The base query is run with a zero-row limit to check it.")
class ScanConfigCreateInput:
    project_id: strawberry.ID
    data_source_id: strawberry.ID
    name: str = strawberry.field(description="1 to 255 characters, unique in the project ignoring case.")
    base_query: str = strawberry.field(description="One read-only SELECT in the data source's dialect.")
    time_column: str = strawberry.field(description="The column rows are bucketed by. " + _COLUMN)
    event_type_id: strawberry.ID | None = strawberry.field(default=None, description="Every row is of this event type.")
    event_type_column: str | None = strawberry.field(default=None, description="Names each row's event type. " + _COLUMN)
    event_name_format: str | None = strawberry.field(default=None, description=_FORMAT)
    json_value_paths: list[str] | None = strawberry.field(default=None, description=_PATHS)
    event_group_rules: JSON | None = strawberry.field(default=None, description=_RULES)
    metric_breakdown_columns: list[str] | None = strawberry.field(
        default=None, description="At most 10 columns (or JSON value paths) to count per value.")
    metric_breakdown_values_limit: int | None = strawberry.field(
        default=None, description="1 to 1000 (default 10): the top N values per bucket; the rest are `Other`.")
    distribution_drift_fields: list[str] | None = strawberry.field(default=None, description="At most 50 columns.")
    cardinality_threshold: int = strawberry.field(
        default=100, description="At least 1 (default 100). A breakdown column with more distinct values in a scan "
        "chunk is not counted per value there: only its `Other` row (the scan job's stats name it).")
    interval: ScanInterval = strawberry.field(default=ScanInterval.ONE_HOUR, description="Bucket width (default 1 hour).")  # type: ignore[attr-defined]
    replay_chunk_interval: ScanInterval | None = strawberry.field(
        default=None, description="Chunk width of scans and replays (default 1 day), at least `interval`.")
    scan_lookback_hours: int | None = strawberry.field(default=None, description="1 to 8760 (default 24): how far back the first scan reaches.")
    scan_row_limit: int | None = strawberry.field(
        default=None, description="At least 1. Caps the rows a scan reads to observe fields (schema drifts, "
        "contracts): the newest ones. Metric counts always cover every row.")
    metrics_row_limit: int | None = strawberry.field(
        default=None, description="At least 1 (default 1000000): the most groups a chunk's aggregate may return.")
    app_version_column: str | None = strawberry.field(default=None, description=_COLUMN)
    app_version_keep_releases: int | None = strawberry.field(default=None, description="1 to 1000 (default 20).")
    enabled: bool = strawberry.field(default=True, description="Whether the scheduler runs it every `interval`.")


@strawberry.input(description="Absent fields stay; null clears optional ones.")
class ScanConfigUpdateInput:
    id: strawberry.ID
    data_source_id: strawberry.Maybe[strawberry.ID | None]
    name: strawberry.Maybe[str | None]
    base_query: strawberry.Maybe[str | None]
    time_column: strawberry.Maybe[str | None]
    event_type_id: strawberry.Maybe[strawberry.ID | None]
    event_type_column: strawberry.Maybe[str | None]
    event_name_format: strawberry.Maybe[str | None]
    json_value_paths: strawberry.Maybe[list[str] | None]
    event_group_rules: strawberry.Maybe[JSON | None]
    metric_breakdown_columns: strawberry.Maybe[list[str] | None]
    metric_breakdown_values_limit: strawberry.Maybe[int | None]
    distribution_drift_fields: strawberry.Maybe[list[str] | None]
    cardinality_threshold: strawberry.Maybe[int | None]
    interval: strawberry.Maybe[ScanInterval | None]
    replay_chunk_interval: strawberry.Maybe[ScanInterval | None]
    scan_lookback_hours: strawberry.Maybe[int | None]
    scan_row_limit: strawberry.Maybe[int | None]
    metrics_row_limit: strawberry.Maybe[int | None]
    app_version_column: strawberry.Maybe[str | None]
    app_version_keep_releases: strawberry.Maybe[int | None]
    enabled: strawberry.Maybe[bool | None]


@strawberry.input
class ScanConfigDeleteInput:
    id: strawberry.ID


@strawberry.input
class ScanRunInput:
    scan_config_id: strawberry.ID


@strawberry.input
class EventGroupsApplyInput:
    scan_config_id: strawberry.ID


@strawberry.input(description="Re-compute a scan config's metrics over [from, to), chunk by chunk.")
class MetricsReplayInput:
    scan_config_id: strawberry.ID
    from_: datetime = strawberry.field(name="from")
    to: datetime


@strawberry.input(description="Sample rows of an unsaved scan config (editors of the project).")
class ScanPreviewInput:
    project_id: strawberry.ID
    data_source_id: strawberry.ID
    base_query: str
    json_paths: list[str] | None = strawberry.field(default=None, description=_PATHS + " Added to the sample rows.")
    time_column: str | None = strawberry.field(default=None, description="Newest rows first, and the lookback applies.")
    lookback_hours: int | None = strawberry.field(default=None, description="1 to 8760.")
    limit: int = strawberry.field(default=10, description="1 to 50 (default 10).")
    discover_json_paths: bool = strawberry.field(default=False, description="Also list the JSON paths found in the rows.")


@strawberry.type
class ScanConfigPayload:
    scan_config: ScanConfig | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ScanConfigDeletePayload:
    deleted_scan_config_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ScanJobPayload:
    job: Job | None = strawberry.field(default=None, description="Follow it with `jobUpdated`; cancel with `jobCancel`.")
    scan_job: ScanJob | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _fields(input_: object, names: tuple[str, ...]) -> dict:
    return {n: getattr(input_, n) for n in names}


_PLAIN = ("name", "base_query", "time_column", "event_type_column", "event_name_format", "json_value_paths",
          "event_group_rules", "metric_breakdown_columns", "metric_breakdown_values_limit",
          "distribution_drift_fields", "cardinality_threshold", "interval", "replay_chunk_interval",
          "scan_lookback_hours", "scan_row_limit", "metrics_row_limit", "app_version_column",
          "app_version_keep_releases", "enabled")


@strawberry.type
class ScanConfigsQuery:
    @strawberry.field(description="Scan configs of a project, by name (members).")
    async def scan_configs(self, info: strawberry.Info, project_id: strawberry.ID, first: int | None = None,
                           after: str | None = None, last: int | None = None,
                           before: str | None = None) -> Connection[ScanConfig]:
        ctx = info.context
        query = await scan_configs.scan_configs_query(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, query, scan_configs.ORDER, PageRequest(first, after, last, before),
                                 descending=False, default=s.page_size_default, maximum=s.page_size_max)
        ctx.loader(loaders.load_scan_configs).prime_many({r.id: r for r in page.items})
        return connection_from_page(page, ScanConfig.from_row)

    @strawberry.field(description="Job history of a scan config, newest first (members).")
    async def scan_jobs(self, info: strawberry.Info, scan_config_id: strawberry.ID, first: int | None = None,
                        after: str | None = None) -> Connection[ScanJob]:
        ctx = info.context
        query = await scan_configs.scan_jobs_query(ctx.rt, ctx.principal,
                                                   decode_id(scan_config_id, "ScanConfig", "scanConfigId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, query, scan_configs.JOB_ORDER, PageRequest(first, after, None, None),
                                 descending=True, default=s.page_size_default, maximum=s.page_size_max)
        ctx.loader(loaders.load_scan_jobs).prime_many({r.id: r for r in page.items})
        return connection_from_page(page, ScanJob.from_row)


@strawberry.type
class ScanConfigsMutation:
    @strawberry.mutation(description="Create a scan config (editors); it is scheduled every `interval`.")
    async def scan_config_create(self, info: strawberry.Info, input: ScanConfigCreateInput) -> ScanConfigPayload:
        ctx = info.context

        async def work() -> ScanConfigPayload:
            et = decode_input_id(input.event_type_id, "EventType", "eventTypeId") if input.event_type_id else None
            row = await scan_configs.create_scan_config(
                ctx.rt, ctx.principal, decode_input_id(input.project_id, "Project", "projectId"),
                data_source_id=decode_input_id(input.data_source_id, "DataSource", "dataSourceId"), event_type_id=et,
                request_id=ctx.request_id, **_fields(input, _PLAIN))
            return ScanConfigPayload(scan_config=ScanConfig.from_row(row))

        return await mutate(ScanConfigPayload, work)

    @strawberry.mutation(description="Change a scan config (editors; absent inputs stay).")
    async def scan_config_update(self, info: strawberry.Info, input: ScanConfigUpdateInput) -> ScanConfigPayload:
        ctx = info.context

        async def work() -> ScanConfigPayload:
            patch = {n: maybe(getattr(input, n)) for n in _PLAIN}
            ds = maybe(input.data_source_id)
            if ds is not UNSET and ds is not None:
                ds = decode_input_id(ds, "DataSource", "dataSourceId")
            et = maybe(input.event_type_id)
            if et is not UNSET and et is not None:
                et = decode_input_id(et, "EventType", "eventTypeId")
            row = await scan_configs.update_scan_config(
                ctx.rt, ctx.principal, decode_input_id(input.id, "ScanConfig", "id"), data_source_id=ds,
                event_type_id=et, request_id=ctx.request_id, **patch)
            return ScanConfigPayload(scan_config=ScanConfig.from_row(row))

        return await mutate(ScanConfigPayload, work)

    @strawberry.mutation(description="Delete a scan config with its job history and metric series (editors).")
    async def scan_config_delete(self, info: strawberry.Info, input: ScanConfigDeleteInput) -> ScanConfigDeletePayload:
        ctx = info.context

        async def work() -> ScanConfigDeletePayload:
            row = await scan_configs.delete_scan_config(ctx.rt, ctx.principal, decode_input_id(input.id, "ScanConfig", "id"),
                                                        request_id=ctx.request_id)
            return ScanConfigDeletePayload(deleted_scan_config_id=to_global_id("ScanConfig", row.id))

        return await mutate(ScanConfigDeletePayload, work)

    @strawberry.mutation(description="Scan a config now (a job): from where the last scan ended to now.")
    async def scan_run(self, info: strawberry.Info, input: ScanRunInput) -> ScanJobPayload:
        ctx = info.context

        async def work() -> ScanJobPayload:
            job, sj = await scan_configs.request_scan(ctx.rt, ctx.principal,
                                                      decode_input_id(input.scan_config_id, "ScanConfig", "scanConfigId"),
                                                      request_id=ctx.request_id)
            return ScanJobPayload(job=Job.from_row(job), scan_job=ScanJob.from_row(sj))

        return await mutate(ScanJobPayload, work)

    @strawberry.mutation(description="Re-compute a config's metric series over a range (a job, chunk by chunk).")
    async def metrics_replay(self, info: strawberry.Info, input: MetricsReplayInput) -> ScanJobPayload:
        ctx = info.context

        async def work() -> ScanJobPayload:
            job, sj = await scan_configs.request_replay(
                ctx.rt, ctx.principal, decode_input_id(input.scan_config_id, "ScanConfig", "scanConfigId"),
                input.from_, input.to, request_id=ctx.request_id)
            return ScanJobPayload(job=Job.from_row(job), scan_job=ScanJob.from_row(sj))

        return await mutate(ScanJobPayload, work)

    @strawberry.mutation(description="Apply a config's event group rules to the plan's events (a job).")
    async def event_groups_apply(self, info: strawberry.Info, input: EventGroupsApplyInput) -> ScanJobPayload:
        ctx = info.context

        async def work() -> ScanJobPayload:
            job, sj = await scan_configs.request_event_groups(
                ctx.rt, ctx.principal, decode_input_id(input.scan_config_id, "ScanConfig", "scanConfigId"),
                request_id=ctx.request_id)
            return ScanJobPayload(job=Job.from_row(job), scan_job=ScanJob.from_row(sj))

        return await mutate(ScanJobPayload, work)

    @strawberry.mutation(description="Sample rows of an unsaved scan config (a job whose result holds `rows`, "
                                     "`columns` and, when asked, `jsonPaths`).")
    async def scan_preview(self, info: strawberry.Info, input: ScanPreviewInput) -> ScanJobPayload:
        ctx = info.context

        async def work() -> ScanJobPayload:
            job, sj = await scan_configs.request_preview(
                ctx.rt, ctx.principal, decode_input_id(input.project_id, "Project", "projectId"),
                decode_input_id(input.data_source_id, "DataSource", "dataSourceId"), base_query=input.base_query,
                json_value_paths=input.json_paths, time_column=input.time_column,
                scan_lookback_hours=input.lookback_hours, limit=input.limit,
                discover_json_paths=input.discover_json_paths, request_id=ctx.request_id)
            return ScanJobPayload(job=Job.from_row(job), scan_job=ScanJob.from_row(sj))

        return await mutate(ScanJobPayload, work)


__all__ = ["ScanConfigsMutation", "ScanConfigsQuery"]
