"""Metric series read from what scans counted (metric_buckets, metric_breakdown_buckets,
app_version_buckets): seed 003's metrics tag.

Rules every query here follows:
- Aggregation happens in PostgreSQL (GROUP BY, date_trunc, extract, generate_series for
  zero-filling); a request runs a constant number of statements whatever the number of events.
- Access: the project must be readable (members; a project-bound key its project only), else
  NOT_FOUND on `projectId`; a scope's event type / event must belong to the project, else
  NOT_FOUND on `scope.id`. Bad ranges are VALIDATION errors naming the argument.
- Which scan config a series comes from: series are per scan config (each config counts what its
  own base query sees, at its own interval). A series of one scope (`metricSeries`,
  `eventSeries`, breakdowns, heatmap, app versions) reads ONE config: the one given as
  `scanConfigId`, else the project's config that counted the scope most recently (at the
  config's current interval; ties: oldest config). It names that config and its interval; both
  are null when no config counted the scope (then the series is empty).
  Project-wide aggregates (`overview`, `topEvents`, `windowTotals`, coverage) add up every config
  of the project at its current interval.
- Ranges: `from`/`to` default to the last 7 days ending now; a series holds the buckets that
  overlap [from, to) (the first one may start before `from`); at most MAX_POINTS buckets.
- Zero-filled: every bucket of the range that the config has scanned is present, with count 0
  where nothing was counted (a scan writes only non-empty buckets). Buckets after the config's
  `scanned_until` watermark (not scanned yet) are left out rather than shown as zeros; a config
  without a watermark yet (only replays ran) is zero-filled up to `to`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ARRAY, Integer, Text, bindparam, distinct, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime

from server.db.base import utcnow
from server.domains.plan.access import readable_project, visible
from server.domains.plan.models import Event, EventType, Project
from server.domains.warehouse.connectors.sql import bucket_start_of
from server.domains.warehouse.models import (
    AppVersionBucket,
    BreakdownBucket,
    MetricBucket,
    MetricScope,
    ScanConfig,
    ScanInterval,
)
from server.errors import invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

DEFAULT_RANGE = timedelta(days=7)
MAX_POINTS = 10_000              # a year of hourly buckets; ~104 days of 15-minute ones
OVERVIEW_DAYS_MIN, OVERVIEW_DAYS_MAX, OVERVIEW_DAYS_DEFAULT = 1, 365, 14
TOP_HOURS_MIN, TOP_HOURS_MAX, TOP_HOURS_DEFAULT = 1, 720, 48
TOP_LIMIT_MIN, TOP_LIMIT_MAX, TOP_LIMIT_DEFAULT = 1, 100, 6
MANY_MIN, MANY_MAX, MANY_DEFAULT = 1, 500, 100   # events per eventSeries / windowTotals
BREAKDOWN_LIMIT_MIN, BREAKDOWN_LIMIT_MAX, BREAKDOWN_LIMIT_DEFAULT = 1, 100, 20
HEATMAP_DEFAULT_RANGE = timedelta(days=28)
SERIES_SCOPES = (MetricScope.PROJECT, MetricScope.EVENT_TYPE, MetricScope.EVENT)

_UUIDS = ARRAY(PG_UUID(as_uuid=True))
_TEXTS = ARRAY(Text)
_TIMES = ARRAY(DateTime(timezone=True))
_INTS = ARRAY(Integer)


# --- validation --------------------------------------------------------------------------------

def check_int(value: int | None, default: int, low: int, high: int, name: str) -> int:
    value = default if value is None else value
    if not low <= value <= high:
        raise invalid(f"{name} must be {low} to {high}", [name])
    return value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def resolve_range(from_: datetime | None, to: datetime | None, default: timedelta = DEFAULT_RANGE,
                  now: datetime | None = None) -> tuple[datetime, datetime]:
    """[from, to): `to` defaults to now, `from` to `to - default`; `from` must be before `to`."""
    end = _utc(to) if to is not None else (now or utcnow())
    start = _utc(from_) if from_ is not None else end - default
    if start >= end:
        raise invalid("`from` must be before `to`", ["from"])
    return start, end


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def first_bucket(at: datetime, interval: ScanInterval) -> datetime:
    return _at(bucket_start_of(_epoch(at), interval))


def last_bucket(end: datetime, interval: ScanInterval) -> datetime:
    """Start of the last bucket that begins before `end` (exclusive)."""
    return _at(bucket_start_of(_epoch(end) - 1 if end.microsecond == 0 else _epoch(end), interval))


def check_points(start: datetime, end: datetime, interval: ScanInterval, field_name: str = "from") -> None:
    n = (_epoch(last_bucket(end, interval)) - _epoch(first_bucket(start, interval))) // interval.seconds + 1
    if n > MAX_POINTS:
        raise invalid(f"the range holds {n} buckets of {interval.value}; at most {MAX_POINTS}: shorten it",
                      [field_name])


# --- scopes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    kind: MetricScope
    id: uuid.UUID  # the project's id for PROJECT


async def project_of(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> Project:
    return await readable_project(session, principal, project_id, ["projectId"])


async def resolve_scope(session: AsyncSession, principal: Principal, project: Project, kind: MetricScope,
                        scope_id: uuid.UUID | None, field_path: list[str] | None = None) -> Scope:
    """The scope, checked: PROJECT takes no id; an event type / event must be the project's."""
    at = field_path or ["scope", "id"]
    if kind not in SERIES_SCOPES:
        raise invalid("scope kind must be PROJECT, EVENT_TYPE or EVENT", at[:-1] + ["kind"])
    if kind == MetricScope.PROJECT:
        if scope_id is not None and scope_id != project.id:
            raise invalid("a PROJECT scope takes no id", at)
        return Scope(kind, project.id)
    if scope_id is None:
        raise invalid(f"a {kind.name} scope needs an id", at)
    model = EventType if kind == MetricScope.EVENT_TYPE else Event
    found = (await session.execute(select(model.id).where(model.id == scope_id, model.project_id == project.id,
                                                          *visible(model, principal)))).scalar_one_or_none()
    if found is None:
        raise not_found("event type" if kind == MetricScope.EVENT_TYPE else "event", at)
    return Scope(kind, scope_id)


