"""The computed fields of `Variable` (usage, sample values, values), kept out of graph/plan/types.py:
there each is one `strawberry.field(resolver=...)` line. Every one reads through the operation's
dataloaders (server/domains/plan/variables.py), so listing many variables with their usage runs a
constant number of SQL statements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from graph.core.connections import Connection, connection_from_page
from server.domains.plan import variables as service

if TYPE_CHECKING:
    from graph.plan.variables import VariableValue


async def _usage(root: Any, info: strawberry.Info) -> service.Usage:
    return await info.context.loader(service.load_variable_usage).load(root.row_id)


async def event_count(root: strawberry.Parent[Any], info: strawberry.Info) -> int:
    return (await _usage(root, info)).event_count


async def context_count(root: strawberry.Parent[Any], info: strawberry.Info) -> int:
    return (await _usage(root, info)).context_count


async def low_context_count(root: strawberry.Parent[Any], info: strawberry.Info) -> int:
    return (await _usage(root, info)).low_context_count


async def high_context_count(root: strawberry.Parent[Any], info: strawberry.Info) -> int:
    return (await _usage(root, info)).high_context_count


async def sample_values(root: strawberry.Parent[Any], info: strawberry.Info) -> list[str]:
    values = await info.context.loader(service.load_variable_samples).load(root.row_id)
    # A scan may leave a summary on the row without recording each value.
    return values or [v if isinstance(v, str) else str(v) for v in (root.stored_sample_values or [])]


async def values(root: strawberry.Parent[Any], info: strawberry.Info, first: int | None = None,
                 after: str | None = None, last: int | None = None, before: str | None = None,
                 ) -> Connection[Annotated["VariableValue", strawberry.lazy("graph.plan.variables")]]:
    from graph.plan.variables import VariableValue

    page = await info.context.loader(service.load_value_pages).load((root.row_id, first, after, last, before))
    return connection_from_page(page, VariableValue.from_row)


EVENT_COUNT = "How many events refer to it (`${name}` in one of their field or meta values)."
CONTEXT_COUNT = "In how many places it is referred to: one context per (event, field or meta field)."
LOW_CONTEXT_COUNT = "Contexts whose field has a bounded set of values (ENUM or BOOLEAN)."
HIGH_CONTEXT_COUNT = "The other contexts (free values: strings, numbers, URLs, JSON)."
SAMPLE_VALUES = f"Up to {service.SAMPLE_SIZE} of its values, most frequent first."
VALUES = "Its values (observed by scans or entered), most frequent first."
