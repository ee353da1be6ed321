"""Datadog Webhooks integration: one monitor notification per delivery.

Datadog posts the JSON template the user saved with `$VARIABLES` substituted as text, so the keys
are the user's choice. Fields are found by folded key name (`alert_id`, `alertId`, `ALERT_ID`,
nested `data.monitorId`...) among the names common templates use (Datadog's default payload,
keephq, Squadcast, SIGNL4, PagerDuty-style ones). What the template leaves out is recovered from
the event title Datadog always renders: `[P2] [Triggered on {env:prod,service:api}] Monitor name`.

- status: `$ALERT_TRANSITION` (Recovered -> resolved, everything else firing); without it the
  title's transition, then `$ALERT_TYPE` success.
- severity: `$ALERT_PRIORITY` P1..P5; else the transition (Triggered/Re-Triggered/Renotify -> high,
  Warn/No Data -> medium, Recovered -> info); else `$ALERT_TYPE` (error -> high, warning ->
  medium, success/info -> info); else medium.
- fingerprint: `$ALERT_ID|$ALERT_SCOPE` (one alert per monitor group). Without the scope key the
  title's `{scope}` is used, rewritten to `$ALERT_SCOPE`'s `a:b, c:d` form so both templates agree.
  Without `$ALERT_ID` the monitor id is read from the `/monitors/<id>` link in `$EVENT_MSG`;
  without any id, `$AGGREG_KEY`; last, the bare title and scope.
- service/environment: `service:`/`env:` in the scope, then `$TAGS`, then the title's scope.

Source: https://docs.datadoghq.com/integrations/webhooks/ (variables, default payload).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from . import severity as sev
from .common import KeyIndex, classification, join_parts, parse_tags, parse_time, require_object
from .types import Normalized, NormalizedAlert, PayloadRejected

# `[P1] `, `[Triggered on {a:b,c:d}] `, `[Re-Triggered] ` ... at the start of a title.
_PREFIX_RE = re.compile(r"^\s*\[(?P<inner>[^\[\]]*?)\]\s*")
_TRANSITION_RE = re.compile(
    r"^(?P<tr>(?:re-)?(?:triggered|recovered|warn|no data|renotify))(?:\s+on\s+\{(?P<scope>[^}]*)\})?$",
    re.IGNORECASE,
)
_MONITOR_LINK_RE = re.compile(r"/monitors/(\d+)")

_TRANSITION_SEVERITY = {
    "triggered": "high",
    "re-triggered": "high",
    "renotify": "high",
    "warn": "medium",
    "re-warn": "medium",
    "no data": "medium",
    "re-no data": "medium",
    "recovered": "info",
}
_TYPE_SEVERITY = {"error": "high", "warning": "medium", "success": "info", "info": "info"}

# Folded key names, most specific first.
K_EVENT_ID = ("id", "eventid")
K_ALERT_ID = ("alertid", "monitorid")
K_SCOPE = ("alertscope", "scope", "monitorscope")
K_TRANSITION = ("alerttransition", "transition")
K_TYPE = ("alerttype",)
K_PRIORITY = ("alertpriority",)
K_TITLE = ("title", "eventtitle", "alerttitle", "monitorname", "name")
K_MESSAGE = ("body", "eventmsg", "textonlymsg", "message", "eventmessage", "msg", "text", "description")
K_TAGS = ("tags", "eventtags")
K_LINK = ("link", "url", "eventurl", "eventlink")
K_DATE = ("date", "lastupdated", "dateposix", "lastupdatedposix", "timestamp")
K_HOST = ("hostname", "host")
K_AGGREG = ("aggregkey", "aggregationkey")


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    idx = KeyIndex(body)

    raw_title = idx.text(*K_TITLE)
    name, title_transition, title_scope, title_priority = _parse_title(raw_title)
    message = idx.text(*K_MESSAGE)
    alert_id = idx.text(*K_ALERT_ID)
    if alert_id is None and message:
        m = _MONITOR_LINK_RE.search(message)
        alert_id = m.group(1) if m else None
    if raw_title is None and alert_id is None:
        raise PayloadRejected("a Datadog notification has a title ($EVENT_TITLE) or an alert id ($ALERT_ID)", "title")

    scope_present = idx.has(*K_SCOPE)
    scope = idx.text(*K_SCOPE) if scope_present else (_scope_text(title_scope) if title_scope else None)
    scope_tags = parse_tags(scope)
    tags = parse_tags(idx.text(*K_TAGS))
    title_tags = parse_tags(title_scope) if title_scope else {}

    transition = idx.text(*K_TRANSITION) or title_transition
    alert_type = (idx.text(*K_TYPE) or "").lower()
    status = _status(transition, alert_type)

    priority = sev.priority(idx.text(*K_PRIORITY)) or sev.priority(idx.text("priority")) or title_priority
    severity = (
        sev.from_priority(priority)
        or _TRANSITION_SEVERITY.get((transition or "").lower())
        or _TYPE_SEVERITY.get(alert_type)
        or sev.DEFAULT
    )

    labels = {**tags, **title_tags, **scope_tags}
    host = idx.text(*K_HOST)
    if host and "host" not in labels:
        labels["host"] = host
    service = _pick("service", scope_tags, tags, title_tags)
    environment = _pick("env", scope_tags, tags, title_tags) or _pick("environment", scope_tags, tags, title_tags)

    if alert_id is not None:
        fingerprint = join_parts(alert_id, scope)
    else:
        aggreg = idx.text(*K_AGGREG)
        fingerprint = join_parts("aggreg", aggreg) if aggreg else join_parts(name, scope)

    when = parse_time(idx.raw(*K_DATE))
    category, business_unit, tier = classification(labels)
    alert = NormalizedAlert(
        provider="datadog",
        provider_alert_id=alert_id,
        fingerprint=fingerprint,
        title=name or f"Datadog monitor {alert_id}",
        description=_strip_markdown_fence(message),
        severity=severity,
        status=status,
        acknowledged=False,
        service=service,
        environment=environment,
        started_at=when if status == "firing" else None,
        ended_at=when if status == "resolved" else None,
        labels=labels,
        source_url=idx.text(*K_LINK),
        priority=priority,
        group_key=idx.text(*K_AGGREG),
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )
    return Normalized(alerts=[alert], change_events=[], delivery_id=idx.text(*K_EVENT_ID))


def _parse_title(title: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    """(monitor name, transition, scope, priority) from a rendered event title."""
    if not title:
        return None, None, None, None
    transition = scope = priority = None
    rest = title
    while True:
        m = _PREFIX_RE.match(rest)
        if not m:
            break
        inner = m.group("inner").strip()
        p = sev.priority(inner)
        t = None if p else _TRANSITION_RE.match(inner)
        if p:
            priority = priority or p
        elif t:
            transition = transition or t.group("tr")
            scope = scope or t.group("scope")
        else:
            break  # a bracket that is part of the monitor's own name
        rest = rest[m.end():]
    return (rest.strip() or title), transition, scope, priority


def _scope_text(title_scope: str) -> str:
    """`env:prod,service:api` (title form) -> `env:prod, service:api` ($ALERT_SCOPE form)."""
    return ", ".join(part.strip() for part in title_scope.split(",") if part.strip())


def _status(transition: str | None, alert_type: str) -> str:
    if transition:
        return "resolved" if "recover" in transition.lower() else "firing"
    return "resolved" if alert_type == "success" else "firing"


def _pick(key: str, *sources: dict[str, str]) -> str | None:
    for source in sources:
        value = source.get(key)
        if value:
            return value
    return None


def _strip_markdown_fence(message: str | None) -> str | None:
    """Datadog wraps `$EVENT_MSG` in `%%%` markdown fences."""
    if not message:
        return None
    message = message.strip()
    if message.startswith("%%%"):
        message = message[3:]
    if message.endswith("%%%"):
        message = message[:-3]
    return message.strip() or None
