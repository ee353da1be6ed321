"""Grafana webhook contact point: unified alerting (Grafana 8+) and the legacy dashboard alerts.

Unified alerting sends the Alertmanager message plus Grafana fields (`orgId`, `title`, `state`,
`message`, per-alert `silenceURL`/`dashboardURL`/`panelURL`/`values`); it is read by the shared
Alertmanager code. Grafana's own `DatasourceNoData`/`DatasourceError` alerts are titled by their
`rulename` label, since every such alert has the same alertname.

Legacy alerting (Grafana < 11) posts one rule state per delivery: `ruleId`, `ruleName`, `state`
(alerting/ok/no_data/paused/pending), `tags`, `evalMatches`. It is keyed on `orgId|ruleId`;
`paused` and `pending` carry nothing to act on.

Sources: https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/ ;
grafana/alerting receivers/webhook/v1/webhook.go, templates/template_data.go ; Grafana 7-10
legacy webhook notifier docs (docs/sources/alerting/old-alerting/notifications.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .alertmanager import normalize_group
from .common import (
    ENVIRONMENT_KEYS,
    SERVICE_KEYS,
    classification,
    first_label,
    join_parts,
    require_object,
    str_labels,
    text,
)
from .types import Normalized, NormalizedAlert, PayloadRejected

_DATASOURCE_ALERTS = frozenset({"DatasourceNoData", "DatasourceError"})
_LEGACY_KEYS = ("ruleId", "ruleName", "evalMatches")
_LEGACY_STATUS = {"alerting": "firing", "no_data": "firing", "ok": "resolved"}


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    if "alerts" in body:
        return normalize_group(
            body, "grafana", now, title_fn=_title, extra_urls=("panelURL", "dashboardURL")
        )
    if any(k in body for k in _LEGACY_KEYS):
        return _legacy(body)
    raise PayloadRejected("a Grafana webhook message has an 'alerts' list", "alerts")


def _title(labels: dict[str, str], annotations: dict[str, str]) -> str | None:
    name = labels.get("alertname")
    if name in _DATASOURCE_ALERTS:
        return labels.get("rulename") or name
    return name or labels.get("rulename") or annotations.get("summary")


def _legacy(body: dict) -> Normalized:
    state = text(body.get("state"))
    status = _LEGACY_STATUS.get((state or "").lower())
    if status is None:  # paused, pending, or no state: nothing to act on
        return Normalized(alerts=[], change_events=[], delivery_id=None)
    rule_id = body.get("ruleId")
    if rule_id is not None and (isinstance(rule_id, bool) or not isinstance(rule_id, (int, str))):
        raise PayloadRejected("ruleId is a number", "ruleId")
    raw_tags = body.get("tags")
    labels = str_labels(raw_tags)
    rule_name = text(body.get("ruleName"))
    title = rule_name or _strip_state_prefix(text(body.get("title"))) or "Grafana alert"
    org_id = body.get("orgId")
    fingerprint = join_parts(org_id, rule_id) if org_id is not None else join_parts(rule_id if rule_id is not None else title)
    default = "info" if status == "resolved" else sev.DEFAULT
    category, business_unit, tier = classification(labels)
    alert = NormalizedAlert(
        provider="grafana",
        provider_alert_id=text(rule_id),
        fingerprint=fingerprint,
        title=title,
        description=text(body.get("message")),
        severity=sev.from_label(labels.get("severity"), default),
        status=status,
        acknowledged=False,
        service=first_label(labels, SERVICE_KEYS),
        environment=first_label(labels, ENVIRONMENT_KEYS),
        started_at=None,  # the legacy payload carries no time
        ended_at=None,
        labels=labels,
        source_url=text(body.get("ruleUrl")),
        priority=sev.priority(labels.get("priority")),
        group_key=None,
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )
    return Normalized(alerts=[alert], change_events=[], delivery_id=None)


def _strip_state_prefix(title: str | None) -> str | None:
    """`[Alerting] Panel Title alert` -> `Panel Title alert`."""
    if title and title.startswith("[") and "] " in title:
        return title.split("] ", 1)[1] or None
    return title
