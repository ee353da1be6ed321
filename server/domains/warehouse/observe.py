"""Samples and field observations, after a scan's chunks (server/domains/warehouse/scan.py).

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

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, literal, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlglot import exp

from server.db.base import utcnow
from server.domains.plan.models import Event, EventType, Field, FieldType
from server.domains.warehouse import scan_configs
from server.domains.warehouse.connectors import Connector, jsonable, sql
from server.domains.warehouse.models import (
    MAX_SAMPLES,
    ContractRule,
    ContractViolation,
    DriftStatus,
    DriftType,
    ScanConfig,
    SchemaDrift,
    ShadowEvent,
)
from server.runtime import Runtime
from server.domains.warehouse.scan import PlanIndex

SAMPLE_NAMES = 20
_NUMERIC = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
_BOOLEAN = r"^(true|false|t|f)$"

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
