"""Event types and their owners through the real API: create (with fields), list, update (patch),
delete (refused with events unless cascade), owners, every validation rule, roles, tenant
isolation, project-bound keys, audit, planChanged over a websocket, and the statement count of
`eventTypes { fields owners }`."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from server.domains.plan import models as m
from tests.graph.accounts.helpers import add_member, api_key
from tests.graph.plan.catalog import (
    ET_CREATE,
    ET_DELETE,
    ET_UPDATE,
    EVENT_TYPES,
    OWNER_ADD,
    OWNER_REMOVE,
    audit_actions,
    event_type,
    recv,
    subscribe_plan,
)
from tests.graph.plan.helpers import NODE, Org, errors_of
from tests.support.plan_rows import insert_row, raw
from tests.support.sql import count_statements


def _create(project_id: str, **values) -> dict:
    return {"input": {"projectId": project_id, "name": "checkout", "displayName": "Checkout", **values}}


async def _listed(org: Org, project_id: str, token: str | None = None) -> list[dict]:
    return (await org(EVENT_TYPES, {"project": project_id}, token))["eventTypes"]["nodes"]


async def test_create_with_defaults_and_fields_then_list_and_node(org):
    project = await org.project()
    created = await event_type(org, project["id"], "page_view", displayName=" Page view ", fields=[
        {"name": "url", "displayName": "URL", "fieldType": "URL", "isRequired": True},
        {"name": "plan", "displayName": "Plan", "fieldType": "ENUM", "enumOptions": ["free", "pro"]},
    ])
    assert (created["name"], created["displayName"], created["description"], created["color"], created["order"]) == (
        "page_view", "Page view", "", "#6366f1", 0)
    assert created["project"] == {"id": project["id"]} and created["owners"] == []
    assert [(f["name"], f["fieldType"], f["order"], f["isRequired"], f["sensitivity"], f["contractMaxBadRate"])
            for f in created["fields"]] == [("url", "URL", 0, True, "NONE", 0.0), ("plan", "ENUM", 1, False, "NONE", 0.0)]
    assert created["fields"][1]["enumOptions"] == ["free", "pro"]
    assert {f["eventType"]["id"] for f in created["fields"]} == {created["id"]}

    assert await _listed(org, project["id"]) == [created]
    assert (await org(NODE, {"id": created["id"]}))["node"] == {"__typename": "EventType", "id": created["id"]}
    actions = await audit_actions(org, project["id"])
    assert actions[0]["action"] == "event_type.create" and actions[0]["after"]["fields"] == ["url", "plan"]


async def test_types_without_an_order_go_last_and_the_list_follows_order_and_pages(org):
    project = await org.project()
    a = await event_type(org, project["id"], "a")
    b = await event_type(org, project["id"], "b")
    first = await event_type(org, project["id"], "first", order=-5)
    c = await event_type(org, project["id"], "c")
    assert (a["order"], b["order"], first["order"], c["order"]) == (0, 1, -5, 2)
    page = (await org(EVENT_TYPES, {"project": project["id"], "first": 2}))["eventTypes"]
    assert page["totalCount"] == 4 and page["pageInfo"]["hasNextPage"]
    rest = (await org(EVENT_TYPES, {"project": project["id"], "first": 2,
                                    "after": page["pageInfo"]["endCursor"]}))["eventTypes"]
    assert [t["name"] for t in page["nodes"] + rest["nodes"]] == ["first", "a", "b", "c"]
    assert not rest["pageInfo"]["hasNextPage"]


async def test_every_rule_of_create_is_a_user_error_and_nothing_is_created(org):
    project = await org.project()
    pid = project["id"]
    cases = [
        ({"name": ""}, [("VALIDATION", ["input", "name"])]),
        ({"name": "   "}, [("VALIDATION", ["input", "name"])]),
        ({"name": "n" * 101}, [("VALIDATION", ["input", "name"])]),
        ({"displayName": ""}, [("VALIDATION", ["input", "displayName"])]),
        ({"displayName": "d" * 256}, [("VALIDATION", ["input", "displayName"])]),
        ({"color": "red"}, [("VALIDATION", ["input", "color"])]),
        ({"color": "#12345"}, [("VALIDATION", ["input", "color"])]),
        ({"color": "#1234567"}, [("VALIDATION", ["input", "color"])]),
        ({"color": "#GGGGGG"}, [("VALIDATION", ["input", "color"])]),
        ({"color": "6366f1"}, [("VALIDATION", ["input", "color"])]),
        ({"name": "", "color": "x", "displayName": " "},
         [("VALIDATION", ["input", "name"]), ("VALIDATION", ["input", "displayName"]),
          ("VALIDATION", ["input", "color"])]),
        ({"fields": [{"name": "ok", "displayName": "OK", "fieldType": "STRING"},
                     {"name": "", "displayName": "Bad", "fieldType": "STRING"},
                     {"name": "e", "displayName": "E", "fieldType": "ENUM"}]},
         [("VALIDATION", ["input", "fields", "1", "name"]), ("VALIDATION", ["input", "fields", "2", "enumOptions"])]),
        ({"fields": [{"name": "x", "displayName": "X", "fieldType": "STRING"},
                     {"name": "x", "displayName": "X again", "fieldType": "NUMBER"}]},
         [("CONFLICT", ["input", "fields", "1", "name"])]),
        ({"projectId": "nope"}, [("VALIDATION", ["input", "projectId"])]),
    ]
    for values, expected in cases:
        data = await org(ET_CREATE, _create(pid, **values))
        assert errors_of(data["eventTypeCreate"]) == expected, values
        assert data["eventTypeCreate"]["eventType"] is None
    assert await _listed(org, pid) == []
    for ok in ({"name": "n" * 100, "displayName": "d" * 255, "color": "#ABCdef"}, {"name": "x"}):
        data = await org(ET_CREATE, _create(pid, **ok))
        assert data["eventTypeCreate"]["userErrors"] == [], ok


async def test_names_are_unique_in_the_project_ignoring_case(gql, org):
    project, other = await org.project(), await org.project()
    await event_type(org, project["id"], "Page_View")
    for name in ("page_view", "PAGE_VIEW", " page_view "):
        data = await org(ET_CREATE, _create(project["id"], name=name))
        assert errors_of(data["eventTypeCreate"]) == [("CONFLICT", ["input", "name"])], name
    assert (await event_type(org, other["id"], "page_view"))["name"] == "page_view"
    assert len(await _listed(org, project["id"])) == 1


async def test_update_is_a_patch_and_the_name_is_fixed(gql, org):
    project = await org.project()
    created = await event_type(org, project["id"], "signup", description="first", color="#000000", order=3)
    data = await org(ET_UPDATE, {"input": {"id": created["id"], "displayName": " Sign up ", "color": "#ff0000"}})
    updated = data["eventTypeUpdate"]["eventType"]
    assert data["eventTypeUpdate"]["userErrors"] == []
    assert (updated["name"], updated["displayName"], updated["description"], updated["color"], updated["order"]) == (
        "signup", "Sign up", "first", "#ff0000", 3)
    assert updated["updatedAt"] > created["updatedAt"]

    data = await org(ET_UPDATE, {"input": {"id": created["id"], "description": None, "color": None, "order": 7}})
    updated = data["eventTypeUpdate"]["eventType"]
    assert (updated["description"], updated["color"], updated["order"]) == ("", "#6366f1", 7)

    cases = [({"displayName": None}, [("VALIDATION", ["input", "displayName"])]),
             ({"displayName": ""}, [("VALIDATION", ["input", "displayName"])]),
             ({"displayName": "d" * 256}, [("VALIDATION", ["input", "displayName"])]),
             ({"color": "#abc"}, [("VALIDATION", ["input", "color"])]),
             ({"order": None}, [("VALIDATION", ["input", "order"])]),
             ({"order": None, "color": "blue"}, [("VALIDATION", ["input", "color"]), ("VALIDATION", ["input", "order"])]),
             ({"id": "bad"}, [("VALIDATION", ["input", "id"])])]
    for values, expected in cases:
        data = await org(ET_UPDATE, {"input": {"id": created["id"], **values}})
        assert errors_of(data["eventTypeUpdate"]) == expected, values
    assert (await _listed(org, project["id"]))[0]["displayName"] == "Sign up"

    r = await gql.raw(ET_UPDATE, {"input": {"id": created["id"], "name": "renamed"}}, token=org.token)
    assert r.json()["errors"] and "name" in r.json()["errors"][0]["message"]  # not even in the schema
    assert (await _listed(org, project["id"]))[0]["name"] == "signup"


async def test_delete_is_refused_while_the_type_has_events_unless_cascade(live, org):
    project = await org.project()
    keep, empty = await event_type(org, project["id"], "order", fields=[
        {"name": "id", "displayName": "ID", "fieldType": "STRING"}]), await event_type(org, project["id"], "empty")
    scope = {"organization_id": raw(org.org_id), "project_id": raw(project["id"])}
    for i in range(2):
        await insert_row(live.url, m.Event, **scope, event_type_id=raw(keep["id"]), name=f"Order {i}")

    data = await org(ET_DELETE, {"input": {"id": keep["id"]}})
    assert errors_of(data["eventTypeDelete"]) == [("CONFLICT", ["input", "cascade"])]
    assert "2 event" in data["eventTypeDelete"]["userErrors"][0]["message"]
    assert len(await _listed(org, project["id"])) == 2

    data = await org(ET_DELETE, {"input": {"id": empty["id"]}})
    assert data["eventTypeDelete"] == {"deletedEventTypeId": empty["id"], "userErrors": []}
    data = await org(ET_DELETE, {"input": {"id": keep["id"], "cascade": True}})
    assert data["eventTypeDelete"] == {"deletedEventTypeId": keep["id"], "userErrors": []}
    assert await _listed(org, project["id"]) == []
    summary = (await org("query($id: ID!) { project(id: $id) { summary { eventCount fieldCount } } }",
                         {"id": project["id"]}))["project"]["summary"]
    assert summary == {"eventCount": 0, "fieldCount": 0}
    data = await org(ET_DELETE, {"input": {"id": keep["id"]}})
    assert errors_of(data["eventTypeDelete"]) == [("NOT_FOUND", ["input", "id"])]
    actions = [a["action"] for a in await audit_actions(org, project["id"])]
    assert actions[:3] == ["event.cascade_delete", "event_type.delete", "event_type.delete"]


async def test_owners_are_managed_by_organization_owners_and_listed_with_who_granted(gql, org):
    project = await org.project()
    created = await event_type(org, project["id"])
    editor_token, editor, _ = await add_member(gql, org.token, org.org_id, "editor")
    viewer_token, viewer, _ = await add_member(gql, org.token, org.org_id, "viewer")

    data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": editor["id"]}})
    assert data["eventTypeOwnerAdd"]["userErrors"] == []
    owner = data["eventTypeOwnerAdd"]["owner"]
    assert owner["user"] == {"id": editor["id"], "email": editor["email"], "name": "Test User"}
    assert owner["grantedBy"] == {"id": org.user["id"], "email": org.user["email"]}
    assert owner["eventType"] == {"id": created["id"]} and owner["createdAt"]
    data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": viewer["id"]}})
    second = data["eventTypeOwnerAdd"]["owner"]
    listed = (await _listed(org, project["id"], viewer_token))[0]["owners"]
    assert [o["id"] for o in listed] == [owner["id"], second["id"]]

    data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": editor["id"]}})
    assert errors_of(data["eventTypeOwnerAdd"]) == [("CONFLICT", ["input", "userId"])]
    stranger = await Org.create(gql, "Strangers")
    data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": stranger.user["id"]}})
    assert errors_of(data["eventTypeOwnerAdd"]) == [("NOT_FOUND", ["input", "userId"])]
    data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": created["id"]}})
    assert errors_of(data["eventTypeOwnerAdd"]) == [("VALIDATION", ["input", "userId"])]
    for token in (editor_token, viewer_token):  # owners of the organization only
        data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": org.user["id"]}}, token)
        assert errors_of(data["eventTypeOwnerAdd"]) == [("FORBIDDEN", None)]
        data = await org(OWNER_REMOVE, {"input": {"id": owner["id"]}}, token)
        assert errors_of(data["eventTypeOwnerRemove"]) == [("FORBIDDEN", None)]

    data = await org(OWNER_REMOVE, {"input": {"id": owner["id"]}})
    assert data["eventTypeOwnerRemove"] == {"deletedOwnerId": owner["id"], "userErrors": [],
                                            "eventType": {"id": created["id"], "owners": [{"id": second["id"]}]}}
    data = await org(OWNER_REMOVE, {"input": {"id": owner["id"]}})
    assert errors_of(data["eventTypeOwnerRemove"]) == [("NOT_FOUND", ["input", "id"])]
    actions = [a["action"] for a in await audit_actions(org, project["id"])]
    assert actions[:3] == ["event_type_owner.delete", "event_type_owner.create", "event_type_owner.create"]


async def test_viewers_read_but_do_not_change_event_types(org):
    project = await org.project()
    created = await event_type(org, project["id"])
    viewer = await org.member("viewer")
    assert [t["id"] for t in await _listed(org, project["id"], viewer)] == [created["id"]]
    data = await org(ET_CREATE, _create(project["id"]), viewer)
    assert errors_of(data["eventTypeCreate"]) == [("FORBIDDEN", None)]
    data = await org(ET_UPDATE, {"input": {"id": created["id"], "displayName": "V"}}, viewer)
    assert errors_of(data["eventTypeUpdate"]) == [("FORBIDDEN", None)]
    data = await org(ET_DELETE, {"input": {"id": created["id"]}}, viewer)
    assert errors_of(data["eventTypeDelete"]) == [("FORBIDDEN", None)]
    editor = await org.member("editor")
    data = await org(ET_UPDATE, {"input": {"id": created["id"], "displayName": "By editor"}}, editor)
    assert data["eventTypeUpdate"]["eventType"]["displayName"] == "By editor"
    assert len(await _listed(org, project["id"])) == 1


async def test_another_organizations_event_types_are_invisible_and_untouchable(gql, org):
    them = await Org.create(gql, "Them")
    their_project = await them.project()
    theirs = await event_type(them, their_project["id"])
    mine = await event_type(org, (await org.project())["id"])

    r = await gql.raw(EVENT_TYPES, {"project": their_project["id"]}, token=org.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await org(NODE, {"id": theirs["id"]}))["node"] is None
    data = await org(ET_CREATE, _create(their_project["id"]))
    assert errors_of(data["eventTypeCreate"]) == [("NOT_FOUND", ["input", "projectId"])]
    data = await org(ET_UPDATE, {"input": {"id": theirs["id"], "displayName": "Mine"}})
    assert errors_of(data["eventTypeUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(ET_DELETE, {"input": {"id": theirs["id"], "cascade": True}})
    assert errors_of(data["eventTypeDelete"]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(OWNER_ADD, {"input": {"eventTypeId": theirs["id"], "userId": org.user["id"]}})
    assert errors_of(data["eventTypeOwnerAdd"]) == [("NOT_FOUND", ["input", "eventTypeId"])]
    data = await them(OWNER_ADD, {"input": {"eventTypeId": theirs["id"], "userId": them.user["id"]}})
    their_owner = data["eventTypeOwnerAdd"]["owner"]
    data = await org(OWNER_REMOVE, {"input": {"id": their_owner["id"]}})
    assert errors_of(data["eventTypeOwnerRemove"]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(OWNER_ADD, {"input": {"eventTypeId": mine["id"], "userId": them.user["id"]}})
    assert errors_of(data["eventTypeOwnerAdd"]) == [("NOT_FOUND", ["input", "userId"])]
    assert (await _listed(them, their_project["id"]))[0]["displayName"] == theirs["displayName"]
    assert len((await _listed(them, their_project["id"]))[0]["owners"]) == 1


async def test_a_project_bound_key_works_on_its_project_only(gql, org):
    bound, other = await org.project("Bound"), await org.project("Other")
    token, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=bound["id"], scope="write")
    assert (await org(ET_CREATE, _create(bound["id"]), token))["eventTypeCreate"]["userErrors"] == []
    data = await org(ET_CREATE, _create(other["id"]), token)
    assert errors_of(data["eventTypeCreate"]) == [("NOT_FOUND", ["input", "projectId"])]
    theirs = await event_type(org, other["id"])
    data = await org(ET_UPDATE, {"input": {"id": theirs["id"], "displayName": "x"}}, token)
    assert errors_of(data["eventTypeUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    r = await gql.raw(EVENT_TYPES, {"project": other["id"]}, token=token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_plan_changed_announces_event_type_changes_over_a_websocket(live, org):
    project = await org.project()
    viewer = await org.member("viewer")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, viewer, project["id"])
        created = await event_type(org, project["id"])
        msg = await recv(ws)
        assert msg["type"] == "next", msg
        assert msg["payload"]["data"]["planChanged"] == {"entityType": "EVENT_TYPE", "entityId": created["id"],
                                                         "action": "CREATED", "projectId": project["id"]}
        await org(ET_UPDATE, {"input": {"id": created["id"], "color": "#00ff00"}})
        assert (await recv(ws))["payload"]["data"]["planChanged"]["action"] == "UPDATED"
        await org(ET_UPDATE, {"input": {"id": created["id"], "color": "#00ff00"}})  # no change: no message
        await org(ET_DELETE, {"input": {"id": created["id"]}})
        change = (await recv(ws))["payload"]["data"]["planChanged"]
        assert (change["entityType"], change["entityId"], change["action"]) == ("EVENT_TYPE", created["id"], "DELETED")
        await ws.send(json.dumps({"id": "1", "type": "complete"}))


async def test_listing_event_types_with_fields_and_owners_runs_a_constant_number_of_statements(gql, org):
    project = await org.project()
    editor_token, editor, _ = await add_member(gql, org.token, org.org_id, "editor")
    query = """query($project: ID!) { eventTypes(projectId: $project, first: 25) { totalCount nodes {
      id name fields { id name eventType { id } } owners { user { email name } grantedBy { email } createdAt } } } }"""

    async def add_types(start: int, stop: int) -> None:
        for i in range(start, stop):
            created = await event_type(org, project["id"], f"type_{i}", fields=[
                {"name": "a", "displayName": "A", "fieldType": "STRING"},
                {"name": "b", "displayName": "B", "fieldType": "NUMBER"}])
            for user in (org.user, editor):
                data = await org(OWNER_ADD, {"input": {"eventTypeId": created["id"], "userId": user["id"]}})
                assert data["eventTypeOwnerAdd"]["userErrors"] == []

    await add_types(0, 2)
    small = await count_statements(lambda: org(query, {"project": project["id"]}))
    await add_types(2, 20)
    statements: list[str] = []
    listed: list[dict] = []

    async def run() -> None:
        listed.extend((await org(query, {"project": project["id"]}))["eventTypes"]["nodes"])

    large = await count_statements(run, statements)
    assert len(listed) == 20 and all(len(t["fields"]) == 2 and len(t["owners"]) == 2 for t in listed)
    assert small == large, statements
    # session, memberships, project check, page, count, fields, owners, users
    assert large <= 8, statements


async def test_concurrent_creates_of_one_name_make_one_type(org):
    project = await org.project()
    answers = await asyncio.gather(*[org(ET_CREATE, _create(project["id"], name="Signup" if i % 2 else "SIGNUP"))
                                     for i in range(6)])
    outcomes = sorted(errors_of(a["eventTypeCreate"]) == [] for a in answers)
    assert outcomes == [False] * 5 + [True]
    assert all(errors_of(a["eventTypeCreate"]) in ([], [("CONFLICT", ["input", "name"])]) for a in answers)
    assert len(await _listed(org, project["id"])) == 1
