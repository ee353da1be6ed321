"""Data sources: warehouse connections of an organization (seed 003's data-sources tag).

- Owners create, change, delete and test them; members read them (server/domains/warehouse/
  access.py). The password (BigQuery: the service-account JSON key) is stored Fernet-encrypted
  and never shown again: the API says `passwordSet`.
- Validation (VALIDATION user errors naming the input field, all bad fields at once):
  name 1..255 (unique in the organization ignoring case: CONFLICT), host 1..500 (PostgreSQL,
  ClickHouse; BigQuery: optional API endpoint; DuckDB: none), port 1..65535 defaulting to 5432
  (PostgreSQL) / 8123 (ClickHouse) and absent for BigQuery and DuckDB, database 1..255 (the GCP
  project for BigQuery; for DuckDB a file path, see `duckdb_path`), username up to 255,
  password up to 20000 (BigQuery: a service-account JSON key), timeout 1..3600 seconds (absent:
  the `INSIGHTS_WAREHOUSE_TIMEOUT_SECONDS` default), extra params from a per-type list
  (`EXTRA_PARAMS`; unknown keys are refused, so no arbitrary driver option gets through).
- Changing how to connect (type, host, port, database, username, password, extra params)
  forgets the last test result, which described the old settings.
- Deleting a data source that scan configs use is a CONFLICT unless `cascade` (then those scan
  configs go too, with their jobs and metric series).
- `request_test` creates a `data_source_test` job (owners); the worker runs `run_test`, which
  connects with the data source's timeout and records the last test time, status and message.
  A failed connection fails the job with the reason (no retries: the answer would be the same).
- `read_schema` lists tables and columns directly (with the data source's timeout): editors
  and owners, who write scan configs.
- `load_stats` computes events tracked, volume and hourly throughput over a window of 1..720
  hours from the metric series its scan configs filled.
- Every change writes an audit entry (`data_source.create|update|delete|test`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.accounts.validation import collect
from server.domains.plan.validation import UNSET, conflict, required_text, violates
from server.domains.plan.models import Event
from server.domains.platform import audit
from server.domains.warehouse.access import data_sources_visible, require_data_source_role
from server.domains.warehouse.connectors import ConnectionSpec, ConnectorError, TableInfo, open_connector
from server.domains.warehouse.connectors.base import MAX_TABLES
from server.domains.warehouse.connectors.bigquery import DEFAULT_HOST as BIGQUERY_HOST
from server.domains.warehouse.connectors.bigquery import parse_credentials
from server.domains.warehouse.connectors.postgres import SSL_MODES
from server.domains.warehouse.models import (
    ConnectionTestStatus,
    DataSource,
    DataSourceType,
    MetricBucket,
    MetricScope,
    ScanConfig,
)
from server.errors import DomainError, invalid, not_found
from server.jobs import service as jobs
from server.jobs.models import Job
from server.runtime import Runtime
from server.security.principal import Principal
from server.security.secrets import decrypt_secret, encrypt_secret
from server.settings import Settings

TEST_KIND = "data_source_test"  # the job kind (and Dramatiq actor name) of a connection test
QUEUE = "scans"

NAME_MAX = 255
HOST_MAX = 500
DATABASE_MAX = 255
USERNAME_MAX = 255
PASSWORD_MAX = 20_000
TIMEOUT_MIN, TIMEOUT_MAX = 1, 3600
WINDOW_MIN, WINDOW_MAX, WINDOW_DEFAULT = 1, 720, 48
DEFAULT_PORTS = {DataSourceType.POSTGRES: 5432, DataSourceType.CLICKHOUSE: 8123}
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_NO_SPACE = re.compile(r"^\S+$")


# --- extra params: what each type accepts ------------------------------------------------------

def _text(low: int, high: int) -> Any:
    def check(v: Any) -> str:
        if not isinstance(v, str) or not low <= len(v.strip()) <= high:
            raise ValueError(f"must be text of {low} to {high} characters")
        return v.strip()
    return check


def _choice(options: tuple[str, ...]) -> Any:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return v
    return check


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _integer(low: int, high: int) -> Any:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return v
    return check


def _memory(v: Any) -> str:
    if not isinstance(v, str) or not _MEMORY.match(v.strip()):
        raise ValueError("must be a size such as `512MB` or `2GiB`")
    return v.strip()


EXTRA_PARAMS: dict[DataSourceType, dict[str, Any]] = {
    DataSourceType.POSTGRES: {"sslmode": _choice(SSL_MODES), "schema": _text(1, 255),
                              "application_name": _text(1, 63)},
    DataSourceType.CLICKHOUSE: {"secure": _boolean, "verify": _boolean, "compress": _boolean},
    DataSourceType.BIGQUERY: {"location": _text(1, 64), "dataset": _text(1, 1024),
                              "maximum_bytes_billed": _integer(1, 2**62)},
    DataSourceType.DUCKDB: {"threads": _integer(1, 64), "memory_limit": _memory},
}


# --- validation --------------------------------------------------------------------------------

def _f(name: str) -> list[str]:
    return ["input", name]


def clean_name(value: str | None) -> str:
    return required_text(value, _f("name"), NAME_MAX, "name")


def clean_host(value: str | None, db_type: DataSourceType) -> str:
    text = (value or "").strip()
    if db_type == DataSourceType.DUCKDB:
        if text:
            raise invalid("a DuckDB data source has no host: give the file as `databaseName`", _f("host"))
        return ""
    if db_type == DataSourceType.BIGQUERY and not text:
        return ""
    if not 1 <= len(text) <= HOST_MAX:
        raise invalid(f"host must be 1 to {HOST_MAX} characters", _f("host"))
    if not _NO_SPACE.match(text) or any(ord(c) < 32 for c in text):
        raise invalid("host must not contain spaces or control characters", _f("host"))
    if db_type != DataSourceType.BIGQUERY and "://" in text:
        raise invalid("give the host name only (no `http://`); use `extraParams.secure` for HTTPS", _f("host"))
    return text


def clean_port(value: int | None, db_type: DataSourceType) -> int | None:
    if db_type not in DEFAULT_PORTS:
        if value is not None:
            raise invalid(f"a {db_type.value} data source has no port", _f("port"))
        return None
    if value is None:
        return DEFAULT_PORTS[db_type]
    if not 1 <= value <= 65535:
        raise invalid("port must be between 1 and 65535", _f("port"))
    return value


def duckdb_dir_for(settings: Settings, organization_id: uuid.UUID) -> Path:
    """Where an organization's DuckDB files live (relative DuckDB paths resolve here)."""
    return (settings.duckdb_dir / str(organization_id)).resolve()


