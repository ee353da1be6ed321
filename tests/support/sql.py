"""Counting the SQL statements a piece of work runs (through any engine hooked by
`server.db.statements.install`, which every live server's lifespan does)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server.db.statements import record_statements


async def count_statements(coro_factory: Callable[[], Awaitable[Any]], into: list[str] | None = None) -> int:
    """How many SQL statements `await coro_factory()` ran; `into` receives their text (for messages)."""
    with record_statements() as rec:
        await coro_factory()
    if into is not None:
        into.extend(rec)
    return len(rec)
