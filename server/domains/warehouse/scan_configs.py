"""Scan configs (seed 003's scans tag): what to scan in a data source for one project, and the
jobs that scan it (server/domains/warehouse/scan.py and scan_jobs.py do the work).

- Editors create, change and delete scan configs; members read them and their job history.
- Validation (VALIDATION user errors naming the input field, every bad field at once):
  name 1..255 (unique in the project ignoring case: CONFLICT), base query non-empty, one read-only
  SELECT in the data source's dialect; columns (time, event type, breakdowns, distribution drift
  fields, app version, `{column}` placeholders of the event name format, the columns of JSON value
  paths) 1..255 characters; cardinality threshold >= 1 (default 100); breakdown values limit
  1..1000; lookback 1..8760 hours; row limits >= 1; releases to keep 1..1000; interval
  `15m 1h 6h 1d 1w` (default 1h); a replay chunk interval at least as wide as the interval;
  event group rules `[{name, pattern}]` (see EVENT_GROUP rules below).
- Then the base query runs against the warehouse with a zero-row limit (`describe`): a query the
  warehouse refuses is a user error on `baseQuery` with the warehouse's message; columns it does
  not return are user errors on their field; the aggregate of the scan (bucket per `interval`) is
  described too, so a time column the warehouse cannot bucket is a user error on `interval`.
- A time column is required (the scan buckets rows by it; the seed allows none, ours refuses).
- Creating a config schedules it (`next_run_at` = now when enabled); the scheduler
  (`run_due_scans`, called by workers/scheduler.py each tick) claims due configs FOR UPDATE SKIP
  LOCKED, creates a scan job unless one is still pending or running, and moves `next_run_at` by
  the interval.
- Jobs (each a `jobs` row + a `scan_jobs` row, on the `scans` queue): `scan_run`, `scan_preview`
  (an unsaved config), `metrics_replay` (a required range), `event_groups_apply`. Cancelled
  through `jobCancel`: the warehouse query in flight is stopped at once (scan_jobs.py `_warehouse`),
  otherwise the scan stops at its next phase (each chunk's aggregate and write, sampling, fields).

Event group rules: `{"name": "checkout", "pattern": "^checkout\\."}` (name 1..100, pattern a
regular expression of up to 500 characters, at most 100 rules). Applying them tags every plan
event of the project (of the config's event type, when it has one) whose name matches `pattern`
with the rule's `name` (added to the event's tags; tags of rules no longer matching are left).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.accounts.validation import collect
from server.domains.plan import access as plan_access
from server.domains.plan.models import EventType
from server.domains.plan.validation import UNSET, conflict, required_text, violates
from server.domains.platform import audit
from server.domains.warehouse.access import visible
from server.domains.warehouse.connectors import ConnectorError, open_connector, sql
from server.domains.warehouse.data_sources import spec_for
from server.domains.warehouse.models import DataSource, ScanConfig, ScanInterval, ScanJob, ScanJobKind
from server.errors import DomainError, DomainErrors, invalid, not_found
from server.jobs import service as jobs
from server.jobs.models import Job, JobStatus
from server.runtime import Runtime
from server.security.principal import Principal

QUEUE = "scans"
SCAN_KIND = "scan_run"
PREVIEW_KIND = "scan_preview"
REPLAY_KIND = "metrics_replay"
EVENT_GROUPS_KIND = "event_groups_apply"

NAME_MAX = 255
MAX_COLUMNS = 50
MAX_BREAKDOWN_COLUMNS = 10
BREAKDOWN_LIMIT_MIN, BREAKDOWN_LIMIT_MAX, BREAKDOWN_LIMIT_DEFAULT = 1, 1000, 10
CARDINALITY_DEFAULT, CARDINALITY_MAX = 100, 1_000_000
LOOKBACK_MIN, LOOKBACK_MAX, LOOKBACK_DEFAULT = 1, 8760, 24
ROW_LIMIT_MAX = 10**12
KEEP_RELEASES_MIN, KEEP_RELEASES_MAX = 1, 1000
EVENT_NAME_FORMAT_MAX = 1000
MAX_RULES, RULE_NAME_MAX, RULE_PATTERN_MAX = 100, 100, 500
PREVIEW_LIMIT_MIN, PREVIEW_LIMIT_MAX, PREVIEW_LIMIT_DEFAULT = 1, 50, 10
REPLAY_CHUNK_DEFAULT = ScanInterval.ONE_DAY
REPLAY_MAX_DAYS = 3660
JOBS_PAGE_MAX = 100
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _f(*name: str) -> list[str]:
    return ["input", *name]


# --- validation (shape) -------------------------------------------------------------------------

def _column(value: str | None, field: list[str], what: str, required: bool = False) -> str | None:
    if value is None or (not value.strip() and not required):
        if required:
            raise invalid(f"the {what} is required", field)
        return None
    try:
        return sql.check_identifier(value.strip(), what)
    except sql.SqlError as e:
        raise invalid(str(e), field) from None


def _columns(values: list[str] | None, field: list[str], what: str, maximum: int = MAX_COLUMNS) -> list[str]:
    out: list[str] = []
    for i, v in enumerate(values or []):
        name = _column(v, [*field, str(i)], what, required=True)
        if name not in out:
            out.append(name)
    if len(out) > maximum:
        raise invalid(f"at most {maximum} {what}s", field)
    return out


def placeholders(fmt: str | None) -> list[str]:
    """The column names of an event name format's `{column}` placeholders, in order."""
    return list(dict.fromkeys(m.strip() for m in _PLACEHOLDER.findall(fmt or "")))