@dataclass
class Source:
    """The scan config a scope's series comes from."""

    scan_config_id: uuid.UUID
    interval: ScanInterval
    scanned_until: datetime | None


_PICK = text("""
SELECT DISTINCT ON (s.scope_id) s.scope_id, sc.id, sc."interval", sc.scanned_until, l.latest
FROM unnest(:scope_ids) AS s(scope_id)
CROSS JOIN scan_configs sc
CROSS JOIN LATERAL (
  SELECT max(mb.bucket_start) AS latest FROM metric_buckets mb
  WHERE mb.scan_config_id = sc.id AND mb.scope_kind = CAST(:kind AS metric_scope) AND mb.scope_id = s.scope_id
    AND mb."interval" = sc."interval") l
WHERE sc.project_id = :project_id AND (CAST(:config_id AS uuid) IS NULL OR sc.id = CAST(:config_id AS uuid))
ORDER BY s.scope_id, (l.latest IS NULL), l.latest DESC, sc.created_at, sc.id
""").bindparams(bindparam("scope_ids", type_=_UUIDS), bindparam("config_id", type_=PG_UUID(as_uuid=True)),
                bindparam("project_id", type_=PG_UUID(as_uuid=True)))


async def pick_sources(session: AsyncSession, project_id: uuid.UUID, kind: MetricScope, scope_ids: list[uuid.UUID],
                       scan_config_id: uuid.UUID | None = None, *,
                       require_buckets: bool = True) -> dict[uuid.UUID, Source]:
    """Per scope id, the config its series comes from (one statement for all scopes). With
    `require_buckets`, a scope no config counted has no source; a given `scan_config_id` is
    always the source when it is the project's. One statement."""
    if not scope_ids:
        return {}
    rows = (await session.execute(_PICK, {"scope_ids": list(scope_ids), "kind": kind.value,
                                          "project_id": project_id, "config_id": scan_config_id})).all()
    out: dict[uuid.UUID, Source] = {}
    for scope_id, config_id, interval, scanned_until, latest in rows:
        if latest is None and require_buckets and scan_config_id is None:
            continue  # no config counted this scope
        out[scope_id] = Source(config_id, ScanInterval(interval), scanned_until)
    return out


