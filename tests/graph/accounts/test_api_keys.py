"""Personal API keys: creation, listing, scopes, bindings, revocation, expiry, last use."""

from __future__ import annotations

import hashlib

from graph.core.node import to_global_id
from tests.graph.accounts.helpers import (
    INVITE,
    KEY_CREATE,
    KEY_REVOKE,
    ORG_CREATE,
    UPDATE,
    add_member,
    api_key,
    errors_of,
    owner_with_org,
    raw_id,
    signed_in,
)
from tests.support.client import unique_email

KEYS = """{ viewer { apiKeys { totalCount nodes { id name prefix scope revokedAt lastUsedAt active } } } }"""


async def test_create_list_and_use_key(gql, sql):  # noqa: ANN001
    token, user = await signed_in(gql)
    data = await gql(KEY_CREATE, {"input": {"name": "deploy bot", "expiresInDays": 30}}, token=token)
    created = data["apiKeyCreate"]
    assert created["userErrors"] == []
    key = created["token"]
    assert key.startswith("insk_") and created["apiKey"]["prefix"] == key[:12]
    assert created["apiKey"]["scope"] == "read" and created["apiKey"]["expiresAt"] is not None
    row = await sql.fetchrow("select key_hash, prefix from api_keys where id = $1::uuid", raw_id(created["apiKey"]["id"]))
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest() and key not in row["key_hash"]
    audit = await sql.fetchval("select after::text from audit_log where action = 'api_key.create' and target_id = $1",
                               raw_id(created["apiKey"]["id"]))
    assert key not in audit and row["key_hash"] not in audit

    for scheme in ("Bearer", "Token"):
        r = await gql.raw("{ viewer { email } }", token="", headers={"authorization": f"{scheme} {key}"})
        assert r.status_code == 200 and r.json()["data"]["viewer"]["email"] == user["email"]

    listed = (await gql(KEYS, token=token))["viewer"]["apiKeys"]
    assert listed["totalCount"] == 1
    assert listed["nodes"][0]["name"] == "deploy bot" and listed["nodes"][0]["lastUsedAt"] is not None
    assert "token" not in listed["nodes"][0]


async def test_key_validation(gql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    data = await gql(KEY_CREATE, {"input": {"name": "", "expiresInDays": 0,
                                            "projectId": to_global_id("Project", "4b0a3c52-5b4e-4c39-9a53-9d1d5b2f7d11")}},
                     token=token)
    assert sorted(errors_of(data["apiKeyCreate"])) == [
        ("VALIDATION", ["input", "expiresInDays"]), ("VALIDATION", ["input", "name"]), ("VALIDATION", ["input", "projectId"])]
    data = await gql(KEY_CREATE, {"input": {"name": "x" * 101, "expiresInDays": 3651}}, token=token)
    assert sorted(errors_of(data["apiKeyCreate"])) == [("VALIDATION", ["input", "expiresInDays"]), ("VALIDATION", ["input", "name"])]
    assert (await gql(KEYS, token=token))["viewer"]["apiKeys"]["totalCount"] == 0


async def test_project_bound_key_needs_own_organization(gql, sql):  # noqa: ANN001
    token, _, org = await owner_with_org(gql)
    project = to_global_id("Project", "4b0a3c52-5b4e-4c39-9a53-9d1d5b2f7d11")
    _, created = await api_key(gql, token, organizationId=org["id"], projectId=project, scope="write")
    assert created["projectId"] == project and created["organization"]["id"] == org["id"]
    assert str(await sql.fetchval("select project_id from api_keys where id = $1::uuid", raw_id(created["id"]))) \
        == "4b0a3c52-5b4e-4c39-9a53-9d1d5b2f7d11"
    _, _, foreign = await owner_with_org(gql, "Elsewhere")
    data = await gql(KEY_CREATE, {"input": {"name": "x", "organizationId": foreign["id"]}}, token=token)
    assert errors_of(data["apiKeyCreate"]) == [("NOT_FOUND", ["input", "organizationId"])]


async def test_bound_key_sees_only_its_organization(gql):  # noqa: ANN001
    token, _, org = await owner_with_org(gql, "Bound")
    await gql(ORG_CREATE, {"input": {"name": "Unbound"}}, token=token)
    key, _ = await api_key(gql, token, organizationId=org["id"])
    orgs = (await gql("{ viewer { organizations { nodes { id } } } }", token=key))["viewer"]["organizations"]["nodes"]
    assert orgs == [{"id": org["id"]}]


async def test_read_key_cannot_mutate(gql, sql):  # noqa: ANN001
    token, _, org = await owner_with_org(gql)
    key, _ = await api_key(gql, token, scope="read")
    email = unique_email()
    data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": email}}, token=key)
    assert errors_of(data["organizationInvite"]) == [("FORBIDDEN", None)]
    assert await sql.fetchval("select count(*) from invites where email = $1", email) == 0


async def test_write_key_can_manage_members_but_not_the_account(gql, sql):  # noqa: ANN001
    token, user, org = await owner_with_org(gql)
    key, _ = await api_key(gql, token, scope="write")
    data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=key)
    assert data["organizationInvite"]["userErrors"] == []
    for query, variables, field in (
        (KEY_CREATE, {"input": {"name": "child"}}, "apiKeyCreate"),
        (UPDATE, {"input": {"name": "hijacked"}}, "userUpdate"),
        (ORG_CREATE, {"input": {"name": "by key"}}, "organizationCreate"),
    ):
        res = await gql(query, variables, token=key)
        assert errors_of(res[field]) == [("FORBIDDEN", None)], field
    assert await sql.fetchval("select count(*) from api_keys where user_id = $1::uuid", raw_id(user["id"])) == 1
    assert await sql.fetchval("select name from users where id = $1::uuid", raw_id(user["id"])) == "Test User"


