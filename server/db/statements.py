"""Counting the SQL statements a piece of work runs: tests use it to prove dataloaders batch."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_installed: set[int] = set()
_global: list[list[str]] = []


def install(engine: AsyncEngine) -> None:
    """Hook the engine once; statements are appended to every active recorder."""
    if id(engine.sync_engine) in _installed:
        return
    _installed.add(id(engine.sync_engine))

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        for rec in _global:
            rec.append(statement)


@contextmanager
def record_statements():
    """Record every statement run through hooked engines while the block runs (any task)."""
    rec: list[str] = []
    _global.append(rec)
    try:
        yield rec
    finally:
        _global.remove(rec)