async def check_config(session: AsyncSession, project: Project, scan_config_id: uuid.UUID | None) -> None:
    if scan_config_id is None:
        return
    found = (await session.execute(select(ScanConfig.id).where(ScanConfig.id == scan_config_id,
                                                               ScanConfig.project_id == project.id))).scalar_one_or_none()
    if found is None:
        raise not_found("scan config", ["scanConfigId"])


def fill_range(start: datetime, end: datetime, source: Source) -> tuple[datetime, datetime] | None:
    """First and last bucket start to show (zero-filled), or None when nothing of it was scanned."""
    stop = end
    if source.scanned_until is not None:
        stop = min(stop, source.scanned_until)
    first = first_bucket(start, source.interval)
    if stop <= first:
        return None
    return first, last_bucket(stop, source.interval)


async def _project_scope(session: AsyncSession, principal: Principal, project_id: uuid.UUID, kind: MetricScope,
                         scope_id: uuid.UUID | None, scan_config_id: uuid.UUID | None) -> tuple[Project, Scope]:
    """The readable project, the scope asked for, and a check that a named config is the project's."""
    project = await project_of(session, principal, project_id)
    scope = await resolve_scope(session, principal, project, kind, scope_id)
    await check_config(session, project, scan_config_id)
    return project, scope


async def _scope_source(session: AsyncSession, project: Project, scope: Scope, start: datetime, end: datetime,
                        scan_config_id: uuid.UUID | None) -> tuple[Series, Source | None]:
    """An empty series of the scope over [start, end) and the config that counted it (named on the
    series), or None when no config has."""
    series = Series(scope.kind, scope.id, project.id, start, end)
    source = (await pick_sources(session, project.id, scope.kind, [scope.id], scan_config_id)).get(scope.id)
    if source is not None:
        series.scan_config_id, series.interval = source.scan_config_id, source.interval
    return series, source


# --- series ------------------------------------------------------------------------------------

@dataclass
class Series:
    """A zero-filled series: `counts[i]` is the bucket starting at `first_bucket + i * interval`
    (contiguous), unless `sparse` lists (bucket, count) pairs of non-empty buckets only."""

    kind: MetricScope
    scope_id: uuid.UUID
    project_id: uuid.UUID
    range_from: datetime
    range_to: datetime
    scan_config_id: uuid.UUID | None = None
    interval: ScanInterval | None = None
    first_bucket: datetime | None = None
    counts: list[int] = field(default_factory=list)
    sparse: list[tuple[datetime, int]] | None = None

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def points(self) -> list[tuple[datetime, int]]:
        """(bucket start, count) pairs; built on demand (long series are read as `counts`)."""
        if self.sparse is not None:
            return self.sparse
        if self.first_bucket is None or self.interval is None:
            return []
        step = self.interval.delta
        return [(self.first_bucket + i * step, c) for i, c in enumerate(self.counts)]


# One correlated subquery per series: an index range scan of its buckets hash-joined with the
# generated bucket starts, aggregated into one array (a nested loop of per-bucket index probes
# costs 4x for one series and far more for many).
_SERIES = text("""
SELECT p.i, (
  SELECT array_agg(COALESCE(x.count, 0) ORDER BY g.b)
  FROM generate_series(p.first_b, p.last_b, make_interval(secs => p.step)) AS g(b)
  LEFT JOIN (SELECT mb.bucket_start, mb.count FROM metric_buckets mb
             WHERE mb.scan_config_id = p.config_id AND mb.scope_kind = CAST(:kind AS metric_scope)
               AND mb.scope_id = p.scope_id AND mb."interval" = CAST(p.iv AS scan_interval)
               AND mb.bucket_start >= p.first_b AND mb.bucket_start <= p.last_b) AS x
    ON x.bucket_start = g.b)
FROM unnest(:scope_ids, :config_ids, :intervals, :firsts, :lasts, :steps)
     WITH ORDINALITY AS p(scope_id, config_id, iv, first_b, last_b, step, i)
""").bindparams(bindparam("scope_ids", type_=_UUIDS), bindparam("config_ids", type_=_UUIDS),
                bindparam("intervals", type_=_TEXTS), bindparam("firsts", type_=_TIMES),
                bindparam("lasts", type_=_TIMES), bindparam("steps", type_=_INTS))