def duckdb_path(settings: Settings, organization_id: uuid.UUID, database: str,
                field: list[str] | None = None) -> Path:
    """The file a DuckDB data source names, or VALIDATION. A relative path is a file under the
    organization's DuckDB directory (`..` may not leave it, nor may a symlink); an absolute path
    is accepted only when `INSIGHTS_WAREHOUSE_DUCKDB_ABSOLUTE_PATHS` is on. Why: the server
    opens the file with its own permissions, so a free path would let an owner read any DuckDB
    file the server can, including another organization's."""
    field = field or _f("databaseName")
    given = Path(database)
    if given.is_absolute():
        if not settings.warehouse_duckdb_absolute_paths:
            raise invalid("give the DuckDB file as a path relative to the server's DuckDB directory for your "
                          "organization (absolute paths are turned off on this server)", field)
        return given.resolve()
    root = duckdb_dir_for(settings, organization_id)
    path = (root / given).resolve()
    if not path.is_relative_to(root) or path == root:
        raise invalid("the DuckDB file must be inside your organization's DuckDB directory", field)
    return path


def clean_database(value: str | None, db_type: DataSourceType, settings: Settings,
                   organization_id: uuid.UUID) -> str:
    what = {DataSourceType.BIGQUERY: "project", DataSourceType.DUCKDB: "file path"}.get(db_type, "database name")
    text = required_text(value, _f("databaseName"), DATABASE_MAX, what)
    if any(ord(c) < 32 for c in text):
        raise invalid(f"{what} must not contain control characters", _f("databaseName"))
    if db_type == DataSourceType.BIGQUERY and not _NO_SPACE.match(text):
        raise invalid("the BigQuery project ID has no spaces", _f("databaseName"))
    if db_type == DataSourceType.DUCKDB:
        duckdb_path(settings, organization_id, text)
    return text


