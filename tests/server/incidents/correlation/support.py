"""Small builders for correlation tests: times as minutes after T0, facts with defaults."""

from __future__ import annotations

import itertools
import string
from datetime import datetime, timedelta, timezone

from server.domains.incidents.correlation import AlertFacts, CooccurrenceModel, IncidentFacts

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=timezone.utc)
_WORDS = ("".join(letters) for letters in itertools.product(string.ascii_lowercase, repeat=3))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def alert(minute: float = 0, *, fp: str = "fp-new", title: str | None = None,
          service: str | None = "checkout", env: str | None = "prod", group_key: str | None = None) -> AlertFacts:
    """An alert; without a title, one no other alert's title resembles ("symptom aab")."""
    title = f"symptom {next(_WORDS)}" if title is None else title
    return AlertFacts(fingerprint=fp, title=title, at=at(minute), service=service, environment=env, group_key=group_key)


def incident(id: str, *alerts: AlertFacts, detached: tuple[str, ...] = ()) -> IncidentFacts:
    return IncidentFacts.from_alerts(id, alerts, detached)


def model(*incidents: tuple[str, ...], repeat: int = 1) -> CooccurrenceModel:
    learned = CooccurrenceModel()
    for _ in range(repeat):
        for services in incidents:
            learned.observe_incident(services)
    return learned
