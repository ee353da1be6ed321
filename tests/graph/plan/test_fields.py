"""Fields of an event type through the real API: create, bulk create (all or nothing, errors naming
the item's index), update (patch, whole-definition rules), reorder (the full list), delete (values
leave the events, relations on it go), every validation rule, roles, tenant isolation, audit."""

from __future__ import annotations

import asyncpg

from server.domains.plan import models as m
from tests.graph.plan.catalog import (
    AUDIT,
    EVENT_TYPES,
    FIELD_CREATE,
    FIELD_DELETE,
    FIELD_UPDATE,
    FIELDS_BULK,
    FIELDS_REORDER,
    event_type,
    field,
)
from tests.graph.plan.helpers import NODE, Org, errors_of
from tests.support.plan_rows import insert_row, raw
from tests.support.sql import count_statements


def _new(event_type_id: str, **values) -> dict:
    return {"input": {"eventTypeId": event_type_id, "name": "amount", "displayName": "Amount", "fieldType": "NUMBER",
                      **values}}


async def _fields(org: Org, project_id: str, token: str | None = None) -> dict[str, list[dict]]:
    nodes = (await org(EVENT_TYPES, {"project": project_id}, token))["eventTypes"]["nodes"]
    return {t["name"]: t["fields"] for t in nodes}


async def _plan(org: Org) -> tuple[str, dict]:
    project = await org.project()
    return project["id"], await event_type(org, project["id"], "order")


async def test_create_with_every_attribute_and_the_defaults(org):
    pid, order = await _plan(org)
    plain = await field(org, order["id"], "order_id")
    assert {k: plain[k] for k in ("name", "displayName", "fieldType", "isRequired", "enumOptions", "description",
                                  "order", "sensitivity", "contractRequiredMaxNullRate", "contractRegex",
                                  "contractMinValue", "contractMaxValue", "contractMaxBadRate")} == {
        "name": "order_id", "displayName": "order_id", "fieldType": "STRING", "isRequired": False,
        "enumOptions": None, "description": "", "order": 0, "sensitivity": "NONE",
        "contractRequiredMaxNullRate": None, "contractRegex": None, "contractMinValue": None,
        "contractMaxValue": None, "contractMaxBadRate": 0.0}
    full = await field(org, order["id"], " total ", "NUMBER", displayName=" Total ", isRequired=True,
                       description="Order total", sensitivity="FINANCIAL", contractRequiredMaxNullRate=0.05,
                       contractRegex=r"^\d+(\.\d{2})?$", contractMinValue=0, contractMaxValue=1e6,
                       contractMaxBadRate=0.01)
    assert (full["name"], full["displayName"], full["order"], full["sensitivity"], full["isRequired"]) == (
        "total", "Total", 1, "FINANCIAL", True)
    assert (full["contractRequiredMaxNullRate"], full["contractRegex"], full["contractMinValue"],
            full["contractMaxValue"], full["contractMaxBadRate"]) == (0.05, r"^\d+(\.\d{2})?$", 0.0, 1e6, 0.01)
    status = await field(org, order["id"], "status", "ENUM", enumOptions=["paid", "refunded"], order=-1)
    assert status["enumOptions"] == ["paid", "refunded"] and status["eventType"] == {"id": order["id"]}
    assert [f["name"] for f in (await _fields(org, pid))["order"]] == ["status", "order_id", "total"]
    assert (await org(NODE, {"id": full["id"]}))["node"] == {"__typename": "Field", "id": full["id"]}


