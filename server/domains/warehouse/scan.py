"""The scan engine: turns a scan config's warehouse rows into metric series and reconciliation
findings, pushing every count into the warehouse.

Per chunk of time (the replay chunk interval, default one day, never narrower than the bucket
interval) ONE aggregate query runs in the warehouse (`sql.count_by_bucket`):

    SELECT <bucket>, <event type>, <event name>, <breakdown values..>, <app version>, COUNT(*)
    FROM (<base query>) AS base WHERE time >= :from AND time < :to GROUP BY 1, 2, ...

Its result (one row per group, never raw rows) is streamed and summed per scope in memory
bounded by the number of groups (a `metricsRowLimit` caps it: past it the job fails saying so).
The chunk's rows are then written in one transaction: the config's buckets in the chunk's range
are deleted and the new counts inserted (upsert, one statement per table with one array
parameter per column: `_insert`), so re-running a chunk gives the same rows. Chunks run newest
first: a long first scan or replay shows the recent buckets (the charts' default range) soonest.

Written per chunk: project total, each event type (matched by name to the plan, or the config's
event type), each plan event (matched by name within its event type), each shadow event (names
missing from the plan: a `shadow_events` row, counts as SHADOW_EVENT buckets, total = the sum of
its buckets, so re-runs do not double it); per breakdown column the top N values per bucket
(`metricBreakdownValuesLimit`, default 10) for the project and each event, the rest summed into
one `is_other` row (a column with more distinct values in the chunk than `cardinalityThreshold`,
default 100, is not tracked per value: only its Other row, and the stats' `highCardinality` names
it with the number of chunks; see `_Cardinality`); shadow events accepted into a plan event that
was deleted since are NEW again when their name is seen; app versions per bucket (the
`appVersionKeepReleases` most frequent, default 20) for the project and each event. Plan events'
`last_seen_at` moves to the start of the last bucket they had rows in.

After the chunks, a scan samples shadow events and observes fields: see observe.py; the jobs
that run scans are in scan_jobs.py.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Enum as SAEnum
from sqlalchemy import Text, bindparam, case, delete, func, literal, null, select, update
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlglot import exp

from server.db.base import utcnow
from server.domains.plan.models import Event, EventType, Field
from server.domains.warehouse import scan_configs
from server.domains.warehouse.connectors import Connector, sql
from server.domains.warehouse.models import (
    NULL_VALUE,
    AppVersionBucket,
    BreakdownBucket,
    MetricBucket,
    MetricScope,
    ScanConfig,
    ScanInterval,
    ShadowEvent,
    ShadowEventStatus,
)
from server.jobs import service as jobs
from server.runtime import Runtime

UTC = timezone.utc
KEEP_RELEASES_DEFAULT = 20
METRICS_ROW_LIMIT_DEFAULT = 1_000_000
STREAM_ROWS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(epoch: int) -> datetime:
    return _EPOCH + timedelta(seconds=int(epoch))


def floor_at(at: datetime, interval: ScanInterval) -> datetime:
    return _dt(sql.bucket_start_of(int((at - _EPOCH).total_seconds()), interval))


def chunks_of(start: datetime, end: datetime, interval: ScanInterval,
              chunk: ScanInterval | None) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at chunk boundaries (aligned to buckets: `start` is floored to a bucket)."""
    width = chunk if chunk is not None and chunk.seconds >= interval.seconds else scan_configs.REPLAY_CHUNK_DEFAULT
    if width.seconds < interval.seconds:
        width = interval
    start = floor_at(start, interval)
    out = []
    at = start
    while at < end:
        nxt = min(end, floor_at(at, width) + width.delta)
        if nxt <= at:
            nxt = min(end, at + width.delta)
        out.append((at, nxt))
        at = nxt
    return out


# --- the plan as the scan sees it ---------------------------------------------------------------

@dataclass
class PlanIndex:
    event_types: dict[str, uuid.UUID]                  # lower name -> id
    events: dict[tuple[uuid.UUID, str], uuid.UUID]      # (event type id, name) -> event id
    events_by_name: dict[str, uuid.UUID]                # name -> event id (first), when no event type is known
    fields: dict[uuid.UUID, list[Field]] = field(default_factory=dict)  # event type id -> fields

    def event_type_of(self, config: ScanConfig, value: str | None) -> uuid.UUID | None:
        if config.event_type_id is not None:
            return config.event_type_id
        if value is None:
            return None
        return self.event_types.get(value.lower())

    def event_of(self, event_type_id: uuid.UUID | None, name: str) -> uuid.UUID | None:
        if event_type_id is not None:
            return self.events.get((event_type_id, name))
        return self.events_by_name.get(name)


