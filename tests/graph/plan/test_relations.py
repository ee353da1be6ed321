"""Relations between event types through the real API: create with the default type, list,
update (a patch checked as a whole), delete; each field must belong to its type ("field of
another type in a relation"), types of one project, duplicates, roles, tenant isolation, audit,
planChanged and the statement count of `relations`."""

from __future__ import annotations

from websockets.asyncio.client import connect

from tests.graph.plan.catalog import audit_actions, event_type, recv, subscribe_plan
from tests.graph.plan.helpers import ERRORS, NODE, Org, errors_of
from tests.support.sql import count_statements

RELATION = """id relationType description createdAt updatedAt project { id }
  sourceEventType { id name } sourceField { id name } targetEventType { id name } targetField { id name }"""
CREATE = f"""mutation($input: RelationCreateInput!) {{ relationCreate(input: $input) {{
  relation {{ {RELATION} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: RelationUpdateInput!) {{ relationUpdate(input: $input) {{
  relation {{ {RELATION} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: RelationDeleteInput!) {{ relationDelete(input: $input) {{ deletedRelationId {ERRORS} }} }}"""
RELATIONS = f"""query($project: ID!, $first: Int, $after: String) {{
  relations(projectId: $project, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {RELATION} }} }} }}"""


class Plan:
    """A project with `order` (id, user_id, product_id) and `user` (id, email) event types."""

    def __init__(self, project: dict, order: dict, user: dict):
        self.project, self.order, self.user = project, order, user
        self.f = {(t["name"], f["name"]): f["id"] for t in (order, user) for f in t["fields"]}

    def ends(self, source: str, target: str) -> dict:
        (st, sf), (tt, tf) = source.split("."), target.split(".")
        types = {"order": self.order["id"], "user": self.user["id"]}
        return {"sourceEventTypeId": types[st], "sourceFieldId": self.f[(st, sf)],
                "targetEventTypeId": types[tt], "targetFieldId": self.f[(tt, tf)]}


def _fields(*names: str) -> list[dict]:
    return [{"name": n, "displayName": n, "fieldType": "STRING"} for n in names]


async def plan(org: Org, name: str = "Shop") -> Plan:
    project = await org.project(name)
    order = await event_type(org, project["id"], "order", fields=_fields("id", "user_id", "product_id"))
    user = await event_type(org, project["id"], "user", fields=_fields("id", "email"))
    return Plan(project, order, user)


async def relation(org: Org, p: Plan, source: str, target: str, token: str | None = None, **extra) -> dict:
    data = await org(CREATE, {"input": {**p.ends(source, target), **extra}}, token)
    assert data["relationCreate"]["userErrors"] == [], data
    return data["relationCreate"]["relation"]


async def listed(org: Org, project_id: str, token: str | None = None) -> list[dict]:
    return (await org(RELATIONS, {"project": project_id, "first": 100}, token))["relations"]["nodes"]