async def test_key_of_a_viewer_cannot_exceed_the_role(gql):  # noqa: ANN001
    owner_token, _, org = await owner_with_org(gql)
    viewer_token, _, _ = await add_member(gql, owner_token, org["id"], "viewer")
    key, _ = await api_key(gql, viewer_token, scope="write", organizationId=org["id"])
    data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=key)
    assert errors_of(data["organizationInvite"]) == [("FORBIDDEN", None)]


async def test_revoked_key_gets_401_and_stays_listed(gql, sql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    key, created = await api_key(gql, token)
    assert (await gql.raw("{ viewer { id } }", token=key)).status_code == 200
    data = await gql(KEY_REVOKE, {"input": {"id": created["id"]}}, token=token)
    revoked = data["apiKeyRevoke"]
    assert revoked["userErrors"] == [] and revoked["apiKey"]["revokedAt"] is not None and not revoked["apiKey"]["active"]
    r = await gql.raw("{ viewer { id } }", token="", headers={"authorization": f"Token {key}"})
    assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    nodes = (await gql(KEYS, token=token))["viewer"]["apiKeys"]["nodes"]
    assert nodes[0]["revokedAt"] is not None
    assert await sql.fetchval("select count(*) from audit_log where action = 'api_key.revoke' and target_id = $1",
                              raw_id(created["id"])) == 1
    again = await gql(KEY_REVOKE, {"input": {"id": created["id"]}}, token=token)  # idempotent
    assert again["apiKeyRevoke"]["apiKey"]["revokedAt"] == revoked["apiKey"]["revokedAt"]


async def test_expired_key_gets_401(gql, sql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    key, created = await api_key(gql, token, expiresInDays=1)
    await sql.execute("update api_keys set expires_at = now() - interval '1 second' where id = $1::uuid",
                      raw_id(created["id"]))
    assert (await gql.raw("{ viewer { id } }", token=key)).status_code == 401


async def test_only_the_owner_revokes_or_sees_a_key(gql):  # noqa: ANN001
    token, _, org = await owner_with_org(gql)
    _, created = await api_key(gql, token, organizationId=org["id"])
    other_token, _, _ = await add_member(gql, token, org["id"], "editor")  # even a colleague
    data = await gql(KEY_REVOKE, {"input": {"id": created["id"]}}, token=other_token)
    assert errors_of(data["apiKeyRevoke"]) == [("NOT_FOUND", ["input", "id"])]
    seen = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": created["id"]}, token=other_token)
    assert seen["node"] is None
    mine = await gql("query($id: ID!) { node(id: $id) { ... on ApiKey { name } } }", {"id": created["id"]}, token=token)
    assert mine["node"] == {"name": "ci"}


async def test_key_cannot_revoke_keys(gql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    key, created = await api_key(gql, token, scope="write")
    data = await gql(KEY_REVOKE, {"input": {"id": created["id"]}}, token=key)
    assert errors_of(data["apiKeyRevoke"]) == [("FORBIDDEN", None)]
