"""Dynatrace problem notifications (custom integration webhook): one problem per delivery.

The body is the user's template filled from placeholders: `{PID}`, `{ProblemID}`, `{State}`,
`{ProblemTitle}`, `{ProblemSeverity}`, `{ProblemImpact}`, `{ProblemURL}`, `{Tags}`,
`{ImpactedEntities}` (JSON array), `{ProblemDetailsJSON}`/`{ProblemDetailsJSONv2}` (JSON objects),
`{ProblemDetailsText}`. Keys are matched case- and punctuation-insensitively because templates
rename them (`Problem URL`, `ProblemDetails`).

- status: State OPEN -> firing; RESOLVED, CLOSED, MERGED -> resolved (a merged problem lives on
  in the problem it was merged into).
- severity: AVAILABILITY -> critical, ERROR -> high, PERFORMANCE/RESOURCE_CONTENTION/CUSTOM_ALERT
  -> medium, MONITORING_UNAVAILABLE -> low, INFO -> info, else medium.
- fingerprint: `PID` (the internal problem id; `ProblemID` is the display id `P-...`, used when a
  template has no PID). group_key is the PID too, so alerts of one problem correlate.
- service: the first impacted entity of type SERVICE; environment: an `environment:`/`env:` tag.

Sources: https://docs.dynatrace.com/docs/analyze-explore-automate/notifications-and-alerting/problem-notifications/webhook-integration ;
https://docs.dynatrace.com/docs/dynatrace-api/environment-api/problems/problems/get-details
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .common import KeyIndex, classification, parse_tags, parse_time, require_object, text
from .types import Normalized, NormalizedAlert, PayloadRejected

_SEVERITY = {
    "availability": "critical",
    "error": "high",
    "performance": "medium",
    "resource_contention": "medium",
    "custom_alert": "medium",
    "monitoring_unavailable": "low",
    "info": "info",
}
_STATUS = {"open": "firing", "resolved": "resolved", "closed": "resolved", "merged": "resolved"}


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    idx = KeyIndex(body)
    pid = idx.text("pid")
    problem_id = idx.text("problemid")
    if pid is None and problem_id is None:
        raise PayloadRejected("a Dynatrace problem notification carries {PID} or {ProblemID}", "PID")

    details = _object(idx.raw("problemdetailsjson", "problemdetailsjsonv2"))
    status = _STATUS.get((idx.text("state", "problemstatus", "status") or "").lower(), "firing")
    severity_text = idx.text("problemseverity", "severitylevel") or text(details.get("severityLevel"))
    labels = _tags(idx.raw("tags"), details)
    for key, value in (("problem_impact", idx.text("problemimpact")), ("problem_severity", severity_text)):
        if value and key not in labels:
            labels[key] = value

    category, business_unit, tier = classification(labels)
    start = parse_time(details.get("startTime"))
    end = parse_time(details.get("endTime"))
    fingerprint = pid or problem_id
    alert = NormalizedAlert(
        provider="dynatrace",
        provider_alert_id=problem_id or pid,
        fingerprint=fingerprint,
        title=idx.text("problemtitle", "title") or f"Dynatrace problem {problem_id or pid}",
        description=idx.text("problemdetailstext", "problemdetails", "problemdetailsmarkdown"),
        severity=_SEVERITY.get((severity_text or "").lower(), sev.DEFAULT),
        status=status,
        acknowledged=False,
        service=_service(idx.raw("impactedentities")),
        environment=labels.get("environment") or labels.get("env") or None,
        started_at=start,
        ended_at=end if status == "resolved" else None,
        labels=labels,
        source_url=idx.text("problemurl", "url"),
        priority=None,
        group_key=fingerprint,
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )
    return Normalized(alerts=[alert], change_events=[], delivery_id=None)


def _object(value: object) -> dict:
    """A JSON placeholder the template may have quoted: accept the object or its JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _service(value: object) -> str | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list):
        return None
    for entity in value:
        if isinstance(entity, dict) and str(entity.get("type", "")).upper() == "SERVICE":
            name = text(entity.get("name"))
            if name:
                return name
    return None


def _tags(tags: object, details: dict) -> dict[str, str]:
    """`{Tags}` ("k:v, [Context]k2:v2"); without it, the details' tag objects."""
    labels = parse_tags(tags)
    if labels:
        return labels
    for key in ("tagsOfAffectedEntities", "entityTags"):
        items = details.get(key)
        if isinstance(items, list):
            for tag in items:
                if isinstance(tag, dict) and text(tag.get("key")):
                    labels.setdefault(str(tag["key"]).strip(), text(tag.get("value")) or "")
    return labels
