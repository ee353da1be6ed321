"""Plan-versus-warehouse reconciliation (seed 003's reconciliation tag, and schema drift actions):
shadow events (names seen in the warehouse, missing from the plan), dead events (planned as live
or implemented, unseen for N days), coverage (share of warehouse rows that match the plan) and
schema drifts.

- Reads: members of the project's organization (a project-bound key its project only); the
  project must be readable, else NOT_FOUND on `projectId`.
- Changes: editors (viewers and read-only keys get FORBIDDEN, another tenant's rows NOT_FOUND),
  one transaction each with an audit entry (`shadow_event.accept|dismiss`,
  `schema_drift.<action>`); accepting a shadow event creates the plan event through the plan's
  service (server/domains/plan/events.py: its validation, history, audit and planChanged) in the
  same transaction that marks the shadow event accepted, and archiving dead events is the plan's
  bulk status change.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Role
from server.domains.plan import events as plan_events
from server.domains.plan.access import changeable_project, readable_project, visible
from server.domains.plan.models import Event, EventStatus, EventType
from server.domains.platform import audit
from server.domains.warehouse.metrics import check_int
from server.domains.warehouse.models import (
    DriftStatus,
    MetricBucket,
    MetricScope,
    ScanConfig,
    SchemaDrift,
    ShadowEvent,
    ShadowEventStatus,
)
from server.domains.warehouse.observe import refresh_drift_counts
from server.errors import DomainError, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

SHADOW_FIRST_MIN, SHADOW_FIRST_MAX, SHADOW_FIRST_DEFAULT = 1, 500, 100
DEAD_DAYS_MIN, DEAD_DAYS_MAX, DEAD_DAYS_DEFAULT = 1, 365, 30
DEAD_FIRST_MIN, DEAD_FIRST_MAX, DEAD_FIRST_DEFAULT = 1, 500, 100
COVERAGE_DAYS_MIN, COVERAGE_DAYS_MAX, COVERAGE_DAYS_DEFAULT = 1, 180, 14
DRIFT_FIRST_MIN, DRIFT_FIRST_MAX, DRIFT_FIRST_DEFAULT = 1, 500, 100
ARCHIVE_MAX = 500
NOTE_MAX = 2000
DEAD_STATUSES = (EventStatus.LIVE, EventStatus.IMPLEMENTED)


async def _project_event_type(session: AsyncSession, principal: Principal, project_id: uuid.UUID,
                              event_type_id: uuid.UUID, field: list[str]) -> None:
    """NOT_FOUND on `field` unless `event_type_id` is an event type of the project."""
    found = (await session.execute(select(EventType.id).where(
        EventType.id == event_type_id, EventType.project_id == project_id,
        *visible(EventType, principal)))).scalar_one_or_none()
    if found is None:
        raise not_found("event type of the project", field)


# --- shadow events -----------------------------------------------------------------------------

@dataclass
class ShadowList:
    items: list[ShadowEvent]
    total: int
    new_count: int


async def shadow_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, status: ShadowEventStatus | None,
                        first: int | None) -> ShadowList:
    """The project's shadow events (of `status`, else all), most recently seen first (ties by
    id), at most `first` (1..500, default 100), with how many match and how many are NEW."""
    limit = check_int(first, SHADOW_FIRST_DEFAULT, SHADOW_FIRST_MIN, SHADOW_FIRST_MAX, "first")
    async with rt.db.session() as s:
        project = await readable_project(s, principal, project_id, ["projectId"])
        base = [ShadowEvent.project_id == project.id, *visible(ShadowEvent, principal)]
        total, new = (await s.execute(
            select(func.count().filter(ShadowEvent.status == status) if status else func.count(),
                   func.count().filter(ShadowEvent.status == ShadowEventStatus.NEW)).where(*base))).one()
        q = select(ShadowEvent).where(*base)
        if status is not None:
            q = q.where(ShadowEvent.status == status)
        rows = (await s.execute(q.order_by(ShadowEvent.last_seen_at.desc().nulls_last(), ShadowEvent.id)
                                .limit(limit))).scalars().all()
    return ShadowList(list(rows), int(total), int(new))


def _shadow_snapshot(row: ShadowEvent) -> dict:
    return {"name": row.name, "eventTypeName": row.event_type_name, "status": row.status.value,
            "acceptedEventId": str(row.accepted_event_id) if row.accepted_event_id else None}


def _still_accepted(row: ShadowEvent) -> bool:
    """Accepted into a plan event that still exists: deleting that event from the plan nulls
    `accepted_event_id` (ON DELETE SET NULL), and the name is missing from the plan again, so
    the shadow event may be accepted or dismissed anew."""
    return row.status == ShadowEventStatus.ACCEPTED and row.accepted_event_id is not None


async def _changeable_shadow(session: AsyncSession, principal: Principal, shadow_id: uuid.UUID,
                             lock: bool = True) -> ShadowEvent:
    q = select(ShadowEvent).where(ShadowEvent.id == shadow_id, *visible(ShadowEvent, principal))
    if lock:
        q = q.with_for_update()
    row = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if row is None:
        raise not_found("shadow event", ["input", "id"])
    await changeable_project(session, principal, row.project_id, ["input", "id"])
    return row


async def _accept_target(session: AsyncSession, principal: Principal, shadow_id: uuid.UUID,
                         event_type_id: uuid.UUID | None) -> tuple[ShadowEvent, uuid.UUID]:
    """The shadow event to accept and the event type its plan event goes to (checked, not locked)."""
    row = await _changeable_shadow(session, principal, shadow_id, lock=False)
    if _still_accepted(row):
        raise DomainError(ErrorCode.CONFLICT, "this shadow event was already accepted", ["input", "id"])
    if event_type_id is not None:
        await _project_event_type(session, principal, row.project_id, event_type_id, ["input", "eventTypeId"])
        return row, event_type_id
    type_id = row.event_type_id
    if type_id is None and row.event_type_name:
        type_id = (await session.execute(select(EventType.id).where(
            EventType.project_id == row.project_id,
            func.lower(EventType.name) == row.event_type_name.lower()))).scalar_one_or_none()
    if type_id is None:
        raise invalid("no event type of the plan matches this shadow event: give `eventTypeId`",
                      ["input", "eventTypeId"])
    return row, type_id


async def accept_shadow_event(rt: Runtime, principal: Principal, shadow_id: uuid.UUID,
                              event_type_id: uuid.UUID | None = None, name: str | None = None, *,
                              request_id: str | None = None) -> tuple[ShadowEvent, Event]:
    """Add a shadow event to the plan: a LIVE event (it is flowing in production data) named
    `name` (default: the shadow event's name) of `event_type_id` (default: the event type it
    matched, else the project's event type named like its warehouse event type value). A shadow
    event already accepted is a CONFLICT (unless its plan event was deleted since); a dismissed
    one may still be accepted.

    One transaction: the plan's service creates the event (its validation, history, audit entry
    and planChanged after commit) and, in the same transaction, the shadow event is locked and
    marked ACCEPTED with its own audit entry. Any failure (a taken name, a concurrent accept that
    won) leaves both as they were and announces nothing."""
    async with rt.db.session() as s:
        row, type_id = await _accept_target(s, principal, shadow_id, event_type_id)
        default_name = row.name
    accepted: list[ShadowEvent] = []

    async def mark_accepted(uow: UnitOfWork, event_ids: list[uuid.UUID]) -> None:
        s = uow.session
        row = await _changeable_shadow(s, principal, shadow_id)
        if _still_accepted(row):  # a concurrent accept won while we validated
            raise DomainError(ErrorCode.CONFLICT, "this shadow event was just accepted", ["input", "id"])
        before = _shadow_snapshot(row)
        row.status, row.accepted_event_id, row.event_type_id = ShadowEventStatus.ACCEPTED, event_ids[0], type_id
        row.resolved_by_id, row.resolved_at = principal.user_id, utcnow()
        await s.flush()
        audit.record(uow, principal, "shadow_event.accept", organization_id=row.organization_id,
                     project_id=row.project_id, target_type="ShadowEvent", target_id=row.id,
                     summary=f"accepted shadow event {row.name} into the plan", before=before,
                     after=_shadow_snapshot(row), request_id=request_id)
        accepted.append(row)

    event = await plan_events.create_event(rt, principal, plan_events.EventSpec(
        event_type_id=type_id, name=default_name if name is None else name, status=EventStatus.LIVE,
        description="Accepted from a shadow event found in the warehouse."), request_id=request_id,
        also=mark_accepted)
    return accepted[0], event


async def dismiss_shadow_event(rt: Runtime, principal: Principal, shadow_id: uuid.UUID, *,
                               request_id: str | None = None) -> ShadowEvent:
    """Mark a shadow event DISMISSED (not worth planning). An accepted one is a CONFLICT (unless
    its plan event was deleted since)."""
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        row = await _changeable_shadow(s, principal, shadow_id)
        if _still_accepted(row):
            raise DomainError(ErrorCode.CONFLICT, "an accepted shadow event cannot be dismissed", ["input", "id"])
        if row.status != ShadowEventStatus.DISMISSED:
            before = _shadow_snapshot(row)
            row.status, row.resolved_by_id, row.resolved_at = ShadowEventStatus.DISMISSED, principal.user_id, utcnow()
            await s.flush()
            audit.record(uow, principal, "shadow_event.dismiss", organization_id=row.organization_id,
                         project_id=row.project_id, target_type="ShadowEvent", target_id=row.id,
                         summary=f"dismissed shadow event {row.name}", before=before, after=_shadow_snapshot(row),
                         request_id=request_id)
    return row


# --- dead events -------------------------------------------------------------------------------

def dead_events_query(principal: Principal, project_id: uuid.UUID, days: int, now: datetime) -> Select:
    cutoff = now - timedelta(days=days)
    return (select(Event).where(Event.project_id == project_id, *visible(Event, principal),
                                Event.status.in_(DEAD_STATUSES),
                                or_(Event.last_seen_at.is_(None), Event.last_seen_at < cutoff)))


async def dead_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, days: int | None,
                      first: int | None) -> tuple[int, int, list[Event]]:
    """(days, total, events): LIVE or IMPLEMENTED events no scan has seen for `days` (1..365,
    default 30) or ever, longest unseen first (never seen first, then by last seen, ties by id),
    at most `first` (1..500, default 100)."""
    n = check_int(days, DEAD_DAYS_DEFAULT, DEAD_DAYS_MIN, DEAD_DAYS_MAX, "days")
    limit = check_int(first, DEAD_FIRST_DEFAULT, DEAD_FIRST_MIN, DEAD_FIRST_MAX, "first")
    async with rt.db.session() as s:
        project = await readable_project(s, principal, project_id, ["projectId"])
        q = dead_events_query(principal, project.id, n, utcnow())
        total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await s.execute(q.order_by(Event.last_seen_at.asc().nulls_first(), Event.id).limit(limit))).scalars().all()
    return n, int(total), list(rows)


async def archive_dead_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, event_ids: list[uuid.UUID],
                              status: EventStatus | None = None, *, request_id: str | None = None) -> list[Event]:
    """Move the listed events (1..500 of the project's) to `status` (default ARCHIVED), all or
    none, through the plan's bulk change (history, audit, planChanged). The list goes as given
    (duplicates count once), so a NOT_FOUND (e.g. an event deleted from the plan meanwhile) names
    its index in `eventIds`."""
    if not 1 <= len(event_ids) <= ARCHIVE_MAX:
        raise invalid(f"give 1 to {ARCHIVE_MAX} events", ["input", "eventIds"])
    return await plan_events.bulk_update_events(rt, principal, project_id, event_ids,
                                                {"status": status or EventStatus.ARCHIVED}, request_id=request_id,
                                                list_name="eventIds")


# --- coverage ----------------------------------------------------------------------------------

@dataclass
class CoverageItem:
    scan_config_id: uuid.UUID | None  # None for the summary
    planned_volume: int
    shadow_volume: int
    planned_events: int
    shadow_events: int

    @property
    def total_volume(self) -> int:
        return self.planned_volume + self.shadow_volume

    @property
    def coverage(self) -> float | None:
        """Share of rows that match a plan event (None when nothing was counted)."""
        return self.planned_volume / self.total_volume if self.total_volume else None


async def coverage(rt: Runtime, principal: Principal, project_id: uuid.UUID, days: int | None,
                   scan_config_id: uuid.UUID | None = None) -> tuple[int, list[CoverageItem], CoverageItem]:
    """Per scan config of the project (by name; only `scan_config_id` when given) over the last
    `days` (1..180, default 14): rows of plan events versus rows of shadow events (names not in
    the plan), and the distinct events of each; with the summary over all of them. One GROUP BY.
    Buckets of events deleted from the plan stay, but their rows match no plan event any more:
    they are left out (as in `overview` and `top_events`)."""
    n = check_int(days, COVERAGE_DAYS_DEFAULT, COVERAGE_DAYS_MIN, COVERAGE_DAYS_MAX, "days")
    since = utcnow() - timedelta(days=n)
    m = MetricBucket
    async with rt.db.session() as s:
        project = await readable_project(s, principal, project_id, ["projectId"])
        configs_q = select(ScanConfig.id).where(ScanConfig.project_id == project.id).order_by(ScanConfig.name,
                                                                                             ScanConfig.id)
        if scan_config_id is not None:
            configs_q = configs_q.where(ScanConfig.id == scan_config_id)
        configs = list((await s.execute(configs_q)).scalars())
        if scan_config_id is not None and not configs:
            raise not_found("scan config", ["scanConfigId"])
        is_shadow = m.scope_kind == MetricScope.SHADOW_EVENT
        is_planned = Event.id.is_not(None)  # an EVENT bucket whose event is still in the plan
        rows = {r[0]: r for r in (await s.execute(
            select(m.scan_config_id, func.coalesce(func.sum(m.count).filter(is_planned), 0),
                   func.coalesce(func.sum(m.count).filter(is_shadow), 0),
                   func.count(distinct(m.scope_id)).filter(is_planned & (m.count > 0)),
                   func.count(distinct(m.scope_id)).filter(is_shadow & (m.count > 0)))
            .select_from(m).join(ScanConfig, (ScanConfig.id == m.scan_config_id) & (ScanConfig.interval == m.interval))
            .outerjoin(Event, (m.scope_kind == MetricScope.EVENT) & (Event.id == m.scope_id))
            .where(m.project_id == project.id, m.scan_config_id.in_(configs),
                   m.scope_kind.in_([MetricScope.EVENT, MetricScope.SHADOW_EVENT]), m.bucket_start >= since)
            .group_by(m.scan_config_id))).all()}
    items = [CoverageItem(c, *(int(x) for x in rows[c][1:])) if c in rows else CoverageItem(c, 0, 0, 0, 0)
             for c in configs]
    summary = CoverageItem(None, sum(i.planned_volume for i in items), sum(i.shadow_volume for i in items),
                           sum(i.planned_events for i in items), sum(i.shadow_events for i in items))
    return n, items, summary


# --- schema drifts -----------------------------------------------------------------------------

class DriftAction(str, enum.Enum):
    ACCEPT = "accept"
    SNOOZE = "snooze"
    FALSE_POSITIVE = "false_positive"
    REOPEN = "reopen"


_ACTION_STATUS = {DriftAction.ACCEPT: DriftStatus.ACCEPTED, DriftAction.SNOOZE: DriftStatus.SNOOZED,
                  DriftAction.FALSE_POSITIVE: DriftStatus.FALSE_POSITIVE, DriftAction.REOPEN: DriftStatus.OPEN}


async def schema_drifts(rt: Runtime, principal: Principal, project_id: uuid.UUID, status: DriftStatus | None,
                        event_type_id: uuid.UUID | None, first: int | None) -> tuple[int, list[SchemaDrift]]:
    """The project's schema drifts (of `status` / `event_type_id` when given), newest detection
    first (ties by id), at most `first` (1..500, default 100), with how many match. An event type
    that is not the project's is NOT_FOUND (like `coverage`'s scan config), not an empty list."""
    limit = check_int(first, DRIFT_FIRST_DEFAULT, DRIFT_FIRST_MIN, DRIFT_FIRST_MAX, "first")
    async with rt.db.session() as s:
        project = await readable_project(s, principal, project_id, ["projectId"])
        q = select(SchemaDrift).where(SchemaDrift.project_id == project.id, *visible(SchemaDrift, principal))
        if status is not None:
            q = q.where(SchemaDrift.status == status)
        if event_type_id is not None:
            await _project_event_type(s, principal, project.id, event_type_id, ["eventTypeId"])
            q = q.where(SchemaDrift.event_type_id == event_type_id)
        total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await s.execute(q.order_by(SchemaDrift.detected_at.desc(), SchemaDrift.id).limit(limit))).scalars().all()
    return int(total), list(rows)


def _drift_snapshot(d: SchemaDrift) -> dict:
    return {"status": d.status.value, "note": d.resolution_note,
            "snoozedUntil": d.snoozed_until.isoformat() if d.snoozed_until else None}


async def update_schema_drift(rt: Runtime, principal: Principal, drift_id: uuid.UUID, action: DriftAction,
                              note: str | None = None, snoozed_until: datetime | None = None, *,
                              request_id: str | None = None) -> SchemaDrift:
    """Decide about a drift: ACCEPT (the warehouse shape is right), SNOOZE until a time in the
    future (required, and only for SNOOZE), FALSE_POSITIVE, REOPEN (back to OPEN, clearing who
    decided and the snooze). The note (up to 2000 characters; absent/empty clears it) is kept
    with the decision. Editors."""
    problems: list[DomainError] = []
    now = utcnow()
    if note is not None and len(note) > NOTE_MAX:
        problems.append(invalid(f"note must be at most {NOTE_MAX} characters", ["input", "note"]))
    if action == DriftAction.SNOOZE:
        if snoozed_until is None:
            problems.append(invalid("SNOOZE needs `snoozedUntil`", ["input", "snoozedUntil"]))
        elif snoozed_until <= now:
            problems.append(invalid("`snoozedUntil` must be in the future", ["input", "snoozedUntil"]))
    elif snoozed_until is not None:
        problems.append(invalid("`snoozedUntil` goes with SNOOZE only", ["input", "snoozedUntil"]))
    if problems:
        from server.errors import DomainErrors

        raise DomainErrors(problems)
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        drift = (await s.execute(select(SchemaDrift).where(SchemaDrift.id == drift_id, *visible(SchemaDrift, principal))
                                 .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
        if drift is None:
            raise not_found("schema drift", ["input", "id"])
        await changeable_project(s, principal, drift.project_id, ["input", "id"], minimum=Role.editor)
        before = _drift_snapshot(drift)
        drift.status = _ACTION_STATUS[action]
        drift.resolution_note = (note.strip() or None) if note is not None else None
        drift.snoozed_until = snoozed_until if action == DriftAction.SNOOZE else None
        if action == DriftAction.REOPEN:
            drift.resolved_by_id, drift.resolved_at = None, None
        else:
            drift.resolved_by_id, drift.resolved_at = principal.user_id, now
        await s.flush()
        await refresh_drift_counts(s, drift.project_id, [drift.event_type_id])  # its type's events
        audit.record(uow, principal, f"schema_drift.{action.value}", organization_id=drift.organization_id,
                     project_id=drift.project_id, target_type="SchemaDrift", target_id=drift.id,
                     summary=f"{action.value.replace('_', ' ')} schema drift {drift.field_name}", before=before,
                     after=_drift_snapshot(drift), request_id=request_id)
    return drift


__all__ = [
    "CoverageItem", "DriftAction", "ShadowList", "accept_shadow_event", "archive_dead_events", "coverage",
    "dead_events", "dismiss_shadow_event", "schema_drifts", "shadow_events", "update_schema_drift",
]
