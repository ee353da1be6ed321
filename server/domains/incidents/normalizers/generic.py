"""Our own alert format (seed 000: the Alerting and Synthetics products, or any tool posting JSON).

One alert object, or `{"alerts": [...]}`, validated against `generic_alert.schema.json` (JSON
Schema 2020-12) so a sender gets the failing path (`alerts[0].title`) in the 422 answer.

- severity: the shared label vocabulary (critical/high/medium/low/info, warning, error, p1..p5,
  ...), unknown -> medium; a `priority` P1..P5 is used when severity is absent.
- status: firing (default), resolved, or acknowledged (= firing with acknowledged=True).
- fingerprint: `fingerprint` when given, else `title|service|environment`, so a resolve that
  repeats the title, service and environment closes the alert it resolves.
- delivery_id: the `Idempotency-Key` (or `X-Webhook-Id`) request header, when the sender sets one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from . import severity as sev
from .common import classification, header, join_parts, parse_time, str_labels, text
from .types import Normalized, NormalizedAlert, PayloadRejected

SCHEMA_PATH = Path(__file__).with_name("generic_alert.schema.json")


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def validate(body: object) -> None:
    """Raise PayloadRejected with the JSON path of the most relevant schema error."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(body))
    if error is None:
        return
    path = list(error.absolute_path)
    message = error.message
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        if missing:
            path.append(missing[0])
            message = f"'{missing[0]}' is required"
    raise PayloadRejected(message, format_path(path))


def format_path(parts: list) -> str:
    """['alerts', 0, 'title'] -> 'alerts[0].title'; [] -> '$'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    validate(body)
    items = body["alerts"] if isinstance(body, dict) and "alerts" in body else [body]
    delivery_id = text(header(headers, "Idempotency-Key")) or text(header(headers, "X-Webhook-Id"))
    return Normalized(alerts=[_alert(item) for item in items], change_events=[], delivery_id=delivery_id)


def _alert(item: dict) -> NormalizedAlert:
    title = item["title"].strip()
    service, environment = text(item.get("service")), text(item.get("environment"))
    labels = str_labels(item.get("labels"))
    product = text(item.get("sourceProduct"))
    if product:
        labels.setdefault("source_product", product)
    status_text = item.get("status") or "firing"
    resolved = status_text == "resolved"
    priority = sev.priority(item.get("priority"))
    severity = sev.from_label(item.get("severity"), None) or sev.from_priority(priority) or sev.DEFAULT
    category, business_unit, tier = classification(labels)
    return NormalizedAlert(
        provider="generic",
        provider_alert_id=text(item.get("id")),
        fingerprint=text(item.get("fingerprint")) or join_parts(title, service, environment),
        title=title,
        description=text(item.get("description")),
        severity=severity,
        status="resolved" if resolved else "firing",
        acknowledged=status_text == "acknowledged",
        service=service,
        environment=environment,
        started_at=parse_time(item.get("startedAt")),
        ended_at=parse_time(item.get("endedAt")) if resolved else None,
        labels=labels,
        source_url=text(item.get("url")),
        priority=priority,
        group_key=None,
        category=category,
        business_unit=business_unit,
        service_tier=tier,
    )