def clean_username(value: str | None) -> str:
    text = (value or "").strip()
    if len(text) > USERNAME_MAX:
        raise invalid(f"username must be at most {USERNAME_MAX} characters", _f("username"))
    return text


def clean_password(value: str | None, db_type: DataSourceType) -> str | None:
    """None: no password. BigQuery's must be a service-account JSON key."""
    if value is None or value == "":
        return None
    if len(value) > PASSWORD_MAX:
        raise invalid(f"password must be at most {PASSWORD_MAX} characters", _f("password"))
    if db_type == DataSourceType.BIGQUERY:
        try:
            parse_credentials(value)
        except ConnectorError as e:
            raise invalid(e.message.removeprefix("BigQuery: "), _f("password")) from None
    return value


def clean_timeout(value: int | None) -> int | None:
    if value is not None and not TIMEOUT_MIN <= value <= TIMEOUT_MAX:
        raise invalid(f"timeout must be {TIMEOUT_MIN} to {TIMEOUT_MAX} seconds", _f("timeoutSeconds"))
    return value


def clean_extra(value: Any, db_type: DataSourceType) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("extra params must be a JSON object", _f("extraParams"))
    rules = EXTRA_PARAMS[db_type]
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in rules:
            allowed = ", ".join(sorted(rules)) or "none"
            raise invalid(f"`{key}` is not an extra param of {db_type.value} data sources (allowed: {allowed})",
                          [*_f("extraParams"), str(key)])
        try:
            out[key] = rules[key](item)
        except ValueError as e:
            raise invalid(f"`{key}` {e}", [*_f("extraParams"), str(key)]) from None
    return out


@dataclass
class _Values:
    name: str
    db_type: DataSourceType
    host: str
    port: int | None
    database_name: str
    username: str
    timeout_seconds: int | None
    extra_params: dict
    password: Any  # None (no password), a string, or UNSET (not given: keep the stored one)


def _validate(settings: Settings, organization_id: uuid.UUID, *, name: Any, db_type: DataSourceType, host: Any,
              port: Any, database_name: Any, username: Any, timeout_seconds: Any, extra_params: Any,
              password: Any) -> _Values:
    """Every field checked, every failure reported at once (DomainErrors)."""
    values = collect(lambda: clean_name(name), lambda: clean_host(host, db_type), lambda: clean_port(port, db_type),
                     lambda: clean_database(database_name, db_type, settings, organization_id),
                     lambda: clean_username(username), lambda: clean_timeout(timeout_seconds),
                     lambda: clean_extra(extra_params, db_type),
                     lambda: UNSET if password is UNSET else clean_password(password, db_type))
    return _Values(values[0], db_type, *values[1:])


CONNECTION_FIELDS = ("db_type", "host", "port", "database_name", "username", "extra_params")


def snapshot(ds: DataSource) -> dict:
    """What the audit log keeps of a data source (never the password)."""
    return {"name": ds.name, "dbType": ds.db_type.value, "host": ds.host, "port": ds.port,
            "databaseName": ds.database_name, "username": ds.username, "passwordSet": ds.password_encrypted is not None,
            "timeoutSeconds": ds.timeout_seconds, "extraParams": dict(ds.extra_params or {})}


def _name_taken(name: str) -> DomainError:
    return conflict(f"another data source of this organization is already named `{name}`", _f("name"))


def _is_name_conflict(e: IntegrityError) -> bool:
    return violates(e, "uq_data_sources_org_name_lower")


async def _check_name(session: Any, organization_id: uuid.UUID, name: str, exclude: uuid.UUID | None = None) -> None:
    q = select(DataSource.id).where(DataSource.organization_id == organization_id,
                                    func.lower(DataSource.name) == name.lower())
    if exclude is not None:
        q = q.where(DataSource.id != exclude)
    if (await session.execute(q)).first():
        raise _name_taken(name)


