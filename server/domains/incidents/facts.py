"""What the incidents domain keeps about an incident for correlation, and the small value rules
(severity order, priority) shared by ingestion and the incident mutations.

`Incident.correlation_facts` stores the parts of `correlation.IncidentFacts` that are not columns
already: when each service first and last alerted, when each distinct title (as its token set)
last alerted, and the
environment the engine compares. Times are epoch seconds (cheap to parse on the hot path):

    {"v": 1, "env": "prod", "services": {"checkout": [1767225600.0, 1767225660.0]},  # first, last
     "titles": [[["checkout", "latency"], 1767225600.0], ...]}

Fingerprints, group keys and detached fingerprints are the incident's array columns, capped at
`MAX_KEYS` each, most recent last (ingestion finds the incidents holding a key by the latest
alerts of that key, not by these arrays: see ingest._latest_alerts_of).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from server.domains.incidents.correlation import MAX_TITLE_SETS, AlertFacts, IncidentFacts, Seen, title_tokens
from server.domains.incidents.models import Severity

FACTS_VERSION = 1
MAX_KEYS = 200  # fingerprints / group keys remembered per incident (a storm must not grow rows without bound)

SEVERITY_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}
PRIORITY_BY_SEVERITY = {Severity.CRITICAL: "P1", Severity.HIGH: "P2", Severity.MEDIUM: "P3", Severity.LOW: "P4",
                        Severity.INFO: "P5"}
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


def severity_of(value: str | Severity | None) -> Severity:
    """A normalizer's severity string as the enum; anything unknown is `medium` (never fail ingest)."""
    if isinstance(value, Severity):
        return value
    try:
        return Severity((value or "").lower())
    except ValueError:
        return Severity.MEDIUM


def max_severity(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def priority_for(severity: Severity, given: str | None = None) -> str:
    """The payload's priority when it states a valid one, else derived from the severity."""
    if given:
        p = given.strip().upper()
        if p in PRIORITIES:
            return p
    return PRIORITY_BY_SEVERITY[severity]


def append_capped(values: list[str], new: str | None, cap: int = MAX_KEYS) -> list[str]:
    """`values` with `new` added (moved to the end when present), at most `cap` long."""
    if not new:
        return values
    if values and values[-1] == new:
        return values
    out = [v for v in values if v != new]
    out.append(new)
    return out[-cap:]


def _ts(at: datetime) -> float:
    return at.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _seen(value: Any) -> Seen:
    if isinstance(value, (int, float)):
        return Seen(_dt(value), _dt(value))
    return Seen(_dt(value[0]), _dt(value[1]))


def facts_to_json(facts: IncidentFacts) -> dict[str, Any]:
    return {
        "v": FACTS_VERSION,
        "env": facts.environment,
        "services": {s: [_ts(seen.first), _ts(seen.last)] for s, seen in facts.services.items()},
        "titles": [[sorted(tokens), _ts(at)] for tokens, at in facts.titles.items()],
    }


def facts_from_row(*, id: Any, started_at: datetime, last_alert_at: datetime, environment: str | None,
                   title: str, affected_services: list[str] | None, fingerprints: list[str] | None,
                   group_keys: list[str] | None, detached_fingerprints: list[str] | None,
                   correlation_facts: dict | None) -> IncidentFacts:
    """The engine's view of a stored incident. Rows without stored facts (or of another version)
    fall back to their columns: every affected service and the title, dated from `started_at` to
    `last_alert_at`."""
    stored = correlation_facts or {}
    if stored.get("v") == FACTS_VERSION:
        services = {s: _seen(v) for s, v in stored.get("services", {}).items()}
        titles = {frozenset(tokens): _dt(ts) for tokens, ts in stored.get("titles", [])}
        env = stored.get("env")
    else:
        services = dict.fromkeys(affected_services or [], Seen(started_at, last_alert_at))
        tokens = title_tokens(title)
        titles = {tokens: last_alert_at} if tokens else {}
        env = environment
    return IncidentFacts(
        id=id, started_at=started_at, last_alert_at=last_alert_at, environment=env, services=services,
        titles=titles, fingerprints=frozenset(fingerprints or ()), group_keys=frozenset(group_keys or ()),
        detached_fingerprints=frozenset(detached_fingerprints or ()),
    )


def facts_from_alerts(incident_id: Any, alerts: list[AlertFacts], detached: list[str] | None = None) -> IncidentFacts | None:
    """Rebuild from an incident's alerts (after a merge, move or unlink); None without alerts."""
    if not alerts:
        return None
    return IncidentFacts.from_alerts(incident_id, sorted(alerts, key=lambda a: a.at), detached or ())


def merge_facts(target: IncidentFacts, source: IncidentFacts) -> IncidentFacts:
    """The facts of `target` after `source`'s alerts joined it (a merge)."""
    services = dict(target.services)
    for name, seen in source.services.items():
        mine = services.get(name)
        services[name] = seen if mine is None else Seen(min(mine.first, seen.first), max(mine.last, seen.last))
    titles = dict(target.titles)
    for tokens, at in source.titles.items():
        if titles.get(tokens, at) <= at:
            titles[tokens] = at
    titles = dict(sorted(titles.items(), key=lambda item: item[1])[-MAX_TITLE_SETS:])
    return IncidentFacts(
        id=target.id, started_at=min(target.started_at, source.started_at),
        last_alert_at=max(target.last_alert_at, source.last_alert_at),
        environment=target.environment or source.environment, services=services, titles=titles,
        fingerprints=target.fingerprints | source.fingerprints, group_keys=target.group_keys | source.group_keys,
        detached_fingerprints=target.detached_fingerprints,
    )


def alert_facts(*, fingerprint: str, title: str, service: str | None, environment: str | None,
                group_key: str | None, started_at: datetime, last_seen_at: datetime | None) -> list[AlertFacts]:
    """A stored alert as the engine's observations: when it started and, if later, when last seen."""
    first = AlertFacts(fingerprint=fingerprint, title=title, at=started_at, service=service, environment=environment,
                       group_key=group_key)
    if last_seen_at is None or last_seen_at <= started_at:
        return [first]
    return [first, AlertFacts(fingerprint=fingerprint, title=title, at=last_seen_at, service=service,
                              environment=environment, group_key=group_key)]
