"""A small GraphQL-over-HTTP client for tests (httpx), plus account helpers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


class GraphQLResponseError(AssertionError):
    pass


class GQL:
    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.token = token
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

    async def raw(self, query: str, variables: dict | None = None, *, token: str | None = None,
                  headers: dict | None = None, operation_name: str | None = None) -> httpx.Response:
        h = {"content-type": "application/json"}
        tok = token if token is not None else self.token
        if tok:
            h["authorization"] = f"Bearer {tok}"
        h.update(headers or {})
        body: dict[str, Any] = {"query": query, "variables": variables or {}}
        if operation_name:
            body["operationName"] = operation_name
        return await self.http.post("/graphql", json=body, headers=h)

    async def __call__(self, query: str, variables: dict | None = None, **kw: Any) -> dict:
        """The `data` of a successful response; raises when the response has errors."""
        r = await self.raw(query, variables, **kw)
        body = r.json()
        if r.status_code != 200 or body.get("errors"):
            raise GraphQLResponseError(f"HTTP {r.status_code}: {body}")
        return body["data"]

    def as_(self, token: str | None) -> "GQL":
        other = GQL(self.base_url, token)
        return other

    async def aclose(self) -> None:
        await self.http.aclose()


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


REGISTER = """mutation($input: UserRegisterInput!) { userRegister(input: $input) {
  user { id email name } userErrors { code field message } } }"""
LOGIN = """mutation($input: UserLoginInput!) { userLogin(input: $input) {
  token user { id email } userErrors { code field message } } }"""
ORG_CREATE = """mutation($input: OrganizationCreateInput!) { organizationCreate(input: $input) {
  organization { id name } userErrors { code field message } } }"""


async def register_and_login(gql: GQL, email: str | None = None, password: str = "correct horse battery",
                             name: str | None = "Test User") -> tuple[str, dict]:
    """Register a user and log in; returns (jwt, user)."""
    email = email or unique_email()
    data = await gql(REGISTER, {"input": {"email": email, "password": password, "name": name}}, token="")
    assert data["userRegister"]["userErrors"] == [], data
    data = await gql(LOGIN, {"input": {"email": email, "password": password}}, token="")
    assert data["userLogin"]["userErrors"] == [], data
    return data["userLogin"]["token"], data["userLogin"]["user"]


async def create_org(gql: GQL, token: str, name: str = "Acme") -> dict:
    data = await gql(ORG_CREATE, {"input": {"name": name}}, token=token)
    assert data["organizationCreate"]["userErrors"] == [], data
    return data["organizationCreate"]["organization"]
