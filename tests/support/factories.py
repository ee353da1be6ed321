"""One factory per `Node` type: it creates an object of that type in the world's organization
through the public GraphQL API (as the organization's owner) and returns its global ID.

`tests/graph/test_tenant_isolation.py` runs every factory and fails for a `Node` type that has
none, so a domain that adds a node type adds its factory here:

    @factory("Incident")
    async def incident(world: World) -> str:
        data = await world.owner(INCIDENT_CREATE, {"input": {"organizationId": world.org_id, ...}})
        return data["incidentCreate"]["incident"]["id"]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.support.client import GQL, create_org, register_and_login, unique_email

Factory = Callable[["World"], Awaitable[str]]
FACTORIES: dict[str, Factory] = {}


def factory(type_name: str) -> Callable[[Factory], Factory]:
    def register(fn: Factory) -> Factory:
        assert type_name not in FACTORIES, f"two factories for {type_name}"
        FACTORIES[type_name] = fn
        return fn

    return register


@dataclass
class World:
    """An organization with its owner, on a live server."""

    gql: GQL
    owner_token: str
    owner_user: dict
    org_id: str  # global ID

    async def owner(self, query: str, variables: dict | None = None) -> dict:
        """`data` of an operation run as the owner (raises on GraphQL errors)."""
        return await self.gql(query, variables, token=self.owner_token)

    @classmethod
    async def create(cls, gql: GQL, name: str = "Tenant") -> "World":
        token, user = await register_and_login(gql)
        org = await create_org(gql, token, name)
        return cls(gql, token, user, org["id"])


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


@factory("Organization")
async def organization(world: World) -> str:
    return world.org_id


@factory("Membership")
async def membership(world: World) -> str:
    data = await world.owner("query($id: ID!) { organization(id: $id) { members(first: 1) { nodes { id } } } }",
                             {"id": world.org_id})
    return data["organization"]["members"]["nodes"][0]["id"]


INVITE = """mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) {
  invite { id } token userErrors { code field message } } }"""


@factory("Invite")
async def invite(world: World) -> str:
    data = await world.owner(INVITE, {"input": {"organizationId": world.org_id, "email": unique_email("invitee")}})
    return ok(data["organizationInvite"])["invite"]["id"]


@factory("User")
async def user(world: World) -> str:
    """Another person who joined the organization (users are visible to the members they share it with)."""
    email = unique_email("member")
    invited = ok((await world.owner(INVITE, {"input": {"organizationId": world.org_id, "email": email}}))["organizationInvite"])
    token, member = await register_and_login(world.gql, email)
    data = await world.gql("""mutation($input: OrganizationInviteAcceptInput!) { organizationInviteAccept(input: $input) {
      membership { id } userErrors { code field message } } }""", {"input": {"token": invited["token"]}}, token=token)
    ok(data["organizationInviteAccept"])
    return member["id"]


@factory("ApiKey")
async def api_key(world: World) -> str:
    data = await world.owner("""mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
      apiKey { id } token userErrors { code field message } } }""",
                             {"input": {"name": "factory key", "organizationId": world.org_id}})
    return ok(data["apiKeyCreate"])["apiKey"]["id"]


@factory("Job")
async def job(world: World) -> str:
    data = await world.owner("""mutation($input: OrganizationExportInput!) { organizationExport(input: $input) {
      job { id } userErrors { code field message } } }""", {"input": {"organizationId": world.org_id}})
    return ok(data["organizationExport"])["job"]["id"]


@factory("AuditEntry")
async def audit_entry(world: World) -> str:
    data = await world.owner("query($id: ID!) { auditLog(organizationId: $id, first: 1) { nodes { id } } }",
                             {"id": world.org_id})
    return data["auditLog"]["nodes"][0]["id"]
