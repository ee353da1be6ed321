"""Incident changes people make: acknowledge, resolve, reopen, update, merge, move an alert, unlink
an alert into a new incident.

Rules shared by every change here:
- Viewers read; editors and owners change (FORBIDDEN for viewers and read-only keys). An incident
  or alert of an organization the caller does not belong to is NOT_FOUND, like a missing one.
- Each change takes the organization's incident lock (tuning.lock_organization) first, so it
  never interleaves with a delivery correlating alerts into the same incidents, then re-reads
  what it changes.
- Every change adds a timeline entry to each incident it touches and an audit entry, in the same
  transaction, and publishes incident events after commit.
- Merged incidents are read-only (CONFLICT); a change that changes nothing (acknowledging an
  acknowledged incident) succeeds without entries.
- An incident that becomes resolved counts its services in the organization's co-occurrence model;
  reopening (or merging away) a resolved incident takes them out again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Role
from server.domains.accounts.organizations import current_role
from server.domains.incidents import tuning
from server.domains.incidents.correlation import IncidentFacts
from server.domains.incidents.events import EventBatch, IncidentEventKind
from server.domains.incidents.facts import (
    MAX_KEYS,
    PRIORITIES,
    alert_facts,
    append_capped,
    facts_from_alerts,
    facts_from_row,
    facts_to_json,
    max_severity,
    merge_facts,
    priority_for,
)
from server.domains.incidents.models import (
    AiStatus,
    Alert,
    AlertStatus,
    Incident,
    IncidentStatus,
    Severity,
)
from server.domains.incidents.timeline import Timeline, TimelineKind
from server.domains.platform import audit
from server.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

OPEN_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.ACKNOWLEDGED)

# Why an alert is in its incident when a person put it there (the engine's reasons are the others).
REASON_MANUAL = "manual"   # moved by a user (alertMove)
REASON_MERGED = "merged"   # came with an incident merged into this one

TITLE_MAX, TEXT_MAX = 1000, 255


def conflict(message: str, field: list[str] | None = None) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message, field)


# --- reading with tenant checks -----------------------------------------------------------------

async def _visible(rt: Runtime, principal: Principal, model: type, row_id: uuid.UUID, what: str,
                   field: list[str]) -> Any:
    """The row if it belongs to one of the caller's organizations, else NOT_FOUND."""
    principal.require_user()
    async with rt.db.session() as s:
        row = await s.get(model, row_id)
    if row is None or principal.role_in(row.organization_id) is None:
        raise not_found(what, field)
    return row


async def _editable(rt: Runtime, principal: Principal, model: type, row_id: uuid.UUID, what: str,
                    field: list[str]) -> Any:
    row = await _visible(rt, principal, model, row_id, what, field)
    principal.require_role(row.organization_id, Role.editor, what)
    return row