# --- commands ----------------------------------------------------------------------------------

async def create_data_source(rt: Runtime, principal: Principal, organization_id: uuid.UUID, *, name: str,
                             db_type: DataSourceType, database_name: str, host: str | None = None,
                             port: int | None = None, username: str | None = None, password: str | None = None,
                             timeout_seconds: int | None = None, extra_params: dict | None = None,
                             request_id: str | None = None) -> DataSource:
    """Owners only."""
    require_data_source_role(principal, organization_id, Role.owner, _f("organizationId"))
    values = _validate(rt.settings, organization_id, name=name, db_type=db_type, host=host, port=port,
                       database_name=database_name, username=username, timeout_seconds=timeout_seconds,
                       extra_params=extra_params, password=password)
    secret = values.password
    now = utcnow()
    ds = DataSource(id=uuid.uuid4(), organization_id=organization_id, name=values.name, db_type=values.db_type,
                    host=values.host, port=values.port, database_name=values.database_name, username=values.username,
                    password_encrypted=encrypt_secret(rt.settings.signing_key(), secret) if secret else None,
                    timeout_seconds=values.timeout_seconds, extra_params=values.extra_params,
                    created_by_id=principal.user_id, created_at=now, updated_at=now)
    try:
        async with rt.db.unit_of_work() as uow:
            await _check_name(uow.session, organization_id, values.name)
            uow.session.add(ds)
            await uow.session.flush()
            audit.record(uow, principal, "data_source.create", organization_id=organization_id,
                         target_type="DataSource", target_id=ds.id, summary=f"created data source {ds.name}",
                         after=snapshot(ds), request_id=request_id)
    except IntegrityError as e:
        if _is_name_conflict(e):
            raise _name_taken(values.name) from None
        raise
    return ds


async def _changeable(session: Any, principal: Principal, data_source_id: uuid.UUID, lock: bool = True) -> DataSource:
    principal.require_user()
    q = select(DataSource).where(DataSource.id == data_source_id, *data_sources_visible(principal))
    if lock:
        q = q.with_for_update()
    ds = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if ds is None:
        raise not_found("data source", _f("id"))
    require_data_source_role(principal, ds.organization_id, Role.owner, _f("id"))
    return ds


async def update_data_source(rt: Runtime, principal: Principal, data_source_id: uuid.UUID, *, name: Any = UNSET,
                             db_type: Any = UNSET, host: Any = UNSET, port: Any = UNSET, database_name: Any = UNSET,
                             username: Any = UNSET, password: Any = UNSET, timeout_seconds: Any = UNSET,
                             extra_params: Any = UNSET, request_id: str | None = None) -> DataSource:
    """A patch (owners): absent arguments stay. Null clears what may be empty (port: back to the
    type's default; username, password, extra params: none; timeout: the server default); name,
    type, database cannot be null. Changing the type re-checks everything against the new type
    (the port and extra params not given fall back to the new type's defaults)."""
    for key, value in (("name", name), ("dbType", db_type), ("databaseName", database_name)):
        if value is None:
            raise invalid(f"{key} cannot be null", _f(key))
    try:
        async with rt.db.unit_of_work() as uow:
            ds = await _changeable(uow.session, principal, data_source_id)
            before = snapshot(ds)
            new_type = ds.db_type if db_type is UNSET else db_type
            type_changed = new_type != ds.db_type

            def pick(given: Any, current: Any, reset: Any = None) -> Any:
                if given is not UNSET:
                    return given
                return reset if type_changed else current

            values = _validate(rt.settings, ds.organization_id, name=pick(name, ds.name, ds.name), db_type=new_type,
                               host=pick(host, ds.host, "" if new_type == DataSourceType.DUCKDB else ds.host),
                               port=pick(port, ds.port),
                               database_name=pick(database_name, ds.database_name, ds.database_name),
                               username=pick(username, ds.username, ds.username),
                               timeout_seconds=pick(timeout_seconds, ds.timeout_seconds, ds.timeout_seconds),
                               extra_params=pick(extra_params, ds.extra_params, {}), password=password)
            secret = values.password
            if values.name.lower() != ds.name.lower():
                await _check_name(uow.session, ds.organization_id, values.name, exclude=ds.id)
            old_password = ds.password_encrypted
            for key in ("name", "db_type", "host", "port", "database_name", "username", "timeout_seconds",
                        "extra_params"):
                setattr(ds, key, getattr(values, key))
            if secret is not UNSET:
                ds.password_encrypted = encrypt_secret(rt.settings.signing_key(), secret) if secret else None
            after = snapshot(ds)
            password_changed = secret is not UNSET and (secret is not None or old_password is not None)
            if after != before or password_changed:
                if password_changed or any(before[k] != after[k] for k in
                                           ("dbType", "host", "port", "databaseName", "username", "extraParams")):
                    ds.last_test_at = ds.last_test_status = ds.last_test_message = None
                ds.updated_at = utcnow()
                await uow.session.flush()
                changed_before = {k: v for k, v in before.items() if after[k] != v}
                changed_after = {k: v for k, v in after.items() if before[k] != v}
                if password_changed:
                    changed_after["passwordChanged"] = True
                audit.record(uow, principal, "data_source.update", organization_id=ds.organization_id,
                             target_type="DataSource", target_id=ds.id, summary=f"changed data source {ds.name}",
                             before=changed_before, after=changed_after, request_id=request_id)
    except IntegrityError as e:
        if _is_name_conflict(e):
            raise _name_taken(name if isinstance(name, str) else "") from None
        raise
    return ds