async def load_plan(rt: Runtime, project_id: uuid.UUID) -> PlanIndex:
    async with rt.db.session() as s:
        types = (await s.execute(select(EventType.id, EventType.name).where(EventType.project_id == project_id))).all()
        events = (await s.execute(select(Event.id, Event.event_type_id, Event.name)
                                  .where(Event.project_id == project_id).order_by(Event.sort_order, Event.id))).all()
        fields = (await s.execute(select(Field).where(Field.project_id == project_id)
                                  .order_by(Field.sort_order, Field.id))).scalars().all()
    by_name: dict[str, uuid.UUID] = {}
    for e in events:
        by_name.setdefault(e.name, e.id)
    per_type: dict[uuid.UUID, list[Field]] = defaultdict(list)
    for f in fields:
        per_type[f.event_type_id].append(f)
    return PlanIndex(event_types={t.name.lower(): t.id for t in types},
                     events={(e.event_type_id, e.name): e.id for e in events}, events_by_name=by_name,
                     fields=dict(per_type))


# --- one chunk ------------------------------------------------------------------------------------

@dataclass
class ChunkCounts:
    """A chunk's aggregate, summed per key (memory: one entry per group, not per row)."""

    project: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    types: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))        # (et value, bucket)
    names: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))        # (et value, name, bucket)
    breakdowns: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))   # (col, et, name, value, bucket)
    versions: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))     # (et, name, version, bucket)
    groups: int = 0
    rows: int = 0
    high_cardinality: set[str] = field(default_factory=set)  # breakdown columns folded into Other (FOLDED)


# The breakdown value of a high-cardinality column's rows: they count in the Other row only.
FOLDED = None


class _Cardinality:
    """Distinct values of each breakdown column within one chunk, against the config's
    `cardinalityThreshold`. A column with more distinct values than the threshold (NULL counts as
    a value) is high-cardinality for the chunk (an id, a URL: per-value series of it are noise
    and would grow the worker's memory with the distinct values): its counts so far and its
    further rows are folded into FOLDED, so the chunk keeps one entry per (event, bucket) for it
    and writes only its Other rows. Judged per chunk, not per scan, so that re-running one chunk
    gives the same rows (idempotence). Memory: at most threshold + 1 values per column."""

    def __init__(self, counts: ChunkCounts, columns: list[str], threshold: int):
        self.counts, self.threshold = counts, threshold
        self.seen: dict[str, set[str]] = {c: set() for c in columns}

    def value(self, column: str, value: str) -> str | None:
        if column in self.counts.high_cardinality:
            return FOLDED
        seen = self.seen[column]
        seen.add(value)
        if len(seen) <= self.threshold:
            return value
        self.counts.high_cardinality.add(column)
        seen.clear()
        breakdowns = self.counts.breakdowns
        for key in [k for k in breakdowns if k[0] == column]:
            col, et, name, _, bucket = key
            breakdowns[(col, et, name, FOLDED, bucket)] += breakdowns.pop(key)
        return FOLDED


async def aggregate_chunk(conn: Connector, config: ScanConfig, base: exp.Query, start: datetime,
                          end: datetime) -> ChunkCounts:
    """Run the chunk's one aggregate query and sum its streamed result per scope (breakdown
    columns above the cardinality threshold folded: see `_Cardinality`)."""
    dialect = conn.dialect
    groups = scan_configs.group_exprs(config, dialect)
    limit = config.metrics_row_limit or METRICS_ROW_LIMIT_DEFAULT
    stmt = sql.count_by_bucket(base, dialect, time_column=config.time_column, interval=config.interval,
                               start=start, end=end, group_by=groups, limit=limit + 1)
    aliases = list(groups)
    breakdown_cols = list(config.metric_breakdown_columns or [])
    out = ChunkCounts()
    cardinality = _Cardinality(out, breakdown_cols, config.cardinality_threshold or scan_configs.CARDINALITY_DEFAULT)
    async with conn.stream(stmt, chunk_rows=STREAM_ROWS) as results:
        async for part in results:
            for row in part.rows:
                out.groups += 1
                if out.groups > limit:
                    raise jobs.JobFailed(f"the scan's aggregate returned more than {limit} groups in the chunk "
                                         f"{start.isoformat()}..{end.isoformat()} (metricsRowLimit): narrow the "
                                         "base query or the breakdown columns, or raise the limit")
                bucket = int(row[0])
                values = dict(zip(aliases, row[1:-1]))
                n = int(row[-1])
                out.rows += n
                et = values.get("et")
                name = values.get("ev")
                out.project[bucket] += n
                out.types[(et, bucket)] += n
                if "ev" in values:
                    out.names[(et, name, bucket)] += n
                for i, col in enumerate(breakdown_cols):
                    v = values.get(f"b{i}")
                    out.breakdowns[(col, et, name, cardinality.value(col, NULL_VALUE if v is None else str(v)),
                                    bucket)] += n
                if "av" in values:
                    v = values["av"]
                    out.versions[(et, name, NULL_VALUE if v is None else str(v)[:255], bucket)] += n
    return out


