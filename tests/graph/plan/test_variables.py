"""Variables and their values through the real API: create/update/delete with every seed rule,
duplicates, usage computed from the plan's events (events and contexts, low and high), sample
values, values (add/remove, checked against the type), the rename that rewrites `${old}`,
audit and planChanged, roles, tenant isolation, and the statement count of `variables`."""

from __future__ import annotations

from websockets.asyncio.client import connect

from tests.graph.plan.catalog import audit_actions, event_type, meta_field, recv, subscribe_plan
from tests.graph.plan.helpers import ERRORS, NODE, Org, errors_of
from tests.support.sql import count_statements

VARIABLE = """id name sourceName variableType description eventCount contextCount lowContextCount highContextCount
  sampleValues createdAt updatedAt project { id }"""
CREATE = f"""mutation($input: VariableCreateInput!) {{ variableCreate(input: $input) {{
  variable {{ {VARIABLE} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: VariableUpdateInput!) {{ variableUpdate(input: $input) {{
  variable {{ {VARIABLE} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: VariableDeleteInput!) {{ variableDelete(input: $input) {{ deletedVariableId {ERRORS} }} }}"""
VALUE_ADD = f"""mutation($input: VariableValueAddInput!) {{ variableValueAdd(input: $input) {{
  variableValue {{ id value eventCount occurrences firstSeenAt lastSeenAt variable {{ id name }} }} {ERRORS} }} }}"""
VALUE_REMOVE = f"""mutation($input: VariableValueRemoveInput!) {{ variableValueRemove(input: $input) {{
  removedVariableValueId variable {{ id sampleValues }} {ERRORS} }} }}"""
VARIABLES = f"""query($project: ID!, $first: Int, $after: String) {{
  variables(projectId: $project, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    nodes {{ {VARIABLE} values(first: 10) {{ totalCount nodes {{ id value occurrences }} }} }} }} }}"""
VALUES_PAGE = """query($id: ID!, $after: String) { node(id: $id) { ... on Variable {
  values(first: 1, after: $after) { pageInfo { hasNextPage endCursor } nodes { value } } } } }"""
VARIABLE_NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Variable {{ {VARIABLE} }} }} }}"
EVENT_CREATE = f"""mutation($input: EventCreateInput!) {{ eventCreate(input: $input) {{
  event {{ id }} {ERRORS} }} }}"""
EVENT = "query($id: ID!) { event(id: $id) { id fields { value } metaValues { value } } }"
HISTORY = "query($id: ID!) { event(id: $id) { history(first: 10) { nodes { action actorEmail changes } } } }"

TYPES = ["STRING", "NUMBER", "BOOLEAN", "DATE", "DATETIME", "JSON", "STRING_ARRAY", "NUMBER_ARRAY"]


async def variable(org: Org, project_id: str, name: str, token: str | None = None, **extra) -> dict:
    data = await org(CREATE, {"input": {"projectId": project_id, "name": name, **extra}}, token)
    assert data["variableCreate"]["userErrors"] == [], data
    return data["variableCreate"]["variable"]


async def listed(org: Org, project_id: str, token: str | None = None) -> list[dict]:
    return (await org(VARIABLES, {"project": project_id, "first": 100}, token))["variables"]["nodes"]


async def add_value(org: Org, variable_id: str, value: str, token: str | None = None) -> dict:
    return (await org(VALUE_ADD, {"input": {"variableId": variable_id, "value": value}}, token))["variableValueAdd"]


async def event(org: Org, type_id: str, name: str, fields: dict[str, str], metas: dict[str, str] | None = None) -> dict:
    data = await org(EVENT_CREATE, {"input": {
        "eventTypeId": type_id, "name": name,
        "fieldValues": [{"fieldId": k, "value": v} for k, v in fields.items()],
        "metaValues": [{"metaFieldId": k, "value": v} for k, v in (metas or {}).items()]}})
    assert data["eventCreate"]["userErrors"] == [], data
    return data["eventCreate"]["event"]


