"""Incident mutations: thin wrappers that decode IDs, call the service and shape the payload.
Expected failures come back as `userErrors` (graph.core.errors.mutate)."""

from __future__ import annotations

import uuid

import strawberry

from graph.core.errors import UserError, mutate
from graph.core.node import decode_id
from graph.incidents.inputs import (
    AlertMoveInput,
    AlertUnlinkInput,
    IncidentAcknowledgeInput,
    IncidentMergeInput,
    IncidentReopenInput,
    IncidentResolveInput,
    IncidentUpdateInput,
)
from graph.incidents.types import Alert, Incident
from server.domains.incidents import service
from server.errors import DomainError, invalid


def _decode(gid: str, type_name: str, field: str) -> uuid.UUID:
    """The UUID of a global ID given as `input.<field>`, with the error pointing at that field."""
    try:
        return decode_id(gid, type_name)
    except DomainError as e:
        raise invalid(e.message, ["input", field]) from None


def _incident(row) -> Incident | None:  # noqa: ANN001
    return Incident.from_row(row) if row is not None else None


@strawberry.type
class IncidentAcknowledgePayload:
    incident: Incident | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class IncidentResolvePayload:
    incident: Incident | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class IncidentReopenPayload:
    incident: Incident | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class IncidentUpdatePayload:
    incident: Incident | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class IncidentMergePayload:
    incident: Incident | None = strawberry.field(default=None, description="The target, now holding the source's alerts.")
    source_incident: Incident | None = strawberry.field(default=None, description="The source, now MERGED.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AlertMovePayload:
    alert: Alert | None = None
    incident: Incident | None = strawberry.field(default=None, description="Where the alert is now.")
    source_incident: Incident | None = strawberry.field(default=None, description="Where it was (null if none).")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AlertUnlinkPayload:
    alert: Alert | None = None
    incident: Incident | None = strawberry.field(default=None, description="The new incident the alert opened.")
    source_incident: Incident | None = strawberry.field(default=None, description="Where it was (null if none).")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _maybe(value):  # noqa: ANN001, ANN202
    """strawberry.Maybe -> the service's patch value (UNSET when absent)."""
    return service.UNSET if value is None else value.value


async def _status_change(info: strawberry.Info, incident_id: strawberry.ID, change, payload):  # noqa: ANN001, ANN202
    """Acknowledge, resolve and reopen: one incident ID in, the changed incident out."""
    ctx = info.context

    async def work():  # noqa: ANN202
        row = await change(ctx.rt, ctx.principal, _decode(incident_id, "Incident", "id"), request_id=ctx.request_id)
        return payload(incident=_incident(row))

    return await mutate(payload, work)


@strawberry.type
class IncidentsMutation:
    @strawberry.mutation(description="Someone is on it: ACKNOWLEDGED, with the time and who. Editors and owners.")
    async def incident_acknowledge(self, info: strawberry.Info, input: IncidentAcknowledgeInput) -> IncidentAcknowledgePayload:
        return await _status_change(info, input.id, service.acknowledge, IncidentAcknowledgePayload)

    @strawberry.mutation(description="Mark the incident RESOLVED, with the time and who. Editors and owners.")
    async def incident_resolve(self, info: strawberry.Info, input: IncidentResolveInput) -> IncidentResolvePayload:
        return await _status_change(info, input.id, service.resolve, IncidentResolvePayload)

    @strawberry.mutation(description="Open a RESOLVED incident again (INVESTIGATING). Editors and owners.")
    async def incident_reopen(self, info: strawberry.Info, input: IncidentReopenInput) -> IncidentReopenPayload:
        return await _status_change(info, input.id, service.reopen, IncidentReopenPayload)

    @strawberry.mutation(description="Change an incident's fields (absent ones stay). Editors and owners.")
    async def incident_update(self, info: strawberry.Info, input: IncidentUpdateInput) -> IncidentUpdatePayload:
        ctx = info.context

        async def work() -> IncidentUpdatePayload:
            assignee = _maybe(input.assignee_id)
            if assignee is not service.UNSET and assignee is not None:
                assignee = _decode(assignee, "User", "assigneeId")
            priority = _maybe(input.priority)
            patch = service.IncidentPatch(
                title=_maybe(input.title), description=_maybe(input.description), severity=_maybe(input.severity),
                status=_maybe(input.status), assignee_id=assignee, environment=_maybe(input.environment),
                service=_maybe(input.service), priority=priority.value if priority not in (service.UNSET, None) else priority,
                category=_maybe(input.category), business_unit=_maybe(input.business_unit),
                service_tier=_maybe(input.service_tier))
            row = await service.update_incident(ctx.rt, ctx.principal, _decode(input.id, "Incident", "id"), patch,
                                                request_id=ctx.request_id)
            return IncidentUpdatePayload(incident=_incident(row))

        return await mutate(IncidentUpdatePayload, work)

    @strawberry.mutation(description="Merge the source incident into the target: the source becomes MERGED and its "
                                     "alerts move to the target. Editors and owners.")
    async def incident_merge(self, info: strawberry.Info, input: IncidentMergeInput) -> IncidentMergePayload:
        ctx = info.context

        async def work() -> IncidentMergePayload:
            source, target = await service.merge(
                ctx.rt, ctx.principal, _decode(input.source_incident_id, "Incident", "sourceIncidentId"),
                _decode(input.target_incident_id, "Incident", "targetIncidentId"), request_id=ctx.request_id)
            return IncidentMergePayload(incident=_incident(target), source_incident=_incident(source))

        return await mutate(IncidentMergePayload, work)

    @strawberry.mutation(description="Move one alert to another incident of its organization. Editors and owners.")
    async def alert_move(self, info: strawberry.Info, input: AlertMoveInput) -> AlertMovePayload:
        ctx = info.context

        async def work() -> AlertMovePayload:
            alert, source, target = await service.move_alert(
                ctx.rt, ctx.principal, _decode(input.alert_id, "Alert", "alertId"),
                _decode(input.incident_id, "Incident", "incidentId"), request_id=ctx.request_id)
            return AlertMovePayload(alert=Alert.from_row(alert), incident=_incident(target),
                                    source_incident=_incident(source))

        return await mutate(AlertMovePayload, work)

    @strawberry.mutation(description="Split one alert off its incident into a new incident of its own. Editors and owners.")
    async def alert_unlink(self, info: strawberry.Info, input: AlertUnlinkInput) -> AlertUnlinkPayload:
        ctx = info.context

        async def work() -> AlertUnlinkPayload:
            alert, source, incident = await service.unlink_alert(
                ctx.rt, ctx.principal, _decode(input.alert_id, "Alert", "alertId"), request_id=ctx.request_id)
            return AlertUnlinkPayload(alert=Alert.from_row(alert), incident=_incident(incident),
                                      source_incident=_incident(source))

        return await mutate(AlertUnlinkPayload, work)
