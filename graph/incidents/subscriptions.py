"""`incidentEvents(organizationId:)`: every incident event of an organization, as it happens.

Members only (NOT_FOUND otherwise). Each pushed event re-reads the incident with fresh loaders;
the subscribers of one API process share that one read per event (loaders.incident_for_event),
each still checking its own access. The hub's per-subscriber queue is bounded: a subscriber that
falls too far behind is closed with RATE_LIMITED and subscribes again. A Redis reconnect (events
may have been lost meanwhile) pushes nothing: clients that must not miss a change re-read the
incidents list when their websocket reconnects.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator

import strawberry

from graph.core.node import decode_id
from graph.incidents.types import Incident, IncidentEvent, IncidentEventKind
from server.domains.incidents import loaders
from server.domains.incidents.events import INCIDENTS_TOPIC
from server.errors import DomainError, ErrorCode
from server.pubsub.hub import SubscriberDropped
from server.pubsub.publish import org_channel

_KINDS = {k.value: k for k in IncidentEventKind}
_NODES: OrderedDict[tuple[str, uuid.UUID], Incident] = OrderedDict()  # per event: one object for every subscriber
_NODES_MAX = 1024


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


@strawberry.type
class IncidentsSubscription:
    @strawberry.subscription(description="Incidents of the organization as they are created, updated, join alerts, "
                                          "are merged or resolve. Members only.")
    async def incident_events(self, info: strawberry.Info,
                              organization_id: strawberry.ID) -> AsyncGenerator[IncidentEvent, None]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        ctx.principal.require_member(org)
        async with ctx.rt.hub.subscribe(org_channel(org, INCIDENTS_TOPIC)) as events:
            try:
                async for event in events:
                    kind = _KINDS.get(event.get("kind"))
                    try:
                        incident_id = uuid.UUID(str(event.get("incidentId")))
                    except ValueError:
                        continue
                    if kind is None:
                        continue
                    ctx.reset_loaders()
                    event_id = event.get("eventId")
                    row = await loaders.incident_for_event(ctx.rt, ctx.principal, incident_id, event_id)
                    if row is None:
                        continue
                    yield IncidentEvent(kind=kind, incident=_node(row, event_id))
            except SubscriberDropped:
                raise DomainError(ErrorCode.RATE_LIMITED,
                                  "this subscription fell too far behind its events and was closed; subscribe again") from None