async def _locked_incident(uow: UnitOfWork, incident_id: uuid.UUID, field: list[str]) -> Incident:
    row = await uow.session.get(Incident, incident_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise not_found("incident", field)
    return row


def _require_not_merged(incident: Incident, field: list[str] | None = None) -> None:
    if incident.status == IncidentStatus.MERGED:
        raise conflict("this incident was merged into another; change that one instead", field)


@dataclass
class _Change:
    """The side effects one mutation collects: timeline, events, co-occurrence learning."""

    uow: UnitOfWork
    rt: Runtime
    principal: Principal
    organization_id: uuid.UUID
    now: datetime

    def __post_init__(self) -> None:
        self.timeline = Timeline(self.organization_id, self.now)
        self.events = EventBatch(self.organization_id)
        self.observe: list[list[str]] = []
        self.forget: list[list[str]] = []

    def entry(self, incident_id: uuid.UUID, kind: TimelineKind, summary: str, data: dict | None = None) -> None:
        self.timeline.add(incident_id, kind, summary, actor_user_id=self.principal.user_id, data=data)

    async def finish(self) -> None:
        await self.uow.session.flush()
        await self.timeline.flush(self.uow)
        if self.observe or self.forget:
            await tuning.learn(self.uow, self.rt, self.organization_id, observe=self.observe, forget=self.forget)
        self.events.publish_after_commit(self.uow, self.rt)


async def _begin(uow: UnitOfWork, rt: Runtime, principal: Principal, organization_id: uuid.UUID) -> _Change:
    await tuning.lock_organization(uow, organization_id)
    return _Change(uow, rt, principal, organization_id, utcnow())


def _audit(change: _Change, action: str, target_type: str, target_id: uuid.UUID, summary: str, *,
           before: dict | None = None, after: dict | None = None, request_id: str | None = None) -> None:
    audit.record(change.uow, change.principal, action, organization_id=change.organization_id,
                 target_type=target_type, target_id=target_id, summary=summary, before=before, after=after,
                 request_id=request_id)


# --- status transitions (shared by the dedicated mutations and incidentUpdate) --------------------

def _acknowledge(change: _Change, incident: Incident) -> bool:
    if incident.status == IncidentStatus.ACKNOWLEDGED:
        return False
    if incident.status == IncidentStatus.RESOLVED:
        raise conflict("a resolved incident cannot be acknowledged; reopen it first")
    incident.status = IncidentStatus.ACKNOWLEDGED
    incident.acknowledged_at = change.now
    incident.acknowledged_by_id = change.principal.user_id
    change.entry(incident.id, TimelineKind.ACKNOWLEDGED, "Acknowledged")
    change.events.add(IncidentEventKind.UPDATED, incident.id)
    return True


def _resolve(change: _Change, incident: Incident) -> bool:
    if incident.status == IncidentStatus.RESOLVED:
        return False
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = change.now
    incident.resolved_by_id = change.principal.user_id
    change.entry(incident.id, TimelineKind.RESOLVED, "Resolved", {"automatic": False})
    change.events.add(IncidentEventKind.RESOLVED, incident.id)
    change.observe.append(list(incident.affected_services))
    return True


def _reopen(change: _Change, incident: Incident) -> bool:
    if incident.status != IncidentStatus.RESOLVED:
        raise conflict("only a resolved incident can be reopened")
    incident.status = IncidentStatus.INVESTIGATING
    incident.resolved_at = None
    incident.resolved_by_id = None
    change.entry(incident.id, TimelineKind.REOPENED, "Reopened")
    change.events.add(IncidentEventKind.UPDATED, incident.id)
    change.forget.append(list(incident.affected_services))
    return True


def _unacknowledge(change: _Change, incident: Incident) -> bool:
    if incident.status == IncidentStatus.INVESTIGATING:
        return False
    if incident.status == IncidentStatus.RESOLVED:
        return _reopen(change, incident)
    incident.status = IncidentStatus.INVESTIGATING
    incident.acknowledged_at = None
    incident.acknowledged_by_id = None
    change.entry(incident.id, TimelineKind.UPDATED, "Back to investigating",
                 {"changes": {"status": {"from": "acknowledged", "to": "investigating"}}})
    change.events.add(IncidentEventKind.UPDATED, incident.id)
    return True


async def _transition(rt: Runtime, principal: Principal, incident_id: uuid.UUID, action: str, step: Any,
                      request_id: str | None) -> Incident:
    field = ["input", "id"]
    found = await _editable(rt, principal, Incident, incident_id, "incident", field)
    async with rt.db.unit_of_work() as uow:
        change = await _begin(uow, rt, principal, found.organization_id)
        incident = await _locked_incident(uow, incident_id, field)
        _require_not_merged(incident, field)
        before = incident.status.value
        if step(change, incident):
            _audit(change, f"incident.{action}", "Incident", incident.id, f"{action} incident \u201c{incident.title[:200]}\u201d",
                   before={"status": before}, after={"status": incident.status.value}, request_id=request_id)
            await change.finish()
    return incident


async def acknowledge(rt: Runtime, principal: Principal, incident_id: uuid.UUID, *,
                      request_id: str | None = None) -> Incident:
    return await _transition(rt, principal, incident_id, "acknowledge", _acknowledge, request_id)


async def resolve(rt: Runtime, principal: Principal, incident_id: uuid.UUID, *,
                  request_id: str | None = None) -> Incident:
    return await _transition(rt, principal, incident_id, "resolve", _resolve, request_id)


async def reopen(rt: Runtime, principal: Principal, incident_id: uuid.UUID, *,
                 request_id: str | None = None) -> Incident:
    return await _transition(rt, principal, incident_id, "reopen", _reopen, request_id)


# --- update ---------------------------------------------------------------------------------------

_UNSET = object()


@dataclass
class IncidentPatch:
    """Fields to change; `_UNSET` (the default) leaves a field alone, None clears a nullable one."""

    title: Any = _UNSET
    description: Any = _UNSET
    severity: Any = _UNSET
    status: Any = _UNSET
    assignee_id: Any = _UNSET
    environment: Any = _UNSET
    service: Any = _UNSET
    priority: Any = _UNSET
    category: Any = _UNSET
    business_unit: Any = _UNSET
    service_tier: Any = _UNSET

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not _UNSET}


