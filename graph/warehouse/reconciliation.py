"""Reconciliation (seed 003's reconciliation tag and drift actions): `shadowEvents`,
`shadowEventAccept`, `shadowEventDismiss`, `deadEvents`, `deadEventsArchive`, `coverage`,
`schemaDrifts`, `schemaDriftUpdate`. Thin wrappers over server/domains/warehouse/reconciliation.py;
mutations report expected failures as `userErrors`, queries as GraphQL errors with a code."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from graph.core.cost import COST_ITEMS
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id
from graph.core.scalars import BigInt
from graph.plan.common import decode_input_id
from graph.plan.types import Event, EventStatus
from graph.warehouse.types import DriftStatus, ScanConfig, SchemaDrift, ShadowEvent, ShadowEventStatus, _scan_config
from server.domains.warehouse import reconciliation as rec


@strawberry.type(description="A project's shadow events: names seen in the warehouse but missing from the plan.")
class ShadowEventList:
    items: list[ShadowEvent] = strawberry.field(description="Most recently seen first, at most `first`.",
                                               metadata={COST_ITEMS: 1})  # sized by `first` of the query
    total: int = strawberry.field(description="Shadow events of the asked status (all when none was asked).")
    new_count: int = strawberry.field(description="Shadow events still NEW (whatever status was asked).")


@strawberry.type(description="LIVE or IMPLEMENTED events no scan has seen for `days` days (or ever).")
class DeadEvents:
    days: int
    total: int
    items: list[Event] = strawberry.field(description="Never seen first, then longest unseen; at most `first`.",
                                         metadata={COST_ITEMS: 1})  # sized by `first` of the query


@strawberry.type(description="Warehouse rows matching the plan versus shadow events, for one scan config or all.")
class CoverageItem:
    planned_volume: BigInt = strawberry.field(description="Rows of plan events.")
    shadow_volume: BigInt = strawberry.field(description="Rows of names missing from the plan.")
    total_volume: BigInt
    planned_events: int = strawberry.field(description="Plan events with rows.")
    shadow_events: int = strawberry.field(description="Shadow events with rows.")
    coverage: float | None = strawberry.field(description="planned / total, 0..1 (null when nothing was counted).")
    scan_config_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def of(cls, c: rec.CoverageItem) -> "CoverageItem":
        return cls(planned_volume=c.planned_volume, shadow_volume=c.shadow_volume, total_volume=c.total_volume,
                   planned_events=c.planned_events, shadow_events=c.shadow_events, coverage=c.coverage,
                   scan_config_row_id=c.scan_config_id)

    @strawberry.field(description="Null for the summary.")
    async def scan_config(self, info: strawberry.Info) -> ScanConfig | None:
        return await _scan_config(info, self.scan_config_row_id)


@strawberry.type(description="Share of warehouse rows that match the plan over the last `days`, per scan config.")
class Coverage:
    days: int
    items: list[CoverageItem]
    summary: CoverageItem


@strawberry.type(description="A project's schema drifts.")
class SchemaDriftList:
    items: list[SchemaDrift] = strawberry.field(description="Newest detection first, at most `first`.",
                                               metadata={COST_ITEMS: 1})  # sized by `first` of the query
    total: int


@strawberry.enum(name="SchemaDriftAction", description="What to decide about a schema drift.")
class SchemaDriftAction(enum.Enum):
    ACCEPT = "accept"
    SNOOZE = "snooze"
    FALSE_POSITIVE = "false_positive"
    REOPEN = "reopen"


@strawberry.input(description="Add a shadow event to the plan as a LIVE event.")
class ShadowEventAcceptInput:
    id: strawberry.ID
    event_type_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the event type it matched, else the plan's event type named like its "
                                  "warehouse event type value.")
    name: str | None = strawberry.field(default=None, description="Default: the shadow event's name (1 to 500 "
                                                                  "characters, unique in its event type).")


@strawberry.input
class ShadowEventDismissInput:
    id: strawberry.ID


@strawberry.input(description="Move events (usually dead ones) to a status in bulk, all or none.")
class DeadEventsArchiveInput:
    project_id: strawberry.ID
    event_ids: list[strawberry.ID] = strawberry.field(description="1 to 500 events of the project.")
    status: EventStatus = strawberry.field(default=EventStatus.ARCHIVED)  # type: ignore[attr-defined]


@strawberry.input
class SchemaDriftUpdateInput:
    id: strawberry.ID
    action: SchemaDriftAction
    note: str | None = strawberry.field(default=None, description="Up to 2000 characters, kept with the decision.")
    snoozed_until: datetime | None = strawberry.field(default=None, description="Required for SNOOZE (in the future); "
                                                                               "not allowed otherwise.")


@strawberry.type
class ShadowEventAcceptPayload:
    shadow_event: ShadowEvent | None = None
    event: Event | None = strawberry.field(default=None, description="The new plan event.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ShadowEventDismissPayload:
    shadow_event: ShadowEvent | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeadEventsArchivePayload:
    archived_count: int = 0
    status: EventStatus | None = None
    events: list[Event] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SchemaDriftUpdatePayload:
    schema_drift: SchemaDrift | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _project_id(gid: strawberry.ID) -> uuid.UUID:
    return decode_id(gid, "Project", "projectId")


@strawberry.type
class ReconciliationQuery:
    @strawberry.field(description="Shadow events of a project (of `status`, else all), at most `first` (1 to 500, "
                                  "default 100), with the count of NEW ones.")
    async def shadow_events(self, info: strawberry.Info, project_id: strawberry.ID,
                            status: ShadowEventStatus | None = None, first: int = 100) -> ShadowEventList:
        ctx = info.context
        r = await rec.shadow_events(ctx.rt, ctx.principal, _project_id(project_id), status, first)
        return ShadowEventList(items=[ShadowEvent.from_row(x) for x in r.items], total=r.total, new_count=r.new_count)

    @strawberry.field(description="LIVE or IMPLEMENTED events no scan has seen for `days` (1 to 365, default 30) or "
                                  "ever; at most `first` (1 to 500, default 100).")
    async def dead_events(self, info: strawberry.Info, project_id: strawberry.ID, days: int = 30,
                          first: int = 100) -> DeadEvents:
        ctx = info.context
        n, total, rows = await rec.dead_events(ctx.rt, ctx.principal, _project_id(project_id), days, first)
        return DeadEvents(days=n, total=total, items=[Event.from_row(r) for r in rows])

    @strawberry.field(description="Share of the warehouse rows of the last `days` (1 to 180, default 14) that match "
                                  "plan events, per scan config (or only `scanConfigId`), with a summary.")
    async def coverage(self, info: strawberry.Info, project_id: strawberry.ID, days: int = 14,
                       scan_config_id: strawberry.ID | None = None) -> Coverage:
        ctx = info.context
        config = decode_id(scan_config_id, "ScanConfig", "scanConfigId") if scan_config_id else None
        n, items, summary = await rec.coverage(ctx.rt, ctx.principal, _project_id(project_id), days, config)
        return Coverage(days=n, items=[CoverageItem.of(i) for i in items], summary=CoverageItem.of(summary))

    @strawberry.field(description="Schema drifts of a project (of `status` / `eventTypeId` when given), newest first, "
                                  "at most `first` (1 to 500, default 100).")
    async def schema_drifts(self, info: strawberry.Info, project_id: strawberry.ID, status: DriftStatus | None = None,
                            event_type_id: strawberry.ID | None = None, first: int = 100) -> SchemaDriftList:
        ctx = info.context
        type_id = decode_id(event_type_id, "EventType", "eventTypeId") if event_type_id else None
        total, rows = await rec.schema_drifts(ctx.rt, ctx.principal, _project_id(project_id), status, type_id, first)
        return SchemaDriftList(items=[SchemaDrift.from_row(r) for r in rows], total=total)


@strawberry.type
class ReconciliationMutation:
    @strawberry.mutation(description="Add a shadow event to the plan (a LIVE event); it becomes ACCEPTED. Editors.")
    async def shadow_event_accept(self, info: strawberry.Info, input: ShadowEventAcceptInput) -> ShadowEventAcceptPayload:
        ctx = info.context

        async def work() -> ShadowEventAcceptPayload:
            row, event = await rec.accept_shadow_event(
                ctx.rt, ctx.principal, decode_input_id(input.id, "ShadowEvent", "id"),
                decode_input_id(input.event_type_id, "EventType", "eventTypeId") if input.event_type_id else None,
                input.name, request_id=ctx.request_id)
            return ShadowEventAcceptPayload(shadow_event=ShadowEvent.from_row(row), event=Event.from_row(event))

        return await mutate(ShadowEventAcceptPayload, work)

    @strawberry.mutation(description="Dismiss a shadow event (not worth planning). Editors.")
    async def shadow_event_dismiss(self, info: strawberry.Info,
                                   input: ShadowEventDismissInput) -> ShadowEventDismissPayload:
        ctx = info.context

        async def work() -> ShadowEventDismissPayload:
            row = await rec.dismiss_shadow_event(ctx.rt, ctx.principal, decode_input_id(input.id, "ShadowEvent", "id"),
                                                 request_id=ctx.request_id)
            return ShadowEventDismissPayload(shadow_event=ShadowEvent.from_row(row))

        return await mutate(ShadowEventDismissPayload, work)

    @strawberry.mutation(description="Move events (e.g. dead ones) to a status (default ARCHIVED), all or none; "
                                     "returns how many. Editors.")
    async def dead_events_archive(self, info: strawberry.Info, input: DeadEventsArchiveInput) -> DeadEventsArchivePayload:
        ctx = info.context

        async def work() -> DeadEventsArchivePayload:
            ids = [decode_input_id(e, "Event", f"eventIds.{i}") for i, e in enumerate(input.event_ids)]
            rows = await rec.archive_dead_events(ctx.rt, ctx.principal, decode_input_id(input.project_id, "Project",
                                                                                         "projectId"),
                                                 ids, input.status, request_id=ctx.request_id)
            return DeadEventsArchivePayload(archived_count=len(rows), status=input.status,
                                            events=[Event.from_row(r) for r in rows])

        return await mutate(DeadEventsArchivePayload, work)

    @strawberry.mutation(description="Decide about a schema drift: ACCEPT, SNOOZE (until `snoozedUntil`), "
                                     "FALSE_POSITIVE or REOPEN, with a note. Editors.")
    async def schema_drift_update(self, info: strawberry.Info, input: SchemaDriftUpdateInput) -> SchemaDriftUpdatePayload:
        ctx = info.context

        async def work() -> SchemaDriftUpdatePayload:
            row = await rec.update_schema_drift(ctx.rt, ctx.principal, decode_input_id(input.id, "SchemaDrift", "id"),
                                                rec.DriftAction(input.action.value), input.note, input.snoozed_until,
                                                request_id=ctx.request_id)
            return SchemaDriftUpdatePayload(schema_drift=SchemaDrift.from_row(row))

        return await mutate(SchemaDriftUpdatePayload, work)


__all__ = ["ReconciliationMutation", "ReconciliationQuery"]
