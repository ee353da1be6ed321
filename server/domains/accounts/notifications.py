"""Per-user notification preferences: for each event kind, the channels it is delivered on.

Only the user's overrides are stored, so an event the user never touched follows the defaults
(including defaults added later).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from server.domains.accounts.models import NotificationPreferences
from server.domains.platform import audit
from server.errors import DomainErrors, invalid
from server.runtime import Runtime
from server.security.principal import Principal

CHANNELS = ("email", "in_app", "slack")

DEFAULTS: dict[str, tuple[str, ...]] = {
    "incident_created": ("email", "in_app"),
    "incident_resolved": ("in_app",),
    "analysis_completed": ("in_app",),
    "anomaly_detected": ("email", "in_app"),
    "drift_detected": ("in_app",),
    "job_finished": ("in_app",),
    "invite_received": ("email",),
    "weekly_digest": ("email",),
}
EVENTS = tuple(DEFAULTS)


def effective(overrides: dict | None) -> dict[str, list[str]]:
    """Every event with its channels: the stored choice, else the default. Channels in CHANNELS order."""
    overrides = overrides or {}
    out = {}
    for event, default in DEFAULTS.items():
        chosen = overrides.get(event, default)
        out[event] = [c for c in CHANNELS if c in chosen]
    return out


def validate_changes(changes: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """[(event, channels)] -> {event: channels}; unknown names and repeated events are rejected."""
    errors, seen = [], {}
    for i, (event, channels) in enumerate(changes):
        path = ["input", "preferences", str(i)]
        if event not in DEFAULTS:
            errors.append(invalid(f"unknown event `{event}`; known: {', '.join(EVENTS)}", path + ["event"]))
        elif event in seen:
            errors.append(invalid(f"event `{event}` is listed twice", path + ["event"]))
        bad = [c for c in channels if c not in CHANNELS]
        if bad:
            errors.append(invalid(f"unknown channel `{bad[0]}`; known: {', '.join(CHANNELS)}", path + ["channels"]))
        seen[event] = [c for c in CHANNELS if c in channels]
    if errors:
        raise DomainErrors(errors)
    return seen


async def get_preferences(rt: Runtime, principal: Principal) -> dict[str, list[str]]:
    user_id = principal.require_user()
    async with rt.db.session() as s:
        stored = await s.get(NotificationPreferences, user_id)
    return effective(stored.settings if stored else None)


async def update_preferences(rt: Runtime, principal: Principal, changes: list[tuple[str, list[str]]], *,
                             request_id: str | None = None) -> dict[str, list[str]]:
    """Set the channels of the listed events; others keep theirs. An empty channel list mutes an event."""
    user_id = principal.require_interactive()
    wanted = validate_changes(changes)
    async with rt.db.unit_of_work() as uow:
        await uow.session.execute(insert(NotificationPreferences).values(user_id=user_id, settings={})
                                  .on_conflict_do_nothing(index_elements=["user_id"]))
        row = (await uow.session.execute(select(NotificationPreferences).where(
            NotificationPreferences.user_id == user_id).with_for_update())).scalar_one()
        before = effective(row.settings)
        row.settings = {**(row.settings or {}), **wanted}  # a new dict, so the JSONB change is seen
        after = effective(row.settings)
        changed = {e: after[e] for e in wanted if before[e] != after[e]}
        if changed:
            audit.record(uow, principal, "notification_preferences.update", target_type="User", target_id=user_id,
                         summary="changed notification preferences",
                         before={e: before[e] for e in changed}, after=changed, request_id=request_id)
    return after