def _name_format(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > EVENT_NAME_FORMAT_MAX:
        raise invalid(f"the event name format must be at most {EVENT_NAME_FORMAT_MAX} characters", _f("eventNameFormat"))
    names = placeholders(text)
    if not names:
        raise invalid("the event name format needs at least one `{column}` placeholder, e.g. `{category}.{action}`",
                      _f("eventNameFormat"))
    rest = _PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        raise invalid("unbalanced `{` or `}` in the event name format", _f("eventNameFormat"))
    for n in names:
        try:
            sql.check_identifier(n, "placeholder column")
        except sql.SqlError as e:
            raise invalid(str(e), _f("eventNameFormat")) from None
    return text


def _json_paths(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for i, v in enumerate(values or []):
        try:
            sql.split_json_path((v or "").strip())
        except sql.SqlError as e:
            raise invalid(str(e), _f("jsonValuePaths", str(i))) from None
        if v.strip() not in out:
            out.append(v.strip())
    if len(out) > MAX_COLUMNS:
        raise invalid(f"at most {MAX_COLUMNS} JSON value paths", _f("jsonValuePaths"))
    return out


def clean_rules(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("event group rules must be a list of {name, pattern} objects", _f("eventGroupRules"))
    if len(value) > MAX_RULES:
        raise invalid(f"at most {MAX_RULES} event group rules", _f("eventGroupRules"))
    out = []
    for i, rule in enumerate(value):
        field = _f("eventGroupRules", str(i))
        if not isinstance(rule, dict) or set(rule) - {"name", "pattern"}:
            raise invalid("a rule is an object with `name` and `pattern` only", field)
        name = rule.get("name")
        pattern = rule.get("pattern")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= RULE_NAME_MAX:
            raise invalid(f"a rule's name must be 1 to {RULE_NAME_MAX} characters", [*field, "name"])
        if not isinstance(pattern, str) or not 1 <= len(pattern) <= RULE_PATTERN_MAX:
            raise invalid(f"a rule's pattern must be 1 to {RULE_PATTERN_MAX} characters", [*field, "pattern"])
        try:
            re.compile(pattern)
        except re.error as e:
            raise invalid(f"a rule's pattern is not a valid regular expression: {e}", [*field, "pattern"]) from None
        out.append({"name": name.strip(), "pattern": pattern})
    return out


def _int(value: int | None, field: list[str], low: int, high: int, what: str) -> int | None:
    if value is not None and not low <= value <= high:
        raise invalid(f"{what} must be {low} to {high}", field)
    return value


@dataclass
class Values:
    name: str
    base_query: str
    event_type_column: str | None
    time_column: str
    event_name_format: str | None
    json_value_paths: list[str]
    event_group_rules: list[dict]
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

    def columns_used(self) -> dict[str, list[str]]:
        """Every base-query column the config names -> the input field naming it (first one)."""
        used: dict[str, list[str]] = {}

        def add(name: str | None, field: list[str]) -> None:
            if name and name not in used:
                used[name] = field

        add(self.time_column, _f("timeColumn"))
        add(self.event_type_column, _f("eventTypeColumn"))
        for n in placeholders(self.event_name_format):
            add(n, _f("eventNameFormat"))
        for i, p in enumerate(self.json_value_paths):
            add(sql.split_json_path(p)[0], _f("jsonValuePaths", str(i)))
        for i, c in enumerate(self.metric_breakdown_columns):
            if c not in self.json_value_paths:  # a breakdown may be a JSON value path
                add(c, _f("metricBreakdownColumns", str(i)))
        for i, c in enumerate(self.distribution_drift_fields):
            if c not in self.json_value_paths:
                add(c, _f("distributionDriftFields", str(i)))
        add(self.app_version_column, _f("appVersionColumn"))
        return used


def validate_values(v: dict[str, Any]) -> Values:
    """Shape checks of every field at once (DomainErrors)."""
    interval = v.get("interval") or ScanInterval.ONE_HOUR

    def chunk() -> ScanInterval | None:
        c = v.get("replay_chunk_interval")
        if c is not None and c.seconds < interval.seconds:
            raise invalid("the replay chunk interval must be at least as wide as the interval", _f("replayChunkInterval"))
        return c

    def cardinality() -> int:
        c = v.get("cardinality_threshold")
        c = CARDINALITY_DEFAULT if c is None else c
        return _int(c, _f("cardinalityThreshold"), 1, CARDINALITY_MAX, "the cardinality threshold")  # type: ignore[return-value]

    def base_query() -> str:
        text = (v.get("base_query") or "").strip()
        if not text:
            raise invalid("the base query must not be empty", _f("baseQuery"))
        if len(text) > sql.MAX_QUERY_CHARS:
            raise invalid(f"the base query must be at most {sql.MAX_QUERY_CHARS} characters", _f("baseQuery"))
        return text

    r = collect(
        lambda: required_text(v.get("name"), _f("name"), NAME_MAX, "name"),
        base_query,
        lambda: _column(v.get("event_type_column"), _f("eventTypeColumn"), "event type column"),
        lambda: _column(v.get("time_column"), _f("timeColumn"), "time column", required=True),
        lambda: _name_format(v.get("event_name_format")),
        lambda: _json_paths(v.get("json_value_paths")),
        lambda: clean_rules(v.get("event_group_rules")),
        lambda: _columns(v.get("metric_breakdown_columns"), _f("metricBreakdownColumns"), "breakdown column",
                         MAX_BREAKDOWN_COLUMNS),
        lambda: _int(v.get("metric_breakdown_values_limit"), _f("metricBreakdownValuesLimit"), BREAKDOWN_LIMIT_MIN,
                     BREAKDOWN_LIMIT_MAX, "the breakdown values limit"),
        lambda: _columns(v.get("distribution_drift_fields"), _f("distributionDriftFields"), "distribution drift field"),
        cardinality,
        chunk,
        lambda: _int(v.get("scan_lookback_hours"), _f("scanLookbackHours"), LOOKBACK_MIN, LOOKBACK_MAX,
                     "the scan lookback (hours)"),
        lambda: _int(v.get("scan_row_limit"), _f("scanRowLimit"), 1, ROW_LIMIT_MAX, "the scan row limit"),
        lambda: _int(v.get("metrics_row_limit"), _f("metricsRowLimit"), 1, ROW_LIMIT_MAX, "the metrics row limit"),
        lambda: _column(v.get("app_version_column"), _f("appVersionColumn"), "app version column"),
        lambda: _int(v.get("app_version_keep_releases"), _f("appVersionKeepReleases"), KEEP_RELEASES_MIN,
                     KEEP_RELEASES_MAX, "the releases to keep"),
    )
    return Values(name=r[0], base_query=r[1], event_type_column=r[2], time_column=r[3], event_name_format=r[4],
                  json_value_paths=r[5], event_group_rules=r[6], metric_breakdown_columns=r[7],
                  metric_breakdown_values_limit=r[8], distribution_drift_fields=r[9], cardinality_threshold=r[10],
                  interval=interval, replay_chunk_interval=r[11], scan_lookback_hours=r[12], scan_row_limit=r[13],
                  metrics_row_limit=r[14], app_version_column=r[15], app_version_keep_releases=r[16],
                  enabled=bool(v.get("enabled", True)))


# --- validation against the warehouse -------------------------------------------------------------

async def check_against_warehouse(rt: Runtime, ds: DataSource, values: Values) -> None:
    """Run the base query with a zero-row limit, then the scan's aggregate shape (also zero
    rows): user errors for a query the warehouse refuses, unknown columns, an interval it cannot
    bucket. A warehouse that cannot be reached is a user error on `dataSourceId`."""
    dialect = sql.DIALECTS[ds.db_type]
    try:
        base = sql.parse_base_query(values.base_query, dialect)
    except sql.SqlError as e:
        raise invalid(str(e), _f("baseQuery")) from None
    try:
        spec = spec_for(rt.settings, ds)
    except ConnectorError as e:
        raise invalid(e.message, _f("dataSourceId")) from None
    try:
        async with open_connector(spec) as conn:
            try:
                columns = await conn.describe(sql.describe_statement(base))
            except ConnectorError as e:
                if e.kind in ("connect", "auth", "config"):
                    raise invalid(f"the data source cannot be reached: {e.message}", _f("dataSourceId")) from None
                raise invalid(f"the base query failed: {e.message}", _f("baseQuery")) from None
            names = {c.name for c in columns}
            errors = [invalid(f"the base query returns no column `{col}` (it returns: {', '.join(sorted(names)) or 'none'})",
                              field) for col, field in values.columns_used().items() if col not in names]
            if errors:
                raise DomainErrors(errors)
            now = utcnow()
            stmt = sql.count_by_bucket(base, dialect, time_column=values.time_column, interval=values.interval,
                                       start=now - timedelta(hours=1), end=now, group_by=group_exprs(values, dialect))
            stmt.expression = stmt.expression.limit(0)
            try:
                await conn.describe(stmt)
            except ConnectorError as e:
                raise invalid(f"the warehouse cannot bucket `{values.time_column}` by {values.interval.value}: "
                              f"{e.message}", _f("interval")) from None
    except ConnectorError as e:
        raise invalid(f"the data source cannot be reached: {e.message}", _f("dataSourceId")) from None


def name_expr(fmt: str | None, dialect: str) -> Any:
    """The event name of a row: the format's literal parts and placeholder columns concatenated
    (a NULL column reads as empty)."""
    from sqlglot import exp

    if not fmt:
        return None
    parts: list[Any] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(fmt):
        if m.start() > pos:
            parts.append(exp.Literal.string(fmt[pos:m.start()]))
        col = sql.base_column(m.group(1).strip())
        parts.append(exp.Coalesce(this=exp.Cast(this=col, to=exp.DataType.build("text")),
                                  expressions=[exp.Literal.string("")]))
        pos = m.end()
    if pos < len(fmt):
        parts.append(exp.Literal.string(fmt[pos:]))
    if len(parts) == 1:
        return parts[0]
    return exp.Concat(expressions=parts, safe=True)


def value_expr(name: str, json_paths: list[str], dialect: str) -> Any:
    """A breakdown / field value as text: a JSON value path or a base column."""
    from sqlglot import exp

    if name in json_paths:
        return sql.json_value(name, dialect)
    return exp.Cast(this=sql.base_column(name), to=exp.DataType.build("text"))


def group_exprs(values: Any, dialect: str) -> dict[str, Any]:
    """The GROUP BY of a scan's aggregate: event type, event name, breakdowns, app version."""
    from sqlglot import exp

    groups: dict[str, Any] = {}
    if values.event_type_column:
        groups["et"] = exp.Cast(this=sql.base_column(values.event_type_column), to=exp.DataType.build("text"))
    fmt = name_expr(values.event_name_format, dialect)
    if fmt is not None:
        groups["ev"] = fmt
    for i, col in enumerate(values.metric_breakdown_columns or []):
        groups[f"b{i}"] = value_expr(col, list(values.json_value_paths or []), dialect)
    if values.app_version_column:
        groups["av"] = exp.Cast(this=sql.base_column(values.app_version_column), to=exp.DataType.build("text"))
    return groups


# --- commands ------------------------------------------------------------------------------------

def snapshot(c: ScanConfig) -> dict:
    return {"name": c.name, "dataSourceId": str(c.data_source_id), "eventTypeId": str(c.event_type_id) if c.event_type_id else None,
            "baseQuery": c.base_query, "eventTypeColumn": c.event_type_column, "timeColumn": c.time_column,
            "eventNameFormat": c.event_name_format, "jsonValuePaths": list(c.json_value_paths or []),
            "eventGroupRules": list(c.event_group_rules or []),
            "metricBreakdownColumns": list(c.metric_breakdown_columns or []),
            "metricBreakdownValuesLimit": c.metric_breakdown_values_limit,
            "distributionDriftFields": list(c.distribution_drift_fields or []),
            "cardinalityThreshold": c.cardinality_threshold, "interval": c.interval.value,
            "replayChunkInterval": c.replay_chunk_interval.value if c.replay_chunk_interval else None,
            "scanLookbackHours": c.scan_lookback_hours, "scanRowLimit": c.scan_row_limit,
            "metricsRowLimit": c.metrics_row_limit, "appVersionColumn": c.app_version_column,
            "appVersionKeepReleases": c.app_version_keep_releases, "enabled": c.enabled}


FIELDS = ("name", "base_query", "event_type_column", "time_column", "event_name_format", "json_value_paths",
          "event_group_rules", "metric_breakdown_columns", "metric_breakdown_values_limit",
          "distribution_drift_fields", "cardinality_threshold", "interval", "replay_chunk_interval",
          "scan_lookback_hours", "scan_row_limit", "metrics_row_limit", "app_version_column",
          "app_version_keep_releases", "enabled")


def _name_taken(name: str) -> DomainError:
    return conflict(f"another scan config of this project is already named `{name}`", _f("name"))


async def _check_name(session: Any, project_id: uuid.UUID, name: str, exclude: uuid.UUID | None = None) -> None:
    from sqlalchemy import func

    q = select(ScanConfig.id).where(ScanConfig.project_id == project_id, func.lower(ScanConfig.name) == name.lower())
    if exclude is not None:
        q = q.where(ScanConfig.id != exclude)
    if (await session.execute(q)).first():
        raise _name_taken(name)


async def _data_source(session: Any, principal: Principal, organization_id: uuid.UUID,
                       data_source_id: uuid.UUID) -> DataSource:
    ds = await session.get(DataSource, data_source_id)
    if ds is None or ds.organization_id != organization_id or principal.role_in(organization_id) is None:
        raise not_found("data source", _f("dataSourceId"))
    return ds


async def _event_type(session: Any, project_id: uuid.UUID, event_type_id: uuid.UUID | None) -> uuid.UUID | None:
    if event_type_id is None:
        return None
    et = await session.get(EventType, event_type_id)
    if et is None or et.project_id != project_id:
        raise not_found("event type", _f("eventTypeId"))
    return et.id


async def create_scan_config(rt: Runtime, principal: Principal, project_id: uuid.UUID, *, data_source_id: uuid.UUID,
                             event_type_id: uuid.UUID | None = None, request_id: str | None = None,
                             **fields: Any) -> ScanConfig:
    """Editors. Validates the shape, then against the warehouse (outside the transaction)."""
    async with rt.db.session() as s:
        project = await plan_access.changeable_project(s, principal, project_id, _f("projectId"))
        ds = await _data_source(s, principal, project.organization_id, data_source_id)
        et_id = await _event_type(s, project.id, event_type_id)
        values = validate_values(fields)
        await _check_name(s, project.id, values.name)
    await check_against_warehouse(rt, ds, values)
    now = utcnow()
    config = ScanConfig(id=uuid.uuid4(), organization_id=project.organization_id, project_id=project.id,
                        data_source_id=ds.id, event_type_id=et_id, created_by_id=principal.user_id,
                        created_at=now, updated_at=now, next_run_at=now if values.enabled else None,
                        **{k: getattr(values, k) for k in FIELDS})
    try:
        async with rt.db.unit_of_work() as uow:
            await plan_access.changeable_project(uow.session, principal, project_id, _f("projectId"))
            uow.session.add(config)
            await uow.session.flush()
            audit.record(uow, principal, "scan_config.create", organization_id=config.organization_id,
                         project_id=config.project_id, target_type="ScanConfig", target_id=config.id,
                         summary=f"created scan config {config.name}", after=snapshot(config), request_id=request_id)
    except IntegrityError as e:
        if violates(e, "uq_scan_configs_project_name_lower"):
            raise _name_taken(values.name) from None
        raise
    return config


async def _changeable(session: Any, principal: Principal, scan_config_id: uuid.UUID, lock: bool = True,
                      field: list[str] | None = None) -> ScanConfig:
    principal.require_user()
    q = select(ScanConfig).where(ScanConfig.id == scan_config_id, *visible(ScanConfig, principal))
    if lock:
        q = q.with_for_update()
    config = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if config is None:
        raise not_found("scan config", field or _f("id"))
    plan_access.require_plan_role(principal, config.organization_id, config.project_id, Role.editor, "scan config",
                                  field or _f("id"))
    return config


async def update_scan_config(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID, *,
                             request_id: str | None = None, data_source_id: Any = UNSET, event_type_id: Any = UNSET,
                             **patch: Any) -> ScanConfig:
    """A patch (editors): absent fields stay; null clears optional ones (name, base query, time
    column, interval, cardinality threshold, data source cannot be null). Re-checked against
    the warehouse whenever anything the warehouse sees changed."""
    for key, gql in (("name", "name"), ("base_query", "baseQuery"), ("time_column", "timeColumn"),
                     ("interval", "interval"), ("cardinality_threshold", "cardinalityThreshold"),
                     ("enabled", "enabled")):
        if patch.get(key, UNSET) is None:
            raise invalid(f"{gql} cannot be null", _f(gql))
    if data_source_id is None:
        raise invalid("dataSourceId cannot be null", _f("dataSourceId"))
    async with rt.db.session() as s:
        config = await _changeable(s, principal, scan_config_id, lock=False)
        merged = {k: getattr(config, k) for k in FIELDS}
        merged.update({k: v for k, v in patch.items() if v is not UNSET and k in FIELDS})
        for k, v in patch.items():
            if v is None and k in FIELDS:
                merged[k] = None
        values = validate_values(merged)
        ds_id = config.data_source_id if data_source_id is UNSET else data_source_id
        ds = await _data_source(s, principal, config.organization_id, ds_id)
        et_id = config.event_type_id if event_type_id is UNSET else await _event_type(s, config.project_id, event_type_id)
        if values.name.lower() != config.name.lower():
            await _check_name(s, config.project_id, values.name, exclude=config.id)
        before_values = {k: getattr(config, k) for k in FIELDS}
    warehouse_fields = set(FIELDS) - {"name", "event_group_rules", "cardinality_threshold", "scan_lookback_hours",
                                      "scan_row_limit", "metrics_row_limit", "app_version_keep_releases", "enabled",
                                      "replay_chunk_interval", "metric_breakdown_values_limit"}
    if ds_id != config.data_source_id or any(getattr(values, k) != before_values[k] for k in warehouse_fields):
        await check_against_warehouse(rt, ds, values)
    try:
        async with rt.db.unit_of_work() as uow:
            config = await _changeable(uow.session, principal, scan_config_id)
            before = snapshot(config)
            was_enabled, old_interval = config.enabled, config.interval
            for k in FIELDS:
                setattr(config, k, getattr(values, k))
            config.data_source_id, config.event_type_id = ds_id, et_id
            now = utcnow()
            if not config.enabled:
                config.next_run_at = None
            elif not was_enabled or config.next_run_at is None:
                config.next_run_at = now
            elif config.interval != old_interval:
                config.next_run_at = min(config.next_run_at, now + config.interval.delta)
            config.updated_at = now
            await uow.session.flush()
            audit.record(uow, principal, "scan_config.update", organization_id=config.organization_id,
                         project_id=config.project_id, target_type="ScanConfig", target_id=config.id,
                         summary=f"changed scan config {config.name}", before=before, after=snapshot(config),
                         request_id=request_id)
    except IntegrityError as e:
        if violates(e, "uq_scan_configs_project_name_lower"):
            raise _name_taken(values.name) from None
        raise
    return config


async def delete_scan_config(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID, *,
                             request_id: str | None = None) -> ScanConfig:
    """Editors; its jobs' history and metric series go with it (ON DELETE CASCADE)."""
    async with rt.db.unit_of_work() as uow:
        config = await _changeable(uow.session, principal, scan_config_id)
        before = snapshot(config)
        await uow.session.delete(config)
        audit.record(uow, principal, "scan_config.delete", organization_id=config.organization_id,
                     project_id=config.project_id, target_type="ScanConfig", target_id=config.id,
                     summary=f"deleted scan config {config.name}", before=before, request_id=request_id)
    return config


# --- jobs ----------------------------------------------------------------------------------------

async def _add_job(uow: Any, rt: Runtime, principal: Principal | None, *, kind: str, scan_kind: ScanJobKind,
             organization_id: uuid.UUID, project_id: uuid.UUID, data_source_id: uuid.UUID,
             scan_config_id: uuid.UUID | None, payload: dict, range_from: datetime | None = None,
             range_to: datetime | None = None) -> tuple[Job, ScanJob]:
    user_id = principal.user_id if principal is not None else None
    scan_job_id = uuid.uuid4()
    job = jobs.create_job(uow, rt, kind=kind, organization_id=organization_id, requested_by_id=user_id,
                          payload={**payload, "scanJobId": str(scan_job_id)}, queue=QUEUE, subject_type="ScanConfig" if scan_config_id else "DataSource",
                          subject_id=str(scan_config_id or data_source_id), max_attempts=1)
    await uow.session.flush()  # the jobs row first (scan_jobs.job_id references it; no ORM relationship orders them)
    scan_job = ScanJob(id=scan_job_id, organization_id=organization_id, project_id=project_id,
                       scan_config_id=scan_config_id, data_source_id=data_source_id, job_id=job.id, kind=scan_kind,
                       range_from=range_from, range_to=range_to, stats={}, requested_by_id=user_id,
                       created_at=utcnow())
    uow.session.add(scan_job)
    return job, scan_job


async def _request(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID, kind: str, scan_kind: ScanJobKind,
                   action: str, payload: dict | None = None, range_from: datetime | None = None,
                   range_to: datetime | None = None, request_id: str | None = None) -> tuple[Job, ScanJob]:
    async with rt.db.unit_of_work() as uow:
        config = await _changeable(uow.session, principal, scan_config_id, lock=False, field=_f("scanConfigId"))
        await uow.session.flush()
        job, scan_job = await _add_job(uow, rt, principal, kind=kind, scan_kind=scan_kind,
                                 organization_id=config.organization_id, project_id=config.project_id,
                                 data_source_id=config.data_source_id, scan_config_id=config.id,
                                 payload={"scanConfigId": str(config.id), **(payload or {})},
                                 range_from=range_from, range_to=range_to)
        await uow.session.flush()
        audit.record(uow, principal, action, organization_id=config.organization_id, project_id=config.project_id,
                     target_type="ScanConfig", target_id=config.id, summary=f"{action} for scan config {config.name}",
                     after={"jobId": str(job.id), **(payload or {})}, activity=False, request_id=request_id)
    return job, scan_job


async def request_scan(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID,
                       request_id: str | None = None) -> tuple[Job, ScanJob]:
    return await _request(rt, principal, scan_config_id, SCAN_KIND, ScanJobKind.SCAN, "scan_config.run",
                          request_id=request_id)


async def request_event_groups(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID,
                               request_id: str | None = None) -> tuple[Job, ScanJob]:
    return await _request(rt, principal, scan_config_id, EVENT_GROUPS_KIND, ScanJobKind.EVENT_GROUPS,
                          "scan_config.event_groups_apply", request_id=request_id)


async def request_replay(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID, time_from: datetime,
                         time_to: datetime, request_id: str | None = None) -> tuple[Job, ScanJob]:
    """Re-compute metrics over [from, to) (required; from < to, at most REPLAY_MAX_DAYS days)."""
    errors = []
    if time_from.tzinfo is None:
        errors.append(invalid("`from` needs a time zone", _f("from")))
    if time_to.tzinfo is None:
        errors.append(invalid("`to` needs a time zone", _f("to")))
    if not errors and time_from >= time_to:
        errors.append(invalid("`from` must be before `to`", _f("to")))
    if not errors and time_to - time_from > timedelta(days=REPLAY_MAX_DAYS):
        errors.append(invalid(f"the range may span at most {REPLAY_MAX_DAYS} days", _f("to")))
    if errors:
        raise DomainErrors(errors)
    return await _request(rt, principal, scan_config_id, REPLAY_KIND, ScanJobKind.REPLAY, "scan_config.replay",
                          payload={"from": time_from.isoformat(), "to": time_to.isoformat()},
                          range_from=time_from, range_to=time_to, request_id=request_id)


async def request_preview(rt: Runtime, principal: Principal, project_id: uuid.UUID, data_source_id: uuid.UUID, *,
                          base_query: str, json_value_paths: list[str] | None = None, time_column: str | None = None,
                          scan_lookback_hours: int | None = None, limit: int | None = None,
                          discover_json_paths: bool = False, request_id: str | None = None) -> tuple[Job, ScanJob]:
    """Editors: sample rows of an unsaved config (checked in the job, which reports the warehouse's error)."""
    limit = PREVIEW_LIMIT_DEFAULT if limit is None else limit
    text = (base_query or "").strip()

    def check_query() -> str:
        if not text:
            raise invalid("the base query must not be empty", _f("baseQuery"))
        if len(text) > sql.MAX_QUERY_CHARS:
            raise invalid(f"the base query must be at most {sql.MAX_QUERY_CHARS} characters", _f("baseQuery"))
        return text

    _, paths, column, _, _ = collect(
        check_query, lambda: _json_paths(json_value_paths),
        lambda: _column(time_column, _f("timeColumn"), "time column"),
        lambda: _int(scan_lookback_hours, _f("scanLookbackHours"), LOOKBACK_MIN, LOOKBACK_MAX, "the lookback (hours)"),
        lambda: _int(limit, _f("limit"), PREVIEW_LIMIT_MIN, PREVIEW_LIMIT_MAX, "the limit"))
    async with rt.db.unit_of_work() as uow:
        project = await plan_access.changeable_project(uow.session, principal, project_id, _f("projectId"))
        ds = await _data_source(uow.session, principal, project.organization_id, data_source_id)
        try:
            sql.parse_base_query(text, sql.DIALECTS[ds.db_type])
        except sql.SqlError as e:
            raise invalid(str(e), _f("baseQuery")) from None
        payload = {"dataSourceId": str(ds.id), "baseQuery": text, "jsonValuePaths": paths, "timeColumn": column,
                   "scanLookbackHours": scan_lookback_hours, "limit": limit, "discoverJsonPaths": discover_json_paths}
        job, scan_job = await _add_job(uow, rt, principal, kind=PREVIEW_KIND, scan_kind=ScanJobKind.PREVIEW,
                                 organization_id=project.organization_id, project_id=project.id,
                                 data_source_id=ds.id, scan_config_id=None, payload=payload)
        await uow.session.flush()
        audit.record(uow, principal, "scan_config.preview", organization_id=project.organization_id,
                     project_id=project.id, target_type="DataSource", target_id=ds.id,
                     summary=f"previewed a scan of data source {ds.name}", after={"jobId": str(job.id)},
                     activity=False, request_id=request_id)
    return job, scan_job


# --- the scheduler -------------------------------------------------------------------------------

async def run_due_scans(rt: Runtime, limit: int = 100) -> int:
    """Create a scan job for each enabled config whose `next_run_at` is due (unless a scan of it
    is still pending or running) and move `next_run_at` on by its interval (missed runs are
    skipped, not fired in a burst). Several schedulers may run: due rows are claimed with
    FOR UPDATE SKIP LOCKED. Returns how many jobs were created."""
    now = utcnow()
    created = 0
    async with rt.db.unit_of_work() as uow:
        due = (await uow.session.execute(
            select(ScanConfig).where(ScanConfig.enabled.is_(True), ScanConfig.next_run_at <= now)
            .order_by(ScanConfig.next_run_at).limit(limit).with_for_update(skip_locked=True))).scalars().all()
        busy: set[uuid.UUID] = set()
        if due:
            busy = set((await uow.session.execute(
                select(ScanJob.scan_config_id).join(Job, Job.id == ScanJob.job_id)
                .where(ScanJob.scan_config_id.in_([c.id for c in due]), ScanJob.kind == ScanJobKind.SCAN,
                       Job.status.in_([JobStatus.pending, JobStatus.running])))).scalars().all())
        for config in due:
            step = config.interval.delta
            missed = max(0, (now - config.next_run_at) // step)
            config.next_run_at = config.next_run_at + (missed + 1) * step
            if config.id in busy:
                continue
            await _add_job(uow, rt, None, kind=SCAN_KIND, scan_kind=ScanJobKind.SCAN, organization_id=config.organization_id,
                     project_id=config.project_id, data_source_id=config.data_source_id, scan_config_id=config.id,
                     payload={"scanConfigId": str(config.id), "scheduled": True})
            created += 1
    return created


# --- queries -------------------------------------------------------------------------------------

ORDER = [ScanConfig.name, ScanConfig.id]
JOB_ORDER = [ScanJob.created_at, ScanJob.id]


async def scan_configs_query(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> Select:
    async with rt.db.session() as s:
        await plan_access.readable_project(s, principal, project_id, ["projectId"])
    return select(ScanConfig).where(ScanConfig.project_id == project_id, *visible(ScanConfig, principal))


async def scan_jobs_query(rt: Runtime, principal: Principal, scan_config_id: uuid.UUID) -> Select:
    async with rt.db.session() as s:
        found = (await s.execute(select(ScanConfig.id).where(ScanConfig.id == scan_config_id,
                                                             *visible(ScanConfig, principal)))).first()
    if found is None:
        raise not_found("scan config", ["scanConfigId"])
    return select(ScanJob).where(ScanJob.scan_config_id == scan_config_id, *visible(ScanJob, principal))


__all__ = [
    "EVENT_GROUPS_KIND", "PREVIEW_KIND", "QUEUE", "REPLAY_KIND", "SCAN_KIND", "Values", "check_against_warehouse",
    "create_scan_config", "delete_scan_config", "group_exprs", "name_expr", "placeholders", "request_event_groups",
    "request_preview", "request_replay", "request_scan", "run_due_scans", "scan_configs_query", "scan_jobs_query",
    "update_scan_config", "validate_values",
]
