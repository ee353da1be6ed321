"""Embedded PostgreSQL + Redis (server/embedded.py).

Sync tests: every test starts real servers under its own tmp_path (a cold start is ~1-2 s,
mostly initdb).  They work as root (PostgreSQL then runs as a service user) and as a normal
user.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from server.embedded import EmbeddedServices, EmbeddedServicesError

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- helpers ---------------------------------------------------------------------------


def _processes_under(home: Path) -> list[tuple[int, str]]:
    """Processes whose command line or working directory mentions `home`."""
    home_s = str(home.resolve())
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        cwd = proc.info["cwd"] or ""
        if home_s in cmdline or cwd == home_s or cwd.startswith(home_s + os.sep):
            found.append((proc.pid, cmdline or cwd))
    return found


def _assert_nothing_left(home: Path, pids: list[int] = ()) -> None:
    deadline = time.monotonic() + 5
    while (left := _processes_under(home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes left behind: {left}"
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid


def _server_pids(services: EmbeddedServices) -> list[int]:
    pids = []
    for proc in (services._pg_proc, services._redis_proc):
        if proc is not None:
            pids.append(proc.pid)
            pids.extend(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
    return pids


async def _pg(dsn: str, *queries: str):
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        result = None
        for query in queries:
            result = await conn.fetch(query)
        return result
    finally:
        await conn.close()


async def _redis(url: str, *command: str):
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        return await client.execute_command(*command)
    finally:
        await client.aclose()


@pytest.fixture
def home(tmp_path: Path):
    """A fresh INSIGHTS_HOME.

    As root, PostgreSQL runs as a service user that must traverse the ancestors of home;
    the module grants o+x where missing, but every new pytest session (other engineers,
    other CI jobs on the same machine) chmods /tmp/pytest-of-root back to 0700 under a
    running test.  So as root the home goes to a private directory outside it.
    """
    if os.geteuid() == 0:
        base = Path(tempfile.mkdtemp(prefix="insights-embedded-test-"))
        path = base / "home"
    else:
        base, path = None, tmp_path / "home"
    yield path
    _assert_nothing_left(path)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


# --- tests ------------------------------------------------------------------------------


def test_start_connect_stop(home: Path):
    services = EmbeddedServices(home)
    assert services.database_url is None and services.redis_url is None
    services.start()
    try:
        assert services.database_url.startswith("postgresql+asyncpg://")
        assert services.redis_url.startswith("unix://")
        assert (home / "postgres" / "data" / "PG_VERSION").exists()
        assert (home / "redis" / "redis.conf").exists()
        pg_owner = (home / "postgres" / "data").stat().st_uid
        if os.geteuid() == 0:  # initdb/postgres refuse root: a service user runs them
            assert services.postgres_user != "root" and pg_owner != 0
            assert psutil.Process(services._pg_proc.pid).uids().effective == pg_owner
        else:
            assert pg_owner == os.geteuid()

        rows = asyncio.run(_pg(services.postgres_dsn, "SELECT current_database() AS db, current_user AS u"))
        assert (rows[0]["db"], rows[0]["u"]) == ("insights", "postgres")
        assert asyncio.run(_redis(services.redis_url, "PING")) is True

        async def via_sqlalchemy() -> str:
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(services.database_url)
            try:
                async with engine.connect() as conn:
                    return await conn.scalar(text("SELECT current_database()"))
            finally:
                await engine.dispose()

        assert asyncio.run(via_sqlalchemy()) == "insights"

        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=services.redis_url)
        try:
            assert broker.client.ping() is True
        finally:
            broker.close()

        pids = _server_pids(services)
        assert pids and all(psutil.pid_exists(p) for p in pids)
        assert _processes_under(home)  # the scan used below does see the servers
    finally:
        services.stop()
    assert services.database_url is None and services.redis_url is None
    _assert_nothing_left(home, pids)


def test_start_and_stop_are_idempotent(home: Path):
    services = EmbeddedServices(home)
    services.stop()  # never started: no-op
    services.start()
    url = services.database_url
    pid = services._pg_proc.pid
    services.start()  # already running: no-op
    assert services.database_url == url and services._pg_proc.pid == pid
    services.stop()
    services.stop()
    _assert_nothing_left(home)
    with services:  # restartable on the same object
        assert asyncio.run(_redis(services.redis_url, "PING")) is True
    services.stop()


def test_connection_still_open_at_stop(home: Path):
    """Clients still connected must not keep either server alive."""
    import redis

    services = EmbeddedServices(home)
    services.start()
    client = redis.Redis.from_url(services.redis_url)
    client.set("k", "v")

    async def hold_pg_and_stop():
        import asyncpg

        conn = await asyncpg.connect(services.postgres_dsn)
        await conn.fetchval("SELECT 1")
        pids = _server_pids(services)
        services.stop()  # sync call while our connection is open
        return pids

    pids = asyncio.run(hold_pg_and_stop())
    _assert_nothing_left(home, pids)
    client.close()


def test_data_survives_restart(home: Path):
    with EmbeddedServices(home) as services:
        asyncio.run(_pg(services.postgres_dsn, "CREATE TABLE t (id int, name text)", "INSERT INTO t VALUES (1, 'kept')"))
        asyncio.run(_redis(services.redis_url, "SET", "greeting", "hello"))
    _assert_nothing_left(home)

    with EmbeddedServices(home) as services:
        rows = asyncio.run(_pg(services.postgres_dsn, "SELECT id, name FROM t"))
        assert [tuple(r) for r in rows] == [(1, "kept")]
        assert asyncio.run(_redis(services.redis_url, "GET", "greeting")) == b"hello"
    assert (home / "redis" / "dump.rdb").exists()


def test_urls_ignore_libpq_environment(home: Path, monkeypatch: pytest.MonkeyPatch):
    """PG* variables (meant for some other server) must not redirect the embedded URLs."""
    for name, value in {"PGPORT": "5999", "PGHOST": "/nonexistent", "PGUSER": "nobody-here",
                        "PGDATABASE": "elsewhere", "PGDATA": "/nonexistent/data"}.items():
        monkeypatch.setenv(name, value)
    with EmbeddedServices(home) as services:
        rows = asyncio.run(_pg(services.postgres_dsn, "SELECT current_database() AS db"))
        assert rows[0]["db"] == "insights"


def test_long_home_path_uses_short_socket_dirs(home: Path):
    deep = home / ("x" * 60) / ("y" * 60)  # sockets under it would exceed sun_path
    with EmbeddedServices(deep) as services:
        assert deep not in services.postgres_socket_dir.parents
        assert deep not in services.redis_socket.parents
        assert len(str(services.redis_socket)) <= 107
        assert asyncio.run(_pg(services.postgres_dsn, "SELECT 1 AS one"))[0]["one"] == 1
        assert asyncio.run(_redis(services.redis_url, "PING")) is True
        outside = [services.postgres_socket_dir, services.redis_socket.parent]
    assert not any(p.exists() for p in outside)  # fallback dirs are cleaned up
    _assert_nothing_left(deep)


def test_postgres_or_redis_only(home: Path):
    with EmbeddedServices(home / "a", redis=False) as services:
        assert services.redis_url is None and services.database_url is not None
        assert not (home / "a" / "redis").exists()
    with EmbeddedServices(home / "b", postgres=False) as services:
        assert services.database_url is None and services.redis_url is not None
        assert not (home / "b" / "postgres").exists()


def test_second_owner_of_same_home_is_refused(home: Path):
    with EmbeddedServices(home):
        with pytest.raises(EmbeddedServicesError, match="in use"):
            EmbeddedServices(home).start()


def test_stale_pid_files_are_ignored(home: Path):
    with EmbeddedServices(home):
        pass
    # A crashed run leaves pid files; their pids may since belong to unrelated live
    # processes (pid reuse), which makes postgres refuse to start unless handled.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pgdata = home / "postgres" / "data"
        (pgdata / "postmaster.pid").write_text(
            f"{sleeper.pid}\n{pgdata}\n1700000000\n5432\n{home / 'postgres' / 'run'}\n\n  1234   5678\nready\n"
        )
        (home / "redis" / "redis.pid").write_text(f"{sleeper.pid}\n")
        with EmbeddedServices(home) as services:
            assert asyncio.run(_pg(services.postgres_dsn, "SELECT 1 AS one"))[0]["one"] == 1
            assert asyncio.run(_redis(services.redis_url, "PING")) is True
        assert sleeper.poll() is None  # the unrelated process was left alone
    finally:
        sleeper.kill()
        sleeper.wait()


# --- owner process dies -----------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, json, logging, sys, time
    import asyncpg, redis
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    from server.embedded import EmbeddedServices

    EmbeddedServices.kill_on_parent_death = {pdeathsig}
    if {app_sigterm_handler}:  # like `insights` CLI: SIGTERM ends the command like Ctrl-C
        import signal
        def handler(signum, frame):
            raise SystemExit(0)
        signal.signal(signal.SIGTERM, handler)
    services = EmbeddedServices(sys.argv[1])
    services.start()

    async def write():
        conn = await asyncpg.connect(services.postgres_dsn)
        await conn.execute("CREATE TABLE IF NOT EXISTS t (v text)")
        await conn.execute("INSERT INTO t VALUES ('from child')")
        await conn.close()

    asyncio.run(write())
    redis.Redis.from_url(services.redis_url).set("child", "was here")
    pids = [services._pg_proc.pid, services._redis_proc.pid]
    print(json.dumps({{"pids": pids}}), flush=True)
    time.sleep(120)
    """
)


