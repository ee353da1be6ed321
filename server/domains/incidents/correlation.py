"""Alert correlation: does a new alert join an open incident of its organization, or open a new one?

Pure computation on plain values (no database, no clock, no I/O), so it is unit-tested and
benchmarked alone (bench/correlation_quality.py). The ingestion service loads the organization's
open incidents as `IncidentFacts`, calls `correlate`, and stores the returned `Decision` (reason,
score, detail) on the alert's link, so a user can see why an alert was grouped and undo it.

Signals, strongest first. The first tier in which any incident matches decides; inside a tier the
highest score wins, then the most recent evidence (the matching service's or title's latest
alert), then the later start, then the larger id as text, so the result never depends on the
order of `open_incidents`.

1. ``fingerprint_group`` (score 1): the incident already holds the alert's fingerprint or group
   key: a re-fire, a flapping alert, another host of the same grouped rule. An exact fingerprint
   is preferred to a group key. Identity beats everything, so neither the window nor the
   environment is checked; only `fingerprint_horizon_minutes` since the incident's last alert
   (default 24 h, None = no limit) keeps an incident somebody forgot to resolve from swallowing a
   fresh outage days later.
2. ``service_window`` (score 1): the alert's service alerted in the incident within
   `window_minutes`. An alert without a service label stands for the candidates' service its
   title spells out ("Pod payments-7f9c.. evicted" -> payments), here and in tier 4.
3. ``title_similarity`` (score = Jaccard similarity of `title_tokens`, best over the incident's
   titles seen within `window_minutes`) above `title_similarity_threshold`.
4. ``cooccurrence`` (score = `CooccurrenceModel.strength(alert service, incident service)`, the
   share of that incident service's past incidents in which the alert's service alerted too)
   above `cooccurrence_threshold`, with at least `cooccurrence_min_support` such incidents, and
   only while the incident service *started* alerting in this incident within
   `cooccurrence_window_minutes` (default 10) of the alert: a cascade reaches the next service in
   minutes, while a related service alerting half an hour into an outage is as likely a
   coincidence (on bench/, counting from the partner's latest alert instead drops pair precision
   from 0.92 to 0.86).

Tiers 2-4 use only recent evidence of an incident: a long incident does not keep every service and
title it ever saw open to newcomers (on dense storms that "snowball" chained unrelated outages
into one). They skip an incident whose environment contradicts the alert's (both set and different; a missing
environment blocks nothing). A fingerprint a user detached from an incident (undo) never joins that
incident again, by any signal.

Datetimes must all be timezone-aware (or all naive); the caller's clock is never read here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

__all__ = [
    "AlertFacts", "CooccurrenceModel", "CorrelationSettings", "Decision", "IncidentFacts", "Reason",
    "Seen", "correlate", "title_similarity", "title_tokens",
]

MAX_TITLE_SETS = 20  # distinct titles remembered per incident: bounds the title tier's cost
MAX_PAIR_SERVICES = 50  # incidents with more services count per service only (see observe_incident)
MAX_TITLE_CHARS = 1000  # a title, not a log dump: the rest is not read (bounds tokenizing cost)


class Reason(StrEnum):
    """Why an alert joined an incident; stored on the link (a plain string)."""

    FINGERPRINT_GROUP = "fingerprint_group"
    SERVICE_WINDOW = "service_window"
    TITLE_SIMILARITY = "title_similarity"
    COOCCURRENCE = "cooccurrence"


@dataclass(frozen=True)
class CorrelationSettings:
    """Per-organization correlation settings; `to_dict`/`from_dict` for storage as JSON.

    `window_minutes` is the product's default; the other defaults are the best pair F1 on
    bench/correlation_quality.py's storms (see its sweeps).
    """

    window_minutes: int = 30
    title_similarity_threshold: float = 0.6  # [0, 1): Jaccard of title tokens must be above it
    cooccurrence_threshold: float = 0.1  # [0, 1): share of the partner's past incidents, above it
    cooccurrence_min_support: int = 3  # past incidents two services must share before it counts
    cooccurrence_window_minutes: int = 10  # from the partner service's first alert in the incident
    fingerprint_horizon_minutes: int | None = 24 * 60  # None: any open incident holding it
    use_fingerprint_group: bool = True
    use_service: bool = True
    use_title: bool = True
    use_cooccurrence: bool = True

    def __post_init__(self) -> None:
        def whole(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1")

        for name in ("window_minutes", "cooccurrence_min_support", "cooccurrence_window_minutes"):
            whole(name)
        if self.fingerprint_horizon_minutes is not None:
            whole("fingerprint_horizon_minutes")
        for name in ("title_similarity_threshold", "cooccurrence_threshold"):
            value = getattr(self, name)
            # A score must be above the threshold, so 1 would turn the signal off (use_* does that).
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1)")
        for name in ("use_fingerprint_group", "use_service", "use_title", "use_cooccurrence"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorrelationSettings:
        """Build from stored JSON; unknown keys (from another version) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