async def test_create_with_defaults_list_and_node(org):
    p = await plan(org)
    r = await relation(org, p, "order.user_id", "user.id")
    assert (r["relationType"], r["description"]) == ("belongs_to", "")
    assert (r["sourceEventType"]["name"], r["sourceField"]["name"]) == ("order", "user_id")
    assert (r["targetEventType"]["name"], r["targetField"]["name"]) == ("user", "id")
    assert r["project"] == {"id": p.project["id"]}
    second = await relation(org, p, "order.product_id", "order.id", relationType="  same_order ",
                            description="A product line of the order")
    assert (second["relationType"], second["description"]) == ("same_order", "A product line of the order")
    page = (await org(RELATIONS, {"project": p.project["id"], "first": 1}))["relations"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"] and page["nodes"] == [r]
    rest = (await org(RELATIONS, {"project": p.project["id"], "first": 1,
                                  "after": page["pageInfo"]["endCursor"]}))["relations"]["nodes"]
    assert rest == [second]
    assert (await org(NODE, {"id": r["id"]}))["node"] == {"__typename": "Relation", "id": r["id"]}


async def test_a_field_of_another_type_is_a_user_error_on_that_field(org):
    p = await plan(org)
    ends = p.ends("order.user_id", "user.id")
    wrong_source = {**ends, "sourceFieldId": p.f[("user", "email")]}
    data = await org(CREATE, {"input": wrong_source})
    assert errors_of(data["relationCreate"]) == [("VALIDATION", ["input", "sourceFieldId"])]
    assert "another event type" in data["relationCreate"]["userErrors"][0]["message"]
    wrong_both = {**ends, "sourceFieldId": p.f[("user", "email")], "targetFieldId": p.f[("order", "id")]}
    data = await org(CREATE, {"input": wrong_both})
    assert errors_of(data["relationCreate"]) == [("VALIDATION", ["input", "sourceFieldId"]),
                                                 ("VALIDATION", ["input", "targetFieldId"])]
    data = await org(CREATE, {"input": {**ends, "targetEventTypeId": p.order["id"], "targetFieldId": ends["sourceFieldId"]}})
    assert errors_of(data["relationCreate"]) == [("VALIDATION", ["input", "targetFieldId"])]  # a field to itself
    assert await listed(org, p.project["id"]) == []


async def test_bad_relation_types_and_ids(org):
    p = await plan(org)
    ends = p.ends("order.user_id", "user.id")
    for bad in ("", "   ", "x" * 101):
        data = await org(CREATE, {"input": {**ends, "relationType": bad}})
        assert errors_of(data["relationCreate"]) == [("VALIDATION", ["input", "relationType"])], bad
    await relation(org, p, "order.user_id", "user.id", relationType="x" * 100)
    data = await org(CREATE, {"input": {**ends, "sourceFieldId": "garbage", "targetEventTypeId": p.f[("user", "id")]}})
    assert errors_of(data["relationCreate"]) == [("VALIDATION", ["input", "sourceFieldId"]),
                                                 ("VALIDATION", ["input", "targetEventTypeId"])]
    assert len(await listed(org, p.project["id"])) == 1


async def test_event_types_of_two_projects_cannot_be_related(org):
    p, q = await plan(org, "One"), await plan(org, "Two")
    ends = {**p.ends("order.user_id", "user.id"), "targetEventTypeId": q.user["id"], "targetFieldId": q.f[("user", "id")]}
    data = await org(CREATE, {"input": ends})
    assert errors_of(data["relationCreate"]) == [("VALIDATION", ["input", "targetEventTypeId"])]
    assert await listed(org, p.project["id"]) == [] and await listed(org, q.project["id"]) == []


async def test_the_same_join_twice_is_a_conflict_unless_the_type_differs(org):
    p = await plan(org)
    await relation(org, p, "order.user_id", "user.id")
    data = await org(CREATE, {"input": p.ends("order.user_id", "user.id")})
    assert errors_of(data["relationCreate"]) == [("CONFLICT", ["input", "relationType"])]
    other = await relation(org, p, "order.user_id", "user.id", relationType="placed_by")
    data = await org(UPDATE, {"input": {"id": other["id"], "relationType": "belongs_to"}})
    assert errors_of(data["relationUpdate"]) == [("CONFLICT", ["input", "relationType"])]
    assert len(await listed(org, p.project["id"])) == 2


async def test_update_is_a_patch_checked_as_a_whole(org):
    p = await plan(org)
    r = await relation(org, p, "order.user_id", "user.id", description="placed by")
    data = await org(UPDATE, {"input": {"id": r["id"], "relationType": "placed_by"}})
    updated = data["relationUpdate"]["relation"]
    assert (updated["relationType"], updated["description"], updated["targetField"]["name"]) == (
        "placed_by", "placed by", "id")
    # Moving the target type without its field leaves a field of another type: refused on that field.
    data = await org(UPDATE, {"input": {"id": r["id"], "targetEventTypeId": p.order["id"]}})
    assert errors_of(data["relationUpdate"]) == [("VALIDATION", ["input", "targetFieldId"])]
    data = await org(UPDATE, {"input": {"id": r["id"], "targetEventTypeId": p.order["id"],
                                        "targetFieldId": p.f[("order", "id")]}})
    assert data["relationUpdate"]["relation"]["targetEventType"]["name"] == "order"
    data = await org(UPDATE, {"input": {"id": r["id"], "relationType": None, "sourceFieldId": None}})
    assert errors_of(data["relationUpdate"]) == [("VALIDATION", ["input", "sourceFieldId"]),
                                                 ("VALIDATION", ["input", "relationType"])]
    data = await org(UPDATE, {"input": {"id": r["id"], "description": None}})
    final = data["relationUpdate"]["relation"]
    assert (final["relationType"], final["description"], final["sourceField"]["name"],
            final["targetField"]["name"]) == ("placed_by", "", "user_id", "id")
    audit = [a for a in await audit_actions(org, p.project["id"]) if a["action"] == "relation.update"]
    assert audit[-1]["before"] == {"relationType": "belongs_to"} and audit[-1]["after"] == {"relationType": "placed_by"}


async def test_delete_and_cascade_with_the_field(org):
    p = await plan(org)
    r = await relation(org, p, "order.user_id", "user.id")
    data = await org(DELETE, {"input": {"id": r["id"]}})
    assert data["relationDelete"] == {"deletedRelationId": r["id"], "userErrors": []}
    assert await listed(org, p.project["id"]) == []
    again = await org(DELETE, {"input": {"id": r["id"]}})
    assert errors_of(again["relationDelete"]) == [("NOT_FOUND", ["input", "id"])]
    await relation(org, p, "order.user_id", "user.id")
    data = await org("""mutation($input: FieldDeleteInput!) { fieldDelete(input: $input) { userErrors { code } } }""",
                     {"input": {"id": p.f[("user", "id")]}})
    assert data["fieldDelete"]["userErrors"] == []
    assert await listed(org, p.project["id"]) == []
    actions = [a["action"] for a in await audit_actions(org, p.project["id"])]
    assert actions.count("relation.create") == 2 and actions.count("relation.delete") == 1


async def test_viewers_read_but_cannot_change(org):
    p = await plan(org)
    r = await relation(org, p, "order.user_id", "user.id")
    viewer = await org.member("viewer")
    assert [x["id"] for x in await listed(org, p.project["id"], viewer)] == [r["id"]]
    for query, input_, name in ((CREATE, p.ends("order.product_id", "order.id"), "relationCreate"),
                                (UPDATE, {"id": r["id"], "description": "mine"}, "relationUpdate"),
                                (DELETE, {"id": r["id"]}, "relationDelete")):
        data = await org(query, {"input": input_}, viewer)
        assert [e["code"] for e in data[name]["userErrors"]] == ["FORBIDDEN"], name
    editor = await org.member("editor")
    await relation(org, p, "order.product_id", "order.id", token=editor)
    assert [x["description"] for x in await listed(org, p.project["id"])] == ["", ""]


async def test_another_organizations_ids_are_not_found(gql, org):
    p = await plan(org)
    r = await relation(org, p, "order.user_id", "user.id")
    other = await Org.create(gql, "Other Co")
    q = await plan(other, "Theirs")
    resp = await gql.raw(RELATIONS, {"project": p.project["id"]}, token=other.token)
    assert resp.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # All four ends another tenant's: each reported as not found.
    data = await other(CREATE, {"input": p.ends("order.user_id", "user.id")})
    assert errors_of(data["relationCreate"]) == [("NOT_FOUND", ["input", "sourceEventTypeId"]),
                                                 ("NOT_FOUND", ["input", "sourceFieldId"]),
                                                 ("NOT_FOUND", ["input", "targetEventTypeId"]),
                                                 ("NOT_FOUND", ["input", "targetFieldId"])]
    # Their own source with our target.
    mixed = {**q.ends("order.user_id", "user.id"), "targetEventTypeId": p.user["id"], "targetFieldId": p.f[("user", "id")]}
    data = await other(CREATE, {"input": mixed})
    assert errors_of(data["relationCreate"]) == [("NOT_FOUND", ["input", "targetEventTypeId"]),
                                                 ("NOT_FOUND", ["input", "targetFieldId"])]
    for query, input_, name in ((UPDATE, {"id": r["id"], "description": "mine"}, "relationUpdate"),
                                (DELETE, {"id": r["id"]}, "relationDelete")):
        data = await other(query, {"input": input_})
        assert errors_of(data[name]) == [("NOT_FOUND", ["input", "id"])], name
    theirs = await relation(other, q, "order.user_id", "user.id")
    data = await other(UPDATE, {"input": {"id": theirs["id"], "targetEventTypeId": p.user["id"],
                                          "targetFieldId": p.f[("user", "id")]}})
    assert errors_of(data["relationUpdate"]) == [("NOT_FOUND", ["input", "targetEventTypeId"]),
                                                 ("NOT_FOUND", ["input", "targetFieldId"])]
    assert (await other(NODE, {"id": r["id"]}))["node"] is None
    assert [x["description"] for x in await listed(org, p.project["id"])] == [""]


async def test_changes_are_announced_on_plan_changed(live, org):
    p = await plan(org)
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, p.project["id"])
        r = await relation(org, p, "order.user_id", "user.id")
        await org(UPDATE, {"input": {"id": r["id"], "description": "now"}})
        await org(DELETE, {"input": {"id": r["id"]}})
        seen = [(m["entityType"], m["entityId"], m["action"])
                for m in [(await recv(ws))["payload"]["data"]["planChanged"] for _ in range(3)]]
    assert seen == [("RELATION", r["id"], "CREATED"), ("RELATION", r["id"], "UPDATED"), ("RELATION", r["id"], "DELETED")]


async def test_listing_relations_runs_a_constant_number_of_statements(org):
    p = await plan(org)
    await relation(org, p, "order.user_id", "user.id")
    few = await count_statements(lambda: listed(org, p.project["id"]))
    for i in range(8):
        t = await event_type(org, p.project["id"], f"line_{i}", fields=_fields("order_id"))
        data = await org(CREATE, {"input": {"sourceEventTypeId": t["id"], "sourceFieldId": t["fields"][0]["id"],
                                            "targetEventTypeId": p.order["id"], "targetFieldId": p.f[("order", "id")]}})
        assert data["relationCreate"]["userErrors"] == []
    statements: list[str] = []
    many = await count_statements(lambda: listed(org, p.project["id"]), statements)
    assert few == many, statements
    assert len(await listed(org, p.project["id"])) == 9