async def test_create_with_defaults_then_list_by_name_and_node(org):
    project = await org.project()
    created = await variable(org, project["id"], "page_name")
    assert created["variableType"] == "STRING" and created["description"] == ""
    assert (created["eventCount"], created["contextCount"], created["lowContextCount"],
            created["highContextCount"], created["sampleValues"]) == (0, 0, 0, 0, [])
    assert created["project"] == {"id": project["id"]} and created["sourceName"] is None
    other = await variable(org, project["id"], "currency", variableType="NUMBER_ARRAY", description="ISO codes")
    assert (other["variableType"], other["description"]) == ("NUMBER_ARRAY", "ISO codes")
    page = (await org(VARIABLES, {"project": project["id"], "first": 1}))["variables"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"]
    assert [v["name"] for v in page["nodes"]] == ["currency"]
    rest = (await org(VARIABLES, {"project": project["id"], "first": 1,
                                  "after": page["pageInfo"]["endCursor"]}))["variables"]["nodes"]
    assert [v["name"] for v in rest] == ["page_name"]
    assert (await org(VARIABLE_NODE, {"id": created["id"]}))["node"]["name"] == "page_name"
    assert (await org(NODE, {"id": created["id"]}))["node"]["__typename"] == "Variable"


async def test_every_type_is_accepted(org):
    project = await org.project()
    for t in TYPES:
        assert (await variable(org, project["id"], f"v_{t.lower()}", variableType=t))["variableType"] == t


async def test_bad_names_are_user_errors_and_change_nothing(org):
    project = await org.project()
    for name in ("", "x" * 101, "Page", "1page", "_page", "page-name", "page name", "pagé", "page.name", "PAGE"):
        data = await org(CREATE, {"input": {"projectId": project["id"], "name": name}})
        assert errors_of(data["variableCreate"]) == [("VALIDATION", ["input", "name"])], name
        assert data["variableCreate"]["variable"] is None
    for name in ("a", "x" * 100, "page_name_2", "a1_"):
        await variable(org, project["id"], name)
    assert len(await listed(org, project["id"])) == 4
    data = await org(CREATE, {"input": {"projectId": "not-an-id", "name": "ok"}})
    assert errors_of(data["variableCreate"]) == [("VALIDATION", ["input", "projectId"])]


async def test_duplicate_names_conflict_within_a_project_only(org):
    one, two = await org.project("One"), await org.project("Two")
    first = await variable(org, one["id"], "page_name")
    data = await org(CREATE, {"input": {"projectId": one["id"], "name": "page_name"}})
    assert errors_of(data["variableCreate"]) == [("CONFLICT", ["input", "name"])]
    await variable(org, two["id"], "page_name")  # another project may have it
    other = await variable(org, one["id"], "screen_name")
    data = await org(UPDATE, {"input": {"id": other["id"], "name": "page_name"}})
    assert errors_of(data["variableUpdate"]) == [("CONFLICT", ["input", "name"])]
    same = await org(UPDATE, {"input": {"id": first["id"], "name": "page_name", "description": "kept"}})
    assert same["variableUpdate"]["userErrors"] == []  # renaming to its own name is no conflict
    assert sorted(v["name"] for v in await listed(org, one["id"])) == ["page_name", "screen_name"]


async def test_update_is_a_patch_with_null_rules(org):
    project = await org.project()
    v = await variable(org, project["id"], "page_name", description="Router name")
    data = await org(UPDATE, {"input": {"id": v["id"], "variableType": "JSON"}})
    updated = data["variableUpdate"]["variable"]
    assert (updated["name"], updated["variableType"], updated["description"]) == ("page_name", "JSON", "Router name")
    data = await org(UPDATE, {"input": {"id": v["id"], "name": None, "variableType": None}})
    assert errors_of(data["variableUpdate"]) == [("VALIDATION", ["input", "name"]),
                                                 ("VALIDATION", ["input", "variableType"])]
    data = await org(UPDATE, {"input": {"id": v["id"], "name": "Bad Name", "description": "ignored"}})
    assert errors_of(data["variableUpdate"]) == [("VALIDATION", ["input", "name"])]
    data = await org(UPDATE, {"input": {"id": v["id"], "description": None}})
    assert data["variableUpdate"]["variable"]["description"] == ""
    assert data["variableUpdate"]["variable"]["variableType"] == "JSON"
    data = await org(UPDATE, {"input": {"id": v["id"], "name": "route_name"}})
    assert data["variableUpdate"]["variable"]["name"] == "route_name"


async def test_usage_counts_events_and_contexts_low_and_high(org):
    project = await org.project()
    pv = await event_type(org, project["id"], "page_view", fields=[
        {"name": "page_name", "displayName": "Page", "fieldType": "STRING"},
        {"name": "path", "displayName": "Path", "fieldType": "URL"},
        {"name": "category", "displayName": "Category", "fieldType": "ENUM", "enumOptions": ["home", "cart"]}])
    f = {x["name"]: x["id"] for x in pv["fields"]}
    team = await meta_field(org, project["id"], "team", "ENUM", enumOptions=["web", "app"])
    ticket = await meta_field(org, project["id"], "ticket")
    for name in ("page_name", "category", "page", "unused"):  # `${page}` must not match `${page_name}`
        await variable(org, project["id"], name)

    await event(org, pv["id"], "Any Page Viewed",
                {f["page_name"]: "${page_name}", f["path"]: "/app/${page_name}?c=${category}&again=${page_name}",
                 f["category"]: "${category}"},
                {team["id"]: "web", ticket["id"]: "WEB-${page_name}"})
    await event(org, pv["id"], "Home Viewed", {f["page_name"]: "home", f["path"]: "/${page_name}"})
    await event(org, pv["id"], "Cart Viewed", {f["page_name"]: "cart", f["category"]: "cart"},
                {team["id"]: "${category}"})
    await event(org, pv["id"], "Literal Viewed", {f["page_name"]: "$page_name {page_name} ${Page_name}"})

    usage = {v["name"]: (v["eventCount"], v["contextCount"], v["lowContextCount"], v["highContextCount"])
             for v in await listed(org, project["id"])}
    # page_name: event 1 in page_name, path (twice: one context) and the ticket meta value; event 2 in path.
    assert usage["page_name"] == (2, 4, 0, 4)
    # category: event 1 in path (URL: high) and category (ENUM: low); event 3 in the team meta field (ENUM: low).
    assert usage["category"] == (2, 3, 2, 1)
    assert usage["page"] == (0, 0, 0, 0) and usage["unused"] == (0, 0, 0, 0)


async def test_a_rename_rewrites_the_references_of_events(org):
    project = await org.project()
    t = await event_type(org, project["id"], "screen_view", fields=[
        {"name": "screen", "displayName": "Screen", "fieldType": "STRING"}])
    ticket = await meta_field(org, project["id"], "ticket")
    screen = t["fields"][0]["id"]
    v = await variable(org, project["id"], "screen")
    longer = await variable(org, project["id"], "screen_name")
    e = await event(org, t["id"], "Screen Viewed", {screen: "${screen}/${screen_name}"}, {ticket["id"]: "${screen}"})
    data = await org(UPDATE, {"input": {"id": v["id"], "name": "view"}})
    assert data["variableUpdate"]["userErrors"] == []
    after = (await org(EVENT, {"id": e["id"]}))["event"]
    assert after["fields"][0]["value"] == "${view}/${screen_name}"
    assert after["metaValues"][0]["value"] == "${view}"
    usage = {x["name"]: (x["eventCount"], x["contextCount"]) for x in await listed(org, project["id"])}
    assert usage == {"view": (1, 2), "screen_name": (1, 1)}
    assert longer["name"] == "screen_name"
    entries = await audit_actions(org, project["id"])
    update = next(a for a in entries if a["action"] == "variable.update")
    assert update["before"] == {"name": "screen"} and update["after"] == {"name": "view", "referencesRewritten": 1}
    assert any(a["action"] == "event.variable_rename" for a in entries)
    history = (await org(HISTORY, {"id": e["id"]}))["event"]["history"]["nodes"]
    assert [h["action"] for h in history] == ["UPDATED", "CREATED"]
    changes = history[0]["changes"]
    assert set(changes) == {"fieldValues", "metaValues"} and history[0]["actorEmail"] == org.user["email"]
    assert changes["fieldValues"]["old"][0]["value"] == "${screen}/${screen_name}"
    assert changes["fieldValues"]["new"][0]["value"] == "${view}/${screen_name}"


async def test_values_are_checked_against_the_type_listed_and_sampled(org):
    project = await org.project()
    cases = {
        "NUMBER": (["12", "-3.5", "1e3"], ["twelve", "", "nan", "inf"]),
        "NUMBER_ARRAY": (["4"], ["[1, 2]"]),
        "BOOLEAN": (["true", "false"], ["yes", "True", "1"]),
        "DATE": (["2024-05-31"], ["31/05/2024", "2024-13-01"]),
        "DATETIME": (["2024-05-31T12:00:00Z", "2024-05-31T12:00:00+02:00"], ["tomorrow"]),
        "JSON": (['{"a": 1}', "[1]", '"s"'], ["{a: 1}"]),
        "STRING": (["anything at all", "x" * 1000], ["", "x" * 1001]),
        "STRING_ARRAY": (["one element"], [""]),
    }
    for t, (good, bad) in cases.items():
        v = await variable(org, project["id"], f"v_{t.lower()}", variableType=t)
        for value in good:
            payload = await add_value(org, v["id"], value)
            assert payload["userErrors"] == [], (t, value, payload)
            assert payload["variableValue"]["value"] == value
            assert payload["variableValue"]["variable"] == {"id": v["id"], "name": v["name"]}
            assert (payload["variableValue"]["occurrences"], payload["variableValue"]["eventCount"]) == (0, 0)
        for value in bad:
            assert errors_of(await add_value(org, v["id"], value)) == [("VALIDATION", ["input", "value"])], (t, value)
    json_var = next(x for x in await listed(org, project["id"]) if x["name"] == "v_json")
    seen, after = [], None
    for _ in range(3):
        page = (await org(VALUES_PAGE, {"id": json_var["id"], "after": after}))["node"]["values"]
        seen += [n["value"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        assert page["pageInfo"]["hasNextPage"] == (len(seen) < 3)
    assert sorted(seen) == sorted(['{"a": 1}', "[1]", '"s"'])
    v = next(x for x in await listed(org, project["id"]) if x["name"] == "v_boolean")
    assert v["sampleValues"] == ["false", "true"]  # ties on frequency: by value
    assert sorted(n["value"] for n in v["values"]["nodes"]) == ["false", "true"] and v["values"]["totalCount"] == 2
    duplicate = await add_value(org, v["id"], "true")
    assert errors_of(duplicate) == [("CONFLICT", ["input", "value"])]

    true_id = next(n["id"] for n in v["values"]["nodes"] if n["value"] == "true")
    data = await org(VALUE_REMOVE, {"input": {"id": true_id}})
    assert data["variableValueRemove"]["userErrors"] == []
    assert data["variableValueRemove"]["variable"]["sampleValues"] == ["false"]
    again = await org(VALUE_REMOVE, {"input": {"id": true_id}})
    assert errors_of(again["variableValueRemove"]) == [("NOT_FOUND", ["input", "id"])]
    assert (await org(NODE, {"id": true_id}))["node"] is None


async def test_delete_takes_the_values_and_is_audited(org):
    project = await org.project()
    v = await variable(org, project["id"], "page_name")
    value = (await add_value(org, v["id"], "home"))["variableValue"]
    data = await org(DELETE, {"input": {"id": v["id"]}})
    assert data["variableDelete"] == {"deletedVariableId": v["id"], "userErrors": []}
    assert await listed(org, project["id"]) == []
    assert (await org(NODE, {"id": v["id"]}))["node"] is None
    assert (await org(NODE, {"id": value["id"]}))["node"] is None
    again = await org(DELETE, {"input": {"id": v["id"]}})
    assert errors_of(again["variableDelete"]) == [("NOT_FOUND", ["input", "id"])]
    actions = [a["action"] for a in await audit_actions(org, project["id"])]
    for action in ("variable.create", "variable.value_add", "variable.delete"):
        assert action in actions
    created = next(a for a in await audit_actions(org, project["id"]) if a["action"] == "variable.create")
    assert created["targetType"] == "Variable" and created["targetId"]
    assert created["after"] == {"name": "page_name", "variableType": "string", "description": ""}


async def test_viewers_read_but_cannot_change(org):
    project = await org.project()
    v = await variable(org, project["id"], "page_name")
    value = (await add_value(org, v["id"], "home"))["variableValue"]
    viewer = await org.member("viewer")
    assert [x["name"] for x in await listed(org, project["id"], viewer)] == ["page_name"]
    attempts = [
        (CREATE, {"projectId": project["id"], "name": "other"}, "variableCreate"),
        (UPDATE, {"id": v["id"], "description": "mine"}, "variableUpdate"),
        (DELETE, {"id": v["id"]}, "variableDelete"),
        (VALUE_ADD, {"variableId": v["id"], "value": "cart"}, "variableValueAdd"),
        (VALUE_REMOVE, {"id": value["id"]}, "variableValueRemove"),
    ]
    for query, input_, name in attempts:
        data = await org(query, {"input": input_}, viewer)
        assert [e["code"] for e in data[name]["userErrors"]] == ["FORBIDDEN"], name
    editor = await org.member("editor")
    await variable(org, project["id"], "by_editor", token=editor)
    after = await listed(org, project["id"])
    assert [(x["name"], x["description"], x["sampleValues"]) for x in after] == [
        ("by_editor", "", []), ("page_name", "", ["home"])]


async def test_another_organizations_ids_are_not_found(gql, org):
    project = await org.project()
    v = await variable(org, project["id"], "page_name")
    value = (await add_value(org, v["id"], "home"))["variableValue"]
    other = await Org.create(gql, "Other Co")
    theirs = await other.project()
    r = await gql.raw(VARIABLES, {"project": project["id"]}, token=other.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    attempts = [
        (CREATE, {"projectId": project["id"], "name": "mine"}, "variableCreate", ["input", "projectId"]),
        (UPDATE, {"id": v["id"], "description": "mine"}, "variableUpdate", ["input", "id"]),
        (DELETE, {"id": v["id"]}, "variableDelete", ["input", "id"]),
        (VALUE_ADD, {"variableId": v["id"], "value": "cart"}, "variableValueAdd", ["input", "variableId"]),
        (VALUE_REMOVE, {"id": value["id"]}, "variableValueRemove", ["input", "id"]),
    ]
    for query, input_, name, path in attempts:
        data = await other(query, {"input": input_})
        assert errors_of(data[name]) == [("NOT_FOUND", path)], name
    assert (await other(NODE, {"id": v["id"]}))["node"] is None
    assert (await other(NODE, {"id": value["id"]}))["node"] is None
    assert await listed(other, theirs["id"]) == []
    mine = await listed(org, project["id"])
    assert [(x["name"], x["description"], x["sampleValues"]) for x in mine] == [("page_name", "", ["home"])]


async def test_changes_are_announced_on_plan_changed(live, org):
    project = await org.project()
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, project["id"])
        v = await variable(org, project["id"], "page_name")
        await add_value(org, v["id"], "home")
        await org(UPDATE, {"input": {"id": v["id"], "description": "now"}})
        await org(DELETE, {"input": {"id": v["id"]}})
        seen = [(m["entityType"], m["entityId"], m["action"])
                for m in [(await recv(ws))["payload"]["data"]["planChanged"] for _ in range(4)]]
    assert seen == [("VARIABLE", v["id"], "CREATED"), ("VARIABLE", v["id"], "UPDATED"),
                    ("VARIABLE", v["id"], "UPDATED"), ("VARIABLE", v["id"], "DELETED")]


async def test_listing_variables_with_usage_runs_a_constant_number_of_statements(org):
    project = await org.project()
    t = await event_type(org, project["id"], "page_view", fields=[
        {"name": "page_name", "displayName": "Page", "fieldType": "STRING"}])
    field_id = t["fields"][0]["id"]

    async def grow(names: list[str]) -> None:
        for name in names:
            v = await variable(org, project["id"], name)
            await add_value(org, v["id"], f"{name}-value")
            await event(org, t["id"], f"{name} viewed", {field_id: "${" + name + "}"})

    await grow(["a_var", "b_var"])
    few = await count_statements(lambda: org(VARIABLES, {"project": project["id"], "first": 100}))
    await grow([f"v_{i}" for i in range(10)])
    statements: list[str] = []
    many = await count_statements(lambda: org(VARIABLES, {"project": project["id"], "first": 100}), statements)
    assert few == many, statements
    nodes = await listed(org, project["id"])
    assert len(nodes) == 12 and all(v["eventCount"] == 1 and v["values"]["totalCount"] == 1 for v in nodes)


async def test_a_project_bound_key_sees_and_changes_its_project_only(gql, org):
    from tests.graph.accounts.helpers import api_key

    bound, other = await org.project("Bound"), await org.project("Other")
    theirs = await variable(org, other["id"], "elsewhere")
    token, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=bound["id"], scope="write")
    mine = await variable(org, bound["id"], "page_name", token=token)
    assert [v["name"] for v in await listed(org, bound["id"], token)] == ["page_name"]
    r = await gql.raw(VARIABLES, {"project": other["id"]}, token=token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    data = await org(CREATE, {"input": {"projectId": other["id"], "name": "sneaky"}}, token)
    assert errors_of(data["variableCreate"]) == [("NOT_FOUND", ["input", "projectId"])]
    data = await org(UPDATE, {"input": {"id": theirs["id"], "description": "sneaky"}}, token)
    assert errors_of(data["variableUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    assert (await org(NODE, {"id": theirs["id"]}, token))["node"] is None
    read_only, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=bound["id"], scope="read")
    data = await org(UPDATE, {"input": {"id": mine["id"], "description": "read only"}}, read_only)
    assert [e["code"] for e in data["variableUpdate"]["userErrors"]] == ["FORBIDDEN"]
    assert [v["description"] for v in await listed(org, other["id"])] == [""]
