"""`incidentEvents(organizationId:)`: every incident event of an organization, as it happens.

Members only (NOT_FOUND otherwise). Each pushed event is resolved afresh from the database, but
the work that would be the same for every subscriber of an API process is done once per event:

- `_prepare` (the channel's hub preparation, server/pubsub/hub.py) parses the message, reads the
  incident and the current role of every user listening on this process, once, before the
  message is handed out; each subscriber then checks its own access against that read. Without a
  preparation (it failed, or the subscriber arrived after it ran) the subscriber reads alone
  (loaders.incident_for_event shares the row read per event, `_role_now` batches role reads).
- Membership is checked at every event: a member removed from the organization gets NOT_FOUND
  and the subscription ends; a changed role applies from this event on.
- The selection is executed once per (event, document, variables, visibility of the subscriber)
  and the result shared (graph/core/shared.py). Subscribers with another selection, other
  variables or other memberships/roles/key scope execute on their own.

bench/incident_fanout.py (1,000 subscribers, one four-field selection) measures it: server CPU per
event went from ~470 ms to ~200 ms on the shared 2-core machine (`--ablate` puts back ~220 ms
without sharing the execution, ~40 ms without the hub's preparation, ~30 ms without the lean
extensions runner). What is left is mostly the socket writes and permessage-deflate, which are
per connection by nature.

The hub's per-subscriber queue is bounded: a subscriber that falls too far behind is closed with
RATE_LIMITED and subscribes again. A Redis reconnect (events may have been lost meanwhile) pushes
nothing: clients that must not miss a change re-read the incidents list when their websocket
reconnects.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import strawberry
from sqlalchemy import select
from strawberry.dataloader import DataLoader

from graph.core.node import decode_id
from graph.core.shared import share, visibility_key
from graph.incidents.types import Incident, IncidentEvent, IncidentEventKind
from server.domains.accounts.models import Membership, Role
from server.domains.incidents import loaders
from server.domains.incidents.events import INCIDENTS_TOPIC
from server.domains.incidents.models import Incident as IncidentRow
from server.errors import DomainError, ErrorCode, not_found
from server.pubsub.hub import SubscriberDropped
from server.pubsub.publish import org_channel
from server.runtime import Runtime

_KINDS = {k.value: k for k in IncidentEventKind}
_NODES: OrderedDict[tuple[str, uuid.UUID], Incident] = OrderedDict()  # per event: one object for every subscriber
_NODES_MAX = 1024
_ROLE_READS_MAX = 1024
_LISTENING: dict[uuid.UUID, Counter] = {}  # organization -> users with an incidentEvents subscription here
_UNKNOWN = object()
_SKIP = object()  # a message that is not an incident event


@dataclass(frozen=True, slots=True)
class _Prepared:
    kind: IncidentEventKind
    event_id: str | None
    row: IncidentRow | None
    node: Incident | None
    roles: dict[uuid.UUID, Role | None]  # of the users listening when it was read


def _parse(message: dict) -> tuple[IncidentEventKind, uuid.UUID] | None:
    kind = _KINDS.get(message.get("kind"))
    try:
        incident_id = uuid.UUID(str(message.get("incidentId")))
    except ValueError:
        return None
    return None if kind is None else (kind, incident_id)


async def _read_roles(rt: Runtime, organization_id: uuid.UUID, user_ids: list[uuid.UUID], session=None) -> list[Role | None]:  # noqa: ANN001
    if not user_ids:
        return []
    stmt = select(Membership.user_id, Membership.role).where(
        Membership.organization_id == organization_id, Membership.user_id.in_(user_ids))
    if session is None:
        async with rt.db.session() as s:
            roles = dict((await s.execute(stmt)).all())
    else:
        roles = dict((await session.execute(stmt)).all())
    return [roles.get(u) for u in user_ids]


async def _prepare(rt: Runtime, organization_id: uuid.UUID, message: dict) -> object:
    """Once per message and process: the incident as it is now, and who may still see it."""
    parsed = _parse(message)
    if parsed is None:
        return _SKIP
    kind, incident_id = parsed
    users = list(_LISTENING.get(organization_id, ()))
    async with rt.db.session() as s:
        row = await s.get(IncidentRow, incident_id)
        roles = await _read_roles(rt, organization_id, users, s)
    return _Prepared(kind, message.get("eventId"), row, None if row is None else Incident.from_row(row),
                     dict(zip(users, roles)))


def _node(row, event_id: str | None) -> Incident:  # noqa: ANN001
    """The `Incident` object of an event's row, built once per event and process (it holds no
    per-subscriber state: its relations resolve through each subscriber's own loaders)."""
    if event_id is None:
        return Incident.from_row(row)
    key = (event_id, row.id)
    node = _NODES.get(key)
    if node is None:
        node = _NODES[key] = Incident.from_row(row)
        while len(_NODES) > _NODES_MAX:
            _NODES.popitem(last=False)
    return node