async def read_series(session: AsyncSession, project: Project, kind: MetricScope, scope_ids: list[uuid.UUID],
                      start: datetime, end: datetime, scan_config_id: uuid.UUID | None = None) -> list[Series]:
    """Zero-filled series of many scopes of one kind: two statements whatever their number."""
    sources = await pick_sources(session, project.id, kind, scope_ids, scan_config_id)
    out = [Series(kind, sid, project.id, start, end) for sid in scope_ids]
    wanted: list[tuple[int, Source, datetime, datetime]] = []
    for i, series in enumerate(out):
        source = sources.get(series.scope_id)
        if source is None:
            continue
        check_points(start, end, source.interval)
        series.scan_config_id, series.interval = source.scan_config_id, source.interval
        bounds = fill_range(start, end, source)
        if bounds is not None:
            wanted.append((i, source, *bounds))
    if wanted:
        rows = await session.execute(_SERIES, {
            "scope_ids": [out[i].scope_id for i, *_ in wanted], "config_ids": [s.scan_config_id for _, s, *_ in wanted],
            "intervals": [s.interval.value for _, s, *_ in wanted], "firsts": [f for *_, f, _ in wanted],
            "lasts": [last for *_, last in wanted], "steps": [s.interval.seconds for _, s, *_ in wanted],
            "kind": kind.value})
        for position, counts in rows:
            i, _, first, _ = wanted[position - 1]
            out[i].first_bucket, out[i].counts = first, list(counts or [])
    return out


async def metric_series(rt: Runtime, principal: Principal, project_id: uuid.UUID, kind: MetricScope,
                        scope_id: uuid.UUID | None, from_: datetime | None = None, to: datetime | None = None,
                        scan_config_id: uuid.UUID | None = None) -> Series:
    start, end = resolve_range(from_, to)
    async with rt.db.session() as s:
        project, scope = await _project_scope(s, principal, project_id, kind, scope_id, scan_config_id)
        return (await read_series(s, project, scope.kind, [scope.id], start, end, scan_config_id))[0]


async def event_series(rt: Runtime, principal: Principal, project_id: uuid.UUID, events_query: Any,
                       from_: datetime | None, to: datetime | None, first: int | None) -> tuple[list[Series], int]:
    """Series of the project's events matching a plan filter (`events_query`: the plan's
    `events_query(...)` select), in plan order, at most `first` (1..500, default 100); with the
    number of matching events."""
    limit = check_int(first, MANY_DEFAULT, MANY_MIN, MANY_MAX, "first")
    start, end = resolve_range(from_, to)
    async with rt.db.session() as s:
        project = await project_of(s, principal, project_id)
        sub = events_query.subquery()
        rows = (await s.execute(select(sub.c.id, func.count().over()).order_by(sub.c.sort_order, sub.c.id)
                                .limit(limit))).all()
        ids = [r[0] for r in rows]
        total = rows[0][1] if rows else 0
        return await read_series(s, project, MetricScope.EVENT, ids, start, end), total


# --- project-wide aggregates -------------------------------------------------------------------

def _current_interval():  # noqa: ANN202  the join that keeps each config's series at its current interval
    return (ScanConfig.id == MetricBucket.scan_config_id) & (ScanConfig.interval == MetricBucket.interval)


@dataclass
class OverviewDay:
    day: datetime
    volume: int
    active_events: int
    event_volume: int


@dataclass
class Overview:
    days: int
    points: list[OverviewDay]

    @property
    def total_volume(self) -> int:
        return sum(p.volume for p in self.points)


