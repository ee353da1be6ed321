"""Meta fields (project-wide context fields) through the real API: create, list, update (patch,
the default value checked against the type), delete (values leave the events), every validation
rule, roles, tenant isolation, audit."""

from __future__ import annotations

import asyncpg

from server.domains.plan import models as m
from tests.graph.plan.catalog import AUDIT, META_FIELDS, MF_CREATE, MF_DELETE, MF_UPDATE, event_type, meta_field
from tests.graph.plan.helpers import NODE, Org, errors_of
from tests.support.plan_rows import insert_row, raw


def _new(project_id: str, **values) -> dict:
    return {"input": {"projectId": project_id, "name": "team", "displayName": "Team", "fieldType": "STRING", **values}}


async def _listed(org: Org, project_id: str, token: str | None = None) -> list[dict]:
    return (await org(META_FIELDS, {"project": project_id}, token))["metaFields"]["nodes"]


async def test_create_with_the_defaults_then_list_in_order_and_node(org):
    project = await org.project()
    pid = project["id"]
    team = await meta_field(org, pid, " team ", displayName=" Owning team ")
    assert {k: team[k] for k in ("name", "displayName", "fieldType", "isRequired", "enumOptions", "defaultValue",
                                 "linkTemplate", "order", "sensitivity")} == {
        "name": "team", "displayName": "Owning team", "fieldType": "STRING", "isRequired": False,
        "enumOptions": None, "defaultValue": None, "linkTemplate": None, "order": 0, "sensitivity": "NONE"}
    assert team["project"] == {"id": pid}
    jira = await meta_field(org, pid, "jira", "URL", isRequired=True, sensitivity="SECRET",
                            linkTemplate="https://jira.example.com/browse/{value}",
                            defaultValue="https://jira.example.com/browse/PLAN-1")
    tier = await meta_field(org, pid, "tier", "ENUM", enumOptions=["gold", "silver"], defaultValue="gold", order=-1)
    launch = await meta_field(org, pid, "launch", "DATE", defaultValue=" 2024-02-29 ")
    flag = await meta_field(org, pid, "tracked", "BOOLEAN", defaultValue="TRUE")
    assert (jira["order"], jira["isRequired"], jira["sensitivity"], jira["linkTemplate"]) == (
        1, True, "SECRET", "https://jira.example.com/browse/{value}")
    assert (tier["enumOptions"], tier["defaultValue"]) == (["gold", "silver"], "gold")
    assert (launch["defaultValue"], flag["defaultValue"]) == ("2024-02-29", "true")
    assert [f["name"] for f in await _listed(org, pid)] == ["tier", "team", "jira", "launch", "tracked"]
    page = (await org(META_FIELDS, {"project": pid, "first": 2}))["metaFields"]
    assert page["totalCount"] == 5 and page["pageInfo"]["hasNextPage"]
    assert (await org(NODE, {"id": jira["id"]}))["node"] == {"__typename": "MetaField", "id": jira["id"]}


