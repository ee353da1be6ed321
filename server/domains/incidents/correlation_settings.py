"""Per-organization correlation settings: read them (any member) and change them (owners and
editors, like every incident change).

The knobs are the columns of `correlation_settings` (models.CorrelationSettings), which are the
engine's `CorrelationSettings` (correlation.py, where each signal is explained) plus
`auto_resolve`. An organization without a row uses the engine's defaults (`updated_at` None); the
row is created the first time a setting is saved (or a co-occurrence model learned, tuning.learn).

Changes are patches: only the knobs given change, each is range-checked (VALIDATION user errors
naming `["input", <field>]`, all bad fields at once, nothing written), a change that changes nothing
writes nothing, and a real change writes an audit entry with the knobs before and after.

When a change is used: this process drops its cached settings of the organization right after
the commit, so its next delivery correlates with the new values. Other processes (replicas,
workers) keep their cached copy for at most `tuning.SETTINGS_TTL` (2 s) before they re-read it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Role
from server.domains.accounts.validation import collect
from server.domains.incidents import tuning
from server.domains.incidents.correlation import CorrelationSettings as EngineSettings
from server.domains.incidents.models import CorrelationSettings as SettingsRow
from server.domains.platform import audit
from server.errors import DomainError, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

MINUTES_MAX = 7 * 24 * 60  # windows: a week at most
HORIZON_MAX = 365 * 24 * 60  # fingerprint horizon: a year at most (null: no limit)
SUPPORT_MAX = 10_000


@dataclass(frozen=True)
class Knob:
    """One setting: its column (= engine field), its API name, its kind and range."""

    column: str
    api: str
    kind: type  # int, float or bool
    low: float | None = None
    high: float | None = None  # inclusive for int, exclusive for float
    nullable: bool = False  # null has a meaning (fingerprint horizon: no limit)


KNOBS: tuple[Knob, ...] = (
    Knob("window_minutes", "windowMinutes", int, 1, MINUTES_MAX),
    Knob("title_similarity_threshold", "titleSimilarityThreshold", float, 0, 1),
    Knob("cooccurrence_threshold", "cooccurrenceThreshold", float, 0, 1),
    Knob("cooccurrence_min_support", "cooccurrenceMinSupport", int, 1, SUPPORT_MAX),
    Knob("cooccurrence_window_minutes", "cooccurrenceWindowMinutes", int, 1, MINUTES_MAX),
    Knob("fingerprint_horizon_minutes", "fingerprintHorizonMinutes", int, 1, HORIZON_MAX, nullable=True),
    Knob("use_fingerprint_group", "useFingerprintGroup", bool),
    Knob("use_service", "useService", bool),
    Knob("use_title", "useTitleSimilarity", bool),
    Knob("use_cooccurrence", "useCooccurrence", bool),
    Knob("auto_resolve", "autoResolve", bool),
)
BY_COLUMN = {k.column: k for k in KNOBS}


@dataclass(frozen=True)
class OrgSettings:
    """An organization's settings as the API shows them. `updated_at` is None while it uses the
    defaults (no setting was ever saved)."""

    organization_id: uuid.UUID
    window_minutes: int
    title_similarity_threshold: float
    cooccurrence_threshold: float
    cooccurrence_min_support: int
    cooccurrence_window_minutes: int
    fingerprint_horizon_minutes: int | None
    use_fingerprint_group: bool
    use_service: bool
    use_title: bool
    use_cooccurrence: bool
    auto_resolve: bool
    updated_at: datetime | None

    def snapshot(self) -> dict[str, Any]:
        """The knobs by API name (audit entries)."""
        return {k.api: getattr(self, k.column) for k in KNOBS}


def defaults(organization_id: uuid.UUID) -> OrgSettings:
    engine = EngineSettings().to_dict()
    return OrgSettings(organization_id=organization_id, auto_resolve=True, updated_at=None,
                       **{k.column: engine[k.column] for k in KNOBS if k.column != "auto_resolve"})


def _of_row(row: SettingsRow) -> OrgSettings:
    return OrgSettings(organization_id=row.organization_id, updated_at=row.updated_at,
                       **{k.column: getattr(row, k.column) for k in KNOBS})


# --- validation ------------------------------------------------------------------------------

def _check(knob: Knob, value: Any) -> Any:
    field = ["input", knob.api]
    if value is None:
        if knob.nullable:
            return None
        raise invalid(f"{knob.api} cannot be null", field)
    if knob.kind is bool:
        if not isinstance(value, bool):
            raise invalid(f"{knob.api} must be true or false", field)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(f"{knob.api} must be a number", field)
    if knob.kind is int:
        if value != int(value) or not knob.low <= value <= knob.high:
            extra = " (null for no limit)" if knob.nullable else ""
            raise invalid(f"{knob.api} must be a whole number from {knob.low:g} to {knob.high:g}{extra}", field)
        return int(value)
    value = float(value)
    if not knob.low <= value < knob.high:  # a score must be above it, so 1 would turn the signal off
        raise invalid(f"{knob.api} must be at least {knob.low:g} and below {knob.high:g} (turn the signal off with "
                      f"its use* switch instead)", field)
    return value


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked values by column; every bad field reported at once (DomainErrors)."""
    unknown = set(changes) - set(BY_COLUMN)
    if unknown:
        raise ValueError(f"not correlation settings: {sorted(unknown)}")
    checked = collect(*[(lambda c=c, v=v: (c, _check(BY_COLUMN[c], v))) for c, v in changes.items()])
    return dict(checked)