async def test_every_rule_of_create_is_a_user_error(org):
    pid, order = await _plan(org)
    await field(org, order["id"], "taken")
    v = "VALIDATION"
    cases = [
        ({"name": ""}, [(v, ["input", "name"])]),
        ({"name": "  "}, [(v, ["input", "name"])]),
        ({"name": "n" * 101}, [(v, ["input", "name"])]),
        ({"displayName": ""}, [(v, ["input", "displayName"])]),
        ({"displayName": "d" * 256}, [(v, ["input", "displayName"])]),
        ({"fieldType": "ENUM"}, [(v, ["input", "enumOptions"])]),
        ({"fieldType": "ENUM", "enumOptions": []}, [(v, ["input", "enumOptions"])]),
        ({"fieldType": "ENUM", "enumOptions": ["a", " "]}, [(v, ["input", "enumOptions", "1"])]),
        ({"fieldType": "ENUM", "enumOptions": ["a", "b", "a"]}, [(v, ["input", "enumOptions", "2"])]),
        ({"fieldType": "STRING", "enumOptions": ["a"]}, [(v, ["input", "enumOptions"])]),
        ({"isRequired": True, "contractRequiredMaxNullRate": 1.5}, [(v, ["input", "contractRequiredMaxNullRate"])]),
        ({"isRequired": True, "contractRequiredMaxNullRate": -0.1}, [(v, ["input", "contractRequiredMaxNullRate"])]),
        ({"contractRequiredMaxNullRate": 0.1}, [(v, ["input", "contractRequiredMaxNullRate"])]),
        ({"contractRegex": "(unclosed"}, [(v, ["input", "contractRegex"])]),
        ({"contractRegex": "x" * 1001}, [(v, ["input", "contractRegex"])]),
        ({"contractMinValue": 10, "contractMaxValue": 1}, [(v, ["input", "contractMinValue"])]),
        ({"contractMaxBadRate": 1.01}, [(v, ["input", "contractMaxBadRate"])]),
        ({"contractMaxBadRate": -0.5}, [(v, ["input", "contractMaxBadRate"])]),
        ({"name": "", "displayName": "", "contractRegex": "["},
         [(v, ["input", "name"]), (v, ["input", "displayName"]), (v, ["input", "contractRegex"])]),
        ({"name": "taken"}, [("CONFLICT", ["input", "name"])]),
        ({"eventTypeId": "garbage"}, [(v, ["input", "eventTypeId"])]),
        ({"eventTypeId": pid}, [(v, ["input", "eventTypeId"])]),  # a project's ID is not an event type's
    ]
    for values, expected in cases:
        data = await org(FIELD_CREATE, _new(order["id"], **values))
        assert errors_of(data["fieldCreate"]) == expected, values
        assert data["fieldCreate"]["field"] is None
    assert [f["name"] for f in (await _fields(org, pid))["order"]] == ["taken"]
    for i, ok in enumerate([{"isRequired": True, "contractRequiredMaxNullRate": 0.0},
                            {"isRequired": True, "contractRequiredMaxNullRate": 1.0},
                            {"contractMaxBadRate": 1.0, "contractMinValue": 5, "contractMaxValue": 5},
                            {"name": "n" * 100, "displayName": "d" * 255, "contractRegex": "  "}]):
        data = await org(FIELD_CREATE, _new(order["id"], **{"name": f"ok_{i}", **ok}))
        assert data["fieldCreate"]["userErrors"] == [], ok
    assert data["fieldCreate"]["field"]["contractRegex"] is None  # blank means none


async def test_bulk_create_is_all_or_nothing_and_names_the_failing_item(org):
    pid, order = await _plan(org)
    await field(org, order["id"], "existing")

    def item(name: str, **extra) -> dict:
        return {"name": name, "displayName": name.title(), "fieldType": "STRING", **extra}

    data = await org(FIELDS_BULK, {"input": {"eventTypeId": order["id"], "fields": []}})
    assert errors_of(data["fieldsBulkCreate"]) == [("VALIDATION", ["input", "fields"])]
    bad = [item("a"), item("b"), item("c"), item("", fieldType="ENUM", displayName="Bad")]
    data = await org(FIELDS_BULK, {"input": {"eventTypeId": order["id"], "fields": bad}})
    assert errors_of(data["fieldsBulkCreate"]) == [("VALIDATION", ["input", "fields", "3", "name"]),
                                                   ("VALIDATION", ["input", "fields", "3", "enumOptions"])]
    assert data["fieldsBulkCreate"]["fields"] is None
    data = await org(FIELDS_BULK, {"input": {"eventTypeId": order["id"], "fields": [item("a"), item("a")]}})
    assert errors_of(data["fieldsBulkCreate"]) == [("CONFLICT", ["input", "fields", "1", "name"])]
    data = await org(FIELDS_BULK, {"input": {"eventTypeId": order["id"], "fields": [item("a"), item("existing")]}})
    assert errors_of(data["fieldsBulkCreate"]) == [("CONFLICT", ["input", "fields", "1", "name"])]
    assert [f["name"] for f in (await _fields(org, pid))["order"]] == ["existing"]  # nothing of the refused ones

    data = await org(FIELDS_BULK, {"input": {"eventTypeId": order["id"], "fields": [
        item("c"), item("a", order=10), item("b", fieldType="ENUM", enumOptions=["x"])]}})
    payload = data["fieldsBulkCreate"]
    assert payload["userErrors"] == []
    assert [(f["name"], f["order"]) for f in payload["fields"]] == [("c", 1), ("a", 10), ("b", 2)]
    assert [f["name"] for f in payload["eventType"]["fields"]] == ["existing", "c", "b", "a"]


