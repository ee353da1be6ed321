"""Operations and helpers shared by the plan GraphQL tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.graph.accounts.helpers import add_member, owner_with_org
from tests.support.client import GQL

ERRORS = "userErrors { code field message }"
PROJECT_FIELDS = """id name slug description createdAt updatedAt organization { id } createdBy { id }
  summary { eventTypeCount eventCount fieldCount metaFieldCount variableCount relationCount
            eventsByStatus { status count } }"""
CREATE = f"""mutation($input: ProjectCreateInput!) {{ projectCreate(input: $input) {{
  project {{ {PROJECT_FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: ProjectUpdateInput!) {{ projectUpdate(input: $input) {{
  project {{ {PROJECT_FIELDS} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: ProjectDeleteInput!) {{ projectDelete(input: $input) {{ deletedProjectId {ERRORS} }} }}"""
PROJECTS = f"""query($org: ID!, $first: Int, $after: String, $orderBy: [ProjectOrder!]) {{
  projects(organizationId: $org, first: $first, after: $after, orderBy: $orderBy) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {PROJECT_FIELDS} }} }} }}"""
PROJECT = f"query($id: ID!) {{ project(id: $id) {{ {PROJECT_FIELDS} }} }}"
BY_SLUG = f"query($org: ID!, $slug: String!) {{ projectBySlug(organizationId: $org, slug: $slug) {{ {PROJECT_FIELDS} }} }}"
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"


def errors_of(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def unique_slug(prefix: str = "plan") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Org:
    """An organization with its owner, on a live server."""

    gql: GQL
    token: str
    user: dict
    org_id: str

    @classmethod
    async def create(cls, gql: GQL, name: str = "Plan Co") -> "Org":
        token, user, org = await owner_with_org(gql, name)
        return cls(gql, token, user, org["id"])

    async def __call__(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        return await self.gql(query, variables, token=token or self.token)

    async def member(self, role: str) -> str:
        """A fresh member's token."""
        token, _, _ = await add_member(self.gql, self.token, self.org_id, role)
        return token

    async def project(self, name: str = "Web app", slug: str | None = None, description: str = "",
                      token: str | None = None) -> dict:
        data = await self(CREATE, {"input": {"organizationId": self.org_id, "name": name,
                                             "slug": slug or unique_slug(), "description": description}}, token)
        assert data["projectCreate"]["userErrors"] == [], data
        return data["projectCreate"]["project"]