# --- titles -------------------------------------------------------------------------------------

# Chunks are split at spaces and at punctuation that never occurs inside a host or pod name.
_CHUNK = re.compile(r"[^\s/\\()\[\]{},;:'\"`=<>|!?*#@$&+]+")
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script
_NAME = re.compile(r"[^\W\d_][\w.-]*")  # starts with a letter; a name if it also has a digit and a - or .
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_METRIC = re.compile(r"p\d{2,3}|[1-5]xx")  # p99, 5xx: metric words, not ids
_HEX_ID = re.compile(r"[0-9a-f]{8,}")
# Words that say nothing about "is this the same problem": English glue, environment names (the
# environment is its own field) and alerting boilerplate ("[FIRING:1]", "CRITICAL: ...").
_STOPWORDS = frozenset("""
a an the and or of on in at to for from by with is are was were be been has have this that it its
than then via per not no into over under above below after before while during
prod production staging stage stg dev development preprod
alert alerts alerting firing fired triggered trigger resolved warning warn critical crit info
notice severity sev status
""".split())


def _words(text: str, shortest: int, into: set[str]) -> None:
    for word in _WORD.findall(text):
        if len(word) < shortest or word in _STOPWORDS:
            continue
        if not word.isalpha():
            if not _METRIC.fullmatch(word):
                continue  # numbers, ordinals, ids, hex, parts of IPs and UUIDs
        elif len(word) >= 8 and _HEX_ID.fullmatch(word):
            continue  # all-letter hex ids ("deadbeef")
        elif len(word) > 4 and word[-1] == "s" and word[-2] not in "siu":  # not "redis", "class"
            word = word[:-3] + "y" if word.endswith("ies") else word[:-1]  # "retries" -> "retry"
        into.add(word)


def title_tokens(title: str) -> frozenset[str]:
    """Normalized words of an alert title: what stays the same when the same problem fires again.

    Lower-cased words; words with digits (numbers, ids, hex, UUID and IP parts) are dropped except
    metric words like ``p99``; stop words and one-letter words are dropped; plurals are cut.
    Host, node and pod names (``node-6.eu-west-1.compute.internal``, ``checkout-7f9c-x2k4``) are
    kept whole, plus the words of 3+ letters of their first label (the role, ``checkout``; not the
    domain): two "High CPU on <host>" alerts of different hosts must not look identical, while two
    alerts about the same node should.
    """
    tokens: set[str] = set()
    for chunk in _CHUNK.findall(title[:MAX_TITLE_CHARS].lower()):
        chunk = chunk.strip(".-_%")
        if (_NAME.fullmatch(chunk) and ("-" in chunk or "." in chunk) and any(c.isdigit() for c in chunk)
                and not _UUID.search(chunk)):
            tokens.add(chunk)
            _words(chunk.split(".", 1)[0], 3, tokens)  # the role ("checkout-05"), not the domain
        else:
            _words(chunk, 2, tokens)
    return frozenset(tokens)


