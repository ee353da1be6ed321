"""Splunk webhook alert action: one alert per delivery (the first result row).

The payload is `{result, sid, results_link, search_name, owner, app}`; every result value is a
string (a list for multivalue fields). `sid` changes on every scheduled run, so it is the
delivery id, not the alert key: the alert is keyed on the saved search,
`search_name|app|owner`. Splunk has no resolve notion: status is always firing.

Severity comes from the result row when the search emits one: `severity`/`urgency` text
(Enterprise Security: critical/high/medium/low/informational), else `log_level`, else a numeric
`severity` 1-6; without any, medium (Splunk's default alert severity 3). service from
`result.service`, environment from `result.env`/`result.environment`.

Source: https://help.splunk.com/splunk-enterprise/alert-and-respond/alerting-manual/10.0/configure-alert-actions/use-a-webhook-alert-action
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .common import classification, join_parts, parse_time, require_object, str_labels, text
from .types import Normalized, NormalizedAlert, PayloadRejected

_TEXT_SEVERITY = {
    **dict.fromkeys(("critical", "fatal", "emergency", "alert"), "critical"),
    **dict.fromkeys(("high", "error", "err"), "high"),
    **dict.fromkeys(("medium", "warn", "warning"), "medium"),
    "low": "low",
    **dict.fromkeys(("informational", "info", "information", "debug", "notice"), "info"),
}
# Splunk alert severities 1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal.
_NUMERIC_SEVERITY = {"1": "info", "2": "info", "3": "medium", "4": "high", "5": "critical", "6": "critical"}
_SCHEDULED_AT_RE = re.compile(r"_at_(\d{9,11})_")


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    result = body.get("result")
    if result is None:
        result = {}
    elif not isinstance(result, dict):
        raise PayloadRejected("result is the first result row, a JSON object", "result")
    sid = text(body.get("sid"))
    search_name = text(body.get("search_name"))
    if sid is None and search_name is None:
        raise PayloadRejected("a Splunk webhook names its search (search_name) or run (sid)", "search_name")

    labels = str_labels(result)
    app, owner = text(body.get("app")), text(body.get("owner"))
    title = search_name or f"Splunk search {sid}"
    category, business_unit, tier = classification(labels)
    alert = NormalizedAlert(
        provider="splunk",
        provider_alert_id=None,  # sid names the run, not the alert
        fingerprint=join_parts(title, app, owner),
        title=title,
        description=text(labels.get("description")) or text(labels.get("message")),
        severity=_severity(labels),
        status="firing",
        acknowledged=False,
        service=text(labels.get("service")),
        environment=text(labels.get("env")) or text(labels.get("environment")),
        started_at=parse_time(labels.get("_time")) or _scheduled_at(sid),
        ended_at=None,
        labels=labels,
        source_url=text(body.get("results_link")),
        priority=sev.priority(labels.get("priority")),
        group_key=None,
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )
    return Normalized(alerts=[alert], change_events=[], delivery_id=sid)


def _severity(row: dict[str, str]) -> str:
    for key in ("severity", "urgency"):
        value = (row.get(key) or "").strip().lower()
        if value in _TEXT_SEVERITY:
            return _TEXT_SEVERITY[value]
    level = (row.get("log_level") or "").strip().lower()
    if level in _TEXT_SEVERITY:
        return _TEXT_SEVERITY[level]
    return _NUMERIC_SEVERITY.get((row.get("severity") or "").strip(), sev.DEFAULT)


def _scheduled_at(sid: str | None) -> datetime | None:
    """Scheduler sids embed the scheduled time: `scheduler__owner__app__RMD5..._at_<epoch>_<n>`."""
    m = _SCHEDULED_AT_RE.search(sid or "")
    return parse_time(int(m.group(1))) if m else None
