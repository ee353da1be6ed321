"""BigPanda Notifications Webhook: an incident object with its alerts expanded.

One alert per `alerts[i]`, keyed on its `incident_key` (BigPanda's own de-duplication key for an
alert: equal on the active and the resolved delivery); without one, the alert `id`, then its
primary/secondary property values. The incident `id` is the group_key, so the alerts BigPanda
correlated stay together.

- status: alert `status: ok` or `active: false` -> resolved, else firing. The incident's
  `severity` is the highest status ever reached, so it is never read as the current state.
- severity, from the alert's `status`: critical -> critical, warning/unknown -> medium,
  ok -> info, acknowledged -> medium (and acknowledged=True).
- title: the alert `description`; else `<primary value> <secondary value>`.
- service: tag `service` -> `application`; environment: tag `environment` -> `env`. Tags are a list
  of `{name, value}` (or a flat object in some exports).

Sources: https://docs.bigpanda.io/reference/webhook-incident-object ;
https://docs.bigpanda.io/reference/alert-object-1 ; https://docs.bigpanda.io/en/notifications-webhook.html
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .common import classification, first_label, join_parts, parse_time, require_list, require_object, str_labels, text
from .types import Normalized, NormalizedAlert, PayloadRejected

_SEVERITY = {"critical": "critical", "warning": "medium", "unknown": "medium", "ok": "info", "acknowledged": "medium"}


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    incident, prefix = body, ""
    if "alerts" not in body and isinstance(body.get("incident"), dict):
        incident, prefix = body["incident"], "incident."
    if "alerts" not in incident:
        raise PayloadRejected("a BigPanda incident webhook has an 'alerts' list", prefix + "alerts")
    alerts = require_list(incident.get("alerts"), prefix + "alerts")
    incident_id = text(incident.get("id"))
    out = []
    for i, raw in enumerate(alerts):
        if not isinstance(raw, dict):
            raise PayloadRejected("each alert is a JSON object", f"{prefix}alerts[{i}]")
        out.append(_alert(raw, incident_id))
    return Normalized(alerts=out, change_events=[], delivery_id=None)


def _alert(raw: dict, incident_id: str | None) -> NormalizedAlert:
    labels = _tags(raw.get("tags"))
    status_text = (text(raw.get("status")) or "").lower()
    resolved = status_text == "ok" or raw.get("active") is False
    primary = _property_value(raw, labels, "primary_property")
    secondary = _property_value(raw, labels, "secondary_property")
    fingerprint = (
        text(raw.get("incident_key"))
        or text(raw.get("id"))
        or join_parts(primary, secondary)
    )
    title = text(raw.get("description")) or " ".join(p for p in (primary, secondary) if p) or f"BigPanda alert {fingerprint}"
    category, business_unit, tier = classification(labels)
    return NormalizedAlert(
        provider="bigpanda",
        provider_alert_id=text(raw.get("id")),
        fingerprint=fingerprint,
        title=title,
        description=text(raw.get("description")),
        severity=_SEVERITY.get(status_text, sev.DEFAULT),
        status="resolved" if resolved else "firing",
        acknowledged=status_text == "acknowledged",
        service=first_label(labels, ("service", "application")),
        environment=first_label(labels, ("environment", "env")),
        started_at=parse_time(raw.get("start")),
        ended_at=parse_time(raw.get("end")) if resolved else None,
        labels=labels,
        source_url=first_label(labels, ("link", "url")),
        priority=sev.priority(labels.get("priority")),
        group_key=incident_id,
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )


def _tags(tags: object) -> dict[str, str]:
    if isinstance(tags, list):
        out: dict[str, str] = {}
        for tag in tags:
            if isinstance(tag, dict):
                name = text(tag.get("name"))
                if name and name not in out:
                    value = tag.get("value")
                    out[name] = value if isinstance(value, str) else (text(value) or "")
        return out
    return str_labels(tags)


def _property_value(raw: dict, labels: dict[str, str], key: str) -> str | None:
    """The value of the tag that `primary_property`/`secondary_property` names."""
    name = text(raw.get(key))
    return (labels.get(name) or text(raw.get(name))) if name else None
