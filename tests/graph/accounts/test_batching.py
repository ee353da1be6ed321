"""Nested account relations run a constant number of SQL statements (dataloaders), and nested
connections page correctly per parent."""

from __future__ import annotations

from server.db.statements import record_statements
from tests.graph.accounts.helpers import INVITE, ORG_CREATE, add_member, signed_in
from tests.support.client import unique_email

NESTED = """{ viewer { organizations { totalCount nodes { id name viewerRole
  members { totalCount nodes { role user { email } } }
  invites { totalCount nodes { email invitedBy { email } } } } } } }"""


async def _grow(gql, token: str, orgs: int) -> None:  # noqa: ANN001
    for i in range(orgs):
        org = (await gql(ORG_CREATE, {"input": {"name": f"Org {i} {unique_email()}"}}, token=token))
        org_id = org["organizationCreate"]["organization"]["id"]
        await add_member(gql, token, org_id, "editor")
        await gql(INVITE, {"input": {"organizationId": org_id, "email": unique_email()}}, token=token)


async def _count(gql, token: str) -> tuple[int, dict]:  # noqa: ANN001
    with record_statements() as statements:
        data = await gql(NESTED, token=token)
    return len(statements), data


async def test_statement_count_does_not_grow_with_rows(gql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    await _grow(gql, token, 2)
    small, data = await _count(gql, token)
    orgs = data["viewer"]["organizations"]["nodes"]
    assert len(orgs) == 2 and all(o["members"]["totalCount"] == 2 for o in orgs)
    assert all(len(o["members"]["nodes"]) == 2 and o["invites"]["totalCount"] == 2 for o in orgs)

    await _grow(gql, token, 4)
    large, data = await _count(gql, token)
    orgs = data["viewer"]["organizations"]["nodes"]
    assert len(orgs) == 6 and all(len(o["members"]["nodes"]) == 2 for o in orgs)
    assert all(m["user"]["email"] for o in orgs for m in o["members"]["nodes"])
    assert small == large, (small, large)
    assert small <= 12  # auth (2) + viewer, orgs, org count, members, member counts, users, invites, invite counts


async def test_nested_members_connection_pages_per_organization(gql):  # noqa: ANN001
    token, owner = await signed_in(gql)
    org_ids = []
    for name in ("Paged A", "Paged B"):
        org_id = (await gql(ORG_CREATE, {"input": {"name": name}}, token=token))["organizationCreate"]["organization"]["id"]
        org_ids.append(org_id)
        for _ in range(3 if name.endswith("A") else 1):
            await add_member(gql, token, org_id, "viewer")
    query = """query($after: String) { viewer { organizations { nodes { name
      members(first: 2, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
        nodes { user { email } } } } } } }"""
    first = {o["name"]: o["members"] for o in (await gql(query, token=token))["viewer"]["organizations"]["nodes"]}
    assert first["Paged A"]["totalCount"] == 4 and first["Paged A"]["pageInfo"]["hasNextPage"] is True
    assert first["Paged B"]["totalCount"] == 2 and first["Paged B"]["pageInfo"]["hasNextPage"] is False
    assert first["Paged A"]["nodes"][0]["user"]["email"] == owner["email"]  # earliest to join first

    cursor = first["Paged A"]["pageInfo"]["endCursor"]
    org_a = org_ids[0]
    second = await gql("""query($id: ID!, $after: String) { organization(id: $id) {
        members(first: 2, after: $after) { pageInfo { hasNextPage hasPreviousPage } nodes { user { email } } } } }""",
                       {"id": org_a, "after": cursor}, token=token)
    page = second["organization"]["members"]
    assert len(page["nodes"]) == 2 and page["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True}
    seen = {n["user"]["email"] for n in first["Paged A"]["nodes"]} | {n["user"]["email"] for n in page["nodes"]}
    assert len(seen) == 4

    last = await gql("""query($id: ID!) { organization(id: $id) { members(last: 1) { nodes { user { email } } } } }""",
                     {"id": org_a}, token=token)
    assert last["organization"]["members"]["nodes"] == [page["nodes"][-1]]

    bad = await gql.raw("""query($id: ID!) { organization(id: $id) { members(first: 100000) { totalCount } } }""",
                        {"id": org_a}, token=token)
    assert bad.json()["errors"][0]["extensions"]["code"] in ("VALIDATION", "QUERY_TOO_COSTLY")


async def test_tampered_member_cursor_is_a_validation_error(gql):  # noqa: ANN001
    import base64

    token, _ = await signed_in(gql)
    await gql(ORG_CREATE, {"input": {"name": "Cursor Co"}}, token=token)
    bad = base64.urlsafe_b64encode(b'["not a date", {"u": "not-a-uuid"}]').decode().rstrip("=")
    r = await gql.raw("""query($after: String) { viewer { organizations { nodes {
        members(after: $after) { totalCount } } } } }""", {"after": bad}, token=token)
    assert r.status_code == 200
    assert r.json()["errors"][0]["extensions"]["code"] == "VALIDATION"
