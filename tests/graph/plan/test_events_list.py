"""`events(projectId:, filter:, orderBy:, ...)`: each filter, each ordering with keyset paging both
ways, `tags(projectId:)`, bad arguments, and the constant number of SQL statements of a page of
events with their type, field values, meta values, tags, owner and photos."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server.domains.plan import models as m
from tests.graph.plan.event_ops import EVENTS, TAGS, Plan, set_columns
from tests.support.sql import count_statements

FIGMA = """mutation($input: EventFigmaLinkSetInput!) { eventFigmaLinkSet(input: $input) { userErrors { code } } }"""
PAGE = """query($project: ID!, $first: Int) { events(projectId: $project, first: $first) { nodes {
  id name status tags order eventType { id name color } owner { id email name }
  fields(first: 20) { value field { id name fieldType } } metaValues(first: 10) { value metaField { id name } }
  photos(first: 5) { id kind externalUrl } } } }"""


async def _filtered_plan(org) -> tuple[Plan, dict]:  # noqa: ANN001
    plan = await Plan.create(org)
    e = {
        "a": await plan.event("Order Completed", status="LIVE", tags=["checkout", "core"],
                              fieldValues=[{"fieldId": plan.channel, "value": "web"}],
                              metaValues=[{"metaFieldId": plan.team, "value": "Payments"}]),
        "b": await plan.event("Order_Refunded 100%", status="DEPRECATED", tags=["checkout"],
                              fieldValues=[{"fieldId": plan.channel, "value": "app"}],
                              metaValues=[{"metaFieldId": plan.tier, "value": "gold"}]),
        "c": await plan.event("Page Viewed", plan.page, status="LIVE", tags=["core"],
                              fieldValues=[{"fieldId": plan.url, "value": "web"}]),
        "d": await plan.event("Signup Started"),
    }
    now = datetime.now(timezone.utc)
    await set_columns(org, m.Event, e["a"]["id"], last_seen_at=now - timedelta(hours=1))
    await set_columns(org, m.Event, e["b"]["id"], last_seen_at=now - timedelta(days=10))
    await set_columns(org, m.Event, e["c"]["id"], last_seen_at=now - timedelta(days=40))
    return plan, e


async def test_each_filter(org):
    plan, _ = await _filtered_plan(org)
    assert await plan.names() == ["Order Completed", "Order_Refunded 100%", "Page Viewed", "Signup Started"]
    assert await plan.names({"eventTypeId": plan.page}) == ["Page Viewed"]
    assert await plan.names({"search": "order"}) == ["Order Completed", "Order_Refunded 100%"]
    assert await plan.names({"search": "ORDER_"}) == ["Order_Refunded 100%"]  # `_` and `%` are literal
    assert await plan.names({"search": "0%"}) == ["Order_Refunded 100%"]
    assert await plan.names({"search": "   "}) == await plan.names()  # blank: no condition
    assert await plan.names({"statuses": ["LIVE"]}) == ["Order Completed", "Page Viewed"]
    assert await plan.names({"statuses": ["DEPRECATED", "DRAFT"]}) == ["Order_Refunded 100%", "Signup Started"]
    assert await plan.names({"tag": "checkout"}) == ["Order Completed", "Order_Refunded 100%"]
    assert await plan.names({"tag": "check"}) == []  # a tag matches whole
    # silent: not seen for N days, or never seen
    assert await plan.names({"silentSinceDays": 7}) == ["Order_Refunded 100%", "Page Viewed", "Signup Started"]
    assert await plan.names({"silentSinceDays": 30}) == ["Page Viewed", "Signup Started"]
    assert await plan.names({"fieldValue": "web"}) == ["Order Completed", "Page Viewed"]
    assert await plan.names({"fieldValue": "we"}) == []  # equal, not a part
    assert await plan.names({"metaValue": "gold"}) == ["Order_Refunded 100%"]
    assert await plan.names({"metaValue": "Payments"}) == ["Order Completed"]
    # conditions combine
    assert await plan.names({"tag": "core", "statuses": ["LIVE"], "eventTypeId": plan.order}) == ["Order Completed"]
    assert await plan.names({"fieldValue": "web", "silentSinceDays": 30}) == ["Page Viewed"]
    total = await plan.org(EVENTS, {"project": plan.project, "filter": {"tag": "core"}})
    assert total["events"]["totalCount"] == 2


async def test_bad_list_arguments_are_errors(org):
    plan = await Plan.create(org)
    for variables, field in (({"filter": {"silentSinceDays": -1}}, ["filter", "silentSinceDays"]),
                             ({"first": 501}, ["first"]),
                             ({"after": "garbage"}, ["after"]),
                             ({"filter": {"eventTypeId": plan.project}}, ["filter", "eventTypeId"]),
                             ({"orderBy": ["NAME_ASC", "ORDER_ASC"]}, ["orderBy"])):
        r = await org.gql.raw(EVENTS, {"project": plan.project, **variables}, token=org.token)
        err = r.json()["errors"][0]
        assert err["extensions"]["code"] == "VALIDATION" and err["extensions"]["field"] == field, (variables, err)


async def _walk(plan: Plan, order_by: list[str], size: int = 2) -> list[str]:
    """Every event, `size` at a time forward."""
    names, after = [], None
    while True:
        page = (await plan.org(EVENTS, {"project": plan.project, "orderBy": order_by, "first": size,
                                        "after": after}))["events"]
        names += [n["name"] for n in page["nodes"]]
        assert len(page["nodes"]) <= size
        if not page["pageInfo"]["hasNextPage"]:
            return names
        after = page["pageInfo"]["endCursor"]


async def _walk_back(plan: Plan, order_by: list[str], size: int = 2) -> list[str]:
    names, before = [], None
    while True:
        page = (await plan.org(EVENTS, {"project": plan.project, "orderBy": order_by, "last": size,
                                        "before": before}))["events"]
        names = [n["name"] for n in page["nodes"]] + names
        if not page["pageInfo"]["hasPreviousPage"]:
            return names
        before = page["pageInfo"]["startCursor"]


async def test_each_ordering_pages_through_every_event_once(org):
    plan = await Plan.create(org)
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    created = [await plan.event(n) for n in names]
    now = datetime.now(timezone.utc)
    for i, days in ((0, 3), (2, 1), (4, 2)):  # alpha and charlie never seen
        await set_columns(org, m.Event, created[i]["id"], last_seen_at=now - timedelta(days=days))
    await set_columns(org, m.Event, created[1]["id"], updated_at=now + timedelta(minutes=5))  # alpha updated last
    expected = {
        "ORDER_ASC": names,
        "NAME_ASC": sorted(names),
        "CREATED_AT_DESC": names[::-1],
        "UPDATED_AT_DESC": ["alpha", "bravo", "charlie", "echo", "delta"],
        "LAST_SEEN_AT_DESC": ["echo", "bravo", "delta"] + sorted(["alpha", "charlie"], key=lambda n: next(
            c["id"] for c in created if c["name"] == n), reverse=True),  # never seen last, ties by ID
    }
    for order, names_in_order in expected.items():
        assert await _walk(plan, [order]) == names_in_order, order
        assert await _walk_back(plan, [order]) == names_in_order, order
        assert await _walk(plan, [order], size=500) == names_in_order, order
    assert await plan.names() == names  # ORDER_ASC is the default


async def test_tags_are_listed_with_their_counts(gql, org):
    plan = await Plan.create(org)
    await plan.event("A", tags=["checkout", "core"])
    await plan.event("B", tags=["checkout"])
    await plan.event("C", plan.page, tags=["web"])
    await plan.event("D")
    assert (await org(TAGS, {"project": plan.project}))["tags"] == [
        {"tag": "checkout", "count": 2}, {"tag": "core", "count": 1}, {"tag": "web", "count": 1}]
    from tests.graph.plan.helpers import Org

    other = await Org.create(gql, "Other Co")
    r = await other.gql.raw(TAGS, {"project": plan.project}, token=other.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def _add_events(plan: Plan, start: int, count: int, owner: str) -> None:
    data = await plan.bulk([{"eventTypeId": plan.order if i % 2 else plan.page, "name": f"Event {i}",
                             "ownerId": owner, "tags": ["t", f"t{i % 3}"],
                             "fieldValues": ([{"fieldId": plan.order_id, "value": str(i)},
                                              {"fieldId": plan.channel, "value": "web"}] if i % 2
                                             else [{"fieldId": plan.url, "value": f"https://x/{i}"}]),
                             "metaValues": [{"metaFieldId": plan.team, "value": "Growth"},
                                            {"metaFieldId": plan.tier, "value": "gold"}]}
                            for i in range(start, start + count)])
    assert data["userErrors"] == [], data
    for e in data["events"][:3]:
        got = await plan.org(FIGMA, {"input": {"eventId": e["id"], "url": f"https://www.figma.com/file/{e['id']}",
                                               "title": "Spec"}})
        assert got["eventFigmaLinkSet"]["userErrors"] == []


async def test_a_page_of_events_with_every_relation_costs_the_same_statements_at_5_and_50(org, gql):
    from tests.graph.accounts.helpers import add_member

    plan = await Plan.create(org)
    _, editor, _ = await add_member(gql, org.token, org.org_id, "editor")
    await _add_events(plan, 0, 5, editor["id"])

    async def page() -> dict:
        return await org(PAGE, {"project": plan.project, "first": 200})

    small_statements: list[str] = []
    small = await count_statements(page, small_statements)
    nodes = (await page())["events"]["nodes"]
    assert len(nodes) == 5 and sum(len(n["photos"]) for n in nodes) == 3
    assert all(n["owner"]["id"] == editor["id"] and n["metaValues"] and n["fields"] for n in nodes)

    await _add_events(plan, 5, 45, org.user["id"])
    large_statements: list[str] = []
    large = await count_statements(page, large_statements)
    nodes = (await page())["events"]["nodes"]
    assert len(nodes) == 50 and {n["owner"]["id"] for n in nodes} == {editor["id"], org.user["id"]}
    assert small == large, (small_statements, large_statements)
    # sign-in (session, memberships) + project + page + type, fields, meta fields, owners, photos
    assert large <= 9, "\n".join(s[:90] for s in large_statements)