def _top(counts: dict[tuple, int], limit: int) -> list[tuple[tuple, str, bool, int]]:
    """counts {(scope key, value): n} of one bucket and column -> [(scope key, value, is_other, n)]:
    the `limit` largest values of each scope key and one Other row for the rest."""
    per_key: dict[tuple, list[tuple[str, int]]] = defaultdict(list)
    for (key, value), n in counts.items():
        per_key[key].append((value, n))
    out = []
    for key, items in per_key.items():
        items.sort(key=lambda x: (-x[1], x[0]))
        for value, n in items[:limit]:
            out.append((key, value, False, n))
        rest = sum(n for _, n in items[limit:])
        if rest:
            out.append((key, "", True, rest))
    return out


async def write_chunk(rt: Runtime, config: ScanConfig, plan: PlanIndex, counts: ChunkCounts, start: datetime,
                      end: datetime) -> dict[str, Any]:
    """Replace the config's buckets in [start, end) with the chunk's counts, in one transaction."""
    interval = config.interval
    org, project = config.organization_id, config.project_id
    metric: dict[tuple[MetricScope, uuid.UUID, int], int] = defaultdict(int)
    for bucket, n in counts.project.items():
        metric[(MetricScope.PROJECT, project, bucket)] += n
    for (et, bucket), n in counts.types.items():
        et_id = plan.event_type_of(config, et)
        if et_id is not None:
            metric[(MetricScope.EVENT_TYPE, et_id, bucket)] += n
    # Names: plan events, or shadow events (created below).
    shadow_keys: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    event_of: dict[tuple, tuple[MetricScope, Any]] = {}
    last_seen: dict[uuid.UUID, int] = {}
    for (et, name, bucket), n in counts.names.items():
        if name is None or name == "":
            continue
        name = str(name)[:500]
        et_id = plan.event_type_of(config, et)
        ev = plan.event_of(et_id, name)
        if ev is not None:
            metric[(MetricScope.EVENT, ev, bucket)] += n
            event_of[(et, name)] = (MetricScope.EVENT, ev)
            last_seen[ev] = max(last_seen.get(ev, bucket), bucket)
        else:
            key = ("" if et is None else str(et)[:255], name)
            shadow_keys[key][bucket] += n
            event_of[(et, name)] = (MetricScope.SHADOW_EVENT, key)
    now = utcnow()
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        shadow_ids: dict[tuple[str, str], uuid.UUID] = {}
        if shadow_keys:
            rows = []
            for (et_name, name), per_bucket in shadow_keys.items():
                first, last = _dt(min(per_bucket)), _dt(max(per_bucket))
                rows.append(dict(id=uuid.uuid4(), organization_id=org, project_id=project, scan_config_id=config.id,
                                 event_type_id=plan.event_type_of(config, et_name or None), event_type_name=et_name,
                                 name=name, total_count=0, first_seen_at=first, last_seen_at=last, samples=[],
                                 created_at=now, updated_at=now))
            ins = pg_insert(ShadowEvent)
            for i in range(0, len(rows), 1000):
                result = await s.execute(
                    ins.values(rows[i:i + 1000]).on_conflict_do_update(
                        constraint="uq_shadow_events_project_type_name",
                        set_={"last_seen_at": func.greatest(ShadowEvent.last_seen_at, ins.excluded.last_seen_at),
                              "first_seen_at": func.least(ShadowEvent.first_seen_at, ins.excluded.first_seen_at),
                              "scan_config_id": ins.excluded.scan_config_id, "updated_at": now,
                              **_orphan_accept_reopened()})
                    .returning(ShadowEvent.id, ShadowEvent.event_type_name, ShadowEvent.name))
                for sid, et_name, name in result.all():
                    shadow_ids[(et_name, name)] = sid
            for key, per_bucket in shadow_keys.items():
                for bucket, n in per_bucket.items():
                    metric[(MetricScope.SHADOW_EVENT, shadow_ids[key], bucket)] += n

        named = "ev" in _aliases(config)

        def scope_of(et: Any, name: Any) -> tuple[MetricScope, uuid.UUID] | None:
            if not named:
                return None
            found = event_of.get((et, None if name is None else str(name)[:500]))
            if found is None:
                return None
            kind, ref = found
            return (kind, shadow_ids[ref]) if kind == MetricScope.SHADOW_EVENT else (kind, ref)

        # Replace the chunk's range.
        for model in (MetricBucket, BreakdownBucket, AppVersionBucket):
            await s.execute(delete(model).where(model.scan_config_id == config.id, model.interval == interval,
                                                model.bucket_start >= start, model.bucket_start < end))
        await _insert(s, MetricBucket, [dict(organization_id=org, project_id=project, scan_config_id=config.id,
                                             scope_kind=k, scope_id=i, interval=interval, bucket_start=_dt(b), count=n)
                                        for (k, i, b), n in metric.items()],
                      ["scan_config_id", "scope_kind", "scope_id", "interval", "bucket_start"])
        # Breakdowns: project and event scopes, top N per (scope, column, bucket) + Other; a
        # high-cardinality column (FOLDED values) has its Other row only.
        limit = config.metric_breakdown_values_limit or scan_configs.BREAKDOWN_LIMIT_DEFAULT
        per: dict[tuple, int] = defaultdict(int)
        for (col, et, name, value, bucket), n in counts.breakdowns.items():
            per[((MetricScope.PROJECT, project, col, bucket), value)] += n
            scope = scope_of(et, name)
            if scope is not None:
                per[((scope[0], scope[1], col, bucket), value)] += n
        ranked = _top({kv: n for kv, n in per.items() if kv[1] is not FOLDED}, limit)
        ranked += [(k, "", True, n) for (k, value), n in per.items() if value is FOLDED]
        breakdown_rows = [dict(organization_id=org, project_id=project, scan_config_id=config.id, scope_kind=k[0],
                               scope_id=k[1], interval=interval, column=k[2][:255], is_other=other, value=value,
                               bucket_start=_dt(k[3]), count=n) for k, value, other, n in ranked]
        await _insert(s, BreakdownBucket, breakdown_rows,
                      ["scan_config_id", "scope_kind", "scope_id", "interval", "column", "is_other", "value",
                       "bucket_start"])
        keep = config.app_version_keep_releases or KEEP_RELEASES_DEFAULT
        per_v: dict[tuple, int] = defaultdict(int)
        for (et, name, version, bucket), n in counts.versions.items():
            per_v[((MetricScope.PROJECT, project, bucket), version)] += n
            scope = scope_of(et, name)
            if scope is not None:
                per_v[((scope[0], scope[1], bucket), version)] += n
        version_rows = [dict(organization_id=org, project_id=project, scan_config_id=config.id, scope_kind=k[0],
                             scope_id=k[1], interval=interval, version=value, bucket_start=_dt(k[2]), count=n)
                        for k, value, other, n in _top(per_v, keep) if not other]
        await _insert(s, AppVersionBucket, version_rows,
                      ["scan_config_id", "scope_kind", "scope_id", "interval", "version", "bucket_start"])
        if shadow_ids:
            totals = (select(MetricBucket.scope_id, func.sum(MetricBucket.count).label("n"))
                      .where(MetricBucket.scope_kind == MetricScope.SHADOW_EVENT,
                             MetricBucket.scope_id.in_(list(shadow_ids.values())))
                      .group_by(MetricBucket.scope_id).subquery())
            await s.execute(update(ShadowEvent).where(ShadowEvent.id == totals.c.scope_id)
                            .values(total_count=totals.c.n).execution_options(synchronize_session=False))
        if last_seen:  # one executemany, rows locked in id order (as the plan's bulk changes lock them)
            events = Event.__table__
            at = bindparam("at", type_=events.c.last_seen_at.type)
            await s.execute(update(events).where(events.c.id == bindparam("ev_id"))
                            .values(last_seen_at=func.greatest(func.coalesce(events.c.last_seen_at, at), at)),
                            [{"ev_id": ev, "at": _dt(bucket)} for ev, bucket in sorted(last_seen.items())])
    return {"rows": counts.rows, "groups": counts.groups, "buckets": len(counts.project),
            "events": len(last_seen), "shadowEvents": len(shadow_ids),
            "highCardinality": sorted(counts.high_cardinality)}


