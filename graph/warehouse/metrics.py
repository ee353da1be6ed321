"""Metric queries (seed 003's metrics tag): `metricSeries`, `eventSeries`, `breakdownTimeline`,
`eventBreakdown`, `windowTotals`, `overview`, `topEvents`, `appVersions`, `seasonalityHeatmap`.
Thin wrappers over server/domains/warehouse/metrics.py (which explains which scan config a series
comes from, ranges and zero-filling). Bad arguments are GraphQL errors with `extensions.code`
VALIDATION (or NOT_FOUND for another tenant's project, event type or event) naming the argument."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated

import strawberry

from graph.core.cost import COST_ITEMS
from graph.core.node import decode_id, load_one, to_global_id
from graph.core.scalars import JSON, BigInt
from graph.core.selection import selects
from graph.plan.events import EventFilter, _filter, _readable_project
from graph.plan.types import Event, EventType
from graph.warehouse.types import MetricPoint, ScanConfig, ScanInterval, _event_type, _scan_config
from server.domains.plan import events as plan_events
from server.domains.plan import loaders as plan_loaders
from server.domains.warehouse import metrics
from server.domains.warehouse.models import MetricScope


@strawberry.enum(name="MetricScopeKind", description="What a metric series counts: the project's total, an event "
                                                     "type's or one event's rows.")
class MetricScopeKind(enum.Enum):
    PROJECT = "project"
    EVENT_TYPE = "event_type"
    EVENT = "event"

    @property
    def model(self) -> MetricScope:
        return MetricScope(self.value)


_SCOPE_TYPES = {MetricScopeKind.EVENT_TYPE: "EventType", MetricScopeKind.EVENT: "Event"}


@strawberry.input(description="The scope of a series: `{kind: PROJECT}`, `{kind: EVENT_TYPE, id: <EventType>}` or "
                              "`{kind: EVENT, id: <Event>}`.")
class MetricScopeInput:
    kind: MetricScopeKind
    id: strawberry.ID | None = strawberry.field(default=None, description="None for PROJECT.")


def _scope(scope: MetricScopeInput) -> tuple[MetricScope, uuid.UUID | None]:
    if scope.id is None:
        return scope.kind.model, None
    if scope.kind == MetricScopeKind.PROJECT:
        return scope.kind.model, decode_id(scope.id, "Project", "scope.id")
    return scope.kind.model, decode_id(scope.id, _SCOPE_TYPES[scope.kind], "scope.id")


def _config_id(scan_config_id: strawberry.ID | None) -> uuid.UUID | None:
    return decode_id(scan_config_id, "ScanConfig", "scanConfigId") if scan_config_id else None


From = Annotated[datetime | None, strawberry.argument(name="from", description="Start (default: `to` minus the "
                                                                                 "default range).")]
To = Annotated[datetime | None, strawberry.argument(description="End, exclusive (default: now).")]
ConfigId = Annotated[strawberry.ID | None, strawberry.argument(
    description="Read this scan config's series (default: the one that counted the scope most recently).")]


@strawberry.type(description="A forecast point (filled by anomaly detection).")
class ForecastPoint:
    bucket: datetime
    expected: float
    lower: float
    upper: float


def _scope_gid(kind: MetricScope, scope_id: uuid.UUID) -> str:
    return to_global_id({MetricScope.PROJECT: "Project", MetricScope.EVENT_TYPE: "EventType",
                         MetricScope.EVENT: "Event"}[kind], scope_id)


@strawberry.type(description="Counts per time bucket of one scope, as one scan config counted them, zero-filled over "
                             "the buckets it scanned.")
class MetricSeries:
    scope: MetricScopeKind
    scope_id: strawberry.ID = strawberry.field(description="The Project, EventType or Event.")
    interval: ScanInterval | None = strawberry.field(description="Bucket width (null: no scan config counted it).")
    range_from: datetime = strawberry.field(name="from")
    range_to: datetime = strawberry.field(name="to")
    total: BigInt = strawberry.field(description="Sum of the points.")
    first_bucket: datetime | None = strawberry.field(description="Start of the first point (null when none).")
    # Lists priced as one item by the query cost limit: plain values read by one SQL statement for
    # any number of series (their length is bounded by MAX_POINTS, not by paging).
    counts: list[BigInt] = strawberry.field(
        description="The points' counts alone, in order: point i starts at `firstBucket` + i x `interval` (series "
                    "are zero-filled, so contiguous; only `appVersions.source` lists buckets with rows only). Much "
                    "cheaper than `points` for long series.",
        metadata={COST_ITEMS: 1})
    signals: list[JSON] = strawberry.field(description="Anomaly signals of the range (filled by anomaly detection; "
                                                       "empty until then).")
    forecast: list[ForecastPoint] | None = strawberry.field(description="Forecast (anomaly detection; null until then).")
    scan_config_row_id: strawberry.Private[uuid.UUID | None]
    event_row_id: strawberry.Private[uuid.UUID | None]
    event_type_row_id: strawberry.Private[uuid.UUID | None]
    series: strawberry.Private[metrics.Series]

    @strawberry.field(description="One per bucket, oldest first.", metadata={COST_ITEMS: 1})
    def points(self) -> list[MetricPoint]:
        return [MetricPoint(bucket=b, count=c) for b, c in self.series.points]

    @classmethod
    def from_series(cls, s: metrics.Series) -> "MetricSeries":
        return cls(scope=MetricScopeKind(s.kind.value), scope_id=_scope_gid(s.kind, s.scope_id), interval=s.interval,
                   range_from=s.range_from, range_to=s.range_to, total=s.total,
                   first_bucket=s.first_bucket, counts=s.counts, signals=[], forecast=None, series=s,
                   scan_config_row_id=s.scan_config_id,
                   event_row_id=s.scope_id if s.kind == MetricScope.EVENT else None,
                   event_type_row_id=s.scope_id if s.kind == MetricScope.EVENT_TYPE else None)

    @strawberry.field(description="The scan config the series comes from.")
    async def scan_config(self, info: strawberry.Info) -> ScanConfig | None:
        return await _scan_config(info, self.scan_config_row_id)

    @strawberry.field(description="The event, for an EVENT scope.")
    async def event(self, info: strawberry.Info) -> Event | None:
        return await _event(info, self.event_row_id)

    @strawberry.field(description="The event type: an EVENT_TYPE scope's, or the type of an EVENT scope's event "
                                   "(null for PROJECT).")
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        type_id = self.event_type_row_id
        if type_id is None and self.event_row_id is not None:
            row = await info.context.loader(plan_loaders.load_events).load(self.event_row_id)
            type_id = row.event_type_id if row else None
        return await _event_type(info, type_id)


async def _event(info: strawberry.Info, event_id: uuid.UUID | None) -> Event | None:
    return await load_one(info, plan_loaders.load_events, Event, event_id)


@strawberry.type(description="Series of many events at once.")
class EventSeriesList:
    total_count: int = strawberry.field(description="Events matching the filter (the list holds at most `first`).")
    series: list[MetricSeries] = strawberry.field(metadata={COST_ITEMS: 1})  # sized by `eventSeries(first:)`


@strawberry.type(description="Rows of one event in a window.")
class EventTotal:
    count: BigInt
    previous_count: BigInt | None = strawberry.field(description="Rows in the window of the same length before "
                                                                 "(topEvents only).")
    event_row_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def event(self, info: strawberry.Info) -> Event | None:
        return await _event(info, self.event_row_id)


@strawberry.type(description="Rows per listed event in a time range.")
class WindowTotals:
    range_from: datetime = strawberry.field(name="from")
    range_to: datetime = strawberry.field(name="to")
    items: list[EventTotal]


@strawberry.type(description="The project's most counted events in the last hours.")
class TopEvents:
    hours: int
    items: list[EventTotal]


@strawberry.type(description="One UTC day of the project overview.")
class OverviewDay:
    day: datetime
    volume: BigInt = strawberry.field(description="Rows counted (project totals of every scan config).")
    active_events: int = strawberry.field(description="Plan events with rows that day.")
    event_volume: BigInt = strawberry.field(description="Rows of plan events.")


@strawberry.type(description="KPI series of a project over the last `days` UTC days (today included).")
class Overview:
    days: int
    total_volume: BigInt
    points: list[OverviewDay]


@strawberry.type(description="Volume of one hour of one weekday (UTC).")
class HeatmapCell:
    weekday: int = strawberry.field(description="0 = Monday .. 6 = Sunday.")
    hour: int = strawberry.field(description="0..23, UTC.")
    count: BigInt


@strawberry.type(description="Volume per weekday and hour (7 x 24 cells, Monday 00h first).")
class SeasonalityHeatmap:
    series_info: strawberry.Private[MetricSeries]
    cells: list[HeatmapCell]
    max_count: BigInt
    total_count: BigInt

    @strawberry.field(description="Scope, interval, range and scan config the heatmap was built from (its points "
                                  "are not filled).")
    def source(self) -> MetricSeries:
        return self.series_info


@strawberry.type(description="Rows with one value of a breakdown column.")
class BreakdownValue:
    value: str = strawberry.field(description="The value ('(null)' for NULL; '' for the Other row).")
    is_other: bool = strawberry.field(description="The values beyond the config's top N, folded together.")
    count: BigInt
    series: strawberry.Private[metrics.Series | None]

    @strawberry.field(description="Its count per bucket over the range, oldest first, zero-filled over what was "
                                  "scanned (as `metricSeries`; read in one statement for every value, only when "
                                  "asked).", metadata={COST_ITEMS: 1})
    def points(self) -> list[MetricPoint]:
        return [MetricPoint(bucket=b, count=c) for b, c in self.series.points] if self.series else []


@strawberry.type(description="A scope's counts by breakdown value over a range.")
class EventBreakdown:
    source: MetricSeries = strawberry.field(description="Scope, interval, range and scan config (no points).")
    columns: list[str] = strawberry.field(description="The columns it was broken down by in the range.")
    selected_column: str | None
    values: list[BreakdownValue] = strawberry.field(description="Of the selected column, by count.")


@strawberry.type(description="Rows of one app version in a range.")
class AppVersionTotal:
    version: str
    count: BigInt
    share: float = strawberry.field(description="Of all rows of the range, 0..1.")
    first_seen: datetime = strawberry.field(description="First bucket with rows in the range.")
    last_seen: datetime


@strawberry.type(description="One app version's counts per bucket (buckets with rows only).")
class AppVersionSeries:
    version: str
    points: list[MetricPoint]


@strawberry.type(description="Share of a version in a bucket.")
class SharePoint:
    bucket: datetime
    share: float


@strawberry.type(description="App versions of a scope over a range: totals, series and the latest version's adoption.")
class AppVersions:
    source: MetricSeries = strawberry.field(description="Scope, interval, range, scan config; points: all versions.")
    app_version_column: str | None
    latest_version: str | None = strawberry.field(description="The version first seen most recently.")
    versions: list[AppVersionTotal] = strawberry.field(description="By count.")
    series: list[AppVersionSeries]
    adoption: list[SharePoint] = strawberry.field(description="Share of the latest version per bucket with rows.")


def _source(s: metrics.Series) -> MetricSeries:
    return MetricSeries.from_series(s)


@strawberry.type
class MetricsQuery:
    @strawberry.field(description="Counts per bucket of the project total, an event type or an event over [from, to) "
                                  "(default: the last 7 days), zero-filled over what was scanned, at most 10,000 "
                                  "buckets.")
    async def metric_series(self, info: strawberry.Info, project_id: strawberry.ID, scope: MetricScopeInput,
                            from_: From = None, to: To = None,
                            scan_config_id: ConfigId = None) -> MetricSeries:
        ctx = info.context
        kind, scope_id = _scope(scope)
        series = await metrics.metric_series(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"),
                                             kind, scope_id, from_, to, _config_id(scan_config_id))
        return MetricSeries.from_series(series)

    @strawberry.field(description="Series of the project's events matching `filter` (as `events` filters them), in plan "
                                  "order, at most `first` (1 to 500, default 100). Two SQL statements for the series "
                                  "whatever the number of events.")
    async def event_series(self, info: strawberry.Info, project_id: strawberry.ID, filter: EventFilter | None = None,
                           from_: From = None, to: To = None,
                           first: int | None = None) -> EventSeriesList:
        ctx = info.context
        f = _filter(filter)
        project = await _readable_project(info, project_id)
        series, total = await metrics.event_series(ctx.rt, ctx.principal, project,
                                                   plan_events.events_query(ctx.principal, project, f), from_, to, first)
        return EventSeriesList(total_count=total, series=[MetricSeries.from_series(s) for s in series])

    @strawberry.field(description="Counts per bucket of one breakdown value of a scope (or of its `Other` row with "
                                  "`isOther: true`), zero-filled.")
    async def breakdown_timeline(self, info: strawberry.Info, project_id: strawberry.ID, scope: MetricScopeInput,
                                 column: str, value: str = "", is_other: bool = False,
                                 from_: From = None, to: To = None,
                                 scan_config_id: ConfigId = None) -> MetricSeries:
        ctx = info.context
        kind, scope_id = _scope(scope)
        series = await metrics.breakdown_timeline(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"),
                                                  kind, scope_id, column, value, is_other, from_, to,
                                                  _config_id(scan_config_id))
        return MetricSeries.from_series(series)

    @strawberry.field(description="An event's (or any scope's) rows by value of one breakdown column over [from, to) "
                                  "(default: the last 7 days): `column`, else the first column by name; at most "
                                  "`limit` values (1 to 100, default 20), each with its series per bucket "
                                  "(`points`).")
    async def event_breakdown(self, info: strawberry.Info, project_id: strawberry.ID, scope: MetricScopeInput,
                              column: str | None = None, from_: From = None, to: To = None,
                              limit: int | None = None,
                              scan_config_id: ConfigId = None) -> EventBreakdown:
        ctx = info.context
        kind, scope_id = _scope(scope)
        b = await metrics.event_breakdown(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"), kind,
                                          scope_id, column, from_, to, limit, _config_id(scan_config_id),
                                          with_series=selects(info, "values.points"))
        return EventBreakdown(source=_source(b.series), columns=b.columns, selected_column=b.selected_column,
                              values=[BreakdownValue(value=v.value, is_other=v.is_other, count=v.count,
                                                     series=v.series) for v in b.values])

    @strawberry.field(description="Rows per listed event (1 to 500 events of the project) in [from, to) (default: the "
                                  "last 7 days), summed over the project's scan configs; 0 when none counted it.")
    async def window_totals(self, info: strawberry.Info, project_id: strawberry.ID, event_ids: list[strawberry.ID],
                            from_: From = None, to: To = None) -> WindowTotals:
        ctx = info.context
        ids = [decode_id(e, "Event", f"eventIds.{i}") for i, e in enumerate(event_ids)]
        start, end, items = await metrics.window_totals(ctx.rt, ctx.principal,
                                                        decode_id(project_id, "Project", "projectId"), ids, from_, to)
        return WindowTotals(range_from=start, range_to=end,
                            items=[EventTotal(count=t.count, previous_count=None, event_row_id=t.event_id)
                                   for t in items])

    @strawberry.field(description="KPI series per UTC day over the last `days` (1 to 365, default 14): volume, active "
                                  "events, plan events' volume.")
    async def overview(self, info: strawberry.Info, project_id: strawberry.ID, days: int = 14) -> Overview:
        ctx = info.context
        o = await metrics.overview(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"), days)
        return Overview(days=o.days, total_volume=o.total_volume,
                        points=[OverviewDay(day=p.day, volume=p.volume, active_events=p.active_events,
                                            event_volume=p.event_volume) for p in o.points])

    @strawberry.field(description="The project's events with the most rows in the last `hours` (1 to 720, default 48), "
                                  "at most `limit` (1 to 100, default 6), with their rows in the window before.")
    async def top_events(self, info: strawberry.Info, project_id: strawberry.ID, hours: int = 48,
                         limit: int = 6) -> TopEvents:
        ctx = info.context
        h, items = await metrics.top_events(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"),
                                            hours, limit)
        return TopEvents(hours=h, items=[EventTotal(count=t.count, previous_count=t.previous_count,
                                                    event_row_id=t.event_id) for t in items])

    @strawberry.field(description="App versions of a scope (default: the project total) over [from, to) (default: the "
                                  "last 7 days): totals, series and adoption of the latest version.")
    async def app_versions(self, info: strawberry.Info, project_id: strawberry.ID,
                           scope: MetricScopeInput | None = None, from_: From = None,
                           to: To = None, scan_config_id: ConfigId = None) -> AppVersions:
        ctx = info.context
        kind, scope_id = _scope(scope or MetricScopeInput(kind=MetricScopeKind.PROJECT))
        a = await metrics.app_versions(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"), kind,
                                       scope_id, from_, to, _config_id(scan_config_id))
        total = a.series.total
        return AppVersions(
            source=_source(a.series), app_version_column=a.app_version_column, latest_version=a.latest_version,
            versions=[AppVersionTotal(version=v.version, count=v.count, share=v.count / total if total else 0.0,
                                      first_seen=v.first_seen, last_seen=v.last_seen) for v in a.versions],
            series=[AppVersionSeries(version=v, points=[MetricPoint(bucket=b, count=c) for b, c in pts])
                    for v, pts in sorted(a.by_version.items())],
            adoption=[SharePoint(bucket=b, share=x) for b, x in a.adoption()])

    @strawberry.field(description="Volume per weekday x hour of day (UTC) of a scope over [from, to) (default: the "
                                  "last 28 days), with the largest cell and the total.")
    async def seasonality_heatmap(self, info: strawberry.Info, project_id: strawberry.ID, scope: MetricScopeInput,
                                  from_: From = None, to: To = None,
                                  scan_config_id: ConfigId = None) -> SeasonalityHeatmap:
        ctx = info.context
        kind, scope_id = _scope(scope)
        h = await metrics.seasonality_heatmap(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"),
                                              kind, scope_id, from_, to, _config_id(scan_config_id))
        return SeasonalityHeatmap(series_info=_source(h.series),
                                  cells=[HeatmapCell(weekday=d, hour=hr, count=c) for d, hr, c in h.cells],
                                  max_count=h.max_count, total_count=h.total_count)


__all__ = ["MetricScopeInput", "MetricScopeKind", "MetricSeries", "MetricsQuery"]