async def delete_data_source(rt: Runtime, principal: Principal, data_source_id: uuid.UUID, *, cascade: bool = False,
                             request_id: str | None = None) -> tuple[DataSource, int]:
    """Owners only. (the data source, how many scan configs went with it)."""
    async with rt.db.unit_of_work() as uow:
        ds = await _changeable(uow.session, principal, data_source_id)
        configs = (await uow.session.execute(
            select(ScanConfig.id, ScanConfig.name).where(ScanConfig.data_source_id == ds.id)
            .order_by(ScanConfig.name).with_for_update())).all()
        if configs and not cascade:
            names = ", ".join(f"`{c.name}`" for c in configs[:5]) + (", ..." if len(configs) > 5 else "")
            raise conflict(f"{len(configs)} scan config(s) use this data source ({names}): delete them first, or "
                           f"pass `cascade: true` to delete them with it", _f("id"))
        if configs:
            await uow.session.execute(ScanConfig.__table__.delete().where(ScanConfig.data_source_id == ds.id))
        await uow.session.delete(ds)
        audit.record(uow, principal, "data_source.delete", organization_id=ds.organization_id,
                     target_type="DataSource", target_id=ds.id,
                     summary=f"deleted data source {ds.name}" + (f" and {len(configs)} scan config(s)" if configs else ""),
                     before={**snapshot(ds), **({"scanConfigs": [c.name for c in configs]} if configs else {})},
                     request_id=request_id)
    return ds, len(configs)


# --- connecting ----------------------------------------------------------------------------------

def spec_for(settings: Settings, ds: DataSource) -> ConnectionSpec:
    """How to connect to a data source: the password decrypted, a DuckDB path resolved (and
    checked again: a symlink may have appeared since it was saved). ConnectorError (kind
    `config`) when it cannot be used as saved."""
    password = None
    if ds.password_encrypted:
        password = decrypt_secret(settings.signing_key(), ds.password_encrypted)
        if password is None:
            raise ConnectorError("the stored password can no longer be read (the server's secret key changed): "
                                 "set the password again", kind="config")
    database = ds.database_name
    if ds.db_type == DataSourceType.DUCKDB:
        try:
            database = str(duckdb_path(settings, ds.organization_id, ds.database_name))
        except DomainError as e:
            raise ConnectorError(f"DuckDB: {e.message}", kind="config") from None
    host = ds.host or (BIGQUERY_HOST if ds.db_type == DataSourceType.BIGQUERY else "")
    return ConnectionSpec(db_type=ds.db_type, host=host, port=ds.port, database=database, username=ds.username or "",
                          password=password, timeout_seconds=ds.timeout_seconds or settings.warehouse_timeout_seconds,
                          extra=dict(ds.extra_params or {}))