def _orphan_accept_reopened() -> dict[str, Any]:
    """SET values of the shadow events' upsert: one accepted into a plan event that was deleted
    since (ON DELETE SET NULL cleared `accepted_event_id`) is missing from the plan again, so a
    scan seeing its name turns it back to NEW (undecided, listed with the new ones); accepted ones
    whose plan event exists, dismissed and new ones keep their status."""
    orphan = (ShadowEvent.status == ShadowEventStatus.ACCEPTED) & ShadowEvent.accepted_event_id.is_(None)
    new = literal(ShadowEventStatus.NEW, ShadowEvent.__table__.c.status.type)
    return {"status": case((orphan, new), else_=ShadowEvent.status),
            "resolved_by_id": case((orphan, null()), else_=ShadowEvent.resolved_by_id),
            "resolved_at": case((orphan, null()), else_=ShadowEvent.resolved_at)}


def merge_chunk_findings(stats: dict[str, Any], written: dict[str, Any]) -> None:
    """Add a chunk's findings that are not sums to a run's stats: `highCardinality` maps each
    breakdown column folded into Other (see `_Cardinality`) to the number of chunks it was."""
    for column in written.get("highCardinality", ()):
        folded = stats.setdefault("highCardinality", {})
        folded[column] = folded.get(column, 0) + 1


