"""Plain values that the normalizers return.

No database, no HTTP: the ingestion service turns these into rows, the tests compare them with the
fixtures' expectations, and the benchmark times their construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SEVERITIES = ("critical", "high", "medium", "low", "info")
ALERT_STATUSES = ("firing", "resolved")
CHANGE_RESULTS = ("queued", "started", "success", "failure", "unstable", "aborted", "not_built")


@dataclass(slots=True)
class NormalizedAlert:
    """One alert of a delivery, in the shape every provider is reduced to."""

    provider: str
    provider_alert_id: str | None  # the provider's own id for this alert, when it has one
    fingerprint: str  # stable across firing/resolved of the same alert; parts joined with "|"
    title: str
    description: str | None
    severity: str  # one of SEVERITIES
    status: str  # firing | resolved
    acknowledged: bool
    service: str | None
    environment: str | None
    started_at: datetime | None  # tz-aware UTC
    ended_at: datetime | None  # tz-aware UTC, only for resolved alerts
    labels: dict[str, str]
    source_url: str | None
    priority: str | None  # P1..P5 when the payload states one
    group_key: str | None  # provider grouping hint, for correlation
    category: str | None = None
    business_unit: str | None = None
    service_tier: str | None = None


@dataclass(slots=True)
class NormalizedChange:
    """One deployment (a CI build), updated by every later phase of the same build."""

    provider: str
    fingerprint: str
    title: str
    service: str | None
    environment: str | None
    version: str | None
    commit: str | None
    branch: str | None
    result: str  # one of CHANGE_RESULTS
    phase: str | None
    occurred_at: datetime | None
    url: str | None
    labels: dict[str, str]


@dataclass(slots=True)
class Normalized:
    """Everything one delivery carries."""

    alerts: list[NormalizedAlert] = field(default_factory=list)
    change_events: list[NormalizedChange] = field(default_factory=list)
    delivery_id: str | None = None  # provider delivery/event id, for duplicate detection
    truncated_alerts: int = 0  # alerts the sender left out (Alertmanager/Grafana truncatedAlerts)


class PayloadRejected(Exception):
    """The body is not in the provider's format: the REST shim answers 422 with `path`.

    `path` names the failing place in the body (`alerts[0].title`, `event.data`), `$` for the
    body itself.
    """

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.message} (at {self.path})" if self.path else self.message