async def test_every_rule_of_create_is_a_user_error_and_nothing_is_created(org):
    project = await org.project()
    pid = project["id"]
    await meta_field(org, pid, "taken")
    v = "VALIDATION"
    cases = [
        ({"name": ""}, [(v, ["input", "name"])]),
        ({"name": "n" * 101}, [(v, ["input", "name"])]),
        ({"displayName": " "}, [(v, ["input", "displayName"])]),
        ({"displayName": "d" * 256}, [(v, ["input", "displayName"])]),
        ({"fieldType": "ENUM"}, [(v, ["input", "enumOptions"])]),
        ({"fieldType": "ENUM", "enumOptions": ["a", "a"]}, [(v, ["input", "enumOptions", "1"])]),
        ({"fieldType": "DATE", "enumOptions": ["a"]}, [(v, ["input", "enumOptions"])]),
        ({"fieldType": "URL", "defaultValue": "not a url"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "URL", "defaultValue": "ftp://files.example.com/x"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "BOOLEAN", "defaultValue": "yes"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "ENUM", "enumOptions": ["a", "b"], "defaultValue": "c"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "DATE", "defaultValue": "2024-13-01"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "DATE", "defaultValue": "2023-02-29"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "DATE", "defaultValue": "01/02/2024"}, [(v, ["input", "defaultValue"])]),
        ({"fieldType": "STRING", "defaultValue": "x" * 10_001}, [(v, ["input", "defaultValue"])]),
        ({"linkTemplate": "not a url/{value}"}, [(v, ["input", "linkTemplate"])]),
        ({"linkTemplate": "javascript:alert({value})"}, [(v, ["input", "linkTemplate"])]),
        ({"linkTemplate": "https://x.example.com/" + "a" * 2000}, [(v, ["input", "linkTemplate"])]),
        ({"name": "", "fieldType": "BOOLEAN", "defaultValue": "maybe", "linkTemplate": "nope"},
         [(v, ["input", "name"]), (v, ["input", "defaultValue"]), (v, ["input", "linkTemplate"])]),
        ({"name": "taken"}, [("CONFLICT", ["input", "name"])]),
        ({"projectId": "bad"}, [(v, ["input", "projectId"])]),
    ]
    for values, expected in cases:
        data = await org(MF_CREATE, _new(pid, **values))
        assert errors_of(data["metaFieldCreate"]) == expected, values
        assert data["metaFieldCreate"]["metaField"] is None
    assert [f["name"] for f in await _listed(org, pid)] == ["taken"]
    data = await org(MF_CREATE, _new(pid, name="n" * 100, displayName="d" * 255, defaultValue="  ", linkTemplate=""))
    assert data["metaFieldCreate"]["userErrors"] == []
    assert (data["metaFieldCreate"]["metaField"]["defaultValue"], data["metaFieldCreate"]["metaField"]["linkTemplate"]) == (
        None, None)


async def test_update_is_a_patch_and_the_default_must_suit_the_new_type(gql, org):
    project = await org.project()
    mf = await meta_field(org, project["id"], "status", defaultValue="abc", linkTemplate="https://s.example.com/{value}")

    async def update(**values) -> dict:
        return (await org(MF_UPDATE, {"input": {"id": mf["id"], **values}}))["metaFieldUpdate"]

    data = await update(displayName="Status", isRequired=True, sensitivity="PII", order=9)
    got = data["metaField"]
    assert (got["displayName"], got["isRequired"], got["sensitivity"], got["order"], got["defaultValue"]) == (
        "Status", True, "PII", 9, "abc")
    assert errors_of(await update(fieldType="BOOLEAN")) == [("VALIDATION", ["input", "defaultValue"])]
    assert (await update(fieldType="BOOLEAN", defaultValue="False"))["metaField"]["defaultValue"] == "false"
    assert errors_of(await update(fieldType="ENUM")) == [("VALIDATION", ["input", "enumOptions"])]
    assert errors_of(await update(fieldType="ENUM", enumOptions=["on", "off"])) == [
        ("VALIDATION", ["input", "defaultValue"])]
    data = await update(fieldType="ENUM", enumOptions=["on", "off"], defaultValue="off")
    assert (data["metaField"]["fieldType"], data["metaField"]["enumOptions"]) == ("ENUM", ["on", "off"])
    assert errors_of(await update(enumOptions=["on"])) == [("VALIDATION", ["input", "defaultValue"])]
    data = await update(fieldType="STRING")  # leaving ENUM drops the options; "off" is a fine STRING
    assert (data["metaField"]["enumOptions"], data["metaField"]["defaultValue"]) == (None, "off")
    assert errors_of(await update(linkTemplate="ftp://x/{value}")) == [("VALIDATION", ["input", "linkTemplate"])]
    data = await update(defaultValue=None, linkTemplate=None)
    assert (data["metaField"]["defaultValue"], data["metaField"]["linkTemplate"]) == (None, None)
    assert (await update(fieldType="DATE", defaultValue="2030-01-31"))["metaField"]["defaultValue"] == "2030-01-31"
    for key in ("displayName", "fieldType", "isRequired", "order", "sensitivity"):
        assert errors_of(await update(**{key: None})) == [("VALIDATION", ["input", key])], key
    r = await gql.raw(MF_UPDATE, {"input": {"id": mf["id"], "name": "renamed"}}, token=org.token)
    assert r.json()["errors"]  # the name is fixed: not in the input
    assert (await _listed(org, project["id"]))[0]["name"] == "status"
    entries = (await org(AUDIT, {"org": org.org_id, "project": project["id"]}))["auditLog"]["nodes"]
    assert entries[0]["action"] == "meta_field.update" and entries[-1]["action"] == "project.create"