def title_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two token sets (0 when either is empty)."""
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


# --- facts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertFacts:
    """The new alert, as the provider normalizer produced it."""

    fingerprint: str
    title: str
    at: datetime
    service: str | None = None
    environment: str | None = None
    group_key: str | None = None

    @cached_property
    def tokens(self) -> frozenset[str]:
        """`title_tokens(title)`, computed once (correlate and IncidentFacts.with_alert both need it)."""
        return title_tokens(self.title)


class Seen(NamedTuple):
    """When a service first and last alerted in an incident."""

    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What correlation needs to know about one open incident of the organization.

    Build it with `IncidentFacts.open(id, first_alert)` and `.with_alert(alert)`, or
    `from_alerts(id, alerts)` when loading from the database. `services` maps each service to when
    it first and last alerted in the incident (`Seen` or a (first, last) pair; a plain collection
    of names is accepted and dated `started_at`..`last_alert_at`); `titles` maps each distinct
    title's token set to its latest alert (at most MAX_TITLE_SETS, the most recent kept).
    `detached_fingerprints` are fingerprints a user split off this incident: they stay out.
    """

    id: Any
    started_at: datetime
    last_alert_at: datetime
    environment: str | None = None
    services: Mapping[str, Seen] = field(default_factory=dict)
    titles: Mapping[frozenset[str], datetime] = field(default_factory=dict)
    fingerprints: frozenset[str] = frozenset()
    group_keys: frozenset[str] = frozenset()
    detached_fingerprints: frozenset[str] = frozenset()
    # Union of the title token sets: one set operation rules most incidents out of the title tier.
    title_vocabulary: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("fingerprints", "group_keys", "detached_fingerprints"):
            value = getattr(self, name)
            if type(value) is not frozenset:  # accept lists from the database, store sets
                object.__setattr__(self, name, frozenset(value))
        if not isinstance(self.services, Mapping):
            span = Seen(self.started_at, self.last_alert_at)
            object.__setattr__(self, "services", dict.fromkeys(self.services, span))
        elif any(type(seen) is not Seen for seen in self.services.values()):  # (first, last) pairs
            object.__setattr__(self, "services", {s: Seen(*seen) for s, seen in self.services.items()})
        if any(type(tokens) is not frozenset for tokens in self.titles):
            object.__setattr__(self, "titles", {frozenset(t): at for t, at in self.titles.items()})
        object.__setattr__(self, "title_vocabulary", frozenset().union(*self.titles))

    @classmethod
    def open(cls, id: Any, alert: AlertFacts) -> IncidentFacts:
        """A new incident opened by `alert`."""
        return cls(
            id=id, started_at=alert.at, last_alert_at=alert.at, environment=alert.environment,
            services={alert.service: Seen(alert.at, alert.at)} if alert.service else {},
            titles={alert.tokens: alert.at} if alert.tokens else {},
            fingerprints=frozenset((alert.fingerprint,)),
            group_keys=frozenset((alert.group_key,)) if alert.group_key else frozenset(),
        )

    @classmethod
    def from_alerts(cls, id: Any, alerts: Iterable[AlertFacts],
                    detached_fingerprints: Iterable[str] = ()) -> IncidentFacts:
        """Rebuild an incident's facts from its linked alerts."""
        facts: IncidentFacts | None = None
        for alert in alerts:
            facts = cls.open(id, alert) if facts is None else facts.with_alert(alert)
        if facts is None:
            raise ValueError("an incident has at least one alert")
        return replace(facts, detached_fingerprints=frozenset(detached_fingerprints))

    def with_keys(self, fingerprints: Iterable[str], group_keys: Iterable[str],
                  detached_fingerprints: Iterable[str]) -> IncidentFacts:
        """These facts with other fingerprint/group key sets: a shallow copy that skips
        `__post_init__` (the rest is already normalized), since ingestion does this for every
        cached candidate incident of every delivery."""
        clone = object.__new__(IncidentFacts)
        for name in _FACT_SLOTS:
            object.__setattr__(clone, name, getattr(self, name))
        object.__setattr__(clone, "fingerprints", frozenset(fingerprints))
        object.__setattr__(clone, "group_keys", frozenset(group_keys))
        object.__setattr__(clone, "detached_fingerprints", frozenset(detached_fingerprints))
        return clone

    def with_alert(self, alert: AlertFacts) -> IncidentFacts:
        """These facts after `alert` joined the incident (alerts may arrive out of order)."""
        services = self.services
        if alert.service:
            seen = services.get(alert.service)
            if seen is None:
                services = {**services, alert.service: Seen(alert.at, alert.at)}
            elif not seen.first <= alert.at <= seen.last:
                services = {**services, alert.service: Seen(min(seen.first, alert.at), max(seen.last, alert.at))}
        titles = self.titles
        if alert.tokens and titles.get(alert.tokens, alert.at) <= alert.at:
            titles = {**titles, alert.tokens: alert.at}
            if len(titles) > MAX_TITLE_SETS:
                titles = dict(sorted(titles.items(), key=lambda item: item[1])[-MAX_TITLE_SETS:])
        return IncidentFacts(
            id=self.id,
            started_at=min(self.started_at, alert.at),
            last_alert_at=max(self.last_alert_at, alert.at),
            environment=self.environment or alert.environment,
            services=services,
            titles=titles,
            fingerprints=self.fingerprints | {alert.fingerprint},
            group_keys=self.group_keys | {alert.group_key} if alert.group_key else self.group_keys,
            detached_fingerprints=self.detached_fingerprints,
        )


