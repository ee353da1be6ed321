"""Alembic environment: async engine (asyncpg), metadata from server.db.models."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from server.db.models import metadata

config = context.config


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    """Autogenerate ignores `*_trgm` indexes: migrations create them only where pg_trgm is
    available, so the models cannot declare them (see 0003)."""
    return not (type_ == "index" and name and name.endswith("_trgm"))


def run_migrations(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                      transaction_per_migration=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(config.attributes["database_url"], poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(run_migrations)
        await conn.commit()
    await engine.dispose()


def run_offline() -> None:
    context.configure(url=config.attributes["database_url"], target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async())
    else:  # called from inside a running loop (tests): run in a fresh thread's loop
        import threading

        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(run_async())
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if errors:
            raise errors[0]
