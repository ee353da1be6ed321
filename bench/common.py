"""Pieces several benchmarks share: a private Redis database, a throwaway PostgreSQL database,
the app under uvicorn in its own process, waiting for it to be healthy, and percentiles; and
`served_project`, all of that plus a signed-in user's organization and project."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import asyncpg
import httpx
import redis as sync_redis

LOCK = "insights:test-session"  # the same lock the test suite takes on a Redis database


def take_redis_db(base: str) -> tuple[str, sync_redis.Redis, str]:
    """A Redis database no test session or other benchmark is using, flushed: (url, client, lock token)."""
    token = uuid.uuid4().hex
    for n in range(15, 0, -1):
        url = f"{base}/{n}"
        client = sync_redis.Redis.from_url(url)
        if client.set(LOCK, token, nx=True, ex=3600):
            client.flushdb()
            client.set(LOCK, token, ex=3600)
            return url, client, token
        client.close()
    raise SystemExit("no free Redis database")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


ADMIN = os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def create_database(*settings: str) -> tuple[str, str]:
    """A throwaway database on the admin server: (name, SQLAlchemy URL). `settings` are
    `ALTER DATABASE ... SET` clauses, e.g. "log_min_duration_statement = 50"."""
    name = f"insights_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        for setting in settings:
            await conn.execute(f'ALTER DATABASE "{name}" SET {setting}')
    finally:
        await conn.close()
    base, _, _ = ADMIN.rpartition("/")
    return name, base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def wait_healthy(base_url: str, attempts: int = 200) -> None:
    """Poll `/api/v1/health` every 0.1 s until the server answers 200."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as probe:
        for _ in range(attempts):
            try:
                if (await probe.get("/api/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


def start_app(factory: str, db_url: str, redis_url: str, *uvicorn_args: str,
              **env: str) -> tuple[subprocess.Popen, str]:
    """`factory` (`module:function` building the app from BENCH_DATABASE_URL / BENCH_REDIS_URL)
    under uvicorn in its own process on a free loopback port, `env` added to its environment:
    (process, base URL). Then `await wait_healthy(base)`; `stop_app(process)` at the end."""
    from tests.support.live import free_port

    port = free_port()
    environ = {**os.environ, "BENCH_DATABASE_URL": db_url, "BENCH_REDIS_URL": redis_url,
               "INSIGHTS_SECRET_KEY": "bench-secret-" + "x" * 32, "INSIGHTS_LOG_LEVEL": "WARNING", **env}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log", *uvicorn_args],
                            env=environ)
    return proc, f"http://127.0.0.1:{port}"


def stop_app(proc: subprocess.Popen | None) -> None:
    if proc:
        proc.terminate()
        proc.wait(10)


class ServedProject(NamedTuple):
    base: str  # the app's base URL
    db_url: str
    proc: subprocess.Popen
    token: str  # a session token of the project's owner
    user: dict
    org: dict
    project_gid: str


_PROJECT_CREATE = """mutation($input: ProjectCreateInput!) { projectCreate(input: $input) {
  project { id } userErrors { message } } }"""


@asynccontextmanager
async def served_project(factory: str, redis_base: str, name: str, slug: str) -> AsyncIterator[ServedProject]:
    """A throwaway database (migrated) and Redis database, `factory` served on them, a user signed
    in, an organization and a project `name`/`slug`; all of it removed on exit."""
    from server.migrate import upgrade
    from tests.support.client import GQL, create_org, register_and_login

    db_name, db_url = await create_database()
    redis_url, redis_client, _ = take_redis_db(redis_base)
    proc = None
    try:
        upgrade(db_url)
        proc, base = start_app(factory, db_url, redis_url)
        await wait_healthy(base)
        gql = GQL(base)
        token, user = await register_and_login(gql)
        org = await create_org(gql, token, "Bench Org")
        data = await gql(_PROJECT_CREATE, {"input": {"organizationId": org["id"], "name": name, "slug": slug}},
                         token=token)
        await gql.aclose()
        yield ServedProject(base, db_url, proc, token, user, org, data["projectCreate"]["project"]["id"])
    finally:
        stop_app(proc)
        await drop_database(db_name)
        redis_client.flushdb()
        redis_client.close()
