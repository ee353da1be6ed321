from __future__ import annotations

import asyncpg
import pytest


@pytest.fixture
async def sql(database_url):  # noqa: ANN001, ANN201
    """A plain connection to the test database, to check what the API wrote (audit rows, hashes)."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    yield conn
    await conn.close()
