"""Projects through the real API: create, list, get by ID and slug, update (patch), delete with
everything under it, the summary counts, roles, project-bound API keys and tenant isolation.

Rows under a project (event types, events, ...) are written with tests/support/plan_rows.py until
their mutations exist; the project operations under test all go through GraphQL."""

from __future__ import annotations

import asyncpg

from server.domains.plan import models as m
from tests.graph.accounts.helpers import api_key
from tests.graph.plan.helpers import (
    BY_SLUG,
    CREATE,
    DELETE,
    NODE,
    PROJECT,
    PROJECTS,
    UPDATE,
    Org,
    errors_of,
    unique_slug,
)
from tests.support.factories import World, plan_rows
from tests.support.plan_rows import insert_row, raw
from tests.support.sql import count_statements


async def test_create_then_list_get_and_get_by_slug(org):
    slug = unique_slug("web")
    created = await org.project("Web app", slug, "The storefront")
    assert (created["name"], created["slug"], created["description"]) == ("Web app", slug, "The storefront")
    assert created["organization"] == {"id": org.org_id}
    assert created["createdBy"] == {"id": org.user["id"]}
    assert created["summary"]["eventCount"] == 0
    assert [s["status"] for s in created["summary"]["eventsByStatus"]] == [
        "DRAFT", "IN_REVIEW", "READY_FOR_DEV", "IMPLEMENTED", "LIVE", "DEPRECATED", "ARCHIVED"]

    assert (await org(PROJECT, {"id": created["id"]}))["project"] == created
    assert (await org(BY_SLUG, {"org": org.org_id, "slug": slug}))["projectBySlug"] == created
    assert (await org(BY_SLUG, {"org": org.org_id, "slug": "no-such-plan"}))["projectBySlug"] is None
    assert (await org(NODE, {"id": created["id"]}))["node"] == {"__typename": "Project", "id": created["id"]}


async def test_projects_are_listed_by_name_and_paged(org):
    for name in ("Charlie", "Alpha", "Bravo"):
        await org.project(name)
    first = (await org(PROJECTS, {"org": org.org_id, "first": 2}))["projects"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"]
    rest = (await org(PROJECTS, {"org": org.org_id, "first": 2, "after": first["pageInfo"]["endCursor"]}))["projects"]
    names = [p["name"] for p in first["nodes"] + rest["nodes"]]
    assert names == ["Alpha", "Bravo", "Charlie"]
    newest = (await org(PROJECTS, {"org": org.org_id, "orderBy": ["CREATED_AT_DESC"]}))["projects"]["nodes"]
    assert [p["name"] for p in newest] == ["Bravo", "Alpha", "Charlie"]


async def test_bad_names_and_slugs_are_user_errors_naming_each_field(org):
    for slug in ("Web", "web--app", "-web", "web-", "web app", "", "x" * 256, "wéb"):
        data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "Web", "slug": slug}})
        assert errors_of(data["projectCreate"]) == [("VALIDATION", ["input", "slug"])], slug
        assert data["projectCreate"]["project"] is None
    data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "  ", "slug": "BAD"}})
    assert errors_of(data["projectCreate"]) == [("VALIDATION", ["input", "name"]), ("VALIDATION", ["input", "slug"])]
    data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "n" * 256, "slug": "ok"}})
    assert errors_of(data["projectCreate"]) == [("VALIDATION", ["input", "name"])]
    for slug in ("a", "web-app-2", "0-9", "x" * 255):
        data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "n" * 255, "slug": slug}})
        assert data["projectCreate"]["userErrors"] == [], slug
    listed = (await org(PROJECTS, {"org": org.org_id}))["projects"]
    assert listed["totalCount"] == 4  # nothing was created by the refused attempts


async def test_duplicate_slug_is_a_conflict_within_the_organization_only(gql, org):
    slug = unique_slug()
    await org.project("One", slug)
    data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "Two", "slug": slug}})
    assert errors_of(data["projectCreate"]) == [("CONFLICT", ["input", "slug"])]

    other = await Org.create(gql, "Other Co")
    assert (await other.project("Mine too", slug))["slug"] == slug

    second = await org.project("Two")
    data = await org(UPDATE, {"input": {"id": second["id"], "slug": slug}})
    assert errors_of(data["projectUpdate"]) == [("CONFLICT", ["input", "slug"])]
    assert (await org(PROJECT, {"id": second["id"]}))["project"]["slug"] == second["slug"]


