"""Prometheus Alertmanager `webhook_config` (payload version 4).

One alert per `alerts[i]`, keyed on its `fingerprint` (the label-set hash Alertmanager computes;
equal on the firing and the resolved notification). Grafana's unified alerting sends the same
message with extra fields, so `normalize_group` is shared with grafana.py.

Source: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config ;
prometheus/alertmanager notify/webhook/webhook.go, template/template.go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urljoin

from . import severity as sev
from .common import (
    ENVIRONMENT_KEYS,
    SERVICE_KEYS,
    classification,
    first_label,
    labels_fingerprint,
    now_utc,
    parse_time,
    require_list,
    require_object,
    str_labels,
    text,
)
from .types import Normalized, NormalizedAlert, PayloadRejected

TitleFn = Callable[[dict[str, str], dict[str, str]], str | None]


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    if "alerts" not in body:
        raise PayloadRejected("an Alertmanager webhook message has an 'alerts' list", "alerts")
    return normalize_group(body, "alertmanager", now)


def default_title(labels: dict[str, str], annotations: dict[str, str]) -> str | None:
    return labels.get("alertname") or annotations.get("summary")


def normalize_group(
    body: dict,
    provider: str,
    now: datetime | None,
    *,
    title_fn: TitleFn = default_title,
    extra_urls: tuple[str, ...] = (),
) -> Normalized:
    """The Alertmanager-shaped message (`alerts`, `groupKey`, `truncatedAlerts`, ...)."""
    alerts = require_list(body.get("alerts"), "alerts")
    group_key = text(body.get("groupKey"))
    external_url = text(body.get("externalURL"))
    group_status = body.get("status")
    truncated = body.get("truncatedAlerts")
    out: list[NormalizedAlert] = []
    for i, raw in enumerate(alerts):
        if not isinstance(raw, dict):
            raise PayloadRejected("each alert is a JSON object", f"alerts[{i}]")
        out.append(_alert(raw, i, provider, group_key, external_url, group_status, now, title_fn, extra_urls))
    return Normalized(
        alerts=out,
        change_events=[],
        delivery_id=None,  # Alertmanager has no delivery id; duplicates are recognised by content
        truncated_alerts=truncated if isinstance(truncated, int) and truncated > 0 else 0,
    )


def _alert(
    raw: dict,
    i: int,
    provider: str,
    group_key: str | None,
    external_url: str | None,
    group_status: object,
    now: datetime | None,
    title_fn: TitleFn,
    extra_urls: tuple[str, ...],
) -> NormalizedAlert:
    raw_labels = raw.get("labels")
    if raw_labels is not None and not isinstance(raw_labels, dict):
        raise PayloadRejected("labels is an object of strings", f"alerts[{i}].labels")
    labels = str_labels(raw_labels)
    annotations = str_labels(raw.get("annotations"))

    ends_at = parse_time(raw.get("endsAt"))
    status = _status(raw.get("status"), group_status, ends_at, now)

    fingerprint = text(raw.get("fingerprint")) or labels_fingerprint(labels)
    title = title_fn(labels, annotations) or f"{provider} alert {fingerprint}"
    category, business_unit, tier = classification(labels)
    return NormalizedAlert(
        provider=provider,
        provider_alert_id=text(raw.get("fingerprint")),
        fingerprint=fingerprint,
        title=title,
        description=_description(annotations),
        severity=sev.from_label(labels.get("severity")),
        status=status,
        acknowledged=False,
        service=first_label(labels, SERVICE_KEYS),
        environment=first_label(labels, ENVIRONMENT_KEYS),
        started_at=parse_time(raw.get("startsAt")),
        ended_at=ends_at if status == "resolved" else None,
        labels=labels,
        source_url=_source_url(raw, external_url, extra_urls),
        priority=sev.priority(labels.get("priority")) or sev.priority(labels.get("severity")),
        group_key=group_key,
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )


def _status(value: object, group_status: object, ends_at: datetime | None, now: datetime | None) -> str:
    """The alert's own status; without one, a past endsAt means resolved (Alertmanager semantics)."""
    if value == "firing" or value == "resolved":
        return value
    if isinstance(value, str) and value.strip().lower() in ("firing", "resolved"):
        return value.strip().lower()
    if ends_at is not None:
        return "resolved" if ends_at <= (now or now_utc()) else "firing"
    return group_status if group_status in ("firing", "resolved") else "firing"


def _description(annotations: dict[str, str]) -> str | None:
    """`summary` and `description` annotations (Prometheus convention), both when they differ."""
    summary = (annotations.get("summary") or "").strip()
    description = (annotations.get("description") or annotations.get("message") or "").strip()
    if summary and description and summary != description:
        return f"{summary}\n\n{description}"
    return summary or description or None


def _source_url(raw: dict, external_url: str | None, extra_urls: tuple[str, ...]) -> str | None:
    for key in ("generatorURL", *extra_urls):
        url = text(raw.get(key))
        if url:
            if "://" not in url and external_url:
                # Grafana test notifications carry a relative generatorURL.
                return urljoin(external_url.rstrip("/") + "/", url.lstrip("/"))
            return url
    return external_url