async def overview(rt: Runtime, principal: Principal, project_id: uuid.UUID, days: int | None) -> Overview:
    """Per UTC day of the last `days` (1..365, default 14, today included): total volume
    (project totals of every config), plan events with rows and their volume (events deleted
    from the plan left out, as in `top_events`). One statement."""
    n = check_int(days, OVERVIEW_DAYS_DEFAULT, OVERVIEW_DAYS_MIN, OVERVIEW_DAYS_MAX, "days")
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=n - 1)
    day = func.date_trunc("day", MetricBucket.bucket_start, "UTC").label("day")
    is_project = MetricBucket.scope_kind == MetricScope.PROJECT
    is_event = MetricBucket.scope_kind == MetricScope.EVENT
    planned = Event.id.is_not(None)  # buckets of events deleted from the plan stay; they are not plan events
    async with rt.db.session() as s:
        project = await project_of(s, principal, project_id)
        rows = (await s.execute(
            select(day, func.coalesce(func.sum(MetricBucket.count).filter(is_project), 0),
                   func.count(distinct(MetricBucket.scope_id)).filter(planned & (MetricBucket.count > 0)),
                   func.coalesce(func.sum(MetricBucket.count).filter(planned), 0))
            .select_from(MetricBucket).join(ScanConfig, _current_interval())
            .outerjoin(Event, is_event & (Event.id == MetricBucket.scope_id))
            .where(MetricBucket.project_id == project.id, MetricBucket.scope_kind.in_([MetricScope.PROJECT,
                                                                                     MetricScope.EVENT]),
                   MetricBucket.bucket_start >= since)
            .group_by(day))).all()
    by_day = {r[0]: r for r in rows}
    points = []
    for i in range(n):
        d = since + timedelta(days=i)
        r = by_day.get(d)
        points.append(OverviewDay(d, int(r[1]), int(r[2]), int(r[3])) if r else OverviewDay(d, 0, 0, 0))
    return Overview(n, points)


@dataclass
class EventTotal:
    event_id: uuid.UUID
    count: int
    previous_count: int = 0


async def top_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, hours: int | None,
                     limit: int | None) -> tuple[int, list[EventTotal]]:
    """The project's events with the most rows in the last `hours` (1..720, default 48), at most
    `limit` (1..100, default 6), with their count in the window before. Count desc, ties by id."""
    h = check_int(hours, TOP_HOURS_DEFAULT, TOP_HOURS_MIN, TOP_HOURS_MAX, "hours")
    n = check_int(limit, TOP_LIMIT_DEFAULT, TOP_LIMIT_MIN, TOP_LIMIT_MAX, "limit")
    now = utcnow()
    since, before = now - timedelta(hours=h), now - timedelta(hours=2 * h)
    current = MetricBucket.bucket_start >= since
    async with rt.db.session() as s:
        project = await project_of(s, principal, project_id)
        count = func.coalesce(func.sum(MetricBucket.count).filter(current), 0).label("n")
        rows = (await s.execute(
            select(MetricBucket.scope_id, count,
                   func.coalesce(func.sum(MetricBucket.count).filter(~current), 0))
            .select_from(MetricBucket).join(ScanConfig, _current_interval())
            .join(Event, Event.id == MetricBucket.scope_id)  # events deleted from the plan drop out
            .where(MetricBucket.project_id == project.id, MetricBucket.scope_kind == MetricScope.EVENT,
                   MetricBucket.bucket_start >= before, MetricBucket.bucket_start < now)
            .group_by(MetricBucket.scope_id)
            .having(func.sum(MetricBucket.count).filter(current) > 0)
            .order_by(count.desc(), MetricBucket.scope_id).limit(n))).all()
    return h, [EventTotal(r[0], int(r[1]), int(r[2])) for r in rows]


async def window_totals(rt: Runtime, principal: Principal, project_id: uuid.UUID, event_ids: list[uuid.UUID],
                        from_: datetime | None, to: datetime | None) -> tuple[datetime, datetime, list[EventTotal]]:
    """Rows per listed event (1..500 of the project's events) in [from, to) (default: the last
    7 days), summed over the project's configs; 0 for an event nothing counted."""
    ids = list(dict.fromkeys(event_ids))
    if not MANY_MIN <= len(ids) <= MANY_MAX:
        raise invalid(f"give {MANY_MIN} to {MANY_MAX} events", ["eventIds"])
    start, end = resolve_range(from_, to)
    async with rt.db.session() as s:
        project = await project_of(s, principal, project_id)
        known = set((await s.execute(select(Event.id).where(Event.id.in_(ids), Event.project_id == project.id,
                                                             *visible(Event, principal)))).scalars())
        missing = [str(i) for i, e in enumerate(ids) if e not in known]
        if missing:
            raise not_found("event of this project", ["eventIds", missing[0]])
        rows = dict((await s.execute(
            select(MetricBucket.scope_id, func.sum(MetricBucket.count))
            .select_from(MetricBucket).join(ScanConfig, _current_interval())
            .where(MetricBucket.project_id == project.id, MetricBucket.scope_kind == MetricScope.EVENT,
                   MetricBucket.scope_id.in_(ids), MetricBucket.bucket_start >= start, MetricBucket.bucket_start < end)
            .group_by(MetricBucket.scope_id))).all())
    return start, end, [EventTotal(i, int(rows.get(i, 0))) for i in ids]