async def test_update_is_a_patch_and_can_change_the_slug(org):
    created = await org.project("Web", description="first")
    new_slug = unique_slug("renamed")
    data = await org(UPDATE, {"input": {"id": created["id"], "name": " Web v2 ", "slug": new_slug}})
    updated = data["projectUpdate"]["project"]
    assert data["projectUpdate"]["userErrors"] == []
    assert (updated["name"], updated["slug"], updated["description"]) == ("Web v2", new_slug, "first")
    assert updated["updatedAt"] > created["updatedAt"]
    assert (await org(BY_SLUG, {"org": org.org_id, "slug": created["slug"]}))["projectBySlug"] is None
    assert (await org(BY_SLUG, {"org": org.org_id, "slug": new_slug}))["projectBySlug"]["id"] == created["id"]

    data = await org(UPDATE, {"input": {"id": created["id"], "description": None}})
    assert data["projectUpdate"]["project"]["description"] == ""
    assert data["projectUpdate"]["project"]["name"] == "Web v2"

    data = await org(UPDATE, {"input": {"id": created["id"], "name": None, "slug": "Not Valid"}})
    assert errors_of(data["projectUpdate"]) == [("VALIDATION", ["input", "name"]), ("VALIDATION", ["input", "slug"])]
    data = await org(UPDATE, {"input": {"id": "not-an-id", "name": "x"}})
    assert errors_of(data["projectUpdate"]) == [("VALIDATION", ["input", "id"])]


async def test_viewers_read_editors_change_owners_delete(org):
    created = await org.project("Roles")
    viewer, editor = await org.member("viewer"), await org.member("editor")

    assert (await org(PROJECT, {"id": created["id"]}, viewer))["project"]["id"] == created["id"]
    assert (await org(PROJECTS, {"org": org.org_id}, viewer))["projects"]["totalCount"] == 1
    data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "V", "slug": unique_slug()}}, viewer)
    assert errors_of(data["projectCreate"]) == [("FORBIDDEN", None)]
    data = await org(UPDATE, {"input": {"id": created["id"], "name": "V"}}, viewer)
    assert errors_of(data["projectUpdate"]) == [("FORBIDDEN", None)]

    mine = await org.project("Editor's", token=editor)
    data = await org(UPDATE, {"input": {"id": created["id"], "name": "Edited"}}, editor)
    assert data["projectUpdate"]["project"]["name"] == "Edited"
    for who in (viewer, editor):
        data = await org(DELETE, {"input": {"id": mine["id"]}}, who)
        assert errors_of(data["projectDelete"]) == [("FORBIDDEN", None)]
    data = await org(DELETE, {"input": {"id": mine["id"]}})
    assert data["projectDelete"] == {"deletedProjectId": mine["id"], "userErrors": []}
    assert (await org(PROJECT, {"id": mine["id"]}))["project"] is None


async def test_another_organizations_project_is_invisible_and_untouchable(gql, org):
    theirs = await (await Org.create(gql, "Them")).project("Secret plan")
    assert (await org(PROJECT, {"id": theirs["id"]}))["project"] is None
    assert (await org(NODE, {"id": theirs["id"]}))["node"] is None
    r = await gql.raw(PROJECTS, {"org": theirs["organization"]["id"]}, token=org.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await org(BY_SLUG, {"org": theirs["organization"]["id"], "slug": theirs["slug"]}))["projectBySlug"] is None
    for op, name in ((UPDATE, "projectUpdate"), (DELETE, "projectDelete")):
        data = await org(op, {"input": {"id": theirs["id"], **({"name": "Mine"} if op is UPDATE else {})}})
        assert errors_of(data[name]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(CREATE, {"input": {"organizationId": theirs["organization"]["id"], "name": "x", "slug": "x"}})
    assert errors_of(data["projectCreate"]) == [("NOT_FOUND", None)]


async def test_a_project_bound_key_sees_and_touches_its_project_only(gql, org):
    bound, other = await org.project("Bound"), await org.project("Other")
    token, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=bound["id"], scope="write")
    listed = (await org(PROJECTS, {"org": org.org_id}, token))["projects"]
    assert [p["id"] for p in listed["nodes"]] == [bound["id"]] and listed["totalCount"] == 1
    assert (await org(PROJECT, {"id": other["id"]}, token))["project"] is None
    assert (await org(BY_SLUG, {"org": org.org_id, "slug": other["slug"]}, token))["projectBySlug"] is None
    data = await org(UPDATE, {"input": {"id": other["id"], "name": "x"}}, token)
    assert errors_of(data["projectUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    data = await org(UPDATE, {"input": {"id": bound["id"], "name": "Bound v2"}}, token)
    assert data["projectUpdate"]["project"]["name"] == "Bound v2"
    data = await org(CREATE, {"input": {"organizationId": org.org_id, "name": "x", "slug": unique_slug()}}, token)
    assert errors_of(data["projectCreate"]) == [("FORBIDDEN", None)]

    read_only, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=bound["id"], scope="read")
    data = await org(UPDATE, {"input": {"id": bound["id"], "name": "x"}}, read_only)
    assert errors_of(data["projectUpdate"]) == [("FORBIDDEN", None)]


async def _count(database_url: str, table: str, project_id: str) -> int:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table} WHERE project_id = $1", raw(project_id))
    finally:
        await conn.close()


