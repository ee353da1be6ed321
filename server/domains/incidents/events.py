"""Incident events, published after commit.

`org:{organization_id}:incidents` carries one small message per incident event, for the
`incidentEvents` subscription:

    {"kind": "CREATED" | "UPDATED" | "ALERT_CORRELATED" | "MERGED" | "RESOLVED",
     "incidentId": "<uuid>", "eventId": "<hex>"}

`eventId` names the message, so the subscribers of one API process re-read the incident once per
message, not once each (see loaders.incident_for_event).

`org:{organization_id}:incident-created` carries the domain event the AI analysis work consumes
(a later issue); nothing consumes it yet, and the incident's `ai_status` stays `idle`:

    {"type": "IncidentCreated", "id": "<incident uuid>", "organizationId": "<uuid>"}

All messages of one transaction go out in one Redis round trip (a pipeline). Publishing is best
effort, as everywhere: a lost event costs a client one refresh, never data.
"""

from __future__ import annotations

import enum
import logging
import uuid

import orjson
from redis.exceptions import RedisError

from server.db.engine import UnitOfWork
from server.pubsub.publish import org_channel
from server.runtime import Runtime

log = logging.getLogger("insights.incidents")

INCIDENTS_TOPIC = "incidents"
CREATED_TOPIC = "incident-created"


class IncidentEventKind(str, enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    ALERT_CORRELATED = "ALERT_CORRELATED"
    MERGED = "MERGED"
    RESOLVED = "RESOLVED"


_ORDER = list(IncidentEventKind)


class EventBatch:
    """The incident events of one transaction, in order, at most one of each kind per incident.
    A CREATED incident is not also announced as UPDATED or ALERT_CORRELATED (subscribers read it
    whole anyway), and ALERT_CORRELATED makes UPDATED redundant."""

    def __init__(self, organization_id: uuid.UUID):
        self.organization_id = organization_id
        self._kinds: dict[uuid.UUID, set[IncidentEventKind]] = {}

    def add(self, kind: IncidentEventKind, incident_id: uuid.UUID) -> None:
        self._kinds.setdefault(incident_id, set()).add(kind)

    def __bool__(self) -> bool:
        return bool(self._kinds)

    def messages(self) -> list[tuple[str, dict]]:
        out: list[tuple[str, dict]] = []
        incidents = org_channel(self.organization_id, INCIDENTS_TOPIC)
        for incident_id, kinds in self._kinds.items():
            if IncidentEventKind.CREATED in kinds:
                kinds = kinds - {IncidentEventKind.UPDATED, IncidentEventKind.ALERT_CORRELATED}
            if IncidentEventKind.ALERT_CORRELATED in kinds:
                kinds = kinds - {IncidentEventKind.UPDATED}
            for kind in sorted(kinds, key=_ORDER.index):
                out.append((incidents, {"kind": kind.value, "incidentId": str(incident_id),
                                        "eventId": uuid.uuid4().hex}))
            if IncidentEventKind.CREATED in kinds:
                out.append((org_channel(self.organization_id, CREATED_TOPIC),
                            {"type": "IncidentCreated", "id": str(incident_id),
                             "organizationId": str(self.organization_id)}))
        return out

    def publish_after_commit(self, uow: UnitOfWork, rt: Runtime) -> None:
        if not self:
            return
        messages = self.messages()

        async def send() -> None:
            try:
                async with rt.redis.pipeline(transaction=False) as pipe:
                    for channel, message in messages:
                        pipe.publish(channel, orjson.dumps(message))
                    await pipe.execute()
            except (RedisError, OSError) as e:
                log.warning("publishing %d incident events failed: %s", len(messages), e)

        uow.after_commit(send)
