"""Incident events on Redis after commit, and the domain event for the AI analysis work."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from server.domains.incidents.ingest import apply_normalized
from server.domains.incidents.normalizers.types import Normalized
from server.pubsub.publish import org_channel
from tests.server.incidents.pipeline.support import alert, incidents_of, ingest


@pytest.fixture
async def listen(rt):  # noqa: ANN001, ANN201
    pubsubs = []

    async def start(*channels: str):  # noqa: ANN202
        pubsub = rt.redis.pubsub()
        await pubsub.subscribe(*channels)
        for _ in channels:  # subscribe confirmations
            await pubsub.get_message(timeout=2)
        pubsubs.append(pubsub)
        return pubsub

    yield start
    for p in pubsubs:
        await p.aclose()


async def _messages(pubsub, wait: float = 0.5) -> list[tuple[str, dict]]:  # noqa: ANN001
    out = []
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if msg and msg["type"] == "message":
            out.append((msg["channel"].decode(), orjson.loads(msg["data"])))
    return out


async def test_each_incident_event_is_published_once_after_commit(rt, owner, listen):
    _, org = owner
    events, created = org_channel(org, "incidents"), org_channel(org, "incident-created")
    pubsub = await listen(events, created)
    await ingest(rt, org, alert("fp-1"), alert("fp-2", title="Checkout pods restarting"))
    [incident] = await incidents_of(rt, org)
    got = await _messages(pubsub)
    assert [(c, m.get("kind") or m.get("type"), m.get("incidentId") or m.get("id")) for c, m in got] == [
        (events, "CREATED", str(incident.id)), (created, "IncidentCreated", str(incident.id))]
    assert got[1][1]["organizationId"] == str(org) and len(got[0][1]["eventId"]) == 32

    await ingest(rt, org, alert("fp-3", title="Checkout errors 5xx"))
    await ingest(rt, org, alert("fp-1", status="resolved"), alert("fp-2", status="resolved"),
                 alert("fp-3", status="resolved"))
    got = await _messages(pubsub)
    assert [(m["kind"], m["incidentId"]) for _, m in got] == [
        ("ALERT_CORRELATED", str(incident.id)), ("UPDATED", str(incident.id)), ("RESOLVED", str(incident.id))]


async def test_a_rolled_back_delivery_publishes_nothing(rt, owner, listen):
    _, org = owner
    pubsub = await listen(org_channel(org, "incidents"), org_channel(org, "incident-created"))
    with pytest.raises(RuntimeError):
        async with rt.db.unit_of_work() as uow:
            await apply_normalized(uow, rt, organization_id=org, config_id=None, delivery_id=None,
                                   normalized=Normalized(alerts=[alert("fp-1")]))
            raise RuntimeError("the shim failed after ingesting")
    assert await _messages(pubsub) == []
    assert await incidents_of(rt, org) == []
