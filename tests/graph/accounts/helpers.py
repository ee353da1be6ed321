"""Operations and small helpers shared by the accounts GraphQL tests."""

from __future__ import annotations

import itertools
import uuid

from tests.support.client import GQL, create_org, register_and_login, unique_email

ERRORS = "userErrors { code field message }"
_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address of its own (uvicorn trusts X-Forwarded-For from loopback), so login
    rate-limit buckets of different tests never mix."""
    n = next(_addresses) + uuid.uuid4().int % 50_000
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def from_address(address: str) -> dict:
    return {"x-forwarded-for": address}


REGISTER = f"""mutation($input: UserRegisterInput!) {{ userRegister(input: $input) {{ user {{ id email name }} {ERRORS} }} }}"""
LOGIN = f"""mutation($input: UserLoginInput!) {{ userLogin(input: $input) {{ token expiresAt user {{ id email }} {ERRORS} }} }}"""
LOGOUT = f"""mutation($input: UserLogoutInput) {{ userLogout(input: $input) {{ revokedSessions {ERRORS} }} }}"""
UPDATE = f"""mutation($input: UserUpdateInput!) {{ userUpdate(input: $input) {{ user {{ id email name }} {ERRORS} }} }}"""
VIEWER = """{ viewer { id email name createdAt organizations { nodes { id name viewerRole } } } }"""
ORG_CREATE = f"""mutation($input: OrganizationCreateInput!) {{ organizationCreate(input: $input) {{
  organization {{ id name viewerRole }} membership {{ id role }} {ERRORS} }} }}"""
INVITE = f"""mutation($input: OrganizationInviteInput!) {{ organizationInvite(input: $input) {{
  token invite {{ id email role status expiresAt }} {ERRORS} }} }}"""
ACCEPT = f"""mutation($input: OrganizationInviteAcceptInput!) {{ organizationInviteAccept(input: $input) {{
  membership {{ id role user {{ email }} }} organization {{ id name viewerRole }} {ERRORS} }} }}"""
MEMBERSHIP_UPDATE = f"""mutation($input: MembershipUpdateInput!) {{ membershipUpdate(input: $input) {{
  membership {{ id role }} {ERRORS} }} }}"""
MEMBERSHIP_REMOVE = f"""mutation($input: MembershipRemoveInput!) {{ membershipRemove(input: $input) {{
  removedMembershipId organization {{ id }} {ERRORS} }} }}"""
MEMBERS = """query($id: ID!) { organization(id: $id) { id viewerRole
  members { totalCount nodes { id role user { id email } } }
  invites { totalCount nodes { id email role status } } } }"""
KEY_CREATE = f"""mutation($input: ApiKeyCreateInput!) {{ apiKeyCreate(input: $input) {{
  token apiKey {{ id name prefix scope projectId expiresAt revokedAt lastUsedAt active organization {{ id }} }} {ERRORS} }} }}"""
KEY_REVOKE = f"""mutation($input: ApiKeyRevokeInput!) {{ apiKeyRevoke(input: $input) {{
  apiKey {{ id revokedAt active }} {ERRORS} }} }}"""


def errors_of(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def signed_in(gql: GQL, email: str | None = None, password: str = "correct horse battery",
                    name: str | None = "Test User") -> tuple[str, dict]:
    return await register_and_login(gql, email=email or unique_email(), password=password, name=name)


async def owner_with_org(gql: GQL, name: str = "Acme") -> tuple[str, dict, dict]:
    """(token, user, organization) of a fresh owner."""
    token, user = await signed_in(gql)
    return token, user, await create_org(gql, token, name)


async def add_member(gql: GQL, owner_token: str, org_id: str, role: str = "viewer") -> tuple[str, dict, str]:
    """Invite a fresh user, accept; returns (token, user, membership id)."""
    email = unique_email("member")
    data = await gql(INVITE, {"input": {"organizationId": org_id, "email": email, "role": role}}, token=owner_token)
    assert data["organizationInvite"]["userErrors"] == [], data
    token, user = await signed_in(gql, email=email)
    data = await gql(ACCEPT, {"input": {"token": data["organizationInvite"]["token"]}}, token=token)
    assert data["organizationInviteAccept"]["userErrors"] == [], data
    return token, user, data["organizationInviteAccept"]["membership"]["id"]


async def membership_id_of(gql: GQL, token: str, org_id: str, email: str) -> str:
    data = await gql(MEMBERS, {"id": org_id}, token=token)
    return next(m["id"] for m in data["organization"]["members"]["nodes"] if m["user"]["email"] == email)


async def api_key(gql: GQL, token: str, **input_) -> tuple[str, dict]:  # noqa: ANN003
    data = await gql(KEY_CREATE, {"input": {"name": "ci", **input_}}, token=token)
    assert data["apiKeyCreate"]["userErrors"] == [], data
    return data["apiKeyCreate"]["token"], data["apiKeyCreate"]["apiKey"]


def raw_id(gid: str) -> str:
    """The UUID inside a global ID, to look rows up in SQL."""
    import base64

    return base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode().partition(":")[2]