async def test_update_is_a_patch_checked_as_a_whole(gql, org):
    pid, order = await _plan(org)
    f = await field(org, order["id"], "status", description="first", contractRegex="^[a-z]+$")

    async def update(**values) -> dict:
        return (await org(FIELD_UPDATE, {"input": {"id": f["id"], **values}}))["fieldUpdate"]

    data = await update(displayName="Status", sensitivity="PII")
    assert data["userErrors"] == []
    assert (data["field"]["displayName"], data["field"]["sensitivity"], data["field"]["description"],
            data["field"]["contractRegex"]) == ("Status", "PII", "first", "^[a-z]+$")
    assert errors_of(await update(fieldType="ENUM")) == [("VALIDATION", ["input", "enumOptions"])]
    data = await update(fieldType="ENUM", enumOptions=["open", "closed"])
    assert (data["field"]["fieldType"], data["field"]["enumOptions"]) == ("ENUM", ["open", "closed"])
    assert errors_of(await update(enumOptions=None)) == [("VALIDATION", ["input", "enumOptions"])]
    assert errors_of(await update(fieldType="STRING", enumOptions=["x"])) == [("VALIDATION", ["input", "enumOptions"])]
    data = await update(fieldType="NUMBER")  # leaving ENUM drops the options
    assert (data["field"]["fieldType"], data["field"]["enumOptions"]) == ("NUMBER", None)

    data = await update(isRequired=True, contractRequiredMaxNullRate=0.2, contractMinValue=1, contractMaxValue=9)
    assert data["userErrors"] == [] and data["field"]["contractRequiredMaxNullRate"] == 0.2
    assert errors_of(await update(isRequired=False)) == [("VALIDATION", ["input", "contractRequiredMaxNullRate"])]
    assert errors_of(await update(contractMinValue=10)) == [("VALIDATION", ["input", "contractMinValue"])]
    assert errors_of(await update(contractMaxValue=0.5)) == [("VALIDATION", ["input", "contractMinValue"])]
    assert errors_of(await update(contractRegex="*")) == [("VALIDATION", ["input", "contractRegex"])]
    assert errors_of(await update(contractMaxBadRate=2)) == [("VALIDATION", ["input", "contractMaxBadRate"])]
    data = await update(isRequired=False, contractRequiredMaxNullRate=None, contractRegex=None, description=None,
                        contractMaxBadRate=0.5, order=4)
    got = data["field"]
    assert (got["isRequired"], got["contractRequiredMaxNullRate"], got["contractRegex"], got["description"],
            got["contractMaxBadRate"], got["order"]) == (False, None, None, "", 0.5, 4)
    assert (await update(contractMaxBadRate=None))["field"]["contractMaxBadRate"] == 0.0

    for key in ("displayName", "fieldType", "isRequired", "order", "sensitivity"):
        assert errors_of(await update(**{key: None})) == [("VALIDATION", ["input", key])], key
    assert errors_of(await update(displayName=" ")) == [("VALIDATION", ["input", "displayName"])]
    r = await gql.raw(FIELD_UPDATE, {"input": {"id": f["id"], "name": "renamed"}}, token=org.token)
    assert r.json()["errors"]  # the name is fixed: not in the input
    assert (await _fields(org, pid))["order"][0]["name"] == "status"


