"""Interim: plan rows written straight into a live server's database, for the tenant-isolation
factories of plan types whose create mutations are not built yet (issue 5 is built in parallel).

Whoever lands `eventTypeCreate`, `fieldCreate`, ... switches that type's factory in
tests/support/factories.py to the public mutation and drops its use of `insert_row`; this module
goes once no factory uses it. Rows are inserted with SQLAlchemy Core on the models' tables, so
column defaults apply exactly as for the services.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.live import LiveServer


def raw(gid: str) -> uuid.UUID:
    """The UUID inside a global ID."""
    return uuid.UUID(base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode().partition(":")[2])


def gid(type_name: str, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{row_id}".encode()).decode().rstrip("=")


async def insert_row(base_url: str, model: Any, **values: Any) -> uuid.UUID:
    """Insert one row of `model` into the database of the live server at `base_url`; its id."""
    values.setdefault("id", uuid.uuid4())
    engine = create_async_engine(LiveServer.at(base_url).database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(model.__table__).values(**values))
    finally:
        await engine.dispose()
    return values["id"]