def _aliases(config: ScanConfig) -> set[str]:
    return {"ev"} if config.event_name_format else set()


INSERT_BATCH = 50_000


def _unnest(column: Any) -> Any:
    """`unnest(:column)` of an array parameter of the column's type (enums travel as text and are
    cast back, as asyncpg has no codec for an array of a custom enum)."""
    if isinstance(column.type, SAEnum):
        return sa_cast(func.unnest(bindparam(column.name, type_=ARRAY(Text))), column.type)
    return func.unnest(bindparam(column.name, type_=ARRAY(column.type)))


def _array_of(column: Any, values: list) -> list:
    return [v.value for v in values] if isinstance(column.type, SAEnum) else values


async def _insert(session: Any, model: Any, rows: list[dict], key: list[str]) -> None:
    """Upsert `rows` (the counts of `key`) with one statement per INSERT_BATCH rows: every column
    goes as one array parameter, zipped back into rows by `unnest` (a statement of a dozen
    parameters, compiled once: a multi-row VALUES of 100,000 rows costs seconds to build)."""
    if not rows:
        return
    table = model.__table__
    names = list(rows[0])
    ins = pg_insert(table).from_select(names, select(*[_unnest(table.c[n]) for n in names]))
    ins = ins.on_conflict_do_update(index_elements=key, set_={"count": ins.excluded["count"]})
    for i in range(0, len(rows), INSERT_BATCH):
        batch = rows[i:i + INSERT_BATCH]
        await session.execute(ins, {n: _array_of(table.c[n], [r[n] for r in batch]) for n in names})


# --- a range: chunk by chunk ----------------------------------------------------------------------

async def scan_range(rt: Runtime, conn: Connector, config: ScanConfig, start: datetime, end: datetime,
                     job_id: uuid.UUID | None = None, progress: tuple[float, float] = (0.0, 0.9)) -> dict[str, Any]:
    """Aggregate and record [start, end) chunk by chunk. With a `job_id`, reports progress before
    each chunk's aggregate and again before its write, so a cancel is observed there (and a
    cancel during the aggregate stops it: see `_warehouse`); a chunk is written whole or not at all."""
    base = sql.parse_base_query(config.base_query, conn.dialect)
    plan = await load_plan(rt, config.project_id)
    parts = chunks_of(start, end, config.interval, config.replay_chunk_interval)
    stats: dict[str, Any] = {"rows": 0, "groups": 0, "buckets": 0, "chunks": 0, "shadowEvents": 0}
    low, high = progress
    for i, (a, b) in enumerate(reversed(parts)):  # newest first: charts show recent buckets soonest
        if job_id is not None:
            await jobs.report_progress(rt, job_id, low + (high - low) * i / max(1, len(parts)),
                                       f"chunk {i + 1} of {len(parts)}: {a.isoformat()}")
        counts = await aggregate_chunk(conn, config, base, a, b)
        if job_id is not None:
            await jobs.report_progress(rt, job_id, low + (high - low) * (i + 0.5) / max(1, len(parts)),
                                       f"chunk {i + 1} of {len(parts)}: writing {counts.groups} groups")
        written = await write_chunk(rt, config, plan, counts, a, b)
        for k in ("rows", "groups", "buckets", "shadowEvents"):
            stats[k] += written[k]
        stats["chunks"] += 1
        stats["events"] = max(stats.get("events", 0), written["events"])
        merge_chunk_findings(stats, written)
    stats["from"] = parts[0][0].isoformat() if parts else start.isoformat()
    stats["to"] = end.isoformat()
    return stats
