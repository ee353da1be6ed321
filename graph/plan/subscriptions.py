"""`planChanged(projectId:)`: which plan objects of a project changed (type, global ID, action),
so a UI refreshes the rows it shows. Messages come from server/domains/plan/changes.py.

Members of the project's organization only (NOT_FOUND otherwise; a project-bound key only for its
project). Access is checked again for every pushed change against the principal, and against the
database (project still there, caller still a member) at most every ACCESS_RECHECK_SECONDS, so a
removed member stops hearing changes without costing a query per change and subscriber. The
project's own deletion is pushed, then the subscription ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator

import strawberry

from graph.core.node import decode_id, to_global_id
from graph.plan.types import PlanChange, PlanChangeAction, PlanEntityType
from server.domains.plan import access, loaders
from server.domains.plan.changes import PlanAction, PlanEntity, plan_channel
from server.errors import DomainError, ErrorCode, not_found
from server.pubsub.hub import SubscriberDropped

ACCESS_RECHECK_SECONDS = 5.0
_ENTITIES = {e.value: e for e in PlanEntity}
_ACTIONS = {a.value: a for a in PlanAction}


def _change(event: dict, project_gid: str) -> PlanChange | None:
    """The message as a `PlanChange`, or None for anything malformed (or a hub Resync)."""
    entity, action = _ENTITIES.get(event.get("entityType")), _ACTIONS.get(event.get("action"))
    if entity is None or action is None:
        return None
    raw = event.get("entityId")
    try:
        entity_id = to_global_id(entity.value, uuid.UUID(str(raw))) if raw is not None else None
    except ValueError:
        return None
    return PlanChange(entity_type=PlanEntityType(entity.value), entity_id=entity_id,
                      action=PlanChangeAction(action.value), project_id=project_gid)


@strawberry.type
class PlanSubscription:
    @strawberry.subscription(description="Changes to a project's plan as they are committed: which object (type and ID) "
                                          "was created, updated or deleted. Members of the project's organization.")
    async def plan_changed(self, info: strawberry.Info, project_id: strawberry.ID) -> AsyncGenerator[PlanChange, None]:
        ctx = info.context
        project_row_id = decode_id(project_id, "Project", "projectId")
        ctx.principal.require_user()
        async with ctx.rt.hub.subscribe(plan_channel(project_row_id)) as events:
            # Subscribe first, then check: a change committed in between is not missed.
            project = await ctx.loader(loaders.load_projects).load(project_row_id)
            if project is None:
                raise not_found("project", ["projectId"])
            org = project.organization_id
            checked = time.monotonic()
            try:
                async for event in events:
                    change = _change(event, project_id)
                    if change is None:
                        continue
                    if not access.can_read(ctx.principal, org, project_row_id):
                        return
                    deleted = (change.entity_type.value == PlanEntity.PROJECT.value
                               and change.action.value == PlanAction.DELETED.value)
                    if not deleted and time.monotonic() - checked > ACCESS_RECHECK_SECONDS:
                        async with ctx.rt.db.session() as s:
                            if not await access.still_allowed(s, ctx.principal, project_row_id):
                                return
                        checked = time.monotonic()
                    ctx.reset_loaders()  # what a client resolves on the change reads fresh rows
                    yield change
                    if deleted:
                        return
            except SubscriberDropped:
                raise DomainError(ErrorCode.RATE_LIMITED,
                                  "this subscription fell too far behind its changes and was closed; subscribe again") from None
