"""Helpers of the ingestion pipeline tests: normalized alerts and changes as the normalizers make
them, one delivery per unit of work (as the webhook shim does), and plain reads of what was stored."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from server.db.base import utcnow
from server.domains.incidents import tuning
from server.domains.incidents.ingest import IngestResult, apply_normalized
from server.domains.incidents.models import Alert, ChangeEvent, CorrelationSettings, Incident, TimelineEntry
from server.domains.incidents.normalizers.types import Normalized, NormalizedAlert, NormalizedChange
from server.runtime import Runtime


def alert(fp: str = "fp-1", *, title: str = "Checkout latency high", service: str | None = "checkout",
          environment: str | None = "prod", severity: str = "high", status: str = "firing",
          started_at: datetime | None = None, ended_at: datetime | None = None, group_key: str | None = None,
          priority: str | None = None, provider: str = "grafana", provider_alert_id: str | None = None,
          labels: dict | None = None, category: str | None = None, business_unit: str | None = None,
          service_tier: str | None = None, description: str | None = None) -> NormalizedAlert:
    return NormalizedAlert(
        provider=provider, provider_alert_id=provider_alert_id, fingerprint=fp, title=title, description=description,
        severity=severity, status=status, acknowledged=False, service=service, environment=environment,
        started_at=started_at, ended_at=ended_at, labels=labels or {}, source_url=None, priority=priority,
        group_key=group_key, category=category, business_unit=business_unit, service_tier=service_tier)


def change(fp: str = "build-1", *, result: str = "success", phase: str | None = "COMPLETED",
           occurred_at: datetime | None = None, service: str | None = "checkout", environment: str | None = "prod",
           version: str | None = "1.0.0", commit: str | None = None) -> NormalizedChange:
    return NormalizedChange(provider="jenkins", fingerprint=fp, title=f"deploy {service}", service=service,
                            environment=environment, version=version, commit=commit, branch="main", result=result,
                            phase=phase, occurred_at=occurred_at, url=None, labels={})


async def ingest(rt: Runtime, org: uuid.UUID, *alerts: NormalizedAlert, changes: tuple = (),
                 now: datetime | None = None) -> IngestResult:
    async with rt.db.unit_of_work() as uow:
        return await apply_normalized(uow, rt, organization_id=org, config_id=None, delivery_id=None,
                                      normalized=Normalized(alerts=list(alerts), change_events=list(changes)), now=now)


async def fetch(rt: Runtime, model: type, *where: Any, order: Any = None) -> list:
    async with rt.db.session() as s:
        q = select(model).where(*where)
        q = q.order_by(*(order if isinstance(order, (list, tuple)) else [order])) if order is not None else q
        return list((await s.execute(q)).scalars().all())


async def incidents_of(rt: Runtime, org: uuid.UUID) -> list[Incident]:
    return await fetch(rt, Incident, Incident.organization_id == org, order=[Incident.created_at, Incident.id])


async def alerts_of(rt: Runtime, org: uuid.UUID) -> list[Alert]:
    return await fetch(rt, Alert, Alert.organization_id == org, order=[Alert.created_at, Alert.id])


async def timeline_of(rt: Runtime, incident_id: uuid.UUID) -> list[TimelineEntry]:
    return await fetch(rt, TimelineEntry, TimelineEntry.incident_id == incident_id,
                       order=[TimelineEntry.created_at, TimelineEntry.id])


async def changes_of(rt: Runtime, org: uuid.UUID) -> list[ChangeEvent]:
    return await fetch(rt, ChangeEvent, ChangeEvent.organization_id == org)


async def settings_of(rt: Runtime, org: uuid.UUID) -> CorrelationSettings | None:
    found = await fetch(rt, CorrelationSettings, CorrelationSettings.organization_id == org)
    return found[0] if found else None


async def set_settings(rt: Runtime, org: uuid.UUID, **values: Any) -> None:
    async with rt.db.unit_of_work() as uow:
        row = await uow.session.get(CorrelationSettings, org)
        if row is None:
            row = CorrelationSettings(organization_id=org)
            uow.session.add(row)
        for k, v in values.items():
            setattr(row, k, v)
    tuning.drop_cached_settings(rt, org)  # this process uses its cached settings for a moment otherwise


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def now() -> datetime:
    return utcnow()
