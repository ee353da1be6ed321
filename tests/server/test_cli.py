"""The `insights` command, run as a subprocess like a user runs it (help for every command, the
committed schema, migrations, user creation, the production worker and scheduler)."""

from __future__ import annotations

import asyncio
import difflib
import os
import signal
import subprocess
import sys
import random
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import click
import pytest
import redis as sync_redis
from click.testing import CliRunner

from server.cli import QUEUES, main
from tests.conftest import _create_database, _drop_database, database_url_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env(home: Path, **settings: str | None) -> dict[str, str]:
    """The environment minus every INSIGHTS_* variable, plus `settings` (INSIGHTS_ + upper-cased key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTS_")}
    env["INSIGHTS_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for key, value in settings.items():
        if value is not None:
            env[f"INSIGHTS_{key.upper()}"] = value
    return env


def run_cli(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO_ROOT, env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fetch(url: str, query: str, *args):  # noqa: ANN002, ANN201
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@pytest.fixture
def fresh_database(services):  # noqa: ANN001, ANN201
    """An empty database (no migrations applied): its SQLAlchemy URL."""
    admin, _ = services
    name = f"insights_cli_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(admin, name))
    yield database_url_for(admin, name)
    asyncio.run(_drop_database(admin, name))


# --- help -----------------------------------------------------------------------------------


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append(prefix + (name,))
        if isinstance(command, click.Group):
            paths += _command_paths(command, prefix + (name,))
    return paths


COMMANDS = _command_paths(main)


def test_every_expected_command_exists():
    expected = {("serve",), ("worker",), ("scheduler",), ("migrate", "upgrade"), ("migrate", "downgrade"),
                ("migrate", "current"), ("user", "create"), ("schema", "export")}
    assert expected <= set(COMMANDS)


def test_insights_help_in_a_subprocess(tmp_path):
    result = run_cli("--help", env=cli_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("serve", "worker", "scheduler", "migrate", "user", "schema"):
        assert name in result.stdout
    installed = REPO_ROOT / ".venv" / "bin" / "insights"
    if installed.exists():  # the console script of `pip install -e .`
        result = subprocess.run([str(installed), "--help"], capture_output=True, text=True, timeout=60,
                                env=cli_env(tmp_path))
        assert result.returncode == 0 and "serve" in result.stdout, result.stderr


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:") and " ".join(path) in result.output.splitlines()[0]


def test_worker_queue_choices_match_the_broker():
    from workers.broker import QUEUES as BROKER_QUEUES

    assert QUEUES == BROKER_QUEUES


# --- schema -----------------------------------------------------------------------------------


def test_schema_graphql_is_not_stale(tmp_path):
    """schema.graphql at the repository root must equal `insights schema export` (`make schema`)."""
    result = run_cli("schema", "export", env=cli_env(tmp_path))
    assert result.returncode == 0, result.stderr
    committed = (REPO_ROOT / "schema.graphql").read_text()
    if result.stdout != committed:
        diff = difflib.unified_diff(committed.splitlines(), result.stdout.splitlines(), "schema.graphql (committed)",
                                    "insights schema export", lineterm="")
        pytest.fail("schema.graphql is stale: regenerate it with `make schema` and commit it\n"
                    + "\n".join(list(diff)[:60]), pytrace=False)


def test_schema_export_to_a_file(tmp_path):
    out = tmp_path / "out.graphql"
    result = run_cli("schema", "export", "--output", str(out), env=cli_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "type Query" in out.read_text() and "type Mutation" in out.read_text()


# --- migrate ----------------------------------------------------------------------------------


def test_migrate_upgrade_current_downgrade(fresh_database, tmp_path):
    from alembic.script import ScriptDirectory

    from server.migrate import alembic_config, head

    env = cli_env(tmp_path, database_url=fresh_database)
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"

    result = run_cli("migrate", "current", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, "empty"), result.stderr

    result = run_cli("migrate", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    result = run_cli("migrate", "current", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, head()), result.stderr
    names = {r["tablename"] for r in asyncio.run(fetch(fresh_database, tables))}
    assert {"users", "organizations", "jobs", "schedules", "alembic_version"} <= names

    previous = ScriptDirectory.from_config(alembic_config(fresh_database)).get_revision(head()).down_revision
    result = run_cli("migrate", "downgrade", env=env)  # default: one step back
    assert result.returncode == 0, result.stderr
    result = run_cli("migrate", "current", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, previous or "empty"), result.stderr
    if previous is None:
        names = {r["tablename"] for r in asyncio.run(fetch(fresh_database, tables))}
        assert "users" not in names and "jobs" not in names

    result = run_cli("migrate", "upgrade", "head", env=env)
    assert result.returncode == 0, result.stderr
    result = run_cli("migrate", "current", env=env)
    assert result.stdout.strip() == head()
    assert not (tmp_path / "postgres").exists(), "an external database must not start an embedded one"


def test_migrations_at_head_agree_with_the_models(fresh_database):
    """What the migrations build is what the models declare (tables, columns, types, indexes):
    a model change without its migration, or the reverse, fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import pool
    from sqlalchemy.ext.asyncio import create_async_engine

    from server.db.models import metadata
    from server.migrate import upgrade

    upgrade(fresh_database)

    def differences(connection) -> list:  # noqa: ANN001
        context = MigrationContext.configure(connection, opts={
            "compare_type": True,
            "include_object": lambda obj, name, type_, *_: not (type_ == "index" and name and name.endswith("_trgm"))})
        return compare_metadata(context, metadata)

    async def compare() -> list:
        engine = create_async_engine(fresh_database, poolclass=pool.NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(differences)
        finally:
            await engine.dispose()

    assert asyncio.run(compare()) == []


def test_migrate_bad_revision_is_an_error_not_a_hang(fresh_database, tmp_path):
    result = run_cli("migrate", "upgrade", "no-such-revision", env=cli_env(tmp_path, database_url=fresh_database))
    assert result.returncode != 0
    assert "no-such-revision" in result.stderr


# --- user create ------------------------------------------------------------------------------


def test_user_create_from_stdin(database_url, redis_url, tmp_path):
    from server.security.passwords import verify_password

    env = cli_env(tmp_path, database_url=database_url, redis_url=redis_url)
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    result = run_cli("user", "create", "--email", email, "--name", "First Owner", "--organization", "Acme CLI",
                     "--password-stdin", env=env, input="correct horse battery\n")
    assert result.returncode == 0, result.stderr
    assert f"Created user {email}" in result.stdout

    rows = asyncio.run(fetch(database_url, """
        SELECT u.name, u.password_hash, m.role::text AS role, o.name AS org
        FROM users u JOIN memberships m ON m.user_id = u.id JOIN organizations o ON o.id = m.organization_id
        WHERE lower(u.email) = lower($1)""", email))
    assert [(r["name"], r["role"], r["org"]) for r in rows] == [("First Owner", "owner", "Acme CLI")]
    assert verify_password("correct horse battery", rows[0]["password_hash"])
    assert not verify_password("correct horse batter", rows[0]["password_hash"])

    # The same email again: a clear error, exit 1, no traceback.
    result = run_cli("user", "create", "--email", email, "--password-stdin", env=env, input="another password\n")
    assert result.returncode == 1
    assert "Error:" in result.stderr and "exists" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("email", "password", "message"), [
    ("not-an-email", "correct horse battery", "email"),
    ("someone@example.com", "short", "password"),
    ("someone@example.com", "", "no password"),
])
def test_user_create_bad_input(database_url, redis_url, tmp_path, email, password, message):
    env = cli_env(tmp_path, database_url=database_url, redis_url=redis_url)
    result = run_cli("user", "create", "--email", email, "--password-stdin", env=env, input=password + "\n")
    assert result.returncode == 1, result.stdout
    assert "Error:" in result.stderr and message in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr
    rows = asyncio.run(fetch(database_url, "SELECT 1 FROM users WHERE lower(email) = lower($1)", email))
    assert rows == []


