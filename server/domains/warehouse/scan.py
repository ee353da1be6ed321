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

After the chunks, a scan (not a replay) samples up to 5 rows for shadow events that have fewer
(one small LIMIT query per name, at most SAMPLE_NAMES names), and observes fields with one more
aggregate query over the scanned range, grouped by event type: per candidate field the non-null
count, numeric-looking and boolean-looking counts (type), and per field contract the bad rows
(required: nulls; enum: values outside the options; regex: values not matching; range: values not
numeric or outside min..max). From those: schema drifts (new_field: a column or JSON path with
values that the event type does not declare; missing_field: a declared field without values;
type_changed: the observed type differs; with one observed sample value; a snoozed drift seen
after its `snoozed_until` is OPEN again) and contract violations (bad rate above the field's
threshold; resolved when a later scan finds it within again); then each plan event's
`drift_count` (`refresh_drift_counts`). `scanRowLimit` caps the rows this observation reads (the
newest ones; stats `observedRows`, `observeRowLimitReached`): see `observe_fields`.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
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
from server.domains.accounts.models import User
from server.domains.plan import events as plan_events
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.models import Event, EventType, Field, FieldType
from server.domains.warehouse import scan_configs
from server.domains.warehouse.connectors import Connector, ConnectorError, jsonable, open_connector, sql
from server.domains.warehouse.data_sources import spec_for
from server.domains.warehouse.models import (
    MAX_SAMPLES,
    NULL_VALUE,
    AppVersionBucket,
    BreakdownBucket,
    ContractRule,
    ContractViolation,
    DataSource,
    DriftStatus,
    DriftType,
    MetricBucket,
    MetricScope,
    ScanConfig,
    ScanInterval,
    ScanJob,
    SchemaDrift,
    ShadowEvent,
    ShadowEventStatus,
)
from server.jobs import service as jobs
from server.jobs.models import Job
from server.runtime import Runtime
from server.security.principal import Principal

UTC = timezone.utc
KEEP_RELEASES_DEFAULT = 20
SAMPLE_NAMES = 20
METRICS_ROW_LIMIT_DEFAULT = 1_000_000
STREAM_ROWS = 10_000
_NUMERIC = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
_BOOLEAN = r"^(true|false|t|f)$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(epoch: int) -> datetime:
    return _EPOCH + timedelta(seconds=int(epoch))


def _floor(at: datetime, interval: ScanInterval) -> datetime:
    return _dt(sql.bucket_start_of(int((at - _EPOCH).total_seconds()), interval))


