"""Turning a normalized delivery into alerts, incidents and change events.

The webhook shim calls `apply_normalized` inside its own transaction, right after storing the raw
delivery, so the delivery and everything derived from it commit (or roll back) together.

Alerts
- Dedup: a firing alert whose fingerprint is already open (firing) in the organization updates
  that alert (occurrence count, last seen, severity, title, ...) instead of adding one. When the
  open alert's incident is no longer open (a user resolved it while the source kept firing), the
  stale alert is closed and the repeat starts a new alert, which correlates like any new one.
- A resolved alert closes its open alert (`ended_at`); a resolved alert with no open one is
  recorded (no incident) and opens nothing.

Correlation (server/domains/incidents/correlation.py decides)
- Each new firing alert is matched against the organization's open incidents (investigating or
  acknowledged) that are in the time window or share a fingerprint / group key, plus the incidents
  opened earlier in the same delivery. It joins the chosen incident (count, services,
  fingerprints, group keys, last alert time, severity raised to the highest) or opens a new one
  (status investigating, AI status idle, priority from the alert or its severity). The alert
  records why (`correlation_reason`, `correlation_score`, `correlation_detail`); the alert that
  opened an incident has no reason.
- A repeat of an open alert keeps its incident warm: the incident's last alert time and the
  service's "last seen" move to now, written at most every `WARM_EVERY` (10 s) unless the repeat
  raises the incident's severity: a source repeating its alerts every few seconds would otherwise
  rewrite each of its incidents in every transaction, for times that matter to minutes-wide
  correlation windows.
- When an alert resolves and its incident has no firing alert left, the incident resolves itself
  if the organization's `auto_resolve` (default on) says so; a resolved incident's services are
  counted in the organization's co-occurrence model.

Change events (deployments) are upserted by (organization, fingerprint): later phases of the same
build update its row; an older phase arriving late does not roll result/phase back.

Cost: a constant number of statements per delivery, whatever its size, and few round trips
while the organization is locked: the settings (cached per process for a moment, see tuning.load),
the lock, one SELECT (`_load_statement`: open alerts of all the delivery's fingerprints, their
incidents and the candidate incidents), and one write (`_write_statement`: every insert and update
as JSON row sets in one statement). Parsed correlation facts are cached per incident revision, so
a delivery re-reads an incident's stored facts only after another process changed it. The lock
(`tuning.lock_organization`, `pg_advisory_xact_lock`) serializes correlation per organization until
commit; the partial unique index `uq_alerts_open_fingerprint` backs dedup.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import case, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import String

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.incidents import tuning
from server.domains.incidents.correlation import AlertFacts, IncidentFacts, correlate
from server.domains.incidents.events import EventBatch, IncidentEventKind
from server.domains.incidents.facts import (
    MAX_KEYS,
    append_capped,
    facts_from_row,
    facts_to_json,
    max_severity,
    priority_for,
    severity_of,
)
from server.domains.incidents.models import (
    AiStatus,
    Alert,
    AlertStatus,
    ChangeEvent,
    Incident,
    IncidentStatus,
    Severity,
    window_bin,
)
from server.domains.incidents.normalizers.types import Normalized, NormalizedAlert, NormalizedChange
from server.domains.incidents.timeline import Timeline, TimelineKind
from server.runtime import Runtime

WARM_EVERY = timedelta(seconds=10)  # see the module docstring
OPEN_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.ACKNOWLEDGED)
_TEXT_ARRAY = ARRAY(String)


@dataclass
class IngestResult:
    alert_ids: list[uuid.UUID] = field(default_factory=list)
    incident_ids: list[uuid.UUID] = field(default_factory=list)
    change_event_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Rider:
    """SQL a caller rides on ingestion's write statement: named CTEs (`name AS (...)`, constant text
    per shape, their names and parameters not clashing with the write's own) and their parameters.
    Built once the ingestion results are known; see `apply_many`."""

    ctes: tuple[str, ...]
    params: dict[str, Any]


RiderFor = Callable[[list["IngestResult"]], Rider]


async def apply_normalized(uow: UnitOfWork, rt: Runtime, *, organization_id: uuid.UUID, config_id: uuid.UUID | None,
                           delivery_id: uuid.UUID | None, normalized: Normalized,
                           now: datetime | None = None, rider: RiderFor | None = None) -> IngestResult:
    """Store what one delivery says, in the caller's transaction; publish incident events after
    its commit. Returns the ids of the alerts, incidents and change events it created or changed."""
    parts = [DeliveryPart(config_id, delivery_id, normalized)]
    return (await apply_many(uow, rt, organization_id=organization_id, parts=parts, now=now, rider=rider))[0]


@dataclass
class DeliveryPart:
    """One delivery of a batch: where its rows come from, and what it says."""

    config_id: uuid.UUID | None
    delivery_id: uuid.UUID | None
    normalized: Normalized


async def apply_many(uow: UnitOfWork, rt: Runtime, *, organization_id: uuid.UUID, parts: list[DeliveryPart],
                     now: datetime | None = None, locked: bool = False,
                     rider: RiderFor | None = None) -> list[IngestResult]:
    """Several deliveries of one organization, in order, as if applied one after the other, but
    with one lock, one load and one write for all of them (the webhook batcher's path; `locked`
    when the caller already holds the organization's lock). One result per part.

    `rider(results)`, when given, is called once the results are known and its SQL runs in the
    same statement as the write (alone when there is nothing else to write)."""
    now = now or utcnow()
    results = [IngestResult() for _ in parts]
    for part, result in zip(parts, results, strict=True):
        if part.normalized.change_events:
            result.change_event_ids = await upsert_change_events(uow, organization_id, part.config_id, part.delivery_id,
                                                                 part.normalized.change_events, now)
    if any(part.normalized.alerts for part in parts):
        run = _Run(uow, rt, organization_id, now)
        done = await run.execute(parts, locked=locked)
        for result, (alert_ids, incident_ids) in zip(results, done, strict=True):
            result.alert_ids, result.incident_ids = alert_ids, incident_ids
        await run.write(rider(results) if rider else None)
    elif rider:
        await run_rider(uow, rider(results))
    return results


async def run_rider(uow: UnitOfWork, rider: Rider) -> None:
    """A rider's SQL on its own (nothing else to write)."""
    await uow.session.execute(_rider_statement(rider.ctes), rider.params)


@lru_cache(maxsize=16)
def _rider_statement(ctes: tuple[str, ...]) -> Any:
    return text("WITH " + ", ".join(ctes) + " SELECT 1")


# --- alerts and incidents ------------------------------------------------------------------------

@dataclass
class _OpenAlert:
    """A firing alert of a fingerprint: a stored one, or one this delivery inserts."""

    id: uuid.UUID
    incident_id: uuid.UUID | None
    occurrence_count: int
    fingerprint: str = ""
    new_row: dict[str, Any] | None = None  # the pending insert, for alerts of this delivery


@dataclass
class _Incident:
    """Working copy of an incident this delivery may change."""

    id: uuid.UUID
    status: IncidentStatus
    severity: Severity
    started_at: datetime
    last_alert_at: datetime
    correlated_alert_count: int
    affected_services: list[str]
    fingerprints: list[str]  # new incidents: all; stored ones: those this delivery adds (SQL appends them)
    group_keys: list[str]
    facts: IncidentFacts
    revision: int = 1
    new_row: dict[str, Any] | None = None  # set for incidents this delivery opens
    firing_elsewhere: int | None = None  # firing alerts not among this delivery's fingerprints
    changed: bool = False
    alert_resolved: bool = False

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


def _fingerprint(a: NormalizedAlert) -> str:
    return (a.fingerprint or "")[:512]


def _group_key(a: NormalizedAlert) -> str | None:
    return a.group_key[:512] if a.group_key else None


def _clip(value: str | None, n: int) -> str | None:
    return value[:n] if value else value


def _overlap(column: str, param: str) -> str:
    """SQL: the values of the incident's array `column` that are among `:param`. The `&&` test
    first: most candidates share none, and it costs far less than the set operation."""
    values = f"CAST(:{param} AS varchar[])"
    return (f"CASE WHEN i.{column} && {values} THEN ARRAY(SELECT unnest(i.{column}) INTERSECT SELECT unnest({values})) "
            "ELSE CAST('{}' AS varchar[]) END")


KEY_ALERTS = 5  # an incident holds a fingerprint or group key when one of its latest alerts of it is in it


def _latest_alerts_of(column: str, param: str) -> str:
    """SQL: the incidents of the KEY_ALERTS latest alerts of each value of `:param` in `column`
    (ix_alerts_org_fingerprint / ix_alerts_org_group_key, newest first). Alerts without an
    incident (resolved ones that found nothing open) are among the KEY_ALERTS, not skipped: the
    lookup reads at most KEY_ALERTS index entries per key, whatever the key's history."""
    return (f"SELECT k.incident_id FROM unnest(CAST(:{param} AS varchar[])) AS v(key) CROSS JOIN LATERAL ("
            f"SELECT incident_id FROM alerts WHERE organization_id = CAST(:org AS uuid) AND {column} = v.key"
            f" ORDER BY created_at DESC LIMIT {KEY_ALERTS}) AS k WHERE k.incident_id IS NOT NULL")


@lru_cache(maxsize=32)
def _load_statement(firing: bool, fingerprint_group: bool, group_keys: bool, horizon: bool, resolving: bool) -> Any:
    """The loading SELECT of one shape, built once (parameters: org, fps, gks, since, cfps, cgks,
    horizon, rfps, cached_ids, cached_revisions).

    Its first column is every open alert of the fingerprints as a JSON array; then one row per
    incident (or a single row of NULLs when there is none). Of an incident's fingerprints and group
    keys only those of this delivery come back (all the engine needs; an incident may hold
    hundreds), and its stored facts only when this process has not cached them at this revision.
    Each source of candidates is its own index-friendly branch, whatever the table statistics:
    one uq_alerts_open_fingerprint lookup per fingerprint (LIMIT 1, true by that index, keeps the
    planner from turning it into a scan of the organization's open alerts), the incidents of those alerts by primary
    key, open incidents in the window (ix_incidents_open, by `window_at`: a few minutes more than
    the window, which the engine narrows), open incidents holding a fingerprint or group key (by
    the latest alerts of each, `_latest_alerts_of`), and firing alerts per incident where one may
    resolve (ix_alerts_incident_status).
    """
    branches = ["SELECT incident_id AS id FROM open_alerts WHERE incident_id IS NOT NULL"]
    if firing:
        branches.append("SELECT id FROM incidents WHERE organization_id = CAST(:org AS uuid)"
                        " AND status IN ('investigating', 'acknowledged')"
                        f" AND window_at >= {window_bin('CAST(:since AS timestamptz)')}")
        if fingerprint_group:
            holding = [_latest_alerts_of("fingerprint", "cfps")]
            if group_keys:
                holding.append(_latest_alerts_of("group_key", "cgks"))
            limit = " AND last_alert_at >= CAST(:horizon AS timestamptz)" if horizon else ""
            branches.append("SELECT id FROM incidents WHERE organization_id = CAST(:org AS uuid)"
                            " AND status IN ('investigating', 'acknowledged')"
                            f" AND id IN ({' UNION ALL '.join(holding)}){limit}")
    elsewhere = ""
    if resolving:  # firing alerts outside this delivery, for incidents one of its alerts may resolve
        elsewhere = (""",
        CASE WHEN i.id IN (SELECT incident_id FROM open_alerts WHERE fingerprint = ANY(CAST(:rfps AS varchar[])))
             THEN (SELECT count(*) FROM alerts x WHERE x.incident_id = i.id AND x.status = 'firing'
                   AND x.fingerprint <> ALL(CAST(:fps AS varchar[]))) END AS firing_elsewhere""")
    union = "\n        UNION ".join(branches)
    return text(f"""
    WITH open_alerts AS (
        SELECT a.id, a.fingerprint, a.incident_id, a.occurrence_count
        FROM unnest(CAST(:fps AS varchar[])) AS f(fingerprint)
        JOIN LATERAL (SELECT id, fingerprint, incident_id, occurrence_count FROM alerts
                      WHERE organization_id = CAST(:org AS uuid) AND status = 'firing'
                        AND fingerprint = f.fingerprint LIMIT 1) AS a ON true),
    candidates AS (
        {union})
    SELECT (SELECT coalesce(json_agg(json_build_array(o.id, o.fingerprint, o.incident_id, o.occurrence_count)),
                            '[]'::json) FROM open_alerts o)::text AS open_alerts,
        i.id, i.status::text AS status, i.severity::text AS severity, i.title, i.started_at, i.last_alert_at,
        i.environment, i.correlated_alert_count, i.affected_services, i.revision,
        {_overlap("fingerprints", "fps")} AS fingerprints,
        {_overlap("group_keys", "gks")} AS group_keys,
        {_overlap("detached_fingerprints", "fps")} AS detached_fingerprints,
        CASE WHEN (i.id, i.revision) IN (SELECT * FROM unnest(CAST(:cached_ids AS uuid[]),
                                                               CAST(:cached_revisions AS int[])))
             THEN NULL ELSE i.correlation_facts::text END AS facts{elsewhere}
    FROM (SELECT 1) AS one
    LEFT JOIN (candidates c JOIN incidents i ON i.id = c.id AND i.organization_id = CAST(:org AS uuid)) ON true""")


_ALERT_PATCHED = ("status", "severity", "title", "description", "labels", "acknowledged", "source_url", "ended_at",
                  "last_seen_at", "occurrence_count", "updated_at")
_INCIDENT_WRITTEN = ("status", "severity", "correlated_alert_count", "affected_services", "last_alert_at",
                     "correlation_facts", "updated_at", "revision")


def _appended(column: str) -> str:
    """SQL: the incident's `column` array with the row's new values appended (a value already there
    moves to the end), the most recent MAX_KEYS kept."""
    return (f"{column} = ARRAY(SELECT v FROM (SELECT v, max(n) AS n FROM unnest(i.{column} || r.{column}) "
            f"WITH ORDINALITY AS u(v, n) GROUP BY v ORDER BY max(n) DESC LIMIT {MAX_KEYS}) AS kept ORDER BY n)")


@lru_cache(maxsize=64)
def _write_statement(new_incidents: tuple[str, ...] | None, alert_patches: bool, new_alerts: tuple[str, ...] | None,
                     changed: bool, timeline: tuple[str, ...] | None, riders: tuple[str, ...]) -> Any:
    """Every write of a delivery in one statement: each table's rows as one JSON parameter
    (jsonb_populate_recordset maps keys to columns; inserts name the columns their rows carry,
    so any other column keeps its default). Foreign keys are checked at the end of the statement,
    so alerts may point at incidents inserted beside them."""

    def inserted(name: str, table: str, columns: tuple[str, ...]) -> str:
        cols = ", ".join(columns)
        return (f"{name} AS (INSERT INTO {table} ({cols}) SELECT {cols} "
                f"FROM jsonb_populate_recordset(NULL::{table}, CAST(:{name} AS jsonb)))")

    parts = []
    if new_incidents:
        parts.append(inserted("new_incidents", "incidents", new_incidents))
    if alert_patches:
        sets = ", ".join(f"{c} = coalesce(r.{c}, a.{c})" for c in _ALERT_PATCHED)
        parts.append(f"patched AS (UPDATE alerts a SET {sets} "
                     "FROM jsonb_populate_recordset(NULL::alerts, CAST(:alert_patches AS jsonb)) r "
                     "WHERE a.id = r.id AND a.id = ANY(CAST(:patched_ids AS uuid[])))")
    if new_alerts:
        parts.append(inserted("new_alerts", "alerts", new_alerts))
    if changed:
        sets = ", ".join([f"{c} = r.{c}" for c in _INCIDENT_WRITTEN] + [_appended("fingerprints"), _appended("group_keys")])
        parts.append(f"changed AS (UPDATE incidents i SET {sets}, resolved_at = coalesce(r.resolved_at, i.resolved_at) "
                     "FROM jsonb_populate_recordset(NULL::incidents, CAST(:changed AS jsonb)) r "
                     "WHERE i.id = r.id AND i.id = ANY(CAST(:changed_ids AS uuid[])))")
    if timeline:
        parts.append(inserted("timeline", "incident_timeline", timeline))
    parts.extend(riders)
    return text("WITH " + ", ".join(parts) + " SELECT 1")


_ALERTS = Alert.__table__
_INCIDENTS = Incident.__table__


class _Run:
    def __init__(self, uow: UnitOfWork, rt: Runtime, organization_id: uuid.UUID, now: datetime):
        self.uow, self.rt, self.org, self.now = uow, rt, organization_id, now
        self.config_id: uuid.UUID | None = None  # of the delivery being applied
        self.delivery_id: uuid.UUID | None = None
        self.timeline = Timeline(organization_id, now)
        self.events = EventBatch(organization_id)
        self.alert_ids: dict[uuid.UUID, None] = {}
        self.incident_ids: dict[uuid.UUID, None] = {}
        self.open: dict[str, _OpenAlert] = {}
        self.incidents: dict[uuid.UUID, _Incident] = {}
        self.new_alerts: list[dict[str, Any]] = []
        self.alert_patches: dict[uuid.UUID, dict[str, Any]] = {}
        self.final_firing: dict[uuid.UUID, uuid.UUID | None] = {}  # stored alert id -> incident, if still firing
        self.learn: list[list[str]] = []

    async def execute(self, parts: list[DeliveryPart], *, locked: bool = False
                      ) -> list[tuple[list[uuid.UUID], list[uuid.UUID]]]:
        """Apply the parts' alerts in order, in memory (`write` stores them); per part, the
        (alert ids, incident ids) it touched."""
        self.corr = await tuning.load(self.uow, self.rt, self.org)  # before the lock: knobs, not state
        if not locked:
            await tuning.lock_organization(self.uow, self.org)
        await self._load([a for part in parts for a in part.normalized.alerts])
        done = []
        for part in parts:
            self.config_id, self.delivery_id = part.config_id, part.delivery_id
            self.alert_ids, self.incident_ids = {}, {}
            for a in part.normalized.alerts:
                if a.status == "resolved":
                    self._resolved(a)
                else:
                    self._firing(a)
            done.append((list(self.alert_ids), list(self.incident_ids)))
        self._auto_resolve()
        return done

    # -- loading --

    async def _load(self, alerts: list[NormalizedAlert]) -> None:
        """One SELECT (see `_load_statement`): the open (firing) alerts of the delivery's
        fingerprints, their incidents, and the open incidents a new alert could join."""
        settings = self.corr.settings
        firing = [a for a in alerts if a.status != "resolved"]
        resolving = list({_fingerprint(a) for a in alerts if a.status == "resolved"})
        params: dict[str, Any] = {"org": self.org, "fps": list(dict.fromkeys(_fingerprint(a) for a in alerts))}
        group_keys = False
        horizon = settings.use_fingerprint_group and settings.fingerprint_horizon_minutes is not None
        if firing:
            earliest = min(self._at(a) for a in firing)
            params["since"] = earliest - timedelta(minutes=settings.window_minutes)
            if settings.use_fingerprint_group:
                params["cfps"] = list({_fingerprint(a) for a in firing})
                params["cgks"] = list({g for a in firing if (g := _group_key(a))})
                group_keys = bool(params["cgks"])
                if horizon:
                    params["horizon"] = earliest - timedelta(minutes=settings.fingerprint_horizon_minutes)
        if resolving:
            params["rfps"] = resolving
        params["gks"] = list({g for a in alerts if (g := _group_key(a))})
        cache = _facts_cache(self.rt)
        recent = _recent_candidates(self.rt).get(self.org, ())
        known = [(i, hit[0]) for i in recent if (hit := cache.get(i)) is not None]
        params["cached_ids"] = [i for i, _ in known]
        params["cached_revisions"] = [rev for _, rev in known]
        stmt = _load_statement(bool(firing), bool(firing) and settings.use_fingerprint_group, group_keys,
                               bool(firing) and horizon, bool(resolving))
        rows = (await self.uow.session.execute(stmt, params)).all()
        for alert_id, fingerprint, incident_id, count in orjson.loads(rows[0].open_alerts):
            o = _OpenAlert(uuid.UUID(alert_id), uuid.UUID(incident_id) if incident_id else None, count, fingerprint)
            self.open[fingerprint] = o
            self.final_firing[o.id] = o.incident_id
        for r in rows:
            if r.id is None:
                continue
            hit = cache.get(r.id)
            if r.facts is None and hit is not None and hit[0] == r.revision:
                facts = hit[1].with_keys(r.fingerprints, r.group_keys, r.detached_fingerprints)
            else:
                facts = facts_from_row(id=r.id, started_at=r.started_at, last_alert_at=r.last_alert_at,
                                       environment=r.environment, title=r.title, affected_services=r.affected_services,
                                       fingerprints=r.fingerprints, group_keys=r.group_keys,
                                       detached_fingerprints=r.detached_fingerprints,
                                       correlation_facts=orjson.loads(r.facts) if r.facts else None)
            self.incidents[r.id] = _Incident(
                id=r.id, status=IncidentStatus(r.status), severity=Severity(r.severity), started_at=r.started_at,
                last_alert_at=r.last_alert_at, correlated_alert_count=r.correlated_alert_count,
                affected_services=list(r.affected_services or []), fingerprints=[], group_keys=[], facts=facts,
                revision=r.revision, firing_elsewhere=getattr(r, "firing_elsewhere", None),
            )
        _recent_candidates(self.rt)[self.org] = [i for i in self.incidents][-RECENT_MAX:]

    # -- one alert at a time --

    def _at(self, a: NormalizedAlert) -> datetime:
        return min(a.started_at, self.now) if a.started_at else self.now

    def _firing(self, a: NormalizedAlert) -> None:
        fp = _fingerprint(a)
        current = self.open.get(fp)
        if current is not None:
            incident = self.incidents.get(current.incident_id) if current.incident_id else None
            if incident is not None and incident.open:
                self._repeat(a, current, incident)
                return
            self._close(current, self.now)  # its incident was closed by a user: start afresh
        self._new_firing(a, fp)

    def _repeat(self, a: NormalizedAlert, current: _OpenAlert, incident: _Incident) -> None:
        severity = severity_of(a.severity)
        current.occurrence_count += 1
        values = {"occurrence_count": current.occurrence_count, "last_seen_at": self.now, "severity": severity,
                  "title": _clip(a.title, 1000) or "(untitled alert)", "description": a.description,
                  "labels": a.labels or {}, "acknowledged": bool(a.acknowledged), "source_url": _clip(a.source_url, 2000)}
        self._patch(current, values)
        raised = max_severity(incident.severity, severity)
        if raised != incident.severity:
            incident.severity = raised
            incident.changed = True
            self.events.add(IncidentEventKind.UPDATED, incident.id)
        if self.now - incident.last_alert_at >= WARM_EVERY:
            incident.changed = True
        facts = AlertFacts(fingerprint=_fingerprint(a), title=a.title or "", at=self.now, service=a.service,
                           environment=a.environment, group_key=_group_key(a))
        incident.facts = incident.facts.with_alert(facts)
        incident.last_alert_at = max(incident.last_alert_at, self.now)
        self.alert_ids[current.id] = None
        self.incident_ids[incident.id] = None

    def _new_firing(self, a: NormalizedAlert, fp: str) -> None:
        at = self._at(a)
        severity = severity_of(a.severity)
        facts = AlertFacts(fingerprint=fp, title=a.title or "", at=at, service=a.service, environment=a.environment,
                           group_key=_group_key(a))
        candidates = [i.facts for i in self.incidents.values() if i.open]
        decision = correlate(facts, candidates, self.corr.model, self.corr.settings) if candidates else None
        alert_id = uuid.uuid4()
        row = self._alert_row(alert_id, a, fp, severity, AlertStatus.FIRING)
        if decision is not None and not decision.is_new:
            incident = self.incidents[decision.incident_id]
            row.update(incident_id=incident.id, correlation_reason=decision.reason.value,
                       correlation_score=decision.score, correlation_detail=_clip(decision.detail, 500))
            self._join(incident, facts, severity, a, alert_id, decision)
        else:
            incident = self._open_incident(a, facts, severity, alert_id)
            row["incident_id"] = incident.id
        self.new_alerts.append(row)
        self.open[fp] = _OpenAlert(alert_id, row["incident_id"], 1, fp, new_row=row)
        self.alert_ids[alert_id] = None
        self.incident_ids[row["incident_id"]] = None

    def _join(self, incident: _Incident, facts: AlertFacts, severity: Severity, a: NormalizedAlert,
              alert_id: uuid.UUID, decision: Any) -> None:
        before = incident.severity
        incident.severity = max_severity(incident.severity, severity)
        incident.correlated_alert_count += 1
        if a.service and a.service not in incident.affected_services:
            incident.affected_services.append(a.service[:255])
        incident.fingerprints = append_capped(incident.fingerprints, facts.fingerprint)
        incident.group_keys = append_capped(incident.group_keys, facts.group_key)
        incident.last_alert_at = max(incident.last_alert_at, facts.at)
        incident.facts = incident.facts.with_alert(facts)
        incident.changed = True
        data = {"alertId": str(alert_id), "reason": decision.reason.value, "score": decision.score,
                "detail": decision.detail, "service": a.service}
        if incident.severity != before:
            data["severity"] = {"from": before.value, "to": incident.severity.value}
        self.timeline.add(incident.id, TimelineKind.ALERT_CORRELATED,
                          f"Alert \u201c{(a.title or '')[:200]}\u201d correlated ({decision.reason.value})", data=data)
        self.events.add(IncidentEventKind.ALERT_CORRELATED, incident.id)

    def _open_incident(self, a: NormalizedAlert, facts: AlertFacts, severity: Severity, alert_id: uuid.UUID) -> _Incident:
        incident_id = uuid.uuid4()
        title = _clip(a.title, 1000) or "(untitled alert)"
        row = {
            "id": incident_id, "organization_id": self.org, "title": title, "description": a.description,
            "status": IncidentStatus.INVESTIGATING, "severity": severity, "priority": priority_for(severity, a.priority),
            "service": _clip(a.service, 255), "environment": _clip(a.environment, 255), "source": a.provider[:32],
            "source_alert_id": _clip(a.provider_alert_id, 255), "category": _clip(a.category, 255),
            "business_unit": _clip(a.business_unit, 255), "service_tier": _clip(a.service_tier, 64),
            "ai_status": AiStatus.IDLE, "started_at": facts.at, "last_alert_at": facts.at,
            "acknowledged_at": None, "acknowledged_by_id": None, "resolved_at": None, "resolved_by_id": None,
            "assignee_id": None, "merged_into_id": None, "merged_at": None, "correlated_alert_count": 1,
            "affected_services": [], "fingerprints": [], "group_keys": [], "detached_fingerprints": [],
            "correlation_facts": {}, "revision": 1, "created_at": self.now, "updated_at": self.now,
        }
        incident = _Incident(
            id=incident_id, status=IncidentStatus.INVESTIGATING, severity=severity, started_at=facts.at,
            last_alert_at=facts.at, correlated_alert_count=1,
            affected_services=[a.service[:255]] if a.service else [],
            fingerprints=[facts.fingerprint], group_keys=[facts.group_key] if facts.group_key else [],
            facts=IncidentFacts.open(incident_id, facts), new_row=row, firing_elsewhere=0,
        )
        self.incidents[incident_id] = incident
        self.timeline.add(incident_id, TimelineKind.CREATED, f"Incident opened by {a.provider} alert \u201c{title[:200]}\u201d",
                          data={"alertId": str(alert_id), "provider": a.provider, "severity": severity.value,
                                "service": a.service})
        self.events.add(IncidentEventKind.CREATED, incident_id)
        return incident

    def _resolved(self, a: NormalizedAlert) -> None:
        fp = _fingerprint(a)
        ended = min(a.ended_at, self.now) if a.ended_at else self.now
        current = self.open.get(fp)
        if current is None:  # nothing open: recorded, opens nothing
            alert_id = uuid.uuid4()
            row = self._alert_row(alert_id, a, fp, severity_of(a.severity), AlertStatus.RESOLVED)
            row["ended_at"] = ended
            self.new_alerts.append(row)
            self.alert_ids[alert_id] = None
            return
        self._close(current, ended)
        self.alert_ids[current.id] = None
        incident = self.incidents.get(current.incident_id) if current.incident_id else None
        if incident is not None:
            incident.alert_resolved = True
            self.incident_ids[incident.id] = None
            self.timeline.add(incident.id, TimelineKind.ALERT_RESOLVED,
                              f"Alert \u201c{(a.title or '')[:200]}\u201d resolved", data={"alertId": str(current.id)})
            self.events.add(IncidentEventKind.UPDATED, incident.id)

    def _close(self, current: _OpenAlert, ended: datetime) -> None:
        self._patch(current, {"status": AlertStatus.RESOLVED, "ended_at": ended, "last_seen_at": self.now})
        self.final_firing.pop(current.id, None)
        for fp, o in list(self.open.items()):
            if o is current:
                del self.open[fp]

    def _patch(self, current: _OpenAlert, values: dict[str, Any]) -> None:
        if current.new_row is not None:
            current.new_row.update(values)
        else:
            self.alert_patches.setdefault(current.id, {"id": current.id, "fingerprint": current.fingerprint}).update(
                values, updated_at=self.now)

    def _alert_row(self, alert_id: uuid.UUID, a: NormalizedAlert, fp: str, severity: Severity,
                   status: AlertStatus) -> dict[str, Any]:
        at = self.now + timedelta(microseconds=len(self.new_alerts))  # keeps delivery order in lists
        return {
            "id": alert_id, "organization_id": self.org, "incident_id": None, "config_id": self.config_id,
            "delivery_id": self.delivery_id, "provider": a.provider[:32], "provider_alert_id": _clip(a.provider_alert_id, 255),
            "fingerprint": fp, "group_key": _group_key(a), "title": _clip(a.title, 1000) or "(untitled alert)",
            "description": a.description, "severity": severity, "status": status, "acknowledged": bool(a.acknowledged),
            "service": _clip(a.service, 255), "environment": _clip(a.environment, 255), "priority": _priority_or_none(a.priority),
            "started_at": a.started_at or self.now, "ended_at": None, "last_seen_at": self.now, "occurrence_count": 1,
            "labels": a.labels or {}, "source_url": _clip(a.source_url, 2000), "correlation_reason": None,
            "correlation_score": None, "correlation_detail": None, "created_at": at, "updated_at": at,
        }

    # -- incidents whose alerts all resolved --

    def _auto_resolve(self) -> None:
        if not self.corr.auto_resolve:
            return
        firing_by_incident: dict[uuid.UUID, int] = {}
        for incident_id in self.final_firing.values():
            if incident_id:
                firing_by_incident[incident_id] = firing_by_incident.get(incident_id, 0) + 1
        for o in self.open.values():
            if o.new_row is not None and o.incident_id:
                firing_by_incident[o.incident_id] = firing_by_incident.get(o.incident_id, 0) + 1
        for incident in self.incidents.values():
            if not (incident.alert_resolved and incident.open and incident.firing_elsewhere is not None):
                continue
            if incident.firing_elsewhere + firing_by_incident.get(incident.id, 0) > 0:
                continue
            incident.status = IncidentStatus.RESOLVED
            incident.changed = True
            self.timeline.add(incident.id, TimelineKind.RESOLVED, "Resolved automatically: all its alerts resolved",
                              data={"automatic": True})
            self.events.add(IncidentEventKind.RESOLVED, incident.id)
            self.learn.append(incident.affected_services)

    # -- writing --

    async def write(self, rider: Rider | None = None) -> None:
        """One statement for all of it, the rider's SQL included (two when an alert closes and its
        fingerprint fires anew in the same delivery: the close must reach the unique index first)."""
        new_incidents, changed = [], []
        cached: list[tuple[uuid.UUID, int, IncidentFacts]] = []
        for i in self.incidents.values():
            if i.new_row is None and not i.changed:
                continue
            values = {"severity": i.severity, "correlated_alert_count": i.correlated_alert_count,
                      "affected_services": i.affected_services, "fingerprints": i.fingerprints,
                      "group_keys": i.group_keys, "last_alert_at": i.last_alert_at,
                      "correlation_facts": facts_to_json(i.facts), "status": i.status,
                      "resolved_at": self.now if i.status == IncidentStatus.RESOLVED else None}
            if i.new_row is not None:
                i.new_row.update(values)
                new_incidents.append(i.new_row)
                cached.append((i.id, i.new_row["revision"], i.facts))
            else:
                values.update(id=i.id, updated_at=self.now, revision=i.revision + 1)
                changed.append(values)
                cached.append((i.id, i.revision + 1, i.facts))
        patches = list(self.alert_patches.values())
        session = self.uow.session
        reopened = {a["fingerprint"] for a in self.new_alerts if a["status"] == AlertStatus.FIRING}
        if patches and any(p.get("status") == AlertStatus.RESOLVED and p["fingerprint"] in reopened for p in patches):
            await session.execute(_write_statement(None, True, None, False, None, ()),
                                  {"alert_patches": _json(patches), "patched_ids": [p["id"] for p in patches]})
            patches = []
        params: dict[str, Any] = {}
        for name, rows in (("new_incidents", new_incidents), ("alert_patches", patches),
                           ("new_alerts", self.new_alerts), ("changed", changed), ("timeline", self.timeline.rows)):
            if rows:
                params[name] = _json(rows)
        if patches:
            params["patched_ids"] = [p["id"] for p in patches]
        if changed:
            params["changed_ids"] = [c["id"] for c in changed]
        if params or rider:
            stmt = _write_statement(_columns(new_incidents), "alert_patches" in params, _columns(self.new_alerts),
                                    "changed" in params, _columns(self.timeline.rows), rider.ctes if rider else ())
            await session.execute(stmt, {**params, **(rider.params if rider else {})})
        self.timeline.rows = []
        if self.learn:
            await tuning.learn(self.uow, self.rt, self.org, observe=self.learn)
        self.events.publish_after_commit(self.uow, self.rt)
        if cached:
            cache = _facts_cache(self.rt)

            async def remember() -> None:  # only what committed
                for incident_id, revision, facts in cached:
                    cache[incident_id] = (revision, facts)
                    cache.move_to_end(incident_id)
                while len(cache) > FACTS_CACHE_SIZE:
                    cache.popitem(last=False)

            self.uow.after_commit(remember)


def _columns(rows: list[dict[str, Any]]) -> tuple[str, ...] | None:
    return tuple(rows[0]) if rows else None


def _json(rows: list[dict[str, Any]]) -> str:
    encoded = orjson.dumps(rows, default=str).decode()  # default: asyncpg's own UUID type
    if "\\u0000" in encoded:  # PostgreSQL text cannot hold NUL: drop it from every string
        encoded = orjson.dumps(_without_nul(rows), default=str).decode()
    return encoded


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


FACTS_CACHE_SIZE = 20_000


RECENT_MAX = 200  # incidents per organization whose cached facts a delivery offers to skip


def _recent_candidates(rt: Runtime) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Per organization, the incidents the last delivery loaded (most likely the next one's too)."""
    recent = rt.extras.setdefault("incidents.recent", OrderedDict())
    while len(recent) > CACHE_ORGS:
        recent.popitem(last=False)
    return recent


CACHE_ORGS = 5000


def _facts_cache(rt: Runtime) -> OrderedDict:
    """Parsed correlation facts of incidents by id: (revision, IncidentFacts). Every change of an
    incident bumps its revision, so an entry is used only while the row is as it was cached."""
    return rt.extras.setdefault("incidents.facts", OrderedDict())


def _priority_or_none(value: str | None) -> str | None:
    if not value:
        return None
    p = value.strip().upper()
    return p if p in ("P1", "P2", "P3", "P4", "P5") else None


# --- change events -------------------------------------------------------------------------------

async def upsert_change_events(uow: UnitOfWork, organization_id: uuid.UUID, config_id: uuid.UUID | None,
                               delivery_id: uuid.UUID | None, changes: list[NormalizedChange],
                               now: datetime) -> list[uuid.UUID]:
    """Insert or update one row per (organization, fingerprint), in one statement. A phase older
    than the stored one (delivered late) fills missing fields but keeps result, phase and time."""
    by_fp: dict[str, dict[str, Any]] = {}
    for c in changes:
        fp = (c.fingerprint or "")[:1000]
        by_fp[fp] = {
            "id": uuid.uuid4(), "organization_id": organization_id, "config_id": config_id, "delivery_id": delivery_id,
            "provider": c.provider[:32], "fingerprint": fp, "title": _clip(c.title, 1000) or "(deployment)",
            "service": _clip(c.service, 255), "environment": _clip(c.environment, 255), "version": _clip(c.version, 255),
            "commit": _clip(c.commit, 255), "branch": _clip(c.branch, 255), "result": (c.result or "started")[:32],
            "phase": _clip(c.phase, 32), "occurred_at": c.occurred_at or now, "url": _clip(c.url, 2000),
            "labels": c.labels or {}, "created_at": now, "updated_at": now,
        }
    table = ChangeEvent.__table__
    stmt = pg_insert(table).values(list(by_fp.values()))
    ex = stmt.excluded
    newer = ex.occurred_at >= table.c.occurred_at
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.organization_id, table.c.fingerprint],
        set_={
            "title": ex.title, "config_id": func.coalesce(ex.config_id, table.c.config_id),
            "delivery_id": func.coalesce(ex.delivery_id, table.c.delivery_id),
            **{c: func.coalesce(ex[c], table.c[c]) for c in ("service", "environment", "version", "commit", "branch", "url")},
            "result": case((newer, ex.result), else_=table.c.result),
            "phase": case((newer, func.coalesce(ex.phase, table.c.phase)), else_=table.c.phase),
            "occurred_at": func.greatest(ex.occurred_at, table.c.occurred_at),
            "labels": table.c.labels.op("||")(ex.labels),
            "updated_at": ex.updated_at,
        },
    ).returning(table.c.id, table.c.fingerprint)
    rows = (await uow.session.execute(stmt)).all()
    ids = {r.fingerprint: r.id for r in rows}
    return [ids[fp] for fp in by_fp]