def test_user_create_refuses_an_unmigrated_database(fresh_database, redis_url, tmp_path):
    env = cli_env(tmp_path, database_url=fresh_database, redis_url=redis_url)
    result = run_cli("user", "create", "--email", "x@example.com", "--password-stdin", env=env,
                     input="correct horse battery\n")
    assert result.returncode == 1
    assert "insights migrate upgrade" in result.stderr and "Traceback" not in result.stderr


# --- worker and scheduler (production mode) ---------------------------------------------------


def test_worker_and_scheduler_need_external_services(tmp_path):
    for command in ("worker", "scheduler"):
        result = run_cli(command, env=cli_env(tmp_path), timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert "insights serve" in result.stderr
        assert not (tmp_path / "postgres").exists()


def _private_redis_db(url: str) -> str:
    """The same Redis server, another logical database (so no other test's worker takes our jobs)."""
    parts = urlsplit(url)
    current = dict(parse_qsl(parts.query)).get("db", "0") if parts.scheme == "unix" else (parts.path.strip("/") or "0")
    db = str(random.choice([d for d in range(10, 16) if str(d) != current]))
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = db
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path="/" + db))


def _stop(proc: subprocess.Popen, sig: int, timeout: float = 30) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"process did not stop within {timeout}s after {signal.Signals(sig).name}:\n{err[-3000:]}")
    return proc.returncode, err


def test_scheduler_and_worker_run_a_scheduled_job(fresh_database, redis_url, tmp_path):
    """`insights scheduler` turns the built-in cleanup schedule into a job; `insights worker` runs it."""
    private_redis = _private_redis_db(redis_url)
    sync_redis.Redis.from_url(private_redis).flushdb()
    env = cli_env(tmp_path, database_url=fresh_database, redis_url=private_redis)

    result = run_cli("scheduler", env=env, timeout=60)  # not migrated yet: refuses with the fix
    assert result.returncode == 1 and "insights migrate upgrade" in result.stderr, result.stderr
    assert run_cli("migrate", "upgrade", env=env).returncode == 0

    cmd = [sys.executable, "-m", "server.cli"]
    worker = subprocess.Popen([*cmd, "worker", "--processes", "1", "--threads", "2"], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scheduler = subprocess.Popen([*cmd, "scheduler"], cwd=REPO_ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            rows = asyncio.run(fetch(fresh_database,
                                     "SELECT status::text AS status FROM jobs WHERE kind = 'accounts_cleanup'"))
            status = rows[0]["status"] if rows else None
            if status in ("succeeded", "failed") or worker.poll() is not None or scheduler.poll() is not None:
                break
            time.sleep(0.2)
        assert worker.poll() is None and scheduler.poll() is None, "worker or scheduler exited early"
        assert status == "succeeded", f"accounts_cleanup job status: {status}"
    finally:
        codes = {}
        for name, proc, sig in (("scheduler", scheduler, signal.SIGINT), ("worker", worker, signal.SIGTERM)):
            if proc.poll() is None:
                codes[name] = _stop(proc, sig)
            else:
                codes[name] = (proc.returncode, proc.communicate()[1])
        sync_redis.Redis.from_url(private_redis).flushdb()
    for name, (code, err) in codes.items():
        assert code == 0, f"{name} exited with {code}:\n{err[-3000:]}"