def chunks_of(start: datetime, end: datetime, interval: ScanInterval,
              chunk: ScanInterval | None) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at chunk boundaries (aligned to buckets: `start` is floored to a bucket)."""
    width = chunk if chunk is not None and chunk.seconds >= interval.seconds else scan_configs.REPLAY_CHUNK_DEFAULT
    if width.seconds < interval.seconds:
        width = interval
    start = _floor(start, interval)
    out = []
    at = start
    while at < end:
        nxt = min(end, _floor(at, width) + width.delta)
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


# --- samples and field observations --------------------------------------------------------------

async def sample_shadow_events(rt: Runtime, conn: Connector, config: ScanConfig, start: datetime,
                               end: datetime) -> int:
    """Up to MAX_SAMPLES rows for shadow events of this config that have fewer; returns how many got samples."""
    if not config.event_name_format:
        return 0
    async with rt.db.session() as s:
        wanted = (await s.execute(
            select(ShadowEvent.id, ShadowEvent.event_type_name, ShadowEvent.name, ShadowEvent.samples)
            .where(ShadowEvent.project_id == config.project_id, ShadowEvent.scan_config_id == config.id,
                   func.jsonb_array_length(ShadowEvent.samples) < MAX_SAMPLES)
            .order_by(ShadowEvent.last_seen_at.desc()).limit(SAMPLE_NAMES))).all()
    if not wanted:
        return 0
    dialect = conn.dialect
    base = sql.parse_base_query(config.base_query, dialect)
    time_col = sql.base_column(config.time_column)
    done = 0
    for sid, et_name, name, samples in wanted:
        cond = exp.and_(sql.time_range(time_col), exp.EQ(this=scan_configs.name_expr(config.event_name_format, dialect),
                                                         expression=sql.param("ev_name")))
        params: dict[str, Any] = {"t_from": start, "t_to": end, "ev_name": name, "row_limit": MAX_SAMPLES}
        if config.event_type_column and et_name:
            cond = exp.and_(cond, exp.EQ(this=exp.Cast(this=sql.base_column(config.event_type_column),
                                                       to=exp.DataType.build("text")), expression=sql.param("et_name")))
            params["et_name"] = et_name
        stmt = sql.Statement(sql.select_from_base(base, exp.Star()).where(cond).limit(sql.param("row_limit")), params)
        rows = await conn.fetch(stmt, limit=MAX_SAMPLES)
        new = [jsonable(r) for r in rows.dicts()]
        merged = (list(samples or []) + new)[:MAX_SAMPLES]
        if new:
            async with rt.db.unit_of_work() as uow:
                await uow.session.execute(update(ShadowEvent).where(ShadowEvent.id == sid)
                                          .values(samples=merged).execution_options(synchronize_session=False))
            done += 1
    return done


_TYPE_WORDS = {"number": ("int", "float", "double", "decimal", "numeric", "real", "bigint", "smallint", "uint", "number"),
               "boolean": ("bool",), "json": ("json", "struct", "map", "object")}


def observed_type_of_column(type_name: str) -> str:
    t = type_name.lower()
    for kind, words in _TYPE_WORDS.items():
        if any(w in t for w in words):
            return kind
    return "string"


_COMPATIBLE = {FieldType.STRING: {"string"}, FieldType.ENUM: {"string"}, FieldType.URL: {"string"},
               FieldType.NUMBER: {"number"}, FieldType.BOOLEAN: {"boolean"}, FieldType.JSON: {"json", "string"}}


def _text(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build("text"))


def _sum_if(cond: exp.Expression) -> exp.Expression:
    return exp.Sum(this=exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))], default=exp.Literal.number(0)))


async def observe_fields(rt: Runtime, conn: Connector, config: ScanConfig, plan: PlanIndex, start: datetime,
                         end: datetime) -> dict[str, Any]:
    """One aggregate query over [start, end) grouped by event type: drifts (each with one observed
    sample value, see `_sample`) and contract checks; then the plan events' drift counts.

    `scanRowLimit` caps the rows this observation reads (it is the costly part of a scan: a
    regular expression or two per candidate field and row): only the newest `scanRowLimit` rows of
    the range are observed (`ORDER BY time DESC LIMIT`), so drifts and contract rates speak for
    them (a violation's `checked_rows` says how many). The metric series always count every row
    (their cap is `metricsRowLimit`, in groups per chunk). Stats: `observedRows`, and with a limit
    `scanRowLimit` and `observeRowLimitReached` (the observation read as many rows as allowed)."""
    dialect = conn.dialect
    base = sql.parse_base_query(config.base_query, dialect)
    columns = await conn.describe(sql.describe_statement(base))
    structural = {config.time_column, config.event_type_column, config.app_version_column,
                  *scan_configs.placeholders(config.event_name_format)}
    col_types = {c.name: observed_type_of_column(c.type) for c in columns if c.name not in structural}
    paths = list(config.json_value_paths or [])
    # Candidate fields: name -> (expression, known column type or None for JSON paths)
    candidates: dict[str, tuple[exp.Expression, str | None]] = {}
    for name, kind in col_types.items():
        candidates[name] = (sql.base_column(name), kind)
    for p in paths:
        key = p.rsplit(".", 1)[-1]
        candidates.setdefault(key, (sql.json_value(p, dialect), None))
    cand_names = list(candidates)
    params: dict[str, Any] = {"t_from": start, "t_to": end, "re_num": _NUMERIC, "re_bool": _BOOLEAN}
    projections: list[exp.Expression] = []
    if config.event_type_column:
        projections.append(_text(sql.base_column(config.event_type_column)).as_("et"))
    projections.append(exp.Count(this=exp.Star()).as_("n"))
    layout: list[tuple[str, str, Any]] = []  # (candidate, measure, field) in projection order
    contract_fields: dict[str, list[Field]] = defaultdict(list)
    for fields in plan.fields.values():
        for f in fields:
            if f.name in candidates:
                contract_fields[f.name].append(f)
    for ci, name in enumerate(cand_names):
        e, kind = candidates[name]
        t = _text(e)
        nn = exp.Not(this=exp.Is(this=e.copy(), expression=exp.Null()))
        projections.append(exp.Count(this=e.copy()).as_(f"c{ci}_nn"))
        layout.append((name, "nn", None))
        projections.append(_sample(t).as_(f"c{ci}_sample"))
        layout.append((name, "sample", None))
        if kind is None:  # a JSON value: its type from its values
            projections.append(_sum_if(exp.and_(nn.copy(), exp.RegexpLike(this=t.copy(), expression=sql.param("re_num")))).as_(f"c{ci}_num"))
            layout.append((name, "num", None))
            projections.append(_sum_if(exp.and_(nn.copy(), exp.RegexpLike(this=exp.Lower(this=t.copy()), expression=sql.param("re_bool")))).as_(f"c{ci}_bool"))
            layout.append((name, "bool", None))
        for fi, f in enumerate(contract_fields.get(name, [])):
            tag = f"c{ci}_f{fi}"
            if f.enum_options and f.field_type == FieldType.ENUM:
                opts = []
                for oi, o in enumerate(f.enum_options):
                    params[f"{tag}_e{oi}"] = o
                    opts.append(sql.param(f"{tag}_e{oi}"))
                bad = exp.and_(nn.copy(), exp.Not(this=exp.In(this=t.copy(), expressions=opts)))
                projections.append(_sum_if(bad).as_(f"{tag}_enum"))
                layout.append((name, "enum", f))
            if f.contract_regex:
                params[f"{tag}_re"] = f.contract_regex
                bad = exp.and_(nn.copy(), exp.Not(this=exp.RegexpLike(this=t.copy(), expression=sql.param(f"{tag}_re"))))
                projections.append(_sum_if(bad).as_(f"{tag}_regex"))
                layout.append((name, "regex", f))
            if f.contract_min_value is not None or f.contract_max_value is not None:
                is_num = exp.RegexpLike(this=t.copy(), expression=sql.param("re_num"))
                num = exp.Cast(this=exp.Case(ifs=[exp.If(this=is_num.copy(), true=t.copy())]),
                               to=exp.DataType.build("double"))
                outside = []
                if f.contract_min_value is not None:
                    params[f"{tag}_min"] = float(f.contract_min_value)
                    outside.append(exp.LT(this=num.copy(), expression=sql.param(f"{tag}_min")))
                if f.contract_max_value is not None:
                    params[f"{tag}_max"] = float(f.contract_max_value)
                    outside.append(exp.GT(this=num.copy(), expression=sql.param(f"{tag}_max")))
                bad = exp.and_(nn.copy(), exp.or_(exp.Not(this=is_num), *outside))
                projections.append(_sum_if(bad).as_(f"{tag}_range"))
                layout.append((name, "range", f))
    q = sql.select_from_base(_observed_rows(base, config, params), *projections)
    if config.event_type_column:
        q = q.group_by(exp.Literal.number(1))
    rows = await conn.fetch(sql.Statement(q, params), limit=10_000)
    now = utcnow()
    drifts = violations = observed = 0
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        for row in rows.rows:
            values = list(row)
            et_value = values.pop(0) if config.event_type_column else None
            total = int(values.pop(0) or 0)
            observed += total
            et_id = plan.event_type_of(config, et_value)
            if et_id is None or total == 0:
                continue
            measures: dict[tuple[str, str], Any] = {}
            per_field: dict[tuple[uuid.UUID, str], int] = {}
            for (name, measure, f), v in zip(layout, values):
                if f is None:
                    measures[(name, measure)] = v if measure == "sample" else int(v or 0)
                else:
                    per_field[(f.id, measure)] = int(v or 0)
            declared = {f.name: f for f in plan.fields.get(et_id, [])}
            found: list[tuple[str, DriftType, str | None, str | None]] = []
            for name in cand_names:
                nn = measures.get((name, "nn"), 0)
                kind = candidates[name][1]
                if kind is None and nn:
                    num, boo = measures.get((name, "num"), 0), measures.get((name, "bool"), 0)
                    kind = "number" if num == nn else "boolean" if boo == nn else "string"
                f = declared.get(name)
                if f is None:
                    if nn and candidates[name][1] is None:  # JSON value paths with values, not declared
                        found.append((name, DriftType.NEW_FIELD, kind, None))
                elif not nn:
                    found.append((name, DriftType.MISSING_FIELD, None, f.field_type.value))
                elif kind not in _COMPATIBLE.get(f.field_type, {kind}):
                    found.append((name, DriftType.TYPE_CHANGED, kind, f.field_type.value))
            for name, f in declared.items():
                if name not in candidates:
                    found.append((name, DriftType.MISSING_FIELD, None, f.field_type.value))
            for name, drift, observed_type, decl in found:
                sample = measures.get((name, "sample")) if drift != DriftType.MISSING_FIELD else None
                await _upsert_drift(s, config, et_id, name, drift, observed_type, decl, sample, now)
                drifts += 1
            # Contracts of this event type's fields.
            for f in declared.values():
                checks: list[tuple[ContractRule, int, float]] = []
                if f.name in candidates:
                    nn = measures.get((f.name, "nn"), 0)
                    if f.contract_required_max_null_rate is not None or f.is_required:
                        checks.append((ContractRule.REQUIRED, total - nn, f.contract_required_max_null_rate or 0.0))
                    for rule, measure in ((ContractRule.ENUM, "enum"), (ContractRule.REGEX, "regex"),
                                          (ContractRule.RANGE, "range")):
                        if (f.id, measure) in per_field:
                            checks.append((rule, per_field[(f.id, measure)], f.contract_max_bad_rate or 0.0))
                for rule, bad, threshold in checks:
                    rate = bad / total if total else 0.0
                    broken = rate > threshold
                    ins = pg_insert(ContractViolation)
                    values_ = dict(checked_rows=total, bad_rows=bad, bad_rate=rate, threshold=threshold,
                                   last_seen_at=now, updated_at=now)
                    if broken:
                        await s.execute(ins.values(
                            id=uuid.uuid4(), organization_id=config.organization_id, project_id=config.project_id,
                            event_type_id=et_id, field_id=f.id, scan_config_id=config.id, rule=rule,
                            detected_at=now, created_at=now, sample_values=[], **values_)
                            .on_conflict_do_update(constraint="uq_contract_violations_field_rule_config",
                                                   set_={**values_, "resolved_at": None}))
                        violations += 1
                    else:
                        await s.execute(update(ContractViolation).where(
                            ContractViolation.field_id == f.id, ContractViolation.rule == rule,
                            ContractViolation.scan_config_id == config.id, ContractViolation.resolved_at.is_(None))
                            .values(resolved_at=now, **values_).execution_options(synchronize_session=False))
        await refresh_drift_counts(s, config.project_id)
    stats: dict[str, Any] = {"drifts": drifts, "contractViolations": violations, "observedRows": observed}
    if config.scan_row_limit is not None:
        stats.update(scanRowLimit=config.scan_row_limit, observeRowLimitReached=observed >= config.scan_row_limit)
    return stats


SAMPLE_VALUE_MAX = 200


def _sample(text_value: exp.Expression) -> exp.Expression:
    """One observed value of a candidate field (the smallest, for a stable answer), preferring one
    that does not look numeric: a field observed as text shows a value that made it text."""
    not_numeric = exp.Not(this=exp.RegexpLike(this=text_value.copy(), expression=sql.param("re_num")))
    return exp.Coalesce(this=exp.Min(this=exp.Case(ifs=[exp.If(this=not_numeric, true=text_value.copy())])),
                        expressions=[exp.Min(this=text_value.copy())])


def _observed_rows(base: exp.Query, config: ScanConfig, params: dict[str, Any]) -> exp.Query:
    """The rows field observation reads: the base query's rows in [t_from, t_to), only the newest
    `scanRowLimit` of them when the config has one (see `observe_fields`)."""
    time_col = sql.base_column(config.time_column)
    rows = sql.select_from_base(base, exp.Star()).where(sql.time_range(time_col))
    if config.scan_row_limit is None:
        return rows
    params["scan_row_limit"] = int(config.scan_row_limit)
    return rows.order_by(exp.Ordered(this=time_col.copy(), desc=True)).limit(sql.param("scan_row_limit"))


def _drift_reopened(now: datetime) -> dict[str, Any]:
    """SET values of a drift seen again: a snooze ends at `snoozed_until`, so a snoozed drift
    observed after it is OPEN again, with the snooze and who decided cleared (as REOPEN does; the
    note stays, saying why it had been snoozed). Other decisions stand."""
    ended = ((SchemaDrift.status == DriftStatus.SNOOZED) & SchemaDrift.snoozed_until.is_not(None)
             & (SchemaDrift.snoozed_until <= now))
    status = literal(DriftStatus.OPEN, SchemaDrift.__table__.c.status.type)
    return {"status": case((ended, status), else_=SchemaDrift.status),
            **{c: case((ended, null()), else_=getattr(SchemaDrift, c))
               for c in ("snoozed_until", "resolved_by_id", "resolved_at")}}


async def _upsert_drift(s: Any, config: ScanConfig, et_id: uuid.UUID, name: str, drift: DriftType,
                        observed_type: str | None, declared_type: str | None, sample: Any, now: datetime) -> None:
    """Raise a drift (OPEN) or refresh the one already raised: its types, sample value (truncated
    to SAMPLE_VALUE_MAX characters; none for a missing field) and last seen time."""
    sample_value = None if sample is None else str(sample)[:SAMPLE_VALUE_MAX]
    ins = pg_insert(SchemaDrift)
    await s.execute(ins.values(
        id=uuid.uuid4(), organization_id=config.organization_id, project_id=config.project_id, event_type_id=et_id,
        scan_config_id=config.id, field_name=name[:255], drift_type=drift, observed_type=observed_type,
        declared_type=declared_type, sample_value=sample_value, status=DriftStatus.OPEN, detected_at=now,
        last_seen_at=now, created_at=now, updated_at=now)
        .on_conflict_do_update(constraint="uq_schema_drifts_type_field_kind",
                               set_={"last_seen_at": now, "observed_type": ins.excluded.observed_type,
                                     "declared_type": ins.excluded.declared_type,
                                     "sample_value": ins.excluded.sample_value, "updated_at": now,
                                     **_drift_reopened(now)}))


async def refresh_drift_counts(s: Any, project_id: uuid.UUID, event_type_ids: list[uuid.UUID] | None = None) -> int:
    """Set each plan event's `drift_count` (of the project; of `event_type_ids` when given): the
    OPEN schema drifts plus the unresolved contract violations of its event type. Both are
    observed per event type (the scan's field observation groups by it, and fields belong to
    the type), so every event of a type shows the same count: what its type's shape needs decided.
    Called by scans after observing fields and by drift actions. Only changed rows are written,
    locked in id order (as the plan's bulk changes lock them). Returns how many changed."""
    drifts = (select(func.count()).where(SchemaDrift.event_type_id == EventType.id,
                                         SchemaDrift.status == DriftStatus.OPEN).scalar_subquery())
    violations = (select(func.count()).where(ContractViolation.event_type_id == EventType.id,
                                             ContractViolation.resolved_at.is_(None)).scalar_subquery())
    wanted = select(EventType.id.label("et"), (drifts + violations).label("n")).where(EventType.project_id == project_id)
    if event_type_ids is not None:
        wanted = wanted.where(EventType.id.in_(event_type_ids))
    wanted = wanted.subquery()
    changed = (await s.execute(
        select(Event.id, wanted.c.n).join(wanted, Event.event_type_id == wanted.c.et)
        .where(Event.project_id == project_id, Event.drift_count != wanted.c.n)
        .order_by(Event.id).with_for_update(of=Event))).all()
    if changed:
        events = Event.__table__
        await s.execute(update(events).where(events.c.id == bindparam("ev_id"))
                        .values(drift_count=bindparam("n")), [{"ev_id": i, "n": n} for i, n in changed])
    return len(changed)


# --- jobs -----------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def _warehouse(rt: Runtime, ds: DataSource, job: Job) -> AsyncIterator[Connector]:
    """The data source's connector for a job: a cancel of the job stops the warehouse query in
    flight at once (ConnectorError kind `cancelled`, which `_tracked` turns into JobCancelled)."""
    async with jobs.watch_cancel(rt, job.id) as cancelled, open_connector(spec_for(rt.settings, ds)) as conn:
        conn.stop_when(cancelled)
        yield conn


async def _scan_job(rt: Runtime, job: Job) -> ScanJob:
    try:
        sid = uuid.UUID(str((job.payload or {}).get("scanJobId")))
    except ValueError:
        raise jobs.JobFailed("the job names no scan job") from None
    async with rt.db.session() as s:
        row = await s.get(ScanJob, sid)
    if row is None or row.organization_id != job.organization_id:
        raise jobs.JobFailed("the scan job was deleted")
    return row


async def _finish(rt: Runtime, scan_job_id: uuid.UUID, stats: dict | None = None, error: str | None = None) -> None:
    values: dict[str, Any] = {"finished_at": utcnow(), "error": error[:4000] if error else None}
    if stats is not None:
        values["stats"] = stats
    async with rt.db.unit_of_work() as uow:
        await uow.session.execute(update(ScanJob).where(ScanJob.id == scan_job_id).values(**values)
                                  .execution_options(synchronize_session=False))


async def _tracked(rt: Runtime, job: Job, work: Any) -> dict:
    """Run `work(scan_job)`, recording its stats, or why it failed (`cancelled` when it was), on
    the scan job."""
    scan_job = await _scan_job(rt, job)
    try:
        stats = await work(scan_job)
    except jobs.JobFailed as e:
        await _finish(rt, scan_job.id, error=e.message)
        raise
    except ConnectorError as e:
        if e.kind == "cancelled":  # `_warehouse` stopped the query for a cancel
            await _finish(rt, scan_job.id, error="cancelled")
            raise jobs.JobCancelled(str(job.id)) from None
        await _finish(rt, scan_job.id, error=e.message)
        raise jobs.JobFailed(e.message) from None
    except sql.SqlError as e:
        await _finish(rt, scan_job.id, error=str(e))
        raise jobs.JobFailed(str(e)) from None
    except jobs.JobCancelled:
        await _finish(rt, scan_job.id, error="cancelled")
        raise
    except Exception as e:
        await _finish(rt, scan_job.id, error=f"{type(e).__name__}: {e}")
        raise
    await _finish(rt, scan_job.id, stats=stats)
    return {"scanJobId": str(scan_job.id), **stats}


async def _config_and_source(rt: Runtime, job: Job) -> tuple[ScanConfig, DataSource]:
    try:
        cid = uuid.UUID(str((job.payload or {}).get("scanConfigId")))
    except ValueError:
        raise jobs.JobFailed("the job names no scan config") from None
    async with rt.db.session() as s:
        config = await s.get(ScanConfig, cid)
        ds = await s.get(DataSource, config.data_source_id) if config is not None else None
    if config is None or ds is None or config.organization_id != job.organization_id:
        raise jobs.JobFailed("the scan config was deleted")
    return config, ds


async def run_scan(rt: Runtime, job: Job) -> dict:
    """`scan_run`: from the watermark (or `lookback` hours back, default 24) to now; then
    samples and field observations; moves the watermark to the bucket holding `now` (re-scanned
    next time, as it was still filling)."""
    config, ds = await _config_and_source(rt, job)

    async def work(scan_job: ScanJob) -> dict:
        end = utcnow()
        lookback = timedelta(hours=config.scan_lookback_hours or scan_configs.LOOKBACK_DEFAULT)
        start = config.scanned_until if config.scanned_until is not None else end - lookback
        start = _floor(min(start, end), config.interval)
        await jobs.report_progress(rt, job.id, 0.02, f"connecting to {ds.name}")
        async with _warehouse(rt, ds, job) as conn:
            stats = await scan_range(rt, conn, config, start, end, job.id, (0.05, 0.85))
            await jobs.report_progress(rt, job.id, 0.9, "sampling shadow events")
            stats["sampled"] = await sample_shadow_events(rt, conn, config, start, end)
            await jobs.report_progress(rt, job.id, 0.95, "observing fields")
            stats.update(await observe_fields(rt, conn, config, await load_plan(rt, config.project_id), start, end))
        async with rt.db.unit_of_work() as uow:
            await uow.session.execute(update(ScanConfig).where(ScanConfig.id == config.id).values(
                scanned_until=_floor(end, config.interval), last_run_at=end).execution_options(synchronize_session=False))
            await uow.session.execute(update(ScanJob).where(ScanJob.id == scan_job.id).values(
                range_from=start, range_to=end).execution_options(synchronize_session=False))
        return stats

    return await _tracked(rt, job, work)


async def run_replay(rt: Runtime, job: Job) -> dict:
    """`metrics_replay`: re-compute the metric series over the job's [from, to), chunk by chunk."""
    config, ds = await _config_and_source(rt, job)

    async def work(scan_job: ScanJob) -> dict:
        start = datetime.fromisoformat(job.payload["from"])
        end = datetime.fromisoformat(job.payload["to"])
        async with _warehouse(rt, ds, job) as conn:
            return await scan_range(rt, conn, config, start, end, job.id, (0.0, 0.99))

    return await _tracked(rt, job, work)


async def preview(conn: Connector, payload: dict) -> dict:
    """Sample rows of an unsaved config and, when asked, the JSON paths found in them."""
    dialect = conn.dialect
    base = sql.parse_base_query(payload["baseQuery"], dialect)
    limit = int(payload.get("limit") or scan_configs.PREVIEW_LIMIT_DEFAULT)
    since = None
    if payload.get("timeColumn") and payload.get("scanLookbackHours"):
        since = utcnow() - timedelta(hours=int(payload["scanLookbackHours"]))
    stmt = sql.sample_statement(base, limit, time_column=payload.get("timeColumn"), since=since, dialect=dialect)
    paths = list(payload.get("jsonValuePaths") or [])
    if paths:
        stmt.expression = stmt.expression.select(*[sql.json_value(p, dialect).as_(p, quoted=True) for p in paths])
    rows = await conn.fetch(stmt, limit=limit)
    out: dict[str, Any] = {"columns": [{"name": c.name, "type": c.type} for c in rows.columns],
                           "rows": [jsonable(r) for r in rows.dicts()], "rowCount": len(rows.rows)}
    if payload.get("discoverJsonPaths"):
        out["jsonPaths"] = discover_json_paths(rows.dicts())
    return out


def discover_json_paths(rows: list[dict], max_paths: int = 200) -> list[str]:
    """Dotted paths to the scalar leaves of JSON values (objects, or text holding an object)."""
    import json

    found: dict[str, None] = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if len(found) >= max_paths or depth > 8:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v, depth + 1)
        elif depth > 0:
            found.setdefault(prefix, None)

    for row in rows:
        for col, value in row.items():
            if isinstance(value, str) and value[:1] == "{":
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            if isinstance(value, dict):
                walk(col, value, 0)
    return sorted(found)


async def run_preview(rt: Runtime, job: Job) -> dict:
    async def work(scan_job: ScanJob) -> dict:
        async with rt.db.session() as s:
            ds = await s.get(DataSource, scan_job.data_source_id) if scan_job.data_source_id else None
        if ds is None:
            raise jobs.JobFailed("the data source was deleted")
        await jobs.report_progress(rt, job.id, 0.1, f"querying {ds.name}")
        async with _warehouse(rt, ds, job) as conn:
            return await preview(conn, job.payload)

    return await _tracked(rt, job, work)


async def apply_event_groups(rt: Runtime, config: ScanConfig, principal: Principal) -> dict:
    """Tag the plan events of the config's project (of its event type, when it has one) whose name
    matches a rule's `pattern` (a regex, searched) with the rule's `name`, as a plan change made by
    `principal`: one UPDATE of the events gaining a tag, their history, one audit entry, and
    planChanged after commit. Tags are only added (a tag whose rule no longer matches stays), so
    applying the same rules again changes nothing. Returns {rules, matched: {group: events
    matching}, eventsChanged}."""
    rules = [(r["name"], re.compile(r["pattern"])) for r in (config.event_group_rules or [])]
    matched = dict.fromkeys((name for name, _ in rules), 0)
    changes: dict[uuid.UUID, tuple[list[str], list[str]]] = {}  # event -> (old tags, new tags)
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        q = select(Event.id, Event.name, Event.tags).where(Event.project_id == config.project_id)
        if config.event_type_id is not None:
            q = q.where(Event.event_type_id == config.event_type_id)
        # Locked in id order, as the plan's bulk changes lock, so they cannot deadlock with this.
        for event_id, name, tags in (await s.execute(q.order_by(Event.id).with_for_update())).all():
            groups = list(dict.fromkeys(group for group, pattern in rules if pattern.search(name)))
            for group in groups:
                matched[group] += 1
            old = list(tags or [])
            new = old + [g for g in groups if g not in old]
            if new != old:
                changes[event_id] = (old, new)
        if changes:
            now, ids = utcnow(), list(changes)
            await s.execute(update(Event), [{"id": i, "tags": new, "updated_at": now}
                                            for i, (_, new) in changes.items()])
            await plan_events.write_history(s, [
                plan_events.history_row(config.organization_id, config.project_id, i, principal, "updated",
                                        {"tags": {"old": old, "new": new}}, now) for i, (old, new) in changes.items()])
            plan_changed(uow, rt, principal, organization_id=config.organization_id, project_id=config.project_id,
                         entity=PlanEntity.EVENT, action=PlanAction.UPDATED, entity_ids=ids, verb="bulk_update",
                         summary=f"tagged {len(ids)} events by the event group rules of scan config {config.name}",
                         after={"count": len(ids), "ids": [str(i) for i in ids[:plan_events.AUDIT_IDS_MAX]],
                                "scanConfigId": str(config.id)})
    return {"rules": len(rules), "eventsChanged": len(changes), "matched": matched}


async def _requester(rt: Runtime, job: Job) -> Principal:
    """Whom a job's plan changes are recorded as: the user who asked for it (nobody once deleted)."""
    async with rt.db.session() as s:
        user = await s.get(User, job.requested_by_id) if job.requested_by_id is not None else None
    return Principal(user_id=user.id, email=user.email) if user is not None else Principal()


async def run_event_groups(rt: Runtime, job: Job) -> dict:
    config, _ = await _config_and_source(rt, job)
    principal = await _requester(rt, job)

    async def work(scan_job: ScanJob) -> dict:
        await jobs.report_progress(rt, job.id, 0.1, "applying event group rules")
        return await apply_event_groups(rt, config, principal)

    return await _tracked(rt, job, work)


__all__ = ["ChunkCounts", "PlanIndex", "aggregate_chunk", "apply_event_groups", "chunks_of", "discover_json_paths",
           "load_plan", "observe_fields", "preview", "run_event_groups", "run_preview", "run_replay", "run_scan",
           "merge_chunk_findings", "refresh_drift_counts", "sample_shadow_events", "scan_range", "write_chunk"]