def _role_now(rt: Runtime, organization_id: uuid.UUID, user_id: uuid.UUID, event_id: str | None):  # noqa: ANN202
    """The user's current role in the organization (None: no longer a member), as a future. The
    subscribers of one event share a DataLoader, so they are checked in one statement."""
    if event_id is None:
        loader = DataLoader(load_fn=functools.partial(_read_roles, rt, organization_id), cache=False)
    else:
        reads: OrderedDict = rt.extras.setdefault("incidents.event_roles", OrderedDict())
        key = (event_id, organization_id)
        loader = reads.get(key)
        if loader is None:
            loader = reads[key] = DataLoader(load_fn=functools.partial(_read_roles, rt, organization_id))
            while len(reads) > _ROLE_READS_MAX:
                reads.popitem(last=False)
    return loader.load(user_id)


@strawberry.type
class IncidentsSubscription:
    @strawberry.subscription(description="Incidents of the organization as they are created, updated, join alerts, "
                                          "are merged or resolve. Members only: a member removed from the "
                                          "organization gets NOT_FOUND and the subscription ends.")
    async def incident_events(self, info: strawberry.Info,
                              organization_id: strawberry.ID) -> AsyncGenerator[IncidentEvent, None]:
        ctx = info.context
        rt = ctx.rt
        org = decode_id(organization_id, "Organization", "organizationId")
        principal = ctx.principal
        principal.require_member(org)
        user_id = principal.user_id
        listening = _LISTENING.setdefault(org, Counter())
        listening[user_id] += 1
        try:
            async with rt.hub.subscribe(org_channel(org, INCIDENTS_TOPIC), functools.partial(_prepare, rt, org)) as events:
                async for event in events:
                    prepared = getattr(event, "prepared", None)
                    if prepared is _SKIP:
                        continue
                    if isinstance(prepared, _Prepared):
                        kind, event_id, row = prepared.kind, prepared.event_id, prepared.row
                        role = prepared.roles.get(user_id, _UNKNOWN)
                        if role is _UNKNOWN:  # subscribed after the preparation read the roles
                            role = await _role_now(rt, org, user_id, event_id)
                    else:
                        parsed = _parse(event)
                        if parsed is None:
                            continue
                        kind, incident_id = parsed
                        event_id = event.get("eventId")
                        role = _role_now(rt, org, user_id, event_id)  # read alongside the row
                        row = await loaders.incident_for_event(rt, principal, incident_id, event_id)
                        role = await role
                    if role is None:
                        principal.roles.pop(org, None)
                        raise not_found("organization")
                    if principal.roles.get(org) != role:
                        principal.roles[org] = role
                    if row is None or principal.role_in(row.organization_id) is None:
                        continue
                    ctx.reset_loaders()  # nested relations resolve with this event's fresh loaders
                    node = prepared.node if isinstance(prepared, _Prepared) else _node(row, event_id)
                    payload = IncidentEvent(kind=kind, incident=node)
                    if event_id is not None:
                        share(payload, ("incidentEvents", event_id, row.id, kind, visibility_key(principal)))
                    yield payload
        except SubscriberDropped:
            raise DomainError(ErrorCode.RATE_LIMITED,
                              "this subscription fell too far behind its events and was closed; subscribe again") from None
        finally:
            listening[user_id] -= 1
            if listening[user_id] <= 0:
                del listening[user_id]
                if not listening and _LISTENING.get(org) is listening:
                    del _LISTENING[org]
