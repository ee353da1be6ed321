"""List queries of the incidents domain (filtered to one organization the caller belongs to),
for keyset paging by the GraphQL layer. Each filter is served by an index of models.py."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Select, String, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

from server.domains.incidents.models import Alert, AlertStatus, ChangeEvent, Incident, IncidentStatus, Severity
from server.security.principal import Principal

_WORD = re.compile(r"[^\W_]+")


def title_matches(column: ColumnElement, text: str) -> ColumnElement | None:
    """Every word of `text` begins a word of the title (`to_tsvector('simple', title)`, GIN-indexed),
    e.g. "check lat" finds "Checkout latency high". None when `text` has no words."""
    words = [w.lower() for w in _WORD.findall(text)][:16]
    if not words:
        return None
    query = " & ".join(f"{w}:*" for w in words)
    return func.to_tsvector(literal_column("'simple'"), column).op("@@")(
        func.to_tsquery(literal_column("'simple'"), query))


class IncidentOrder(enum.Enum):
    STARTED_AT_DESC = ("started_at", True)
    STARTED_AT_ASC = ("started_at", False)
    CREATED_AT_DESC = ("created_at", True)
    CREATED_AT_ASC = ("created_at", False)

    @property
    def columns(self) -> list:
        return [getattr(Incident, self.value[0]), Incident.id]

    @property
    def descending(self) -> bool:
        return self.value[1]


@dataclass
class IncidentFilter:
    statuses: list[IncidentStatus] = field(default_factory=list)
    severities: list[Severity] = field(default_factory=list)
    service: str | None = None  # the incident's service or any affected service
    environment: str | None = None
    source: str | None = None
    started_after: datetime | None = None  # inclusive
    started_before: datetime | None = None  # exclusive
    text: str | None = None  # words of the title


@dataclass
class AlertFilter:
    statuses: list[AlertStatus] = field(default_factory=list)
    severities: list[Severity] = field(default_factory=list)
    service: str | None = None
    environment: str | None = None
    provider: str | None = None
    fingerprint: str | None = None
    incident_id: uuid.UUID | None = None


@dataclass
class ChangeEventFilter:
    service: str | None = None
    environment: str | None = None
    provider: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


def incidents_query(principal: Principal, organization_id: uuid.UUID, f: IncidentFilter | None = None) -> Select:
    principal.require_member(organization_id)
    f = f or IncidentFilter()
    q = select(Incident).where(Incident.organization_id == organization_id)
    if f.statuses:
        q = q.where(Incident.status.in_(f.statuses))
    if f.severities:
        q = q.where(Incident.severity.in_(f.severities))
    if f.service:
        services = bindparam(None, [f.service], type_=ARRAY(String))
        q = q.where(Incident.affected_services.bool_op("@>")(services) | (Incident.service == f.service))
    if f.environment:
        q = q.where(Incident.environment == f.environment)
    if f.source:
        q = q.where(Incident.source == f.source)
    if f.started_after:
        q = q.where(Incident.started_at >= f.started_after)
    if f.started_before:
        q = q.where(Incident.started_at < f.started_before)
    if f.text and (match := title_matches(Incident.title, f.text)) is not None:
        q = q.where(match)
    return q


def alerts_query(principal: Principal, organization_id: uuid.UUID, f: AlertFilter | None = None) -> Select:
    principal.require_member(organization_id)
    f = f or AlertFilter()
    q = select(Alert).where(Alert.organization_id == organization_id)
    if f.statuses:
        q = q.where(Alert.status.in_(f.statuses))
    if f.severities:
        q = q.where(Alert.severity.in_(f.severities))
    for column, value in ((Alert.service, f.service), (Alert.environment, f.environment),
                          (Alert.provider, f.provider), (Alert.fingerprint, f.fingerprint),
                          (Alert.incident_id, f.incident_id)):
        if value is not None:
            q = q.where(column == value)
    return q


def change_events_query(principal: Principal, organization_id: uuid.UUID, f: ChangeEventFilter | None = None) -> Select:
    principal.require_member(organization_id)
    f = f or ChangeEventFilter()
    q = select(ChangeEvent).where(ChangeEvent.organization_id == organization_id)
    for column, value in ((ChangeEvent.service, f.service), (ChangeEvent.environment, f.environment),
                          (ChangeEvent.provider, f.provider)):
        if value is not None:
            q = q.where(column == value)
    if f.occurred_after:
        q = q.where(ChangeEvent.occurred_at >= f.occurred_after)
    if f.occurred_before:
        q = q.where(ChangeEvent.occurred_at < f.occurred_before)
    return q
