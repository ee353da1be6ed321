"""Per-organization correlation settings and the learned co-occurrence model, plus the
organization's incident lock.

Ingestion reads the settings on every delivery, so they are cached per runtime and re-read only
when the row's `updated_at` moved (one small SELECT per delivery; the model JSON, which grows with
the organization's history, is parsed only when it changed). The row is created lazily, the first
time a model is learned or a setting saved.

The lock: every change to which alerts belong to which incident (ingestion, merge, move, unlink,
status changes) takes `pg_advisory_xact_lock` on a key derived from the organization id, so two
deliveries cannot both open an incident for the same problem, and a merge cannot race a delivery
joining the source. It is held until the transaction ends.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.incidents.correlation import CooccurrenceModel
from server.domains.incidents.correlation import CorrelationSettings as EngineSettings
from server.domains.incidents.models import CorrelationSettings
from server.runtime import Runtime

log = logging.getLogger("insights.incidents")

LOCK_NAMESPACE = 0x1C1D_E475  # "incidents": keeps these keys apart from other advisory locks
CACHE_SIZE = 1000
SETTINGS_TTL = 2.0  # seconds a process uses its cached settings of an organization
# The engine's settings that are columns of the row (any other engine setting keeps its default).
_KNOBS = tuple(k for k in EngineSettings().to_dict() if k in CorrelationSettings.__table__.c)


@dataclass(frozen=True)
class OrgCorrelation:
    settings: EngineSettings
    auto_resolve: bool
    model: CooccurrenceModel  # shared, read-only: copy (model_from_json) before changing it
    updated_at: datetime | None


DEFAULT = OrgCorrelation(EngineSettings(), True, CooccurrenceModel(), None)


def lock_key(organization_id: uuid.UUID) -> int:
    """A signed 64-bit advisory lock key for the organization."""
    return int.from_bytes(organization_id.bytes[:8], "big", signed=True) ^ LOCK_NAMESPACE


# For the rest of the transaction, index paths over sequential scans: every statement of ingestion
# and of incident changes looks rows up by key, and with a young table's statistics the planner
# otherwise scanned whole tables for `id = ANY(...)` updates (a cost that grows with the table).
INDEX_PATHS = "set_config('enable_seqscan', 'off', true)"


async def lock_organization(uow: UnitOfWork, organization_id: uuid.UUID) -> None:
    await uow.session.execute(text(f"SELECT pg_advisory_xact_lock(:k), {INDEX_PATHS}"), {"k": lock_key(organization_id)})


def model_from_json(data: dict | None) -> CooccurrenceModel:
    if not data:
        return CooccurrenceModel()
    try:
        return CooccurrenceModel.from_dict(data)
    except (ValueError, KeyError, TypeError) as e:  # a model of another version: start learning again
        log.warning("ignoring stored co-occurrence model: %s", e)
        return CooccurrenceModel()


def _engine_settings(row: object) -> EngineSettings:
    try:
        return EngineSettings.from_dict({k: getattr(row, k) for k in _KNOBS})
    except (ValueError, TypeError) as e:
        log.warning("invalid stored correlation settings (%s); using defaults", e)
        return EngineSettings()


def _cache(rt: Runtime) -> OrderedDict:
    return rt.extras.setdefault("incidents.correlation", OrderedDict())


async def load(uow: UnitOfWork, rt: Runtime, organization_id: uuid.UUID) -> OrgCorrelation:
    """The organization's settings and model (defaults when it has no row yet).

    Cached per runtime for `SETTINGS_TTL` seconds: ingestion reads them for every delivery, and a
    change made by another process (a learned model, a setting) may take that long to be used
    here. This process's own changes (`learn`) drop its entry at once.
    """
    cache = _cache(rt)
    hit = cache.get(organization_id)
    now = time.monotonic()
    if hit is not None and now - hit[0] < SETTINGS_TTL:
        return hit[1]
    cols = [getattr(CorrelationSettings, k) for k in _KNOBS]
    row = (await uow.session.execute(
        select(CorrelationSettings.updated_at, CorrelationSettings.auto_resolve, *cols)
        .where(CorrelationSettings.organization_id == organization_id))).first()
    if row is None:
        found = DEFAULT
    elif hit is not None and hit[1].updated_at == row.updated_at:
        found = hit[1]
    else:
        data = (await uow.session.execute(select(CorrelationSettings.cooccurrence_model).where(
            CorrelationSettings.organization_id == organization_id))).scalar_one_or_none()
        found = OrgCorrelation(_engine_settings(row), bool(row.auto_resolve), model_from_json(data), row.updated_at)
    cache[organization_id] = (now, found)
    cache.move_to_end(organization_id)
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return found


def drop_cached_settings(rt: Runtime, organization_id: uuid.UUID) -> None:
    """Drop the cached settings of an organization (after changing them)."""
    _cache(rt).pop(organization_id, None)


async def learn(uow: UnitOfWork, rt: Runtime, organization_id: uuid.UUID, observe: Iterable[Iterable[str]] = (),
                forget: Iterable[Iterable[str]] = ()) -> None:
    """Count finished incidents' services in the model (and un-count reopened/merged ones).
    Call with the organization locked: the model is read, changed and written back."""
    observe, forget = [list(s) for s in observe], [list(s) for s in forget]
    if not observe and not forget:
        return

    async def drop_cached() -> None:
        _cache(rt).pop(organization_id, None)

    uow.after_commit(drop_cached)
    data = (await uow.session.execute(select(CorrelationSettings.cooccurrence_model).where(
        CorrelationSettings.organization_id == organization_id))).scalar_one_or_none()
    model = model_from_json(data)
    for services in forget:
        model.forget_incident(services)
    for services in observe:
        model.observe_incident(services)
    now = utcnow()
    defaults = {k: v for k, v in EngineSettings().to_dict().items() if k in _KNOBS}
    stmt = insert(CorrelationSettings).values(organization_id=organization_id, cooccurrence_model=model.to_dict(),
                                              created_at=now, updated_at=now, **defaults)
    await uow.session.execute(stmt.on_conflict_do_update(
        index_elements=[CorrelationSettings.organization_id],
        set_={"cooccurrence_model": stmt.excluded.cooccurrence_model, "updated_at": func.clock_timestamp()}))