async def test_reorder_takes_the_full_list_of_the_types_fields(org):
    pid, order = await _plan(org)
    a, b, c = [await field(org, order["id"], name) for name in ("a", "b", "c")]
    other = await event_type(org, pid, "other")
    foreign = await field(org, other["id"], "x")

    async def reorder(ids: list[str]) -> dict:
        return (await org(FIELDS_REORDER, {"input": {"eventTypeId": order["id"], "fieldIds": ids}}))["fieldsReorder"]

    data = await reorder([c["id"], a["id"], b["id"]])
    assert data["userErrors"] == []
    assert [(f["name"], f["order"]) for f in data["eventType"]["fields"]] == [("c", 0), ("a", 1), ("b", 2)]
    assert errors_of(await reorder([c["id"], a["id"]])) == [("VALIDATION", ["input", "fieldIds"])]
    assert errors_of(await reorder([c["id"], c["id"], a["id"], b["id"]])) == [("VALIDATION", ["input", "fieldIds", "1"])]
    assert errors_of(await reorder([a["id"], b["id"], foreign["id"], c["id"]])) == [
        ("VALIDATION", ["input", "fieldIds", "2"])]
    assert errors_of(await reorder(["nonsense", a["id"], b["id"], order["id"]])) == [
        ("VALIDATION", ["input", "fieldIds", "0"]), ("VALIDATION", ["input", "fieldIds", "3"])]
    assert [f["name"] for f in (await _fields(org, pid))["order"]] == ["c", "a", "b"]
    data = await org(FIELDS_REORDER, {"input": {"eventTypeId": other["id"], "fieldIds": []}})
    assert errors_of(data["fieldsReorder"]) == [("VALIDATION", ["input", "fieldIds"])]


