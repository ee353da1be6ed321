"""`viewer` (who am I, and what is mine) and `organization(id:)`."""

from __future__ import annotations

import strawberry

from graph.accounts.types import Organization, Viewer
from graph.core.node import decode_id, load_one
from server.domains.accounts import loaders


@strawberry.type
class AccountsQuery:
    @strawberry.field(description="You: the signed-in user or the API key's owner; null when anonymous.")
    async def viewer(self, info: strawberry.Info) -> Viewer | None:
        # An anonymous principal has no user_id, so load_one answers null without a query.
        return await load_one(info, loaders.load_users, Viewer, info.context.principal.user_id)

    @strawberry.field(description="An organization you belong to; null when missing or not yours.")
    async def organization(self, info: strawberry.Info, id: strawberry.ID) -> Organization | None:
        return await load_one(info, loaders.load_organizations, Organization, decode_id(id, "Organization"))
