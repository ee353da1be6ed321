"""`projectCreateDemo` through the real API: the plan it builds matches server/domains/plan/demo_data.py
(counts by the project summary, event types with owners, events with tags and owner, variables with
their usage and values, relations), slugs derived from the name and made unique, the roles, the
tenant check, the audit entry, and bulk writes (a constant, small number of statements)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from server.domains.plan import demo_data as data
from server.domains.plan.demo import first_free, slugify
from tests.graph.plan.helpers import ERRORS, PROJECT_FIELDS, Org, errors_of
from tests.support.sql import count_statements

DEMO = f"""mutation($input: ProjectCreateDemoInput!) {{ projectCreateDemo(input: $input) {{
  project {{ {PROJECT_FIELDS} }} {ERRORS} }} }}"""
EVENT_TYPES = """query($p: ID!) { eventTypes(projectId: $p, first: 100) { nodes { name color
  fields { name fieldType isRequired enumOptions sensitivity } owners { user { id } grantedBy { id } } } } }"""
EVENTS = """query($p: ID!) { events(projectId: $p, first: 100) { totalCount nodes { name status tags reviewed
  owner { id } eventType { name } fields { field { name } value } metaValues { metaField { name } value } } } }"""
VARIABLES = """query($p: ID!) { variables(projectId: $p, first: 100) { nodes { name variableType eventCount
  contextCount sampleValues } } }"""
RELATIONS = """query($p: ID!) { relations(projectId: $p, first: 100) { nodes { relationType description
  sourceEventType { name } sourceField { name } targetEventType { name } targetField { name } } } }"""
META_FIELDS = """query($p: ID!) { metaFields(projectId: $p, first: 100) { nodes { name fieldType } } }"""
AUDIT = """query($org: ID!, $project: ID) { auditLog(organizationId: $org, filter: {projectId: $project}, first: 10) {
  nodes { action targetType after } } }"""


async def demo(org: Org, name: str | None = None, token: str | None = None) -> dict:
    input_ = {"organizationId": org.org_id} if name is None else {"organizationId": org.org_id, "name": name}
    data_ = await org(DEMO, {"input": input_}, token)
    assert data_["projectCreateDemo"]["userErrors"] == [], data_
    return data_["projectCreateDemo"]["project"]


def test_slugs_are_derived_from_names():
    assert slugify("Demo tracking plan") == "demo-tracking-plan"
    assert slugify("  Mobile Démo #2!! ") == "mobile-demo-2"
    assert slugify("---") == "demo" and slugify("日本") == "demo"
    assert len(slugify("x" * 300)) <= 247
    assert first_free("demo", set()) == "demo"
    assert first_free("demo", {"demo", "demo-2", "demo-4"}) == "demo-3"


async def test_the_demo_plan_is_what_the_data_module_says(org):
    project = await demo(org)
    assert (project["name"], project["slug"]) == (data.DEFAULT_NAME, "demo-tracking-plan")
    assert project["description"] == data.DESCRIPTION and project["createdBy"] == {"id": org.user["id"]}
    s = project["summary"]
    statuses = Counter(e[2].upper() for e in data.EVENTS)
    assert s["eventTypeCount"] == len(data.EVENT_TYPES) >= 5
    assert s["eventCount"] == len(data.EVENTS) >= 24
    assert {x["status"]: x["count"] for x in s["eventsByStatus"]} == {
        st: statuses.get(st, 0) for st in ("DRAFT", "IN_REVIEW", "READY_FOR_DEV", "IMPLEMENTED", "LIVE",
                                           "DEPRECATED", "ARCHIVED")}
    assert all(x["count"] > 0 for x in s["eventsByStatus"])  # spread over the whole lifecycle
    assert s["fieldCount"] == sum(len(t[4]) for t in data.EVENT_TYPES)
    assert s["metaFieldCount"] == len(data.META_FIELDS)
    assert s["variableCount"] == len(data.VARIABLES)
    assert s["relationCount"] == len(data.RELATIONS)

    pid = project["id"]
    types = (await org(EVENT_TYPES, {"p": pid}))["eventTypes"]["nodes"]
    assert [t["name"] for t in types] == [t[0] for t in data.EVENT_TYPES]
    for t, spec in zip(types, data.EVENT_TYPES):
        assert [f["name"] for f in t["fields"]] == [f[0] for f in spec[4]]
        assert [f["fieldType"] for f in t["fields"]] == [f[2].upper() for f in spec[4]]
        assert t["owners"] == [{"user": {"id": org.user["id"]}, "grantedBy": {"id": org.user["id"]}}]

    events = (await org(EVENTS, {"p": pid}))["events"]
    assert events["totalCount"] == len(data.EVENTS)
    assert [e["name"] for e in events["nodes"]] == [e[1] for e in data.EVENTS]
    for e, spec in zip(events["nodes"], data.EVENTS):
        assert (e["eventType"]["name"], e["status"], e["tags"], e["reviewed"]) == (
            spec[0], spec[2].upper(), spec[3], spec[6])
        assert e["owner"] == {"id": org.user["id"]}
        assert {f["field"]["name"]: f["value"] for f in e["fields"]} == spec[4]
        assert {m["metaField"]["name"]: m["value"] for m in e["metaValues"]} == spec[5]

    metas = (await org(META_FIELDS, {"p": pid}))["metaFields"]["nodes"]
    assert [(m["name"], m["fieldType"]) for m in metas] == [(m[0], m[2].upper()) for m in data.META_FIELDS]

    variables = {v["name"]: v for v in (await org(VARIABLES, {"p": pid}))["variables"]["nodes"]}
    assert set(variables) == {v[0] for v in data.VARIABLES}
    for name, v_type, _, values in data.VARIABLES:
        v = variables[name]
        referring = [e for e in data.EVENTS
                     if any(f"${{{name}}}" in value for value in [*e[4].values(), *e[5].values()])]
        contexts = sum(1 for e in data.EVENTS for value in [*e[4].values(), *e[5].values()]
                       if f"${{{name}}}" in value)
        assert (v["variableType"], v["eventCount"], v["contextCount"]) == (v_type.upper(), len(referring), contexts)
        expected = [x[0] for x in sorted(values, key=lambda x: (-x[1], x[0]))][:10]
        assert v["sampleValues"] == expected, name
    assert sum(1 for v in variables.values() if v["eventCount"]) >= 8

    relations = (await org(RELATIONS, {"p": pid}))["relations"]["nodes"]
    assert sorted((f"{r['sourceEventType']['name']}.{r['sourceField']['name']}",
                   f"{r['targetEventType']['name']}.{r['targetField']['name']}", r["relationType"], r["description"])
                  for r in relations) == sorted(data.RELATIONS)

    audit = (await org(AUDIT, {"org": org.org_id, "project": pid}))["auditLog"]["nodes"]
    assert [a["action"] for a in audit] == ["project.create_demo"]
    assert audit[0]["after"]["events"] == len(data.EVENTS) and audit[0]["after"]["slug"] == "demo-tracking-plan"


def test_the_data_refers_only_to_what_it_defines():
    """The demo data is consistent: events name existing types, fields and meta fields; ENUM values
    are options or references; relations name existing fields."""
    fields = {(t[0], f[0]): f for t in data.EVENT_TYPES for f in t[4]}
    metas = {m[0]: m for m in data.META_FIELDS}
    reference = re.compile(r"^\$\{[a-z][a-z0-9_]*\}$")
    names = [(e[0], e[1].lower()) for e in data.EVENTS]
    assert len(names) == len(set(names))
    for type_name, _, status, _, values, meta_values, _, _ in data.EVENTS:
        assert status in {"draft", "in_review", "ready_for_dev", "implemented", "live", "deprecated", "archived"}
        for key, value in values.items():
            f = fields[(type_name, key)]
            assert f[2] != "enum" or value in f[4] or reference.match(value), (type_name, key, value)
        for key, value in meta_values.items():
            m = metas[key]
            assert m[2] != "enum" or value in m[4] or reference.match(value), (key, value)
    for source, target, _, _ in data.RELATIONS:
        assert tuple(source.split(".")) in fields and tuple(target.split(".")) in fields


async def test_twice_gives_two_distinct_slugs_and_names_are_checked(org):
    first, second = await demo(org), await demo(org)
    assert (first["slug"], second["slug"]) == ("demo-tracking-plan", "demo-tracking-plan-2")
    assert first["id"] != second["id"]
    await org.project("Taken", "demo-tracking-plan-3")
    assert (await demo(org))["slug"] == "demo-tracking-plan-4"
    named = await demo(org, "  Mobile Démo!  ")
    assert (named["name"], named["slug"]) == ("Mobile Démo!", "mobile-demo")
    for bad in ("", "   ", "n" * 256):
        payload = (await org(DEMO, {"input": {"organizationId": org.org_id, "name": bad}}))["projectCreateDemo"]
        assert errors_of(payload) == [("VALIDATION", ["input", "name"])] and payload["project"] is None
    listed = await org("query($org: ID!) { projects(organizationId: $org) { totalCount } }", {"org": org.org_id})
    assert listed["projects"]["totalCount"] == 5


async def test_viewers_and_strangers_are_refused(gql, org):
    viewer = await org.member("viewer")
    payload = (await org(DEMO, {"input": {"organizationId": org.org_id}}, viewer))["projectCreateDemo"]
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"] and payload["project"] is None
    other = await Org.create(gql, "Other Co")
    payload = (await other(DEMO, {"input": {"organizationId": org.org_id}}))["projectCreateDemo"]
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    editor = await org.member("editor")
    assert (await demo(org, "Editor demo", editor))["slug"] == "editor-demo"
    listed = await org("query($org: ID!) { projects(organizationId: $org) { totalCount } }", {"org": org.org_id})
    assert listed["projects"]["totalCount"] == 1


@pytest.mark.parametrize("name", ["Bulk demo"])
async def test_the_demo_is_written_with_bulk_inserts(org, name):
    statements: list[str] = []
    count = await count_statements(lambda: demo(org, name), statements)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    # One INSERT per table (project, event types, owners, fields, meta fields, events, history, variables,
    # values, relations, audit; the demo warehouse's data source, scan config, job and scan job), whatever the
    # number of rows.
    assert len(inserts) <= 16, inserts
    assert count <= 36, statements