async def test_delete_removes_its_values_from_the_projects_events(live, org):
    project = await org.project()
    pid = project["id"]
    doomed, kept = await meta_field(org, pid, "jira", "URL"), await meta_field(org, pid, "team")
    order = await event_type(org, pid)
    scope = {"organization_id": raw(org.org_id), "project_id": raw(pid)}
    values = [{"meta_field_id": str(raw(doomed["id"])), "value": "https://j/1"},
              {"meta_field_id": str(raw(kept["id"])), "value": "growth"}]
    event = await insert_row(live.url, m.Event, **scope, event_type_id=raw(order["id"]), name="Paid", meta_values=values)
    data = await org(MF_DELETE, {"input": {"id": doomed["id"]}})
    assert data["metaFieldDelete"] == {"deletedMetaFieldId": doomed["id"], "userErrors": []}
    conn = await asyncpg.connect(live.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        stored = await conn.fetchval("SELECT meta_values::text FROM events WHERE id = $1", event)
    finally:
        await conn.close()
    assert stored == '[{"value": "growth", "meta_field_id": "%s"}]' % raw(kept["id"])
    assert [f["id"] for f in await _listed(org, pid)] == [kept["id"]]
    data = await org(MF_DELETE, {"input": {"id": doomed["id"]}})
    assert errors_of(data["metaFieldDelete"]) == [("NOT_FOUND", ["input", "id"])]
    entries = (await org(AUDIT, {"org": org.org_id, "project": pid}))["auditLog"]["nodes"]
    assert entries[0]["action"] == "meta_field.delete" and entries[0]["before"]["events_with_values"] == 1


async def test_viewers_read_but_are_refused_changes(org):
    project = await org.project()
    mf = await meta_field(org, project["id"], "team")
    viewer, editor = await org.member("viewer"), await org.member("editor")
    assert [f["id"] for f in await _listed(org, project["id"], viewer)] == [mf["id"]]
    for op, name, variables in ((MF_CREATE, "metaFieldCreate", _new(project["id"], name="other")),
                                (MF_UPDATE, "metaFieldUpdate", {"input": {"id": mf["id"], "displayName": "V"}}),
                                (MF_DELETE, "metaFieldDelete", {"input": {"id": mf["id"]}})):
        data = await org(op, variables, viewer)
        assert errors_of(data[name]) == [("FORBIDDEN", None)], name
        data = await org(op, variables, editor)
        assert data[name]["userErrors"] == [], name
    assert [f["name"] for f in await _listed(org, project["id"])] == ["other"]


async def test_another_organizations_meta_fields_are_invisible_and_untouchable(gql, org):
    them = await Org.create(gql, "Them")
    their_project = await them.project()
    theirs = await meta_field(them, their_project["id"], "secret")
    r = await gql.raw(META_FIELDS, {"project": their_project["id"]}, token=org.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await org(NODE, {"id": theirs["id"]}))["node"] is None
    data = await org(MF_CREATE, _new(their_project["id"]))
    assert errors_of(data["metaFieldCreate"]) == [("NOT_FOUND", ["input", "projectId"])]
    data = await org(MF_UPDATE, {"input": {"id": theirs["id"], "displayName": "Mine"}})
    assert errors_of(data["metaFieldUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(MF_DELETE, {"input": {"id": theirs["id"]}})
    assert errors_of(data["metaFieldDelete"]) == [("NOT_FOUND", ["input", "id"])]
    assert [(f["name"], f["displayName"]) for f in await _listed(them, their_project["id"])] == [("secret", "secret")]
