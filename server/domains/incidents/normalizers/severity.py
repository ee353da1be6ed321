"""Severity and priority vocabularies, shared by the normalizers.

Every provider names severity its own way; each normalizer picks its source field and passes it
through one of these tables. Lookups are case-insensitive; anything missing or unrecognised falls
back to the caller's default (usually `medium`, Splunk's and the README's documented default),
never to an error.
"""

from __future__ import annotations

import re

DEFAULT = "medium"

# Label values used by Prometheus/Grafana rules and by our own generic format.
LABEL_SEVERITY: dict[str, str] = {
    **dict.fromkeys(("critical", "crit", "fatal", "emergency", "emerg", "page", "p1", "sev1", "sev-1"), "critical"),
    **dict.fromkeys(("high", "error", "err", "major", "p2", "sev2", "sev-2"), "high"),
    **dict.fromkeys(("warning", "warn", "medium", "average", "moderate", "p3", "sev3", "sev-3"), "medium"),
    **dict.fromkeys(("low", "minor", "p4", "sev4", "sev-4"), "low"),
    **dict.fromkeys(("info", "informational", "information", "notice", "none", "ok", "debug", "p5", "sev5", "sev-5"), "info"),
}

# P1..P5, the priority scale of Datadog, PagerDuty, Opsgenie and our own format.
PRIORITY_SEVERITY: dict[str, str] = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low", "P5": "info"}

_PRIORITY_RE = re.compile(r"^\s*[Pp]([1-5])\s*$")


def lookup(table: dict[str, str], value: object, default: str | None = DEFAULT) -> str | None:
    """Map `value` through `table` case-insensitively; `default` when absent or unknown."""
    if value is None:
        return default
    key = value.strip().lower() if isinstance(value, str) else str(value).lower()
    return table.get(key, default)


def from_label(value: object, default: str | None = DEFAULT) -> str | None:
    """Severity from a `severity` label (critical/warning/info/p1...)."""
    return lookup(LABEL_SEVERITY, value, default)


def priority(value: object) -> str | None:
    """`P1`..`P5` when `value` states one (any case, surrounding blanks), else None."""
    if not isinstance(value, str):
        return None
    m = _PRIORITY_RE.match(value)
    return f"P{m.group(1)}" if m else None


def from_priority(value: object) -> str | None:
    """Severity from a P1..P5 priority; None when the value is not such a priority."""
    p = priority(value)
    return PRIORITY_SEVERITY[p] if p else None