# --- seasonality -------------------------------------------------------------------------------

@dataclass
class Heatmap:
    series: Series
    cells: list[tuple[int, int, int]]  # (weekday 0 = Monday, hour 0..23 UTC, count)

    @property
    def max_count(self) -> int:
        return max((c for *_, c in self.cells), default=0)

    @property
    def total_count(self) -> int:
        return sum(c for *_, c in self.cells)


async def seasonality_heatmap(rt: Runtime, principal: Principal, project_id: uuid.UUID, kind: MetricScope,
                              scope_id: uuid.UUID | None, from_: datetime | None, to: datetime | None,
                              scan_config_id: uuid.UUID | None = None) -> Heatmap:
    """Volume per (weekday, hour of day) in UTC over [from, to) (default: the last 28 days): 168
    cells, weekday 0 = Monday. Daily or weekly buckets all fall on hour 0 (and weekly ones on
    Monday): the heatmap means something for 15m..6h intervals."""
    start, end = resolve_range(from_, to, HEATMAP_DEFAULT_RANGE)
    async with rt.db.session() as s:
        project, scope = await _project_scope(s, principal, project_id, kind, scope_id, scan_config_id)
        series, source = await _scope_source(s, project, scope, start, end, scan_config_id)
        counts: dict[tuple[int, int], int] = {}
        if source is not None:
            local = func.timezone("UTC", MetricBucket.bucket_start)
            dow = (func.extract("isodow", local) - 1).label("dow")
            hour = func.extract("hour", local).label("hour")
            rows = await s.execute(
                select(dow, hour, func.sum(MetricBucket.count))
                .where(MetricBucket.scan_config_id == source.scan_config_id, MetricBucket.scope_kind == scope.kind,
                       MetricBucket.scope_id == scope.id, MetricBucket.interval == source.interval,
                       MetricBucket.bucket_start >= first_bucket(start, source.interval),
                       MetricBucket.bucket_start < end)
                .group_by(dow, hour))
            counts = {(int(d), int(h)): int(c) for d, h, c in rows}
    return Heatmap(series, [(d, h, counts.get((d, h), 0)) for d in range(7) for h in range(24)])


# --- breakdowns --------------------------------------------------------------------------------

@dataclass
class BreakdownValue:
    value: str
    is_other: bool
    count: int
    series: Series | None = None  # per bucket, when asked (`with_series`)


@dataclass
class Breakdown:
    series: Series
    columns: list[str]
    selected_column: str | None
    values: list[BreakdownValue]


