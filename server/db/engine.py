"""Engine and session factory, and the unit of work that runs side effects after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger("insights.db")

AfterCommit = Callable[[], Awaitable[None]]


def normalize_url(url: str) -> str:
    """Accept `postgres://` and `postgresql://` URLs and use the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(normalize_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


class UnitOfWork:
    """One transaction plus the side effects (job enqueues, pub/sub events) that must follow its commit.

    Side effects registered with `after_commit` run only when the transaction committed, so a
    subscriber never hears of a row it cannot read yet, and a rolled-back change enqueues nothing.
    """

    def __init__(self, session: AsyncSession):
        self.session = session
        self._after: list[AfterCommit] = []

    def after_commit(self, fn: AfterCommit) -> None:
        self._after.append(fn)

    async def run_after_commit(self) -> None:
        for fn in self._after:
            try:
                await fn()
            except Exception:  # a lost side effect is recovered by the sweeper; never fail the request
                log.exception("after-commit hook failed")
        self._after.clear()


class Database:
    def __init__(self, url: str, pool_size: int = 10):
        self.engine = make_engine(url, pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read session; dataloaders and queries each take their own so they can run concurrently."""
        async with self.sessions() as s:
            yield s

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.sessions() as s:
            uow = UnitOfWork(s)
            async with s.begin():
                yield uow
        await uow.run_after_commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


async def wait_for_database(db: Database, timeout: float = 30.0) -> None:
    from sqlalchemy import text

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with db.session() as s:
                await s.execute(text("select 1"))
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.3)
