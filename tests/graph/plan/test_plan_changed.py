"""`planChanged(projectId:)` over a real websocket (graphql-transport-ws), and the project
activity feed, both fed by project mutations through changes.plan_changed."""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import connect

from graph.core.node import from_global_id
from server.domains.plan.changes import plan_channel
from tests.graph.plan.helpers import DELETE, UPDATE, Org

SUBSCRIPTION = """subscription($project: ID!) { planChanged(projectId: $project) { entityType entityId action projectId } }"""
ACTIVITY = """query($org: ID!, $project: ID, $first: Int!) { activity(organizationId: $org, projectId: $project, first: $first) {
  edges { node { action summary targetType targetId projectId actorEmail } } } }"""


async def _recv(ws, timeout: float = 5.0) -> dict:  # noqa: ANN001
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get("type") not in ("ping", "pong", "ka"):
            return msg


async def _subscribe(ws, token: str, project_id: str) -> None:  # noqa: ANN001
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert (await _recv(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe",
                              "payload": {"query": SUBSCRIPTION, "variables": {"project": project_id}}}))


async def _wait_subscribed(live, project_id: str, count: int = 1) -> None:  # noqa: ANN001
    channel = plan_channel(from_global_id(project_id)[1])
    deadline = time.monotonic() + 5
    while live.runtime.hub.subscriber_count(channel) < count:
        assert time.monotonic() < deadline, "the subscription never reached the hub"
        await asyncio.sleep(0.01)


async def test_a_viewer_hears_project_changes_and_the_deletion_ends_the_subscription(live, org):
    project = await org.project("Live plan")
    viewer = await org.member("viewer")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await _subscribe(ws, viewer, project["id"])
        await _wait_subscribed(live, project["id"])

        data = await org(UPDATE, {"input": {"id": project["id"], "name": "Live plan v2"}})
        assert data["projectUpdate"]["userErrors"] == []
        msg = await _recv(ws)
        assert msg["type"] == "next" and msg["id"] == "1", msg
        assert msg["payload"]["data"]["planChanged"] == {"entityType": "PROJECT", "entityId": project["id"],
                                                          "action": "UPDATED", "projectId": project["id"]}

        data = await org(UPDATE, {"input": {"id": project["id"], "name": "Live plan v2"}})  # no change: no message
        data = await org(DELETE, {"input": {"id": project["id"]}})
        assert data["projectDelete"]["userErrors"] == []
        msg = await _recv(ws)
        assert msg["payload"]["data"]["planChanged"]["action"] == "DELETED", msg
        assert (await _recv(ws)) == {"id": "1", "type": "complete"}


async def test_a_stranger_cannot_subscribe_to_a_project(live, gql, org):
    project = await org.project("Private plan")
    stranger = await Org.create(gql, "Strangers")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await _subscribe(ws, stranger.token, project["id"])
        msg = await _recv(ws)
        errors = msg["payload"] if msg["type"] == "error" else msg["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", msg
        assert msg["type"] == "error" or msg["payload"]["data"] is None


async def test_a_refused_change_publishes_nothing(live, org):
    project = await org.project("Quiet plan")
    viewer = await org.member("viewer")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await _subscribe(ws, org.token, project["id"])
        await _wait_subscribed(live, project["id"])
        data = await org(UPDATE, {"input": {"id": project["id"], "name": "Loud"}}, viewer)
        assert data["projectUpdate"]["userErrors"][0]["code"] == "FORBIDDEN"
        data = await org(UPDATE, {"input": {"id": project["id"], "slug": "Bad Slug"}})
        assert data["projectUpdate"]["userErrors"][0]["code"] == "VALIDATION"
        data = await org(UPDATE, {"input": {"id": project["id"], "description": "now"}})
        assert data["projectUpdate"]["userErrors"] == []
        msg = await _recv(ws)  # the first message is the successful change's
        assert msg["payload"]["data"]["planChanged"]["action"] == "UPDATED"
        assert msg["payload"]["data"]["planChanged"]["entityId"] == project["id"]


async def test_activity_feeds_filter_by_project_newest_first(org):
    one, two = await org.project("One"), await org.project("Two")
    await org(UPDATE, {"input": {"id": one["id"], "description": "changed"}})
    feed = (await org(ACTIVITY, {"org": org.org_id, "project": one["id"], "first": 10}))["activity"]["edges"]
    assert [(e["node"]["action"], e["node"]["projectId"]) for e in feed] == [
        ("project.update", one["id"]), ("project.create", one["id"])]
    assert feed[0]["node"]["targetType"] == "Project"
    assert feed[0]["node"]["actorEmail"] == org.user["email"]
    workspace = (await org(ACTIVITY, {"org": org.org_id, "project": None, "first": 3}))["activity"]["edges"]
    assert [(e["node"]["action"], e["node"]["projectId"]) for e in workspace] == [
        ("project.update", one["id"]), ("project.create", two["id"]), ("project.create", one["id"])]
    viewer = await org.member("viewer")
    seen = (await org(ACTIVITY, {"org": org.org_id, "project": two["id"], "first": 1}, viewer))["activity"]["edges"]
    assert [e["node"]["action"] for e in seen] == ["project.create"]


async def test_a_removed_member_stops_hearing_changes(live, gql, org, monkeypatch):
    from graph.plan import subscriptions
    from tests.graph.accounts.helpers import MEMBERSHIP_REMOVE, add_member

    monkeypatch.setattr(subscriptions, "ACCESS_RECHECK_SECONDS", 0.0)  # the live server runs in this process
    project = await org.project("Revocable")
    viewer, _, membership = await add_member(gql, org.token, org.org_id, "viewer")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await _subscribe(ws, viewer, project["id"])
        await _wait_subscribed(live, project["id"])
        await org(UPDATE, {"input": {"id": project["id"], "description": "seen"}})
        assert (await _recv(ws))["payload"]["data"]["planChanged"]["action"] == "UPDATED"

        removed = await org(MEMBERSHIP_REMOVE, {"input": {"id": membership}})
        assert removed["membershipRemove"]["userErrors"] == []
        await org(UPDATE, {"input": {"id": project["id"], "description": "not for you"}})
        assert (await _recv(ws)) == {"id": "1", "type": "complete"}
