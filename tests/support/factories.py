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


WEBHOOK_CONFIG_CREATE = """mutation($input: WebhookConfigCreateInput!) { webhookConfigCreate(input: $input) {
  webhookConfig { id } key userErrors { code field message } } }"""


async def _webhook_config(world: World, provider: str = "GENERIC") -> tuple[str, str]:
    data = await world.owner(WEBHOOK_CONFIG_CREATE, {"input": {"organizationId": world.org_id, "name": "factory hook",
                                                               "provider": provider}})
    payload = ok(data["webhookConfigCreate"])
    return payload["webhookConfig"]["id"], payload["key"]


@factory("WebhookConfig")
async def webhook_config(world: World) -> str:
    return (await _webhook_config(world))[0]


@factory("WebhookDelivery")
async def webhook_delivery(world: World) -> str:
    """A generic alert posted to the config's ingest URL (the REST shim answers the delivery's ID)."""
    _, key = await _webhook_config(world)
    r = await world.gql.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "factory alert", "service": "api"})
    assert r.status_code == 202, r.text
    return r.json()["deliveryId"]


# --- incidents: created through the public path, a generic alert posted to a webhook config's ingest URL

async def ingest_alert(world: World, alert: dict | None = None, provider: str = "GENERIC", body: object = None) -> dict:
    """POST one delivery to a fresh config's ingest URL; the shim's 202 answer
    (`{deliveryId, alerts, incidents, changeEvents}`, global IDs)."""
    _, key = await _webhook_config(world, provider)
    payload = body if body is not None else (alert or {"title": "factory alert", "service": "api", "severity": "high"})
    r = await world.gql.http.post(f"/api/v1/webhooks/ingest/{key}", json=payload)
    assert r.status_code == 202, r.text
    return r.json()


@factory("Incident")
async def incident(world: World) -> str:
    return (await ingest_alert(world))["incidents"][0]


@factory("Alert")
async def alert(world: World) -> str:
    return (await ingest_alert(world))["alerts"][0]


@factory("TimelineEntry")
async def timeline_entry(world: World) -> str:
    incident_id = (await ingest_alert(world))["incidents"][0]
    data = await world.owner("query($id: ID!) { incident(id: $id) { timeline(first: 1) { nodes { id } } } }",
                             {"id": incident_id})
    return data["incident"]["timeline"]["nodes"][0]["id"]


JENKINS_DEPLOYMENT = {
    "name": "checkout-api-deploy", "url": "job/checkout-api-deploy/",
    "build": {"full_url": "https://ci.example.com/job/checkout-api-deploy/7/", "number": 7, "phase": "COMPLETED",
              "status": "SUCCESS", "url": "job/checkout-api-deploy/7/", "timestamp": 1795510716377,
              "scm": {"branch": "origin/main", "commit": "3f9c2d1e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"},
              "parameters": {"SERVICE": "checkout-api", "ENVIRONMENT": "production", "VERSION": "2.14.0"}},
}


@factory("ChangeEvent")
async def change_event(world: World) -> str:
    """A Jenkins deployment (Notification plugin format) posted to a Jenkins config's ingest URL."""
    return (await ingest_alert(world, provider="JENKINS", body=JENKINS_DEPLOYMENT))["changeEvents"][0]
