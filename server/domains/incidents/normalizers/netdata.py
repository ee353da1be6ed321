"""Netdata Cloud webhook integration: alert, reachability and test-token notifications.

- Alert notification (`alert`, `severity` warning/critical/clear, `chart`, `space`, `Rooms`, ...):
  keyed on `alert|chart|space` (the schema has no node, service or environment field, so those
  stay null); `clear` is the recovery -> resolved, severity info. Older docs named the fields
  `alarm`/`alarm_url`/`rooms`; both spellings are read.
- Reachability notification (`host`, `status.reachable`, `severity` critical/info, `url`):
  keyed on `host|reachability`, titled `Node reachability: <host>`, resolved when reachable.
- The token message Netdata sends to prove ownership of the endpoint (`message`, `title`,
  `token`) carries nothing to act on.

Severity: critical -> critical, warning -> medium, clear/info -> info, anything else medium.

Source: https://learn.netdata.cloud/docs/alerting/notifications/centralized-cloud-notifications/webhook ;
netdata/netdata integrations/cloud-notifications/metadata.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .common import join_parts, parse_time, require_object, text
from .types import Normalized, NormalizedAlert, PayloadRejected

_SEVERITY = {"critical": "critical", "warning": "medium", "clear": "info", "info": "info"}


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    if "alert" in body or "alarm" in body:
        return Normalized(alerts=[_alert(body)], change_events=[], delivery_id=None)
    if isinstance(body.get("status"), dict) and "host" in body:
        return Normalized(alerts=[_reachability(body)], change_events=[], delivery_id=None)
    if "token" in body:
        return Normalized(alerts=[], change_events=[], delivery_id=None)  # endpoint ownership check
    raise PayloadRejected("a Netdata alert notification has an 'alert' field", "alert")


def _alert(body: dict) -> NormalizedAlert:
    key = "alert" if "alert" in body else "alarm"
    name = text(body.get(key))
    if name is None:
        raise PayloadRejected("the alert name is a non-empty string", key)
    severity_text = (text(body.get("severity")) or "").lower()
    resolved = severity_text == "clear"
    when = parse_time(body.get("date"))
    labels = {
        k: v
        for k, v in (
            ("chart", text(body.get("chart"))),
            ("context", text(body.get("context"))),
            ("family", text(body.get("family"))),
            ("class", text(body.get("class"))),
            ("space", text(body.get("space"))),
            ("rooms", _rooms(body.get("Rooms", body.get("rooms")))),
            ("severity", severity_text or None),
        )
        if v
    }
    return NormalizedAlert(
        provider="netdata",
        provider_alert_id=None,
        fingerprint=join_parts(name, text(body.get("chart")), text(body.get("space"))),
        title=name,
        description=_description(text(body.get("message")), text(body.get("info"))),
        severity=_SEVERITY.get(severity_text, sev.DEFAULT),
        status="resolved" if resolved else "firing",
        acknowledged=False,
        service=None,
        environment=None,
        started_at=None if resolved else when,
        ended_at=when if resolved else None,
        labels=labels,
        source_url=text(body.get("alert_url")) or text(body.get("alarm_url")),
        priority=None,
        group_key=None,
    )


def _reachability(body: dict) -> NormalizedAlert:
    host = text(body.get("host"))
    if host is None:
        raise PayloadRejected("a reachability notification names its host", "host")
    status = body["status"]
    reachable = status.get("reachable")
    if not isinstance(reachable, bool):
        reachable = (text(status.get("text")) or "").lower() == "reachable"
    severity_text = (text(body.get("severity")) or "").lower()
    default = "info" if reachable else "critical"
    return NormalizedAlert(
        provider="netdata",
        provider_alert_id=None,
        fingerprint=join_parts(host, "reachability"),
        title=f"Node reachability: {host}",
        description=text(body.get("message")),
        severity=_SEVERITY.get(severity_text, default),
        status="resolved" if reachable else "firing",
        acknowledged=False,
        service=None,
        environment=None,
        started_at=None,
        ended_at=None,
        labels={"host": host, "reachability": "reachable" if reachable else "unreachable"},
        source_url=text(body.get("url")),
        priority=None,
        group_key=None,
    )


def _rooms(value: object) -> str | None:
    """Room names: `Rooms` maps name -> URL (current docs) or is a list of {name, url}."""
    if isinstance(value, dict):
        names = [str(k) for k in value]
    elif isinstance(value, list):
        names = [text(r.get("name")) or "" for r in value if isinstance(r, dict)]
    else:
        return None
    return ",".join(n for n in names if n) or None


def _description(message: str | None, info: str | None) -> str | None:
    if message and info and info != message:
        return f"{message}\n\n{info}"
    return message or info