_FACT_SLOTS = IncidentFacts.__slots__


@dataclass(frozen=True)
class Decision:
    """Where the alert goes. `incident_id` None: open a new incident (and reason/score are None)."""

    incident_id: Any | None
    reason: Reason | None = None
    score: float | None = None  # 0..1 strength of the winning signal
    detail: str | None = None  # one line for people: which fingerprint, service, words, services

    @property
    def is_new(self) -> bool:
        return self.incident_id is None


NEW_INCIDENT = Decision(None)
DEFAULT_SETTINGS = CorrelationSettings()


# --- learned co-occurrence ----------------------------------------------------------------------

class CooccurrenceModel:
    """Which services alert together, learned from an organization's past incidents.

    Counts, per service, the incidents it took part in (n_b) and, per pair, the incidents both
    took part in (n_ab). `strength(a, b)` = n_ab / n_b, the share of b's incidents in which a
    alerted too. It is directional on purpose: checkout alerts in most db-primary outages, but
    db-primary takes part in few checkout incidents, so a checkout alert joins an open db-primary
    outage while a db-primary alert does not join an open checkout incident. On bench/ it scored as
    well as symmetric measures (Ochiai, Jaccard, NPMI) and reads plainly ("in 12 of 30 past
    incidents"). Below `min_support` shared incidents the strength is 0: coincidences are not a
    dependency.
    """

    VERSION = 1

    def __init__(self) -> None:
        self.incidents = 0
        self._services: dict[str, int] = {}
        self._pairs: dict[str, dict[str, int]] = {}  # symmetric: _pairs[a][b] == _pairs[b][a]
        self._partners: dict[tuple[str, float, int], dict[str, tuple[float, str]]] = {}

    def observe_incident(self, services: Iterable[str]) -> None:
        """Count one finished incident and the services that alerted in it.

        An incident touching more than MAX_PAIR_SERVICES services counts per service but not per
        pair: a global outage says little about which two services depend on each other and would
        add thousands of pairs.
        """
        self._count(services, +1)

    def forget_incident(self, services: Iterable[str]) -> None:
        """Undo `observe_incident` (an incident reopened, split or merged, to be observed again)."""
        self._count(services, -1)

    def _count(self, services: Iterable[str], step: int) -> None:
        unique = sorted({s for s in services if s})
        self.incidents = max(0, self.incidents + step)
        for s in unique:
            self._bump(self._services, s, step)
        if len(unique) <= MAX_PAIR_SERVICES:
            for i, a in enumerate(unique):
                for b in unique[i + 1:]:
                    self._bump(self._pairs.setdefault(a, {}), b, step)
                    self._bump(self._pairs.setdefault(b, {}), a, step)
        self._partners.clear()

    @staticmethod
    def _bump(counts: dict[str, int], key: str, step: int) -> None:
        value = counts.get(key, 0) + step
        if value > 0:
            counts[key] = value
        else:
            counts.pop(key, None)

    def incidents_of(self, service: str) -> int:
        """Past incidents in which `service` alerted."""
        return self._services.get(service, 0)

    def support(self, a: str, b: str) -> int:
        """Past incidents in which both services alerted."""
        return self._pairs.get(a, {}).get(b, 0)

    def strength(self, a: str, b: str, min_support: int = 3) -> float:
        """Share (0..1) of b's past incidents in which a alerted too; 0 for a == b or below `min_support`."""
        both = self.support(a, b)
        if a == b or both < min_support:
            return 0.0
        return both / self._services[b]

    def partners(self, service: str, threshold: float, min_support: int) -> dict[str, tuple[float, str]]:
        """Services b with strength(service, b) above `threshold`: {b: (strength, explanation)}.

        Cached until the next observe/forget, so a decision costs one dict lookup per service of
        each candidate incident.
        """
        key = (service, threshold, min_support)
        found = self._partners.get(key)
        if found is None:
            found = {}
            for other, both in self._pairs.get(service, {}).items():
                value = self.strength(service, other, min_support)
                if value > threshold:
                    found[other] = (value, f"{service!r} alerted in {both} of the {self._services[other]} "
                                           f"past incidents of {other!r}")
            if len(self._partners) > 4096:  # one entry per (service, settings): bound it anyway
                self._partners.clear()
            self._partners[key] = found
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and deterministic: {version, incidents, services: {s: n}, pairs: [[a, b, n]]}."""
        return {
            "version": self.VERSION,
            "incidents": self.incidents,
            "services": dict(sorted(self._services.items())),
            "pairs": [[a, b, n] for a in sorted(self._pairs) for b, n in sorted(self._pairs[a].items()) if a < b],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CooccurrenceModel:
        if data.get("version") != cls.VERSION:
            raise ValueError(f"unsupported co-occurrence model version {data.get('version')!r}")
        model = cls()
        model.incidents = int(data["incidents"])
        model._services = {str(s): int(n) for s, n in data["services"].items() if int(n) > 0}
        for a, b, n in data["pairs"]:
            if int(n) > 0 and a != b and a in model._services and b in model._services:
                model._pairs.setdefault(a, {})[b] = int(n)
                model._pairs.setdefault(b, {})[a] = int(n)
        return model


# --- the decision -------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _service_words(service: str) -> frozenset[str]:
    return title_tokens(service)


def _service_named_in_title(tokens: frozenset[str], candidates: Sequence[IncidentFacts]) -> str | None:
    """The candidates' service whose name the title spells out ("Pod payments-7f.. evicted").

    Many sources send no service label; the title usually names it. Of several, the one with the
    most words wins ("api-gateway" over "api"), then the first by name, so the result is stable.
    """
    named = {service for incident in candidates for service in incident.services
             if (words := _service_words(service)) and words <= tokens}
    return min(named, key=lambda service: (-len(_service_words(service)), service), default=None)


def _ago(alert: AlertFacts, seen: datetime) -> str:
    minutes = (alert.at - seen).total_seconds() / 60
    return f"{minutes:.0f} min before" if minutes >= 0 else f"{-minutes:.0f} min after"


def correlate(alert: AlertFacts, open_incidents: Sequence[IncidentFacts],
              cooccurrence: CooccurrenceModel | None = None,
              settings: CorrelationSettings = DEFAULT_SETTINGS) -> Decision:
    """Decide which open incident (same organization) `alert` joins, or that it opens a new one.

    `open_incidents` are the organization's incidents that can still take alerts (investigating or
    acknowledged); those whose last alert is older than `fingerprint_horizon_minutes` may be left
    out. Rules: see the module docstring.
    """
    fingerprint = alert.fingerprint

    if settings.use_fingerprint_group:
        group_key = alert.group_key
        horizon = settings.fingerprint_horizon_minutes
        oldest = alert.at - timedelta(minutes=horizon) if horizon is not None else None
        best, best_rank = None, None
        for incident in open_incidents:
            exact = fingerprint in incident.fingerprints
            if not exact and (group_key is None or group_key not in incident.group_keys):
                continue
            if oldest is not None and incident.last_alert_at < oldest:
                continue
            if fingerprint in incident.detached_fingerprints:
                continue
            rank = (exact, incident.last_alert_at, incident.started_at, str(incident.id))
            if best_rank is None or rank > best_rank:
                best, best_rank = incident, rank
        if best is not None:
            held = f"fingerprint {fingerprint!r}" if best_rank[0] else f"group key {group_key!r}"
            detail = f"already holds {held}"
            return Decision(best.id, Reason.FINGERPRINT_GROUP, 1.0, detail)

    window = timedelta(minutes=settings.window_minutes)
    earliest, latest = alert.at - window, alert.at + window
    environment = alert.environment
    candidates = [
        incident for incident in open_incidents
        if incident.last_alert_at >= earliest and incident.started_at <= latest
        and (environment is None or incident.environment is None or incident.environment == environment)
        and fingerprint not in incident.detached_fingerprints
    ]
    if not candidates:
        return NEW_INCIDENT
    service, named = alert.service, ""
    if not service and alert.tokens:
        service = _service_named_in_title(alert.tokens, candidates)
        named = " (named in the title)" if service else ""

    if settings.use_service and service:
        best, best_rank = None, None
        for incident in candidates:
            seen = incident.services.get(service)
            if seen is not None and seen.last >= earliest:
                rank = (seen.last, incident.started_at, str(incident.id))
                if best_rank is None or rank > best_rank:
                    best, best_rank = incident, rank
        if best is not None:
            return Decision(best.id, Reason.SERVICE_WINDOW, 1.0,
                            f"service {service!r}{named} alerted {_ago(alert, best_rank[0])}")

    if settings.use_title and alert.tokens:
        tokens = alert.tokens
        threshold = settings.title_similarity_threshold
        need = threshold * len(tokens)  # Jaccard <= |tokens & vocabulary| / |tokens|: prune on it
        best, best_rank = None, None
        for incident in candidates:
            if len(tokens & incident.title_vocabulary) <= need:
                continue
            for title, seen in incident.titles.items():
                if seen >= earliest:
                    score = title_similarity(tokens, title)
                    if score > threshold:
                        rank = (score, seen, incident.started_at, str(incident.id), sorted(title))
                        if best_rank is None or rank > best_rank:
                            best, best_rank = incident, rank
        if best is not None:
            shared = " ".join(sorted(tokens & frozenset(best_rank[4]))[:8])
            return Decision(best.id, Reason.TITLE_SIMILARITY, best_rank[0],
                            f"title shares {shared!r} with an alert {_ago(alert, best_rank[1])}")

    if settings.use_cooccurrence and service and cooccurrence is not None:
        partners = cooccurrence.partners(service, settings.cooccurrence_threshold, settings.cooccurrence_min_support)
        if partners:
            cascade = timedelta(minutes=settings.cooccurrence_window_minutes)
            onset_from, onset_to = alert.at - cascade, alert.at + cascade
            best, best_rank, why = None, None, ""
            for incident in candidates:
                for other, seen in incident.services.items():
                    found = partners.get(other)
                    if found is not None and onset_from <= seen.first <= onset_to:
                        rank = (found[0], seen.first, incident.started_at, str(incident.id), other)
                        if best_rank is None or rank > best_rank:
                            best, best_rank, why = incident, rank, found[1]
            if best is not None:
                return Decision(best.id, Reason.COOCCURRENCE, best_rank[0],
                                f"{why}{named}; {best_rank[4]!r} started alerting {_ago(alert, best_rank[1])}")

    return NEW_INCIDENT