def _run_child(home: Path, *, pdeathsig: bool = True, app_sigterm_handler: bool = False
               ) -> tuple[subprocess.Popen, list[int]]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = CHILD.format(pdeathsig=pdeathsig, app_sigterm_handler=app_sigterm_handler)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child did not start the services:\n{err}")
    pids = json.loads(line)["pids"]
    pids += [c.pid for p in pids for c in psutil.Process(p).children(recursive=True)]
    return proc, pids


def _assert_child_data_kept(home: Path) -> None:
    with EmbeddedServices(home) as services:
        rows = asyncio.run(_pg(services.postgres_dsn, "SELECT v FROM t"))
        assert [r["v"] for r in rows] == ["from child"]
        assert asyncio.run(_redis(services.redis_url, "GET", "child")) == b"was here"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_owner_interrupted_leaves_nothing(home: Path, sig: signal.Signals):
    proc, pids = _run_child(home)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    # SIGINT: KeyboardInterrupt -> atexit; SIGTERM: our handler -> SystemExit(143)
    assert proc.returncode == (-signal.SIGINT if sig == signal.SIGINT else 143), err
    assert "embedded PostgreSQL stopped" in err and "embedded Redis stopped" in err, err
    _assert_nothing_left(home, pids)
    _assert_child_data_kept(home)


def test_owner_with_own_sigterm_handler(home: Path):
    """An application SIGTERM handler keeps control; the services still stop (atexit)."""
    proc, pids = _run_child(home, app_sigterm_handler=True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "embedded PostgreSQL stopped" in err and "embedded Redis stopped" in err, err
    _assert_nothing_left(home, pids)


def test_owner_killed_servers_follow(home: Path):
    """SIGKILL of the owner: the servers get a parent-death signal and shut down cleanly."""
    proc, pids = _run_child(home)
    proc.kill()
    proc.wait()
    _assert_nothing_left(home, pids)
    _assert_child_data_kept(home)


def test_orphans_of_crashed_run_are_replaced(home: Path):
    """Servers orphaned by a crash (no parent-death signal) are shut down by the next start."""
    proc, pids = _run_child(home, pdeathsig=False)
    proc.kill()
    proc.wait()
    time.sleep(0.2)
    assert all(psutil.pid_exists(p) for p in pids[:2]), "orphans expected for this test"
    _assert_child_data_kept(home)  # stops the orphans (Redis with SAVE), starts fresh ones
    _assert_nothing_left(home, pids)
