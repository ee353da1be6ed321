"""`node(id:)` and `nodes(ids:)`."""

from __future__ import annotations

import strawberry

from graph.core.node import Node, resolve_nodes
from server.errors import invalid


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global ID; null when missing or not yours.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        return (await resolve_nodes(info.context, [id], "id"))[0]

    @strawberry.field(description="Many objects by global ID, in order; null for each missing or not yours.")
    async def nodes(self, info: strawberry.Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > info.context.settings.page_size_max:
            raise invalid(f"at most {info.context.settings.page_size_max} ids", ["ids"])
        return await resolve_nodes(info.context, list(ids), "ids")