async def test_delete_removes_everything_under_the_project(live, gql, org):
    world = World(gql, org.token, org.user, org.org_id)
    rows = await plan_rows(world)
    tables = ("event_types", "event_type_owners", "fields", "meta_fields", "events", "variables", "relations",
              "event_photos", "photo_comments")
    assert all([await _count(live.database_url, t, rows.project) for t in tables])
    data = await org(DELETE, {"input": {"id": rows.project}})
    assert data["projectDelete"]["userErrors"] == []
    assert [await _count(live.database_url, t, rows.project) for t in tables] == [0] * len(tables)
    for gid in (rows.project, rows.event_type, rows.event, rows.photo_comment):
        assert (await org(NODE, {"id": gid}))["node"] is None
    data = await org(DELETE, {"input": {"id": rows.project}})
    assert errors_of(data["projectDelete"]) == [("NOT_FOUND", ["input", "id"])]


async def test_summary_counts_what_the_project_holds(live, gql, org):
    world = World(gql, org.token, org.user, org.org_id)
    rows = await plan_rows(world)  # 1 event type, 2 fields, 1 meta field, 1 draft event, 1 variable, 1 relation
    url, project_id = live.url, raw(rows.project)
    scope = {"organization_id": raw(org.org_id), "project_id": project_id}
    second_type = await insert_row(url, m.EventType, **scope, name="page", display_name="Page")
    for i, status in enumerate([m.EventStatus.LIVE, m.EventStatus.LIVE, m.EventStatus.DEPRECATED]):
        await insert_row(url, m.Event, **scope, event_type_id=second_type, name=f"Page {i}", status=status)
    await insert_row(url, m.Variable, **scope, name="user_tier")
    untouched = await org.project("Empty")

    summary = (await org(PROJECT, {"id": rows.project}))["project"]["summary"]
    by_status = {s["status"]: s["count"] for s in summary.pop("eventsByStatus")}
    assert summary == {"eventTypeCount": 2, "eventCount": 4, "fieldCount": 2, "metaFieldCount": 1,
                       "variableCount": 2, "relationCount": 1}
    assert by_status == {"DRAFT": 1, "IN_REVIEW": 0, "READY_FOR_DEV": 0, "IMPLEMENTED": 0, "LIVE": 2,
                         "DEPRECATED": 1, "ARCHIVED": 0}
    empty = (await org(PROJECT, {"id": untouched["id"]}))["project"]["summary"]
    assert (empty["eventCount"], empty["eventTypeCount"]) == (0, 0)


async def test_listing_projects_with_summaries_runs_a_constant_number_of_statements(gql, org):
    for i in range(2):
        await org.project(f"P{i}")
    small = await count_statements(lambda: org(PROJECTS, {"org": org.org_id}))
    for i in range(2, 8):
        await org.project(f"P{i}")
    statements: list[str] = []
    large = await count_statements(lambda: org(PROJECTS, {"org": org.org_id}), statements)
    assert small == large, statements
    # session, memberships, the page, its count, organizations, users, the summaries (one UNION ALL)
    assert large <= 7, statements