UNSET = _UNSET
_FIELD_NAMES = {"assignee_id": "assigneeId", "business_unit": "businessUnit", "service_tier": "serviceTier"}
_TEXT_LIMITS = {"environment": TEXT_MAX, "service": TEXT_MAX, "category": TEXT_MAX, "business_unit": TEXT_MAX,
                "service_tier": 64, "description": 20_000}


def _field(name: str) -> list[str]:
    return ["input", _FIELD_NAMES.get(name, name)]


def _clean_patch(patch: IncidentPatch) -> dict[str, Any]:
    """Validated, normalized values (all problems reported at once)."""
    values = patch.given()
    errors: list[DomainError] = []
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "title":
            title = (value or "").strip()
            if not title:
                errors.append(invalid("a title is required", _field(name)))
            elif len(title) > TITLE_MAX:
                errors.append(invalid(f"at most {TITLE_MAX} characters", _field(name)))
            out[name] = title
        elif name in ("severity", "status"):
            if value is None:
                errors.append(invalid(f"{name} cannot be null", _field(name)))
            elif name == "status" and value == IncidentStatus.MERGED:
                errors.append(invalid("merge incidents with incidentMerge", _field(name)))
            out[name] = value
        elif name == "priority":
            if value is None or str(value).upper() not in PRIORITIES:
                errors.append(invalid("priority is one of P1..P5", _field(name)))
            out[name] = str(value).upper() if value else value
        elif name in _TEXT_LIMITS:
            text = value.strip() if isinstance(value, str) else value
            text = text or None
            if text is not None and len(text) > _TEXT_LIMITS[name]:
                errors.append(invalid(f"at most {_TEXT_LIMITS[name]} characters", _field(name)))
            out[name] = text
        else:
            out[name] = value
    if errors:
        raise DomainErrors(errors)
    return out


def _shown(value: Any) -> Any:
    if isinstance(value, (IncidentStatus, Severity)):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


async def update_incident(rt: Runtime, principal: Principal, incident_id: uuid.UUID, patch: IncidentPatch, *,
                          request_id: str | None = None) -> Incident:
    field = ["input", "id"]
    values = _clean_patch(patch)
    found = await _editable(rt, principal, Incident, incident_id, "incident", field)
    async with rt.db.unit_of_work() as uow:
        change = await _begin(uow, rt, principal, found.organization_id)
        incident = await _locked_incident(uow, incident_id, field)
        _require_not_merged(incident, field)
        if values.get("assignee_id") is not None:
            if await current_role(uow, incident.organization_id, values["assignee_id"]) is None:
                raise invalid("the assignee must be a member of the incident's organization", _field("assignee_id"))
        changes: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            if name == "status":
                continue
            old = getattr(incident, name)
            if old != value:
                changes[name] = {"from": _shown(old), "to": _shown(value)}
                setattr(incident, name, value)
        if changes:
            names = ", ".join(_FIELD_NAMES.get(k, k) for k in changes)
            change.entry(incident.id, TimelineKind.UPDATED, f"Changed {names}", {"changes": dict(changes)})
            change.events.add(IncidentEventKind.UPDATED, incident.id)
        if "status" in values and values["status"] != incident.status:
            before = incident.status.value
            step = {IncidentStatus.ACKNOWLEDGED: _acknowledge, IncidentStatus.RESOLVED: _resolve,
                    IncidentStatus.INVESTIGATING: _unacknowledge}[values["status"]]
            if step(change, incident):
                changes["status"] = {"from": before, "to": incident.status.value}
        if changes:
            _audit(change, "incident.update", "Incident", incident.id, f"updated incident \u201c{incident.title[:200]}\u201d",
                   before={k: v["from"] for k, v in changes.items()}, after={k: v["to"] for k, v in changes.items()},
                   request_id=request_id)
            await change.finish()
    return incident