async def _value_series(s: AsyncSession, scope: Scope, source: Source, column: str, values: list[BreakdownValue],
                        start: datetime, end: datetime, project_id: uuid.UUID) -> None:
    """Give each value its series over [start, end), zero-filled over what was scanned (like
    `read_series`): one statement for all of them."""
    bounds = fill_range(start, end, source)
    found: dict[tuple[str, bool, int], int] = {}
    n = 0
    if bounds is not None and values:
        first, last = bounds
        step = source.interval.seconds
        n = (_epoch(last) - _epoch(first)) // step + 1
        b = BreakdownBucket
        rows = await s.execute(
            select(b.value, b.is_other, b.bucket_start, func.sum(b.count))
            .where(b.scan_config_id == source.scan_config_id, b.scope_kind == scope.kind, b.scope_id == scope.id,
                   b.interval == source.interval, b.column == column, b.bucket_start >= first,
                   b.bucket_start <= last, tuple_(b.value, b.is_other).in_([(v.value, v.is_other) for v in values]))
            .group_by(b.value, b.is_other, b.bucket_start))
        found = {(value, other, (_epoch(at) - _epoch(first)) // step): int(c) for value, other, at, c in rows}
    for v in values:
        v.series = Series(scope.kind, scope.id, project_id, start, end, source.scan_config_id, source.interval,
                          bounds[0] if bounds and n else None,
                          [found.get((v.value, v.is_other, i), 0) for i in range(n)])


async def event_breakdown(rt: Runtime, principal: Principal, project_id: uuid.UUID, kind: MetricScope,
                          scope_id: uuid.UUID | None, column: str | None, from_: datetime | None,
                          to: datetime | None, limit: int | None,
                          scan_config_id: uuid.UUID | None = None, with_series: bool = False) -> Breakdown:
    """Counts per breakdown value of one column over [from, to) for a scope (usually an event):
    the columns the config broke it down by, the selected one (`column`, else the first by
    name) and its values by count (the `Other` row last among equals), at most `limit` (1..100,
    default 20). One statement for every column; `with_series` adds each listed value's
    zero-filled series per bucket (the seed's breakdown series) in one more statement."""
    n = check_int(limit, BREAKDOWN_LIMIT_DEFAULT, BREAKDOWN_LIMIT_MIN, BREAKDOWN_LIMIT_MAX, "limit")
    start, end = resolve_range(from_, to)
    async with rt.db.session() as s:
        project, scope = await _project_scope(s, principal, project_id, kind, scope_id, scan_config_id)
        series, source = await _scope_source(s, project, scope, start, end, scan_config_id)
        if source is None:
            return Breakdown(series, [], column, [])
        b = BreakdownBucket
        rows = (await s.execute(
            select(b.column, b.value, b.is_other, func.sum(b.count))
            .where(b.scan_config_id == source.scan_config_id, b.scope_kind == scope.kind, b.scope_id == scope.id,
                   b.interval == source.interval, b.bucket_start >= first_bucket(start, source.interval),
                   b.bucket_start < end)
            .group_by(b.column, b.value, b.is_other))).all()
        columns = sorted({r[0] for r in rows})
        selected = column if column is not None else (columns[0] if columns else None)
        values = sorted((BreakdownValue(v, o, int(c)) for col, v, o, c in rows if col == selected),
                        key=lambda x: (-x.count, x.is_other, x.value))[:n]
        if with_series and selected is not None:
            check_points(start, end, source.interval)
            await _value_series(s, scope, source, selected, values, start, end, project.id)
    return Breakdown(series, columns, selected, values)


_BREAKDOWN_SERIES = text("""
SELECT array_agg(COALESCE(x.count, 0) ORDER BY g.b)
FROM generate_series(CAST(:first AS timestamptz), CAST(:last AS timestamptz), make_interval(secs => :step)) AS g(b)
LEFT JOIN (SELECT bb.bucket_start, bb.count FROM metric_breakdown_buckets bb
           WHERE bb.scan_config_id = :config_id AND bb.scope_kind = CAST(:kind AS metric_scope)
             AND bb.scope_id = :scope_id AND bb."interval" = CAST(:iv AS scan_interval) AND bb."column" = :column
             AND bb.is_other = :is_other AND bb.value = :value
             AND bb.bucket_start >= CAST(:first AS timestamptz) AND bb.bucket_start <= CAST(:last AS timestamptz)) AS x
  ON x.bucket_start = g.b
""").bindparams(bindparam("config_id", type_=PG_UUID(as_uuid=True)), bindparam("scope_id", type_=PG_UUID(as_uuid=True)))


async def breakdown_timeline(rt: Runtime, principal: Principal, project_id: uuid.UUID, kind: MetricScope,
                             scope_id: uuid.UUID | None, column: str, value: str, is_other: bool,
                             from_: datetime | None, to: datetime | None,
                             scan_config_id: uuid.UUID | None = None) -> Series:
    """Zero-filled count per bucket of one breakdown value (or of the `Other` row: `isOther`,
    whose value is '') of a scope, from the scope's config."""
    if not column or len(column) > 255:
        raise invalid("column must be 1 to 255 characters", ["column"])
    if is_other:
        value = ""
    start, end = resolve_range(from_, to)
    async with rt.db.session() as s:
        project, scope = await _project_scope(s, principal, project_id, kind, scope_id, scan_config_id)
        series, source = await _scope_source(s, project, scope, start, end, scan_config_id)
        if source is None:
            return series
        check_points(start, end, source.interval)
        bounds = fill_range(start, end, source)
        if bounds is not None:
            counts = (await s.execute(_BREAKDOWN_SERIES, {
                "first": bounds[0], "last": bounds[1], "step": source.interval.seconds,
                "config_id": source.scan_config_id, "kind": scope.kind.value, "scope_id": scope.id,
                "iv": source.interval.value, "column": column, "is_other": is_other, "value": value})).scalar_one()
            series.first_bucket, series.counts = bounds[0], list(counts or [])
    return series


# --- app versions ------------------------------------------------------------------------------

@dataclass
class VersionTotal:
    version: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass
class AppVersions:
    series: Series
    app_version_column: str | None
    versions: list[VersionTotal]                            # by count desc
    by_version: dict[str, list[tuple[datetime, int]]]       # non-empty buckets per version, in time order
    bucket_totals: dict[datetime, int]

    @property
    def latest_version(self) -> str | None:
        """The version first seen most recently (ties: the larger count)."""
        if not self.versions:
            return None
        return max(self.versions, key=lambda v: (v.first_seen, v.count, v.version)).version

    def adoption(self) -> list[tuple[datetime, float]]:
        """Share of the latest version in each bucket with rows, oldest first."""
        latest = dict(self.by_version.get(self.latest_version or "", []))
        return [(b, latest.get(b, 0) / t) for b, t in sorted(self.bucket_totals.items()) if t]


async def app_versions(rt: Runtime, principal: Principal, project_id: uuid.UUID, kind: MetricScope,
                       scope_id: uuid.UUID | None, from_: datetime | None, to: datetime | None,
                       scan_config_id: uuid.UUID | None = None) -> AppVersions:
    """Counts per app version of a scope over [from, to): totals, per-bucket series and the
    adoption of the latest version. Versions come from the config's app version column; the
    series come straight from the buckets (a version absent in a bucket had no rows there)."""
    start, end = resolve_range(from_, to)
    async with rt.db.session() as s:
        project, scope = await _project_scope(s, principal, project_id, kind, scope_id, scan_config_id)
        series = Series(scope.kind, scope.id, project.id, start, end)
        a = AppVersionBucket
        # the config with app version rows for the scope (most recent), unless one was given
        q = (select(ScanConfig.id, ScanConfig.interval, ScanConfig.app_version_column)
             .where(ScanConfig.project_id == project.id)
             .order_by(select(func.max(a.bucket_start)).where(a.scan_config_id == ScanConfig.id,
                                                               a.scope_kind == scope.kind, a.scope_id == scope.id,
                                                               a.interval == ScanConfig.interval)
                       .scalar_subquery().desc().nulls_last(), ScanConfig.created_at, ScanConfig.id).limit(1))
        if scan_config_id is not None:
            q = q.where(ScanConfig.id == scan_config_id)
        config = (await s.execute(q)).first()
        if config is None:
            return AppVersions(series, None, [], {}, {})
        config_id, interval, column = config
        series.scan_config_id, series.interval = config_id, interval
        rows = (await s.execute(
            select(a.version, a.bucket_start, func.sum(a.count))
            .where(a.scan_config_id == config_id, a.scope_kind == scope.kind, a.scope_id == scope.id,
                   a.interval == interval, a.bucket_start >= first_bucket(start, interval), a.bucket_start < end)
            .group_by(a.version, a.bucket_start).order_by(a.version, a.bucket_start))).all()
    by_version: dict[str, list[tuple[datetime, int]]] = {}
    totals: dict[datetime, int] = {}
    for version, bucket, count in rows:
        by_version.setdefault(version, []).append((bucket, int(count)))
        totals[bucket] = totals.get(bucket, 0) + int(count)
    versions = sorted((VersionTotal(v, sum(c for _, c in pts), pts[0][0], pts[-1][0]) for v, pts in by_version.items()),
                      key=lambda v: (-v.count, v.version))
    series.sparse = sorted(totals.items())
    series.counts = [c for _, c in series.sparse]
    series.first_bucket = series.sparse[0][0] if series.sparse else None
    return AppVersions(series, column, versions, by_version, totals)


__all__ = [
    "AppVersions", "Breakdown", "BreakdownValue", "EventTotal", "Heatmap", "MAX_POINTS", "Overview", "OverviewDay",
    "Scope", "Series", "app_versions", "breakdown_timeline", "event_breakdown", "event_series", "metric_series",
    "overview", "pick_sources", "read_series", "resolve_range", "resolve_scope", "seasonality_heatmap", "top_events",
    "window_totals",
]
