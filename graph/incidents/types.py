"""Incident types: the nodes `Incident`, `Alert`, `TimelineEntry`, `ChangeEvent`, and the enums
clients filter and switch on. Relations resolve through the operation's dataloaders
(server/domains/incidents/loaders.py), which also enforce who may see what."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from graph.accounts.types import Organization, User
from graph.core.connections import Connection, connection_from_page
from graph.core.node import Node, load_one, register_node, to_global_id
from graph.core.scalars import JSON
from server.domains.accounts import loaders as account_loaders
from server.domains.incidents import loaders
from server.domains.incidents.events import IncidentEventKind as IncidentEventKindEnum
from server.domains.incidents.models import AiStatus as AiStatusEnum
from server.domains.incidents.models import Alert as AlertRow
from server.domains.incidents.models import AlertStatus as AlertStatusEnum
from server.domains.incidents.models import ChangeEvent as ChangeEventRow
from server.domains.incidents.models import Incident as IncidentRow
from server.domains.incidents.models import IncidentStatus as IncidentStatusEnum
from server.domains.incidents.models import Severity as SeverityEnum
from server.domains.incidents.models import TimelineEntry as TimelineRow
from server.domains.incidents.normalizers.types import CHANGE_RESULTS
from server.domains.incidents.queries import IncidentOrder as IncidentOrderEnum
from server.domains.incidents.timeline import TimelineKind

IncidentStatus = strawberry.enum(IncidentStatusEnum, name="IncidentStatus",
                                 description="INVESTIGATING and ACKNOWLEDGED incidents are open: new alerts can join them.")
AlertStatus = strawberry.enum(AlertStatusEnum, name="AlertStatus")
Severity = strawberry.enum(SeverityEnum, name="Severity")
AiStatus = strawberry.enum(AiStatusEnum, name="AiStatus", description="State of the incident's AI analysis (IDLE until one runs).")
IncidentEventKind = strawberry.enum(IncidentEventKindEnum, name="IncidentEventKind")
TimelineEntryKind = strawberry.enum(TimelineKind, name="TimelineEntryKind")
IncidentOrder = strawberry.enum(IncidentOrderEnum, name="IncidentOrder",
                                description="Sort order of `incidents`; ties are broken by ID.")


@strawberry.enum(name="Priority", description="P1 (most urgent) .. P5. Derived from severity unless the alert states one.")
class Priority(enum.Enum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


@strawberry.enum(name="CorrelationReason", description="Why an alert is in its incident.")
class CorrelationReason(enum.Enum):
    FINGERPRINT_GROUP = "fingerprint_group"
    SERVICE_WINDOW = "service_window"
    TITLE_SIMILARITY = "title_similarity"
    COOCCURRENCE = "cooccurrence"
    MANUAL = "manual"
    MERGED = "merged"


ChangeResult = strawberry.enum(enum.Enum("ChangeResult", {r.upper(): r for r in CHANGE_RESULTS}), name="ChangeResult",
                               description="Outcome of a deployment so far (later phases update it).")


def _change_result(value: str):  # noqa: ANN202
    try:
        return ChangeResult(value)
    except ValueError:
        return ChangeResult("started")


def _page_args(first: int | None, after: str | None, last: int | None, before: str | None, row_id: uuid.UUID):  # noqa: ANN202
    return loaders.page_key(row_id, first, after, last, before)


@strawberry.type(description="A deployment (Jenkins, CloudBees): one per build, updated by its later phases.")
class ChangeEvent(Node):
    provider: str
    title: str
    service: str | None
    environment: str | None
    version: str | None
    commit: str | None
    branch: str | None
    result: ChangeResult
    phase: str | None
    occurred_at: datetime = strawberry.field(description="Time of the latest phase received.")
    url: str | None
    labels: JSON
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ChangeEventRow) -> "ChangeEvent":
        return cls(id=to_global_id("ChangeEvent", row.id), provider=row.provider, title=row.title, service=row.service,
                   environment=row.environment, version=row.version, commit=row.commit, branch=row.branch,
                   result=_change_result(row.result), phase=row.phase, occurred_at=row.occurred_at, url=row.url,
                   labels=row.labels or {}, created_at=row.created_at, updated_at=row.updated_at)


@strawberry.type(description="Why an alert joined its incident: the signal and its strength, so it can be checked and undone.")
class AlertCorrelation:
    reason: CorrelationReason
    score: float | None = strawberry.field(description="0..1 strength of the signal; null when a person put the alert there.")
    detail: str | None = strawberry.field(description="In words: which fingerprint, service, title words or services matched.")


@strawberry.type(description="One alert from a monitoring tool. Repeats of an open alert (same fingerprint) update it.")
class Alert(Node):
    provider: str
    provider_alert_id: str | None
    status: AlertStatus
    severity: Severity
    title: str
    description: str | None
    fingerprint: str = strawberry.field(description="Stable across firing and resolved of the same alert.")
    group_key: str | None
    service: str | None
    environment: str | None
    priority: Priority | None
    started_at: datetime
    ended_at: datetime | None
    last_seen_at: datetime
    occurrence_count: int = strawberry.field(description="How many times the source sent it while open.")
    acknowledged: bool = strawberry.field(description="Acknowledged at the source.")
    labels: JSON
    source_url: str | None
    created_at: datetime
    incident_row_id: strawberry.Private[uuid.UUID | None]
    correlation_row: strawberry.Private[tuple[str | None, float | None, str | None]]

    @classmethod
    def from_row(cls, row: AlertRow) -> "Alert":
        return cls(
            id=to_global_id("Alert", row.id), provider=row.provider, provider_alert_id=row.provider_alert_id,
            status=row.status, severity=row.severity, title=row.title, description=row.description,
            fingerprint=row.fingerprint, group_key=row.group_key, service=row.service, environment=row.environment,
            priority=Priority(row.priority) if row.priority else None, started_at=row.started_at, ended_at=row.ended_at,
            last_seen_at=row.last_seen_at, occurrence_count=row.occurrence_count, acknowledged=row.acknowledged,
            labels=row.labels or {}, source_url=row.source_url, created_at=row.created_at,
            incident_row_id=row.incident_id,
            correlation_row=(row.correlation_reason, row.correlation_score, row.correlation_detail),
        )

    @strawberry.field(description="Why the alert is in its incident; null for the alert that opened it (or one with no incident).")
    def correlation(self) -> AlertCorrelation | None:
        reason, score, detail = self.correlation_row
        if reason is None:
            return None
        try:
            kind = CorrelationReason(reason)
        except ValueError:
            return None
        return AlertCorrelation(reason=kind, score=score, detail=detail)

    @strawberry.field(description="The incident the alert belongs to (null for a resolved alert that opened nothing).")
    async def incident(self, info: strawberry.Info) -> Incident | None:
        return await load_one(info, loaders.load_incidents, Incident, self.incident_row_id)


@strawberry.type(description="One change to an incident, in order: opened, alert correlated, acknowledged, merged, ...")
class TimelineEntry(Node):
    kind: TimelineEntryKind
    summary: str
    data: JSON = strawberry.field(description="Details of the change (alert IDs, reasons, field changes), as stored.")
    created_at: datetime
    actor_row_id: strawberry.Private[uuid.UUID | None]
    incident_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: TimelineRow) -> "TimelineEntry":
        try:
            kind = TimelineKind(row.kind)
        except ValueError:
            kind = TimelineKind.UPDATED
        return cls(id=to_global_id("TimelineEntry", row.id), kind=kind, summary=row.summary, data=row.data or {},
                   created_at=row.created_at, actor_row_id=row.actor_user_id, incident_row_id=row.incident_id)

    @strawberry.field(description="Who made the change; null for changes the system made (alerts, auto-resolve).")
    async def actor(self, info: strawberry.Info) -> User | None:
        return await load_one(info, account_loaders.load_users, User, self.actor_row_id)

    @strawberry.field
    async def incident(self, info: strawberry.Info) -> Incident | None:
        return await load_one(info, loaders.load_incidents, Incident, self.incident_row_id)


@strawberry.type(description="An incident: alerts from monitoring tools that belong together, and what people did about them.")
class Incident(Node):
    title: str
    description: str | None
    status: IncidentStatus
    severity: Severity = strawberry.field(description="The highest severity of its alerts (or as a person set it).")
    priority: Priority
    service: str | None
    environment: str | None
    source: str = strawberry.field(description="The provider of the alert that opened it (grafana, datadog, generic, ...).")
    source_alert_id: str | None
    category: str | None
    business_unit: str | None
    service_tier: str | None
    ai_status: AiStatus
    started_at: datetime
    last_alert_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    merged_at: datetime | None
    correlated_alert_count: int = strawberry.field(description="How many alerts it holds.")
    affected_services: list[str]
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    organization_row_id: strawberry.Private[uuid.UUID]
    merged_into_row_id: strawberry.Private[uuid.UUID | None]
    assignee_row_id: strawberry.Private[uuid.UUID | None]
    acknowledged_by_row_id: strawberry.Private[uuid.UUID | None]
    resolved_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: IncidentRow) -> "Incident":
        return cls(
            id=to_global_id("Incident", row.id), title=row.title, description=row.description, status=row.status,
            severity=row.severity, priority=Priority(row.priority), service=row.service, environment=row.environment,
            source=row.source, source_alert_id=row.source_alert_id, category=row.category,
            business_unit=row.business_unit, service_tier=row.service_tier, ai_status=row.ai_status,
            started_at=row.started_at, last_alert_at=row.last_alert_at, acknowledged_at=row.acknowledged_at,
            resolved_at=row.resolved_at, merged_at=row.merged_at, correlated_alert_count=row.correlated_alert_count,
            affected_services=list(row.affected_services or []), created_at=row.created_at, updated_at=row.updated_at,
            row_id=row.id, organization_row_id=row.organization_id, merged_into_row_id=row.merged_into_id,
            assignee_row_id=row.assignee_id, acknowledged_by_row_id=row.acknowledged_by_id,
            resolved_by_row_id=row.resolved_by_id,
        )

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, account_loaders.load_organizations, Organization, self.organization_row_id)

    @strawberry.field(description="The member working on it.")
    async def assignee(self, info: strawberry.Info) -> User | None:
        return await load_one(info, account_loaders.load_users, User, self.assignee_row_id)

    @strawberry.field
    async def acknowledged_by(self, info: strawberry.Info) -> User | None:
        return await load_one(info, account_loaders.load_users, User, self.acknowledged_by_row_id)

    @strawberry.field(description="Who resolved it; null when it resolved itself (all alerts resolved).")
    async def resolved_by(self, info: strawberry.Info) -> User | None:
        return await load_one(info, account_loaders.load_users, User, self.resolved_by_row_id)

    @strawberry.field(description="The incident this one was merged into (status MERGED).")
    async def merged_into_incident(self, info: strawberry.Info) -> Incident | None:
        return await load_one(info, loaders.load_incidents, Incident, self.merged_into_row_id)

    @strawberry.field(description="Incidents merged into this one, oldest first.")
    async def merged_incidents(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                               last: int | None = None, before: str | None = None) -> Connection[Incident]:
        page = await info.context.loader(loaders.load_merged_incident_pages).load(
            _page_args(first, after, last, before, self.row_id))
        return connection_from_page(page, Incident.from_row)

    @strawberry.field(description="Its alerts, in arrival order.")
    async def alerts(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                     last: int | None = None, before: str | None = None) -> Connection[Alert]:
        page = await info.context.loader(loaders.load_alert_pages).load(_page_args(first, after, last, before, self.row_id))
        return connection_from_page(page, Alert.from_row)

    @strawberry.field(description="Every change, oldest first.")
    async def timeline(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                       last: int | None = None, before: str | None = None) -> Connection[TimelineEntry]:
        page = await info.context.loader(loaders.load_timeline_pages).load(
            _page_args(first, after, last, before, self.row_id))
        return connection_from_page(page, TimelineEntry.from_row)

    @strawberry.field(description="Deployments to its services (its service and every affected one) in the `hoursBefore` "
                                  "hours before it started, newest first; environments must agree when both are known.")
    async def related_changes(self, info: strawberry.Info, hours_before: float = loaders.RELATED_HOURS_DEFAULT,
                              first: int = 20) -> list[ChangeEvent]:
        from server.errors import invalid

        if not 0 < hours_before <= 24 * 7:
            raise invalid("hoursBefore must be more than 0 and at most 168", ["hoursBefore"])
        if not 0 <= first <= loaders.RELATED_LIMIT_MAX:
            raise invalid(f"first must be between 0 and {loaders.RELATED_LIMIT_MAX}", ["first"])
        rows = await info.context.loader(loaders.load_related_changes).load((self.row_id, float(hours_before), first))
        return [ChangeEvent.from_row(r) for r in rows]


@strawberry.type(description="Something happened to an incident of the organization.")
class IncidentEvent:
    kind: IncidentEventKind
    incident: Incident


register_node("Incident", Incident, loaders.load_incidents)
register_node("Alert", Alert, loaders.load_alerts)
register_node("TimelineEntry", TimelineEntry, loaders.load_timeline_entries)
register_node("ChangeEvent", ChangeEvent, loaders.load_change_events)