# --- reading and changing --------------------------------------------------------------------

def _require(principal: Principal, organization_id: uuid.UUID, role: Role | None, field: list[str]) -> None:
    """Members read; `role` and above change. Another organization is NOT_FOUND, like a missing one."""
    try:
        if role is None:
            principal.require_member(organization_id)
        else:
            principal.require_role(organization_id, role)
    except DomainError as e:
        if e.code == ErrorCode.NOT_FOUND:
            raise not_found("organization", field) from None
        raise


async def get_settings(rt: Runtime, principal: Principal, organization_id: uuid.UUID) -> OrgSettings:
    _require(principal, organization_id, None, ["organizationId"])
    async with rt.db.session() as s:
        row = await s.get(SettingsRow, organization_id)
    return _of_row(row) if row is not None else defaults(organization_id)


async def _locked(uow: UnitOfWork, organization_id: uuid.UUID) -> SettingsRow | None:
    stmt = (select(SettingsRow).where(SettingsRow.organization_id == organization_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await uow.session.execute(stmt)).scalar_one_or_none()


async def update_settings(rt: Runtime, principal: Principal, organization_id: uuid.UUID, changes: dict[str, Any], *,
                          request_id: str | None = None) -> OrgSettings:
    """Change the knobs in `changes` (by column name); see the module docstring."""
    _require(principal, organization_id, Role.editor, ["input", "organizationId"])
    values = validate(changes)
    async with rt.db.unit_of_work() as uow:
        row = await _locked(uow, organization_id)
        before = _of_row(row) if row is not None else defaults(organization_id)
        after = replace(before, **values)
        EngineSettings.from_dict({f.name: getattr(after, f.name) for f in fields(EngineSettings)})  # never fails
        if after.snapshot() == before.snapshot():
            return before
        if row is None:
            now = utcnow()
            engine = {k.column: getattr(before, k.column) for k in KNOBS}
            await uow.session.execute(insert(SettingsRow).values(
                organization_id=organization_id, cooccurrence_model={}, created_at=now, updated_at=now, **engine,
            ).on_conflict_do_nothing(index_elements=[SettingsRow.organization_id]))
            row = await _locked(uow, organization_id)
            before = _of_row(row)  # a row made meanwhile (a learned model) holds the defaults too
        for column, value in values.items():
            setattr(row, column, value)
        row.updated_at = utcnow()
        after = _of_row(row)
        old, new = before.snapshot(), after.snapshot()
        audit.record(uow, principal, "correlation_settings.update", organization_id=organization_id,
                     target_type="CorrelationSettings", target_id=organization_id,
                     summary="changed correlation settings: " + ", ".join(k for k in new if new[k] != old[k]),
                     before={k: v for k, v in old.items() if new[k] != v},
                     after={k: v for k, v in new.items() if old[k] != v}, request_id=request_id)

        async def use_at_once() -> None:
            tuning.drop_cached_settings(rt, organization_id)

        uow.after_commit(use_at_once)
    return after