async def test_delete_removes_the_values_from_events_and_the_relations_on_it(live, org):
    pid, order = await _plan(org)
    doomed, kept = await field(org, order["id"], "coupon"), await field(org, order["id"], "total", "NUMBER")
    scope = {"organization_id": raw(org.org_id), "project_id": raw(pid)}
    values = [{"field_id": str(raw(doomed["id"])), "value": "SPRING"}, {"field_id": str(raw(kept["id"])), "value": 3}]
    with_value = await insert_row(live.url, m.Event, **scope, event_type_id=raw(order["id"]), name="Order paid",
                                  field_values=values)
    await insert_row(live.url, m.Relation, **scope, source_event_type_id=raw(order["id"]), source_field_id=raw(doomed["id"]),
                     target_event_type_id=raw(order["id"]), target_field_id=raw(kept["id"]))

    data = await org(FIELD_DELETE, {"input": {"id": doomed["id"]}})
    assert data["fieldDelete"] == {"deletedFieldId": doomed["id"], "userErrors": [],
                                   "eventType": {"id": order["id"], "fields": [{"id": kept["id"]}]}}
    conn = await asyncpg.connect(live.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        stored = await conn.fetchval("SELECT field_values::text FROM events WHERE id = $1", with_value)
        relations = await conn.fetchval("SELECT count(*) FROM relations WHERE project_id = $1", raw(pid))
    finally:
        await conn.close()
    assert stored == '[{"value": 3, "field_id": "%s"}]' % raw(kept["id"])
    assert relations == 0
    assert (await org(NODE, {"id": doomed["id"]}))["node"] is None
    data = await org(FIELD_DELETE, {"input": {"id": doomed["id"]}})
    assert errors_of(data["fieldDelete"]) == [("NOT_FOUND", ["input", "id"])]
    entries = (await org(AUDIT, {"org": org.org_id, "project": pid}))["auditLog"]["nodes"]
    assert [e["action"] for e in entries[:2]] == ["relation.cascade_delete", "field.delete"]
    assert entries[1]["before"]["events_with_values"] == 1 and entries[1]["before"]["name"] == "coupon"


async def test_every_change_is_audited(org):
    pid, order = await _plan(org)
    f = await field(org, order["id"], "a")
    await org(FIELDS_BULK, {"input": {"eventTypeId": order["id"], "fields": [
        {"name": "b", "displayName": "B", "fieldType": "URL"}]}})
    await org(FIELD_UPDATE, {"input": {"id": f["id"], "displayName": "A!"}})
    listed = (await _fields(org, pid))["order"]
    await org(FIELDS_REORDER, {"input": {"eventTypeId": order["id"], "fieldIds": [x["id"] for x in reversed(listed)]}})
    await org(FIELD_DELETE, {"input": {"id": f["id"]}})
    entries = (await org(AUDIT, {"org": org.org_id, "project": pid}))["auditLog"]["nodes"]
    assert [e["action"] for e in entries[:5]] == ["field.delete", "field.reorder", "field.update", "field.bulk_create",
                                                  "field.create"]
    update = entries[2]
    assert (update["before"], update["after"]) == ({"display_name": "a"}, {"display_name": "A!"})


async def test_viewers_are_refused_and_editors_allowed(org):
    pid, order = await _plan(org)
    f = await field(org, order["id"], "a")
    viewer, editor = await org.member("viewer"), await org.member("editor")
    calls = [(FIELDS_REORDER, "fieldsReorder", {"input": {"eventTypeId": order["id"], "fieldIds": [f["id"]]}}),
             (FIELD_CREATE, "fieldCreate", _new(order["id"])),
             (FIELDS_BULK, "fieldsBulkCreate", {"input": {"eventTypeId": order["id"], "fields": [
                 {"name": "x", "displayName": "X", "fieldType": "STRING"}]}}),
             (FIELD_UPDATE, "fieldUpdate", {"input": {"id": f["id"], "displayName": "V"}}),
             (FIELD_DELETE, "fieldDelete", {"input": {"id": f["id"]}})]
    for op, name, variables in calls:
        data = await org(op, variables, viewer)
        assert errors_of(data[name]) == [("FORBIDDEN", None)], name
    assert [x["displayName"] for x in (await _fields(org, pid, viewer))["order"]] == ["a"]
    for op, name, variables in calls:
        data = await org(op, variables, editor)
        assert data[name]["userErrors"] == [], name
    assert [x["name"] for x in (await _fields(org, pid))["order"]] == ["amount", "x"]


async def test_another_organizations_fields_are_untouchable(gql, org):
    them = await Org.create(gql, "Them")
    their_pid, their_type = await _plan(them)
    theirs = await field(them, their_type["id"], "secret")
    _, mine = await _plan(org)
    own = await field(org, mine["id"], "mine")

    data = await org(FIELD_CREATE, _new(their_type["id"]))
    assert errors_of(data["fieldCreate"]) == [("NOT_FOUND", ["input", "eventTypeId"])]
    data = await org(FIELDS_BULK, {"input": {"eventTypeId": their_type["id"], "fields": [
        {"name": "x", "displayName": "X", "fieldType": "STRING"}]}})
    assert errors_of(data["fieldsBulkCreate"]) == [("NOT_FOUND", ["input", "eventTypeId"])]
    data = await org(FIELD_UPDATE, {"input": {"id": theirs["id"], "displayName": "Mine"}})
    assert errors_of(data["fieldUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(FIELDS_REORDER, {"input": {"eventTypeId": their_type["id"], "fieldIds": [theirs["id"]]}})
    assert errors_of(data["fieldsReorder"]) == [("NOT_FOUND", ["input", "eventTypeId"])]
    data = await org(FIELDS_REORDER, {"input": {"eventTypeId": mine["id"], "fieldIds": [own["id"], theirs["id"]]}})
    assert errors_of(data["fieldsReorder"]) == [("VALIDATION", ["input", "fieldIds", "1"])]
    data = await org(FIELD_DELETE, {"input": {"id": theirs["id"]}})
    assert errors_of(data["fieldDelete"]) == [("NOT_FOUND", ["input", "id"])]
    assert (await org(NODE, {"id": theirs["id"]}))["node"] is None
    assert [(f["name"], f["displayName"]) for f in (await _fields(them, their_pid))["order"]] == [("secret", "secret")]


async def test_bulk_create_runs_the_same_statements_for_5_or_200_fields(org):
    _, order = await _plan(org)
    other_pid = (await org.project())["id"]
    other = await event_type(org, other_pid, "other")
    only_fields = FIELDS_BULK.replace("eventType { id fields { name } }", "")

    async def bulk(type_id: str, n: int) -> int:
        items = [{"name": f"f{i}", "displayName": f"F{i}", "fieldType": "STRING"} for i in range(n)]
        return await count_statements(lambda: org(only_fields, {"input": {"eventTypeId": type_id, "fields": items}}))

    assert await bulk(order["id"], 5) == await bulk(other["id"], 200)  # no per-row round trips
    assert len((await _fields(org, other_pid))["other"]) == 200