# --- merge, move, unlink --------------------------------------------------------------------------

def _facts(incident: Incident) -> IncidentFacts:
    return facts_from_row(id=incident.id, started_at=incident.started_at, last_alert_at=incident.last_alert_at,
                          environment=incident.environment, title=incident.title,
                          affected_services=incident.affected_services, fingerprints=incident.fingerprints,
                          group_keys=incident.group_keys, detached_fingerprints=incident.detached_fingerprints,
                          correlation_facts=incident.correlation_facts)


async def _recompute_from_alerts(uow: UnitOfWork, incident: Incident) -> None:
    """Count, services, fingerprints, group keys and correlation facts from the incident's alerts
    as they are now (after some left). Severity and times stay: they are history."""
    rows = (await uow.session.execute(
        select(Alert.fingerprint, Alert.group_key, Alert.service, Alert.environment, Alert.title, Alert.started_at,
               Alert.last_seen_at)
        .where(Alert.incident_id == incident.id).order_by(Alert.created_at, Alert.id))).all()
    incident.correlated_alert_count = len(rows)
    incident.affected_services = list(dict.fromkeys(r.service for r in rows if r.service))
    incident.fingerprints = list(dict.fromkeys(r.fingerprint for r in rows))[-MAX_KEYS:]
    incident.group_keys = list(dict.fromkeys(r.group_key for r in rows if r.group_key))[-MAX_KEYS:]
    observations = [f for r in rows for f in alert_facts(
        fingerprint=r.fingerprint, title=r.title, service=r.service, environment=r.environment,
        group_key=r.group_key, started_at=r.started_at, last_seen_at=r.last_seen_at)]
    facts = facts_from_alerts(incident.id, observations, incident.detached_fingerprints)
    incident.correlation_facts = facts_to_json(facts) if facts else {}


def _add_alert(incident: Incident, alert: Alert) -> None:
    """`incident` after `alert` joined it by hand (move)."""
    incident.correlated_alert_count += 1
    if alert.service and alert.service not in incident.affected_services:
        incident.affected_services = [*incident.affected_services, alert.service]
    incident.fingerprints = append_capped(list(incident.fingerprints), alert.fingerprint)
    incident.group_keys = append_capped(list(incident.group_keys), alert.group_key)
    incident.detached_fingerprints = [f for f in incident.detached_fingerprints if f != alert.fingerprint]
    if alert.status == AlertStatus.FIRING:
        incident.severity = max_severity(incident.severity, alert.severity)
    incident.last_alert_at = max(incident.last_alert_at, alert.last_seen_at)
    facts = _facts(incident)
    for observation in alert_facts(fingerprint=alert.fingerprint, title=alert.title, service=alert.service,
                                   environment=alert.environment, group_key=alert.group_key,
                                   started_at=alert.started_at, last_seen_at=alert.last_seen_at):
        facts = facts.with_alert(observation)
    incident.correlation_facts = facts_to_json(facts)