async def request_test(rt: Runtime, principal: Principal, data_source_id: uuid.UUID, *,
                       request_id: str | None = None) -> tuple[Job, DataSource]:
    """Owners only: a pending `data_source_test` job, at once (the worker connects)."""
    async with rt.db.unit_of_work() as uow:
        ds = await _changeable(uow.session, principal, data_source_id, lock=False)
        job = jobs.create_job(uow, rt, kind=TEST_KIND, organization_id=ds.organization_id,
                              requested_by_id=principal.user_id, payload={"dataSourceId": str(ds.id)}, queue=QUEUE,
                              subject_type="DataSource", subject_id=str(ds.id), max_attempts=1)
        audit.record(uow, principal, "data_source.test", organization_id=ds.organization_id, target_type="DataSource",
                     target_id=ds.id, summary=f"tested data source {ds.name}", after={"jobId": str(job.id)},
                     activity=False, request_id=request_id)
    return job, ds


async def _record_test(rt: Runtime, data_source_id: uuid.UUID, status: ConnectionTestStatus, message: str,
                       at: datetime) -> None:
    async with rt.db.unit_of_work() as uow:
        await uow.session.execute(update(DataSource).where(DataSource.id == data_source_id).values(
            last_test_at=at, last_test_status=status, last_test_message=message[:2000])
            .execution_options(synchronize_session=False))


async def run_test(rt: Runtime, job: Job) -> dict:
    """The `data_source_test` job: connect, ask the server's version, record the outcome on the
    data source. A failure fails the job with the reason (JobFailed: no retry)."""
    ds = await jobs.payload_row(rt, job, DataSource, "dataSourceId", "data source")
    await jobs.report_progress(rt, job.id, 0.1, f"connecting to {ds.name}")
    try:
        async with open_connector(spec_for(rt.settings, ds)) as conn:
            message = await conn.test()
    except ConnectorError as e:
        await _record_test(rt, ds.id, ConnectionTestStatus.FAILURE, e.message, utcnow())
        raise jobs.JobFailed(e.message) from None
    tested_at = utcnow()
    await _record_test(rt, ds.id, ConnectionTestStatus.SUCCESS, message, tested_at)
    return {"success": True, "message": message, "testedAt": tested_at.isoformat(), "dataSourceId": str(ds.id)}


@dataclass
class SchemaResult:
    tables: list[TableInfo] = field(default_factory=list)
    error: str | None = None
    truncated: bool = False


async def read_schema(rt: Runtime, principal: Principal, data_source_id: uuid.UUID,
                      max_tables: int = MAX_TABLES) -> SchemaResult:
    """Tables and columns of the warehouse (editors and owners), read directly under the data
    source's timeout. A warehouse that cannot answer gives `error`, not an exception."""
    ds = (await load_data_sources(rt, principal, [data_source_id]))[0]
    if ds is None:
        raise not_found("data source")
    require_data_source_role(principal, ds.organization_id, Role.editor)
    try:
        async with open_connector(spec_for(rt.settings, ds)) as conn:
            tables = await conn.tables(limit=max_tables)
    except ConnectorError as e:
        return SchemaResult(error=e.message)
    return SchemaResult(tables=tables, truncated=len(tables) >= max_tables)


# --- queries -------------------------------------------------------------------------------------

ORDER = [DataSource.name, DataSource.id]


def data_sources_query(principal: Principal, organization_id: uuid.UUID) -> Select:
    """An organization's data sources, for its members (NOT_FOUND for others and for
    project-bound API keys, which see nothing organization-wide)."""
    principal.require_member(organization_id)
    return select(DataSource).where(DataSource.organization_id == organization_id, *data_sources_visible(principal))


