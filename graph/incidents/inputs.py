"""Inputs of the incident queries and mutations. `incidentUpdate` is a patch: an absent field is
left alone, an explicit null clears it (where clearing makes sense)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graph.incidents.types import AlertStatus, IncidentStatus, Priority, Severity


@strawberry.input(description="All given conditions must hold.")
class IncidentFilter:
    status: list[IncidentStatus] | None = strawberry.field(default=None, description="Any of these statuses.")
    severity: list[Severity] | None = strawberry.field(default=None, description="Any of these severities.")
    service: str | None = strawberry.field(default=None, description="Its service or any affected service.")
    environment: str | None = None
    source: str | None = strawberry.field(default=None, description="Provider of the alert that opened it, e.g. `grafana`.")
    started_after: datetime | None = strawberry.field(default=None, description="Started at or after.")
    started_before: datetime | None = strawberry.field(default=None, description="Started before.")
    text: str | None = strawberry.field(default=None, description="Words the title contains (prefixes match: `check lat`).")


@strawberry.input(description="All given conditions must hold.")
class AlertFilter:
    status: list[AlertStatus] | None = None
    severity: list[Severity] | None = None
    service: str | None = None
    environment: str | None = None
    provider: str | None = None
    fingerprint: str | None = None
    incident_id: strawberry.ID | None = None


@strawberry.input(description="All given conditions must hold.")
class ChangeEventFilter:
    service: str | None = None
    environment: str | None = None
    provider: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


@strawberry.input
class IncidentAcknowledgeInput:
    id: strawberry.ID


@strawberry.input
class IncidentResolveInput:
    id: strawberry.ID


@strawberry.input
class IncidentReopenInput:
    id: strawberry.ID


@strawberry.input(description="Absent fields stay as they are; null clears a field that may be empty.")
class IncidentUpdateInput:
    id: strawberry.ID
    title: strawberry.Maybe[str] = strawberry.field(description="1 to 1000 characters.")
    description: strawberry.Maybe[str | None]
    severity: strawberry.Maybe[Severity]
    status: strawberry.Maybe[IncidentStatus] = strawberry.field(
        description="ACKNOWLEDGED, RESOLVED or INVESTIGATING (reopens or un-acknowledges); MERGED only through incidentMerge.")
    assignee_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="A member's `User` ID; null unassigns.")
    environment: strawberry.Maybe[str | None]
    service: strawberry.Maybe[str | None]
    priority: strawberry.Maybe[Priority]
    category: strawberry.Maybe[str | None]
    business_unit: strawberry.Maybe[str | None]
    service_tier: strawberry.Maybe[str | None]


@strawberry.input
class IncidentMergeInput:
    source_incident_id: strawberry.ID = strawberry.field(description="Becomes MERGED; its alerts move to the target.")
    target_incident_id: strawberry.ID = strawberry.field(description="Keeps going, with the source's alerts.")


@strawberry.input
class AlertMoveInput:
    alert_id: strawberry.ID
    incident_id: strawberry.ID = strawberry.field(description="The incident the alert moves to (same organization).")


@strawberry.input
class AlertUnlinkInput:
    alert_id: strawberry.ID = strawberry.field(description="The alert to split off into a new incident of its own.")
