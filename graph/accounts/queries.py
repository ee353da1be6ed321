"""`viewer` (who am I, and what is mine) and `organization(id:)`."""

from __future__ import annotations

import strawberry

from graph.accounts.types import Organization, Viewer
from graph.core.node import decode_id
from server.domains.accounts import loaders


@strawberry.type
class AccountsQuery:
    @strawberry.field(description="You: the signed-in user or the API key's owner; null when anonymous.")
    async def viewer(self, info: strawberry.Info) -> Viewer | None:
        principal = info.context.principal
        if not principal.authenticated:
            return None
        row = await info.context.loader(loaders.load_users).load(principal.user_id)
        return Viewer.from_row(row) if row else None

    @strawberry.field(description="An organization you belong to; null when missing or not yours.")
    async def organization(self, info: strawberry.Info, id: strawberry.ID) -> Organization | None:
        row = await info.context.loader(loaders.load_organizations).load(decode_id(id, "Organization"))
        return Organization.from_row(row) if row else None
