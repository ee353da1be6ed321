"""Helpers of the REST shim tests: an organization owner on the live server, webhook configs made
through GraphQL, direct row counts in the test database, and fixture loading."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.client import GQL, create_org, register_and_login

REPO = Path(__file__).resolve().parents[4]
SHARED_DIR = Path("/work/shared/fixtures/webhooks")
OWN_DIR = REPO / "tests" / "fixtures" / "webhooks"

CONFIG_FIELDS = """id name provider enabled keyPrefix secretSet rateLimitPerMinute previousKeyExpiresAt routePath
  ingestUrl createdAt updatedAt stats { deliveriesAccepted deliveriesRejected lastDeliveryAt lastError lastErrorAt }"""
CREATE = f"""mutation($input: WebhookConfigCreateInput!) {{ webhookConfigCreate(input: $input) {{
  key webhookConfig {{ {CONFIG_FIELDS} }} userErrors {{ code field message }} }} }}"""
UPDATE = f"""mutation($input: WebhookConfigUpdateInput!) {{ webhookConfigUpdate(input: $input) {{
  webhookConfig {{ {CONFIG_FIELDS} }} userErrors {{ code field message }} }} }}"""
DELETE = """mutation($input: WebhookConfigDeleteInput!) { webhookConfigDelete(input: $input) {
  deletedWebhookConfigId userErrors { code field message } } }"""
REGENERATE = f"""mutation($input: WebhookConfigRegenerateKeyInput!) {{ webhookConfigRegenerateKey(input: $input) {{
  key webhookConfig {{ {CONFIG_FIELDS} }} userErrors {{ code field message }} }} }}"""
CONFIG_NODE = f"""query($id: ID!) {{ node(id: $id) {{ __typename ... on WebhookConfig {{ {CONFIG_FIELDS} }} }} }}"""


def shared_dir() -> Path:
    """The shared fixtures: beside the checkout (the usual layout) or at /work/shared."""
    beside = REPO.parent / "shared" / "fixtures" / "webhooks"
    return beside if beside.is_dir() else SHARED_DIR


def fixture_files() -> list[tuple[str, Path]]:
    out = []
    for label, directory in (("shared", shared_dir()), ("own", OWN_DIR)):
        for path in sorted(directory.glob("*/*.json")):
            out.append((f"{label}/{path.parent.name}/{path.stem}", path))
    return out


def load_fixture(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def fixture_bytes(fixture: dict) -> bytes:
    """The exact bytes to send: `raw_body` when a signature covers it, else the body as JSON."""
    if "raw_body" in fixture:
        return fixture["raw_body"].encode("utf-8")
    return json.dumps(fixture["body"]).encode("utf-8")


def shape(response: httpx.Response) -> None:
    """Every refusal is `{error, details, code}`."""
    body = response.json()
    assert set(body) == {"error", "details", "code"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and body["code"]


@dataclass
class Org:
    """An organization and its owner on the live server, with helpers for configs and counts."""

    gql: GQL
    http: httpx.AsyncClient
    token: str
    org_id: str  # global ID
    org_uuid: uuid.UUID
    database_url: str

    async def create_config(self, provider: str = "GENERIC", name: str | None = None, **extra) -> tuple[dict, str]:  # noqa: ANN003
        variables = {"input": {"organizationId": self.org_id, "name": name or f"{provider.lower()} hook",
                               "provider": provider, **extra}}
        data = await self.gql(CREATE, variables, token=self.token)
        payload = data["webhookConfigCreate"]
        assert payload["userErrors"] == [], payload
        return payload["webhookConfig"], payload["key"]

    async def config(self, gid: str) -> dict:
        return (await self.gql(CONFIG_NODE, {"id": gid}, token=self.token))["node"]

    async def counts(self) -> dict[str, int]:
        """Rows of this organization in every table the shim writes."""
        conn = await connect(self.database_url)
        try:
            out = {}
            for table in ("webhook_deliveries", "alerts", "incidents", "change_events", "incident_timeline"):
                out[table] = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1",
                                                 self.org_uuid)
            return out
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args) -> list:  # noqa: ANN002
        conn = await connect(self.database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def execute(self, sql: str, *args) -> str:  # noqa: ANN002
        conn = await connect(self.database_url)
        try:
            return await conn.execute(sql, *args)
        finally:
            await conn.close()


async def connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))


def raw_uuid(gid: str) -> uuid.UUID:
    from graph.core.node import from_global_id

    return from_global_id(gid)[1]


@pytest.fixture(scope="module")
async def owner(live):  # noqa: ANN001, ANN201
    """One user for the module (password hashing is slow); each test makes its own organization."""
    gql = GQL(live.url)
    token, user = await register_and_login(gql)
    yield gql, token, user
    await gql.aclose()


@pytest.fixture
async def org(live, owner, database_url):  # noqa: ANN001, ANN201
    gql, token, _ = owner
    created = await create_org(gql, token, f"Hooks {uuid.uuid4().hex[:6]}")
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        yield Org(gql, http, token, created["id"], raw_uuid(created["id"]), database_url)


INVITE = """mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) {
  token userErrors { code field message } } }"""
ACCEPT = """mutation($input: OrganizationInviteAcceptInput!) { organizationInviteAccept(input: $input) {
  membership { id } userErrors { code field message } } }"""


async def add_member(org: Org, role: str, gql: GQL | None = None) -> tuple[str, GQL]:
    """A new user with `role` in the organization: (their session token, their client)."""
    from tests.support.client import unique_email

    email = unique_email(role)
    data = await org.gql(INVITE, {"input": {"organizationId": org.org_id, "email": email, "role": role}},
                         token=org.token)
    assert data["organizationInvite"]["userErrors"] == [], data
    client = gql or GQL(org.gql.base_url)
    token, _ = await register_and_login(client, email)
    data = await client(ACCEPT, {"input": {"token": data["organizationInvite"]["token"]}}, token=token)
    assert data["organizationInviteAccept"]["userErrors"] == [], data
    return token, client


async def api_key(gql: GQL, token: str, organization_id: str, scope: str = "write") -> str:
    data = await gql("""mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
      token userErrors { code message } } }""", {"input": {"name": "hooks", "scope": scope,
                                                           "organizationId": organization_id}}, token=token)
    assert data["apiKeyCreate"]["userErrors"] == [], data
    return data["apiKeyCreate"]["token"]
