"""PagerDuty v3 webhook subscriptions: one incident per `incident.*` event.

A v3 delivery is `{"event": {id, event_type, resource_type, occurred_at, agent, client, data}}`.
Only events whose `data.type` is `incident` describe an incident (`incident.triggered`,
`acknowledged`, `unacknowledged`, `resolved`, `reopened`, `escalated`, `reassigned`, `delegated`,
`priority_updated`, `incident_type.changed`, ...); `incident.annotated` (data is a note),
`incident.responder.*`, `incident.status_update_published`, `service.*` and `pagey.ping` carry
nothing to act on and yield no alert.

- status: resolved for `incident.resolved` or `data.status == "resolved"`, else firing;
  acknowledged when `data.status` is `acknowledged` (or the event is `incident.acknowledged`).
- severity: `data.priority.summary` P1..P5; else `data.urgency` high -> high, low -> low; else
  medium.
- fingerprint: `event.data.id` (the incident id). delivery_id: `event.id` (equal on retries,
  like the `X-Webhook-Id` header, which is the fallback).

The retired v2 webhooks (`{"messages": [...]}`) are rejected with a pointer to v3.

Source: https://developer.pagerduty.com/docs/webhooks/v3-overview ; PagerDuty/developer-docs
docs/webhooks/01-Overview.md, 02-Behavior.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .common import header, parse_time, require_object, text
from .types import Normalized, NormalizedAlert, PayloadRejected

_URGENCY = {"high": "high", "low": "low"}


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    if "event" not in body:
        if isinstance(body.get("messages"), list):
            raise PayloadRejected("PagerDuty v2 webhooks are retired; create a v3 webhook subscription", "event")
        raise PayloadRejected("a PagerDuty v3 webhook has an 'event' object", "event")
    event = require_object(body["event"], "event")
    delivery_id = text(event.get("id")) or text(header(headers, "X-Webhook-Id"))
    event_type = text(event.get("event_type"))
    if event_type is None:
        raise PayloadRejected("a PagerDuty event has an event_type", "event.event_type")
    data = event.get("data")
    empty = Normalized(alerts=[], change_events=[], delivery_id=delivery_id)
    if not event_type.startswith("incident."):
        return empty  # pagey.ping, service.*: valid, nothing to act on
    data = require_object(data, "event.data")
    if data.get("type") != "incident":
        return empty  # incident.annotated (a note), incident.responder.* ...
    incident_id = text(data.get("id"))
    if incident_id is None:
        raise PayloadRejected("an incident has an id", "event.data.id")

    status_text = (text(data.get("status")) or "").lower()
    resolved = event_type == "incident.resolved" or status_text == "resolved"
    acknowledged = not resolved and (status_text == "acknowledged" or event_type == "incident.acknowledged")
    priority_ref = data.get("priority")
    priority = sev.priority(priority_ref.get("summary")) if isinstance(priority_ref, dict) else None
    severity = sev.from_priority(priority) or _URGENCY.get((text(data.get("urgency")) or "").lower(), sev.DEFAULT)
    occurred_at = parse_time(event.get("occurred_at"))

    alert = NormalizedAlert(
        provider="pagerduty",
        provider_alert_id=incident_id,
        fingerprint=incident_id,
        title=text(data.get("title")) or text(data.get("summary")) or f"PagerDuty incident {data.get('number') or incident_id}",
        description=text(data.get("description")),
        severity=severity,
        status="resolved" if resolved else "firing",
        acknowledged=acknowledged,
        service=_summary(data.get("service")),
        environment=None,  # PagerDuty incidents have no environment
        started_at=parse_time(data.get("created_at")),
        ended_at=occurred_at if resolved else None,
        labels=_labels(event_type, data),
        source_url=text(data.get("html_url")),
        priority=priority,
        group_key=text(data.get("incident_key")),
    )
    return Normalized(alerts=[alert], change_events=[], delivery_id=delivery_id)


def _summary(ref: object) -> str | None:
    return text(ref.get("summary")) if isinstance(ref, dict) else None


def _labels(event_type: str, data: dict) -> dict[str, str]:
    labels = {"event_type": event_type}
    for key, value in (
        ("incident_number", text(data.get("number"))),
        ("urgency", text(data.get("urgency"))),
        ("incident_key", text(data.get("incident_key"))),
        ("service_id", _ref_id(data.get("service"))),
        ("escalation_policy", _summary(data.get("escalation_policy"))),
        ("teams", _summaries(data.get("teams"))),
        ("assignees", _summaries(data.get("assignees"))),
        ("incident_type", _name(data.get("incident_type"))),
    ):
        if value:
            labels[key] = value
    return labels


def _ref_id(ref: object) -> str | None:
    return text(ref.get("id")) if isinstance(ref, dict) else None


def _name(ref: object) -> str | None:
    return text(ref.get("name")) if isinstance(ref, dict) else None


def _summaries(refs: object) -> str | None:
    if not isinstance(refs, list):
        return None
    names = [s for s in (_summary(r) for r in refs) if s]
    return ",".join(names) or None