async def merge(rt: Runtime, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID, *,
                request_id: str | None = None) -> tuple[Incident, Incident]:
    """Merge `source` into `target`: the source becomes MERGED (pointing at the target), its alerts
    and the incidents merged into it move to the target. Returns (source, target)."""
    src_field, dst_field = ["input", "sourceIncidentId"], ["input", "targetIncidentId"]
    if source_id == target_id:
        raise invalid("an incident cannot be merged into itself", dst_field)
    source = await _editable(rt, principal, Incident, source_id, "incident", src_field)
    target = await _visible(rt, principal, Incident, target_id, "incident", dst_field)
    if source.organization_id != target.organization_id:
        raise invalid("incidents of different organizations cannot be merged", dst_field)
    async with rt.db.unit_of_work() as uow:
        change = await _begin(uow, rt, principal, source.organization_id)
        source = await _locked_incident(uow, source_id, src_field)
        target = await _locked_incident(uow, target_id, dst_field)
        _require_not_merged(source, src_field)
        if target.status == IncidentStatus.MERGED:
            raise conflict("the target was itself merged into another incident; merge into that one", dst_field)
        moved = (await uow.session.execute(
            update(Alert).where(Alert.incident_id == source.id)
            .values(incident_id=target.id, correlation_reason=REASON_MERGED, correlation_score=None,
                    correlation_detail=f"came with incident \u201c{source.title[:200]}\u201d", updated_at=change.now)
            .returning(Alert.id).execution_options(synchronize_session=False))).scalars().all()
        await uow.session.execute(
            update(Incident).where(Incident.merged_into_id == source.id)
            .values(merged_into_id=target.id, updated_at=change.now).execution_options(synchronize_session=False))
        if source.status == IncidentStatus.RESOLVED:
            change.forget.append(list(source.affected_services))
        if target.status == IncidentStatus.RESOLVED:
            change.forget.append(list(target.affected_services))
        target.correlated_alert_count += len(moved)
        target.affected_services = list(dict.fromkeys([*target.affected_services, *source.affected_services]))
        target.fingerprints = list(dict.fromkeys([*target.fingerprints, *source.fingerprints]))[-MAX_KEYS:]
        target.group_keys = list(dict.fromkeys([*target.group_keys, *source.group_keys]))[-MAX_KEYS:]
        target.severity = max_severity(target.severity, source.severity)
        target.started_at = min(target.started_at, source.started_at)
        target.last_alert_at = max(target.last_alert_at, source.last_alert_at)
        target.correlation_facts = facts_to_json(merge_facts(_facts(target), _facts(source)))
        if target.status == IncidentStatus.RESOLVED:
            change.observe.append(list(target.affected_services))
        source.status = IncidentStatus.MERGED
        source.merged_into_id = target.id
        source.merged_at = change.now
        source.correlated_alert_count = 0
        change.entry(source.id, TimelineKind.MERGED_INTO, f"Merged into \u201c{target.title[:200]}\u201d",
                     {"targetIncidentId": str(target.id), "alertCount": len(moved)})
        change.entry(target.id, TimelineKind.MERGED, f"Merged \u201c{source.title[:200]}\u201d into this incident",
                     {"sourceIncidentId": str(source.id), "alertCount": len(moved)})
        change.events.add(IncidentEventKind.MERGED, source.id)
        change.events.add(IncidentEventKind.MERGED, target.id)
        _audit(change, "incident.merge", "Incident", source.id,
               f"merged incident \u201c{source.title[:200]}\u201d into \u201c{target.title[:200]}\u201d",
               after={"targetIncidentId": str(target.id), "alertCount": len(moved)}, request_id=request_id)
        await change.finish()
    return source, target


async def _locked_alert(uow: UnitOfWork, alert_id: uuid.UUID, field: list[str]) -> Alert:
    row = await uow.session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise not_found("alert", field)
    return row


async def _detach(change: _Change, alert: Alert, verb: str) -> Incident | None:
    """Take `alert` out of its incident (which remembers not to take it back)."""
    if alert.incident_id is None:
        return None
    source = await _locked_incident(change.uow, alert.incident_id, ["input", "alertId"])
    source.detached_fingerprints = append_capped(list(source.detached_fingerprints), alert.fingerprint)
    alert.incident_id = None
    await change.uow.session.flush()
    await _recompute_from_alerts(change.uow, source)
    change.entry(source.id, TimelineKind.ALERT_MOVED_OUT, f"Alert \u201c{alert.title[:200]}\u201d {verb}",
                 {"alertId": str(alert.id)})
    change.events.add(IncidentEventKind.UPDATED, source.id)
    return source


