"""Threaded photo comments through the real API: `photoCommentCreate` (body 1..4000, a parent on
the same photo), `EventPhoto.comments` / `PhotoComment.replies`, `photoCommentDelete` (the author
or an organization owner; replies go too), roles, tenant isolation, audit and `planChanged`."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.graph.accounts.helpers import api_key
from tests.graph.plan.catalog import audit_actions, recv, subscribe_plan
from tests.graph.plan.helpers import Org, errors_of
from tests.graph.plan.photo_ops import COMMENT_CREATE, COMMENT_DELETE, DELETE, THREADS, PhotoPlan, png, upload

NODE = "query($id: ID!) { node(id: $id) { id } }"


@pytest.fixture
async def photo(live, org):  # noqa: ANN001, ANN201
    plan = await PhotoPlan.create(org)
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        return (await upload(http, org.token, plan.event, png()))["photo"] | {"project": plan.project,
                                                                              "eventId": plan.event}


async def comment(org: Org, photo_id: str, body: str, parent: str | None = None, token: str | None = None) -> dict:
    data = await org(COMMENT_CREATE, {"input": {"photoId": photo_id, "body": body, "parentId": parent}}, token)
    assert data["photoCommentCreate"]["userErrors"] == [], data
    return data["photoCommentCreate"]["comment"]


async def test_a_thread_of_comments_and_replies(org, photo):
    viewer = await org.member("viewer")
    top = await comment(org, photo["id"], "  Is this the new checkout?  ")
    assert (top["body"], top["parentId"], top["parent"], top["author"], top["photo"]) == (
        "Is this the new checkout?", None, None, {"id": org.user["id"]}, {"id": photo["id"]})
    reply = await comment(org, photo["id"], "Yes, v2", top["id"], viewer)  # viewers may comment
    nested = await comment(org, photo["id"], "Thanks", reply["id"])
    second = await comment(org, photo["id"], "Another topic")
    assert reply["parentId"] == top["id"] and reply["parent"] == {"id": top["id"]}

    node = (await org(THREADS, {"id": photo["id"]}))["node"]
    assert [c["id"] for c in node["comments"]] == [top["id"], second["id"]]
    assert [r["id"] for r in node["comments"][0]["replies"]] == [reply["id"]]
    assert node["comments"][0]["replies"][0]["replies"] == [{"id": nested["id"], "body": "Thanks",
                                                             "parentId": reply["id"]}]
    assert node["comments"][1]["replies"] == []


async def test_body_and_parent_are_checked(gql, org, photo):
    for body in ("", "   ", "x" * 4001):
        data = await org(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": body}})
        assert errors_of(data["photoCommentCreate"]) == [("VALIDATION", ["input", "body"])], len(body)
    assert (await comment(org, photo["id"], "x" * 4000))["body"] == "x" * 4000
    assert (await comment(org, photo["id"], "x"))["body"] == "x"

    async with httpx.AsyncClient(base_url=org.gql.base_url, timeout=30) as http:
        other_photo = (await upload(http, org.token, photo["eventId"], png(seed=5)))["photo"]
    elsewhere = await comment(org, other_photo["id"], "on another photo")
    data = await org(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": "reply", "parentId": elsewhere["id"]}})
    assert errors_of(data["photoCommentCreate"]) == [("VALIDATION", ["input", "parentId"])]
    data = await org(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": "reply", "parentId": photo["id"]}})
    assert errors_of(data["photoCommentCreate"]) == [("VALIDATION", ["input", "parentId"])]
    data = await org(COMMENT_CREATE, {"input": {"photoId": photo["eventId"], "body": "hi"}})
    assert errors_of(data["photoCommentCreate"]) == [("VALIDATION", ["input", "photoId"])]


async def test_other_organizations_and_read_only_keys_cannot_comment(gql, org, photo):
    other = await Org.create(gql, "Other Co")
    data = await other(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": "hello"}})
    assert errors_of(data["photoCommentCreate"]) == [("NOT_FOUND", ["input", "photoId"])]
    mine = await comment(org, photo["id"], "private")
    assert (await other(NODE, {"id": mine["id"]}))["node"] is None
    assert (await other(THREADS, {"id": photo["id"]}))["node"] is None
    data = await other(COMMENT_DELETE, {"input": {"id": mine["id"]}})
    assert errors_of(data["photoCommentDelete"]) == [("NOT_FOUND", ["input", "id"])]

    read_key, _ = await api_key(gql, org.token, scope="read")
    data = await org(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": "hello"}}, read_key)
    assert errors_of(data["photoCommentCreate"]) == [("FORBIDDEN", None)]
    assert len((await org(THREADS, {"id": photo["id"]}, read_key))["node"]["comments"]) == 1  # but may read


async def test_the_author_or_an_owner_deletes_a_comment_and_its_replies_go_too(org, photo):
    editor = await org.member("editor")
    viewer = await org.member("viewer")
    top = await comment(org, photo["id"], "by the editor", token=editor)
    reply = await comment(org, photo["id"], "reply", top["id"], viewer)
    nested = await comment(org, photo["id"], "nested", reply["id"], editor)

    data = await org(COMMENT_DELETE, {"input": {"id": top["id"]}}, viewer)  # not the author, not an owner
    assert errors_of(data["photoCommentDelete"]) == [("FORBIDDEN", None)]
    other_editor = await org.member("editor")
    data = await org(COMMENT_DELETE, {"input": {"id": top["id"]}}, other_editor)  # editors are not owners
    assert errors_of(data["photoCommentDelete"]) == [("FORBIDDEN", None)]

    data = await org(COMMENT_DELETE, {"input": {"id": reply["id"]}}, viewer)  # a viewer deletes their own
    assert data["photoCommentDelete"] == {"deletedCommentId": reply["id"], "deletedReplyIds": [nested["id"]],
                                          "userErrors": []}
    assert (await org(NODE, {"id": nested["id"]}))["node"] is None

    again = await comment(org, photo["id"], "reply 2", top["id"], viewer)
    data = await org(COMMENT_DELETE, {"input": {"id": top["id"]}})  # the organization owner
    assert data["photoCommentDelete"]["userErrors"] == []
    assert data["photoCommentDelete"]["deletedReplyIds"] == [again["id"]]
    assert (await org(THREADS, {"id": photo["id"]}))["node"]["comments"] == []
    data = await org(COMMENT_DELETE, {"input": {"id": top["id"]}})
    assert errors_of(data["photoCommentDelete"]) == [("NOT_FOUND", ["input", "id"])]


async def test_deleting_the_photo_deletes_its_comments(org, photo):
    top = await comment(org, photo["id"], "soon gone")
    data = await org(DELETE, {"input": {"id": photo["id"]}})
    assert data["eventPhotoDelete"]["userErrors"] == []
    assert (await org(NODE, {"id": top["id"]}))["node"] is None


async def test_comments_are_audited_and_announced(live, org, photo):
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, photo["project"])
        top = await comment(org, photo["id"], "hello")
        msg = await recv(ws)
        assert msg["payload"]["data"]["planChanged"] == {"entityType": "PHOTO_COMMENT", "entityId": top["id"],
                                                          "action": "CREATED", "projectId": photo["project"]}
        reply = await comment(org, photo["id"], "re", top["id"])
        await recv(ws)
        await org(COMMENT_DELETE, {"input": {"id": top["id"]}})
        got = {(await recv(ws))["payload"]["data"]["planChanged"]["entityId"] for _ in range(2)}
        assert got == {top["id"], reply["id"]}
    actions = [a["action"] for a in await audit_actions(org, photo["project"])]
    assert "photo_comment.create" in actions and "photo_comment.delete" in actions
