"""Test fixtures: a fresh PostgreSQL database and Redis db for the run, and live servers.

Uses the PostgreSQL and Redis at localhost when they answer (CI and dev machines), else starts
the embedded ones. Override with INSIGHTS_TEST_DATABASE_ADMIN_URL / INSIGHTS_TEST_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis as sync_redis

from server.settings import Settings
from tests.support.client import GQL, register_and_login
from tests.support.live import LiveServer

ADMIN_URL = os.environ.get("INSIGHTS_TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("INSIGHTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def services(tmp_path_factory):  # noqa: ANN001, ANN201
    """(admin database URL, redis URL): localhost services, or embedded ones when absent."""
    admin, redis_url = ADMIN_URL, REDIS_URL
    embedded = None
    if not (_reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379)):
        from server.embedded import EmbeddedServices

        embedded = EmbeddedServices(tmp_path_factory.mktemp("embedded"))
        embedded.start()
        admin = embedded.database_url.replace("postgresql+asyncpg://", "postgresql://")
        redis_url = embedded.redis_url
    yield admin, redis_url
    if embedded:
        embedded.stop()


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def database_url_for(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    query = ""
    if "?" in admin_url:
        query = "?" + admin_url.split("?", 1)[1]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name + query


def migrate(database_url: str) -> None:
    from server.migrate import upgrade

    upgrade(database_url)


@pytest.fixture(scope="session")
def database_url(services):  # noqa: ANN001, ANN201
    admin, _ = services
    name = f"insights_test_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(admin, name))
    url = database_url_for(admin, name)
    migrate(url)
    yield url
    asyncio.run(_drop_database(admin, name))


REDIS_LOCK = "insights:test-session"


@pytest.fixture(scope="session")
def redis_url(services):  # noqa: ANN001, ANN201
    """A Redis database of this test session's own. Several sessions may run at once against the
    localhost Redis: sharing one database would mix their Dramatiq queues (a worker would take
    another session's jobs) and each session's flush would empty the others' queues."""
    _, url = services
    head, _, db = url.rpartition("/")
    if "INSIGHTS_TEST_REDIS_URL" in os.environ or not url.startswith("redis://") or not db.isdigit():
        sync_redis.Redis.from_url(url).flushdb()
        yield url
        return
    token = uuid.uuid4().hex
    for n in dict.fromkeys([*range(11, 16), *range(1, 11), int(db)]):
        candidate = f"{head}/{n}"
        client = sync_redis.Redis.from_url(candidate)
        if client.set(REDIS_LOCK, token, nx=True, ex=6 * 3600):
            client.flushdb()
            client.set(REDIS_LOCK, token, ex=6 * 3600)
            yield candidate
            if client.get(REDIS_LOCK) == token.encode():
                client.flushdb()
            client.close()
            return
        client.close()
    raise RuntimeError("no free Redis database for this test session (all taken by other sessions)")


def make_settings(tmp: Path, **overrides) -> Settings:  # noqa: ANN003
    base = dict(home=tmp, secret_key="test-secret-key-" + "x" * 32, rate_limit_per_minute=100_000,
                rate_limit_per_hour=1_000_000, job_resend_after_seconds=5,
                # Demo projects (created by many tests) do not queue a scan of their demo warehouse
                # for the shared live worker; tests/server/warehouse/test_demo_warehouse.py turns it on.
                warehouse_demo_first_scan=False)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:  # noqa: ANN001
    return make_settings(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def live(settings, database_url, redis_url):  # noqa: ANN001, ANN201
    server = LiveServer(settings, database_url, redis_url, worker_threads=2).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def start_server(database_url, redis_url, tmp_path_factory):  # noqa: ANN001, ANN201
    """Factory for extra live servers with other settings (e.g. low rate limits); stopped at the end."""
    started: list[LiveServer] = []

    def start(worker_threads: int = 0, scheduler: bool = False, **overrides) -> LiveServer:  # noqa: ANN003
        s = make_settings(tmp_path_factory.mktemp("home"), **overrides)
        server = LiveServer(s, database_url, redis_url, worker_threads=worker_threads, scheduler=scheduler).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def gql(live):  # noqa: ANN001, ANN201
    client = GQL(live.url)
    yield client
    await client.aclose()


@pytest.fixture
async def user(gql):  # noqa: ANN001, ANN201
    """A registered, logged-in user: (token, user dict)."""
    return await register_and_login(gql)
