"""The warehouse jobs: scan, replay, preview and event groups, each tracked as a scan job
(its history per config) and cancellable (`jobCancel` stops the warehouse query at once).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from server.db.base import utcnow
from server.domains.accounts.models import User
from server.domains.plan import events as plan_events
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.models import Event
from server.domains.warehouse import scan_configs
from server.domains.warehouse.connectors import Connector, ConnectorError, jsonable, open_connector, sql
from server.domains.warehouse.data_sources import spec_for
from server.domains.warehouse.models import (
    DataSource,
    ScanConfig,
    ScanJob,
)
from server.jobs import service as jobs
from server.jobs.models import Job
from server.runtime import Runtime
from server.security.principal import Principal
from server.domains.warehouse.observe import observe_fields, sample_shadow_events
from server.domains.warehouse.scan import floor_at, load_plan, scan_range

# --- jobs -----------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def _warehouse(rt: Runtime, ds: DataSource, job: Job) -> AsyncIterator[Connector]:
    """The data source's connector for a job: a cancel of the job stops the warehouse query in
    flight at once (ConnectorError kind `cancelled`, which `_tracked` turns into JobCancelled)."""
    async with jobs.watch_cancel(rt, job.id) as cancelled, open_connector(spec_for(rt.settings, ds)) as conn:
        conn.stop_when(cancelled)
        yield conn


async def _scan_job(rt: Runtime, job: Job) -> ScanJob:
    return await jobs.payload_row(rt, job, ScanJob, "scanJobId", "scan job")


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
    config = await jobs.payload_row(rt, job, ScanConfig, "scanConfigId", "scan config")
    async with rt.db.session() as s:
        ds = await s.get(DataSource, config.data_source_id)
    if ds is None:
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
        start = floor_at(min(start, end), config.interval)
        await jobs.report_progress(rt, job.id, 0.02, f"connecting to {ds.name}")
        async with _warehouse(rt, ds, job) as conn:
            stats = await scan_range(rt, conn, config, start, end, job.id, (0.05, 0.85))
            await jobs.report_progress(rt, job.id, 0.9, "sampling shadow events")
            stats["sampled"] = await sample_shadow_events(rt, conn, config, start, end)
            await jobs.report_progress(rt, job.id, 0.95, "observing fields")
            stats.update(await observe_fields(rt, conn, config, await load_plan(rt, config.project_id), start, end))
        async with rt.db.unit_of_work() as uow:
            await uow.session.execute(update(ScanConfig).where(ScanConfig.id == config.id).values(
                scanned_until=floor_at(end, config.interval), last_run_at=end).execution_options(synchronize_session=False))
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