async def move_alert(rt: Runtime, principal: Principal, alert_id: uuid.UUID, incident_id: uuid.UUID, *,
                     request_id: str | None = None) -> tuple[Alert, Incident | None, Incident]:
    """Move one alert to another incident of its organization. Returns (alert, source, target)."""
    alert_field, target_field = ["input", "alertId"], ["input", "incidentId"]
    alert = await _editable(rt, principal, Alert, alert_id, "alert", alert_field)
    target = await _visible(rt, principal, Incident, incident_id, "incident", target_field)
    if target.organization_id != alert.organization_id:
        raise invalid("an alert can only move to an incident of its own organization", target_field)
    async with rt.db.unit_of_work() as uow:
        change = await _begin(uow, rt, principal, alert.organization_id)
        alert = await _locked_alert(uow, alert_id, alert_field)
        target = await _locked_incident(uow, incident_id, target_field)
        if alert.incident_id == target.id:
            raise invalid("the alert is already in this incident", target_field)
        if target.status == IncidentStatus.MERGED:
            raise conflict("the target was merged into another incident; move the alert there", target_field)
        source = await _detach(change, alert, "moved to another incident")
        alert.incident_id = target.id
        alert.correlation_reason, alert.correlation_score = REASON_MANUAL, None
        alert.correlation_detail = "moved by a user"
        _add_alert(target, alert)
        change.entry(target.id, TimelineKind.ALERT_MOVED_IN, f"Alert \u201c{alert.title[:200]}\u201d moved here",
                     {"alertId": str(alert.id), "fromIncidentId": str(source.id) if source else None})
        change.events.add(IncidentEventKind.ALERT_CORRELATED, target.id)
        _audit(change, "alert.move", "Alert", alert.id, f"moved alert \u201c{alert.title[:200]}\u201d",
               before={"incidentId": str(source.id) if source else None}, after={"incidentId": str(target.id)},
               request_id=request_id)
        await change.finish()
    return alert, source, target


async def unlink_alert(rt: Runtime, principal: Principal, alert_id: uuid.UUID, *,
                       request_id: str | None = None) -> tuple[Alert, Incident | None, Incident]:
    """Split one alert off into a new incident of its own (status investigating, fields from the
    alert, as if it had just arrived). Returns (alert, former incident, new incident)."""
    field = ["input", "alertId"]
    alert = await _editable(rt, principal, Alert, alert_id, "alert", field)
    async with rt.db.unit_of_work() as uow:
        change = await _begin(uow, rt, principal, alert.organization_id)
        alert = await _locked_alert(uow, alert_id, field)
        source = await _detach(change, alert, "split off into a new incident")
        facts = alert_facts(fingerprint=alert.fingerprint, title=alert.title, service=alert.service,
                            environment=alert.environment, group_key=alert.group_key,
                            started_at=alert.started_at, last_seen_at=alert.last_seen_at)
        new_id = uuid.uuid4()
        severity = alert.severity
        incident = Incident(
            id=new_id, organization_id=alert.organization_id, title=alert.title, description=alert.description,
            status=IncidentStatus.INVESTIGATING, severity=severity, priority=priority_for(severity, alert.priority),
            service=alert.service, environment=alert.environment, source=alert.provider,
            source_alert_id=alert.provider_alert_id, category=source.category if source else None,
            business_unit=source.business_unit if source else None,
            service_tier=source.service_tier if source else None, ai_status=AiStatus.IDLE,
            started_at=alert.started_at, last_alert_at=max(alert.started_at, alert.last_seen_at),
            correlated_alert_count=1, affected_services=[alert.service] if alert.service else [],
            fingerprints=[alert.fingerprint], group_keys=[alert.group_key] if alert.group_key else [],
            detached_fingerprints=[], correlation_facts=facts_to_json(facts_from_alerts(new_id, facts)),
        )
        uow.session.add(incident)
        await uow.session.flush()
        alert.incident_id = new_id
        alert.correlation_reason = alert.correlation_score = alert.correlation_detail = None
        change.entry(new_id, TimelineKind.CREATED, f"Incident opened by splitting off alert \u201c{alert.title[:200]}\u201d",
                     {"alertId": str(alert.id), "fromIncidentId": str(source.id) if source else None})
        change.events.add(IncidentEventKind.CREATED, new_id)
        _audit(change, "alert.unlink", "Alert", alert.id, f"split alert \u201c{alert.title[:200]}\u201d into a new incident",
               before={"incidentId": str(source.id) if source else None}, after={"incidentId": str(new_id)},
               request_id=request_id)
        await change.finish()
    return alert, source, incident


__all__ = [
    "REASON_MANUAL", "REASON_MERGED", "UNSET", "IncidentPatch", "acknowledge", "merge", "move_alert", "reopen",
    "resolve", "unlink_alert", "update_incident",
]