async def load_data_sources(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[DataSource | None]:
    if not ids or not principal.authenticated:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(DataSource).where(DataSource.id.in_(ids), *data_sources_visible(principal))))
        found = {r.id: r for r in rows.scalars().all()}
    return [found.get(i) for i in ids]


@dataclass
class Stats:
    events_tracked: int
    volume_window: int
    window_hours: int
    throughput: list[tuple[datetime, int]]  # (hour start, count), one point per hour of the window, oldest first


def check_window(hours: int | None, field: list[str] | None = None) -> int:
    hours = WINDOW_DEFAULT if hours is None else hours
    if not WINDOW_MIN <= hours <= WINDOW_MAX:
        raise invalid(f"the window must be {WINDOW_MIN} to {WINDOW_MAX} hours", field or ["windowHours"])
    return hours


def window_hours_of(now: datetime, hours: int) -> list[datetime]:
    """The `hours` hour starts ending with the current hour."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=hours - 1 - i) for i in range(hours)]


async def load_stats(rt: Runtime, principal: Principal, keys: list[tuple[uuid.UUID, int]]) -> list[Stats | None]:
    """Stats of data sources over windows, keyed (data source id, window hours): one query per
    distinct window (usually one) for all data sources asked. Counted over the metric series of
    the data source's scan configs at each config's current interval: volume (project totals),
    events tracked (plan events with any count in the window; the buckets of events deleted from
    the plan stay, so they are joined to the plan) and hourly throughput."""
    ids = list(dict.fromkeys(k[0] for k in keys))
    rows = await load_data_sources(rt, principal, ids)
    visible = {r.id for r in rows if r is not None}
    now = utcnow()
    results: dict[tuple[uuid.UUID, int], Stats] = {}
    for hours in dict.fromkeys(k[1] for k in keys):
        wanted = [i for i in ids if i in visible and (i, hours) in set(keys)]
        if not wanted:
            continue
        hour_starts = window_hours_of(now, hours)
        since = hour_starts[0]
        joined = and_(ScanConfig.id == MetricBucket.scan_config_id, ScanConfig.interval == MetricBucket.interval)
        hour = func.date_trunc("hour", MetricBucket.bucket_start, "UTC")
        async with rt.db.session() as s:
            volume = (await s.execute(
                select(ScanConfig.data_source_id, hour, func.sum(MetricBucket.count))
                .select_from(MetricBucket).join(ScanConfig, joined)
                .where(ScanConfig.data_source_id.in_(wanted), MetricBucket.scope_kind == MetricScope.PROJECT,
                       MetricBucket.bucket_start >= since)
                .group_by(ScanConfig.data_source_id, hour))).all()
            tracked = dict((await s.execute(
                select(ScanConfig.data_source_id, func.count(func.distinct(MetricBucket.scope_id)))
                .select_from(MetricBucket).join(ScanConfig, joined)
                .join(Event, Event.id == MetricBucket.scope_id)  # events deleted from the plan drop out
                .where(ScanConfig.data_source_id.in_(wanted), MetricBucket.scope_kind == MetricScope.EVENT,
                       MetricBucket.bucket_start >= since, MetricBucket.count > 0)
                .group_by(ScanConfig.data_source_id))).all())
        per_hour: dict[uuid.UUID, dict[datetime, int]] = {}
        for ds_id, at, total in volume:
            per_hour.setdefault(ds_id, {})[at] = int(total)
        for ds_id in wanted:
            counts = per_hour.get(ds_id, {})
            series = [(h, counts.get(h, 0)) for h in hour_starts]
            results[(ds_id, hours)] = Stats(events_tracked=int(tracked.get(ds_id, 0)),
                                            volume_window=sum(c for _, c in series), window_hours=hours,
                                            throughput=series)
    return [results.get(k) for k in keys]


__all__ = [
    "EXTRA_PARAMS", "QUEUE", "TEST_KIND", "SchemaResult", "Stats", "check_window", "create_data_source",
    "data_sources_query", "delete_data_source", "duckdb_dir_for", "duckdb_path", "load_data_sources", "load_stats",
    "read_schema", "request_test", "run_test", "spec_for", "update_data_source",
]
