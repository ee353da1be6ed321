"""Relay `Node`: opaque global IDs and tenant-checked `node(id:)` / `nodes(ids:)`.

A global ID is base64url("TypeName:uuid"). Each node type registers a batch loader that returns
only what the principal may see, so `node(id:)` of another tenant's object is `null`, exactly
like a missing one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import strawberry

from server.errors import invalid

if TYPE_CHECKING:
    from graph.context import Context

NodeLoader = Callable[["Context", list[uuid.UUID]], Awaitable[list[Any]]]
_registry: dict[str, tuple[type, NodeLoader]] = {}


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID


def to_global_id(type_name: str, raw: uuid.UUID | str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{raw}".encode()).decode().rstrip("="))


def from_global_id(gid: str, field: str = "id") -> tuple[str, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()
        type_name, _, raw = text.partition(":")
        return type_name, uuid.UUID(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(f"`{gid}` is not a valid ID", field.split(".")) from None


def decode_id(gid: str, expected: str, field: str = "id") -> uuid.UUID:
    """The UUID inside a global ID that must name an `expected` object."""
    type_name, raw = from_global_id(gid, field)
    if type_name != expected:
        raise invalid(f"`{gid}` is not a {expected} ID", field.split("."))
    return raw


def register_node(type_name: str, cls: type, batch: Callable[..., Awaitable[list[Any]]],
                  to_node: Callable[[Any], Any] | None = None) -> None:
    """Make `node(id:)` resolve `type_name`. `batch(rt, principal, ids)` is the domain's
    tenant-checked batch loader (run through the operation's dataloader); `to_node` turns a row
    into the GraphQL object (default `cls.from_row`)."""
    convert = to_node or cls.from_row

    async def load(ctx: "Context", ids: list[uuid.UUID]) -> list[Any]:
        rows = await ctx.loader(batch).load_many(ids)
        return [convert(r) if r is not None else None for r in rows]

    _registry[type_name] = (cls, load)


async def load_one(info: Any, batch: Callable[..., Awaitable[list[Any]]], node_type: Any,
                   key: uuid.UUID | None) -> Any:
    """The `node_type` object of the row `key` names, through the operation's dataloader of `batch`
    (which also decides visibility); None for no key or a row the principal cannot see. What every
    to-one relation resolver does."""
    if key is None:
        return None
    row = await info.context.loader(batch).load(key)
    return node_type.from_row(row) if row else None


def registered_nodes() -> dict[str, tuple[type, NodeLoader]]:
    return dict(_registry)


async def resolve_nodes(ctx: "Context", gids: list[str], field: str = "ids") -> list[Any]:
    """Resolve many global IDs with one batch per type; unknown types, missing or foreign objects
    are None. A malformed ID is a VALIDATION error whose `field` is `[field, index]` (`["id"]` for
    `node(id:)`)."""
    parsed: list[tuple[str, uuid.UUID]] = [
        from_global_id(gid, field if field == "id" else f"{field}.{i}") for i, gid in enumerate(gids)
    ]
    by_type: dict[str, list[uuid.UUID]] = {}
    for type_name, raw in parsed:
        if type_name in _registry:
            by_type.setdefault(type_name, []).append(raw)
    found: dict[tuple[str, uuid.UUID], Any] = {}
    batches = await asyncio.gather(*(_registry[t][1](ctx, ids) for t, ids in by_type.items()))
    for (type_name, ids), objs in zip(by_type.items(), batches):
        for raw, obj in zip(ids, objs):
            found[(type_name, raw)] = obj
    return [found.get(p) for p in parsed]
