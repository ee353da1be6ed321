"""The `insights` command: serve, worker, scheduler, migrate, user, schema.

Zero-config mode: when neither `INSIGHTS_DATABASE_URL` nor `INSIGHTS_REDIS_URL` is set, the
commands that need them start an embedded PostgreSQL and Redis under `INSIGHTS_HOME` (see
`server/embedded.py`) for as long as they run; when only one is set, just the other one is
embedded. While `insights serve` runs in that mode it records its embedded services in
`INSIGHTS_HOME/services.json`, so `insights user create` or `insights migrate ...` started next to
it use the running servers instead of failing on the busy home.

Heavy modules (uvicorn, the app, SQLAlchemy, Dramatiq) are imported inside the commands, so
`insights --help` stays instant and `insights worker` can configure Dramatiq before it is imported.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from server.settings import Settings

log = logging.getLogger("insights.cli")

#: Idle worker threads of `insights worker` poll Redis at least this often (milliseconds).
WORKER_TIMEOUT_MS = 100
#: Environment variable carrying `serve --reload`'s resolved configuration to the reloaded process.
_RELOAD_ENV = "INSIGHTS_SERVE_RELOAD_CONFIG"
_SERVICES_FILE = "services.json"
QUEUES = ("default", "scans", "ai", "alerts")  # = workers.broker.QUEUES (checked in tests; no dramatiq import here)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("insights")
    except PackageNotFoundError:  # running from a checkout without install
        return "0.0.0"


# --- shared helpers ---------------------------------------------------------------------------


def configure_logging(level: str) -> None:
    """The one place logging is configured (every command; uvicorn's loggers propagate here)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, logging.getLogger().level))


def _settings() -> Settings:
    from pydantic import ValidationError

    from server.settings import Settings

    try:
        settings = Settings()
    except ValidationError as e:
        raise click.ClickException(f"invalid setting:\n{e}") from None
    configure_logging(settings.log_level)
    return settings


def _fail(message: str, code: int = 1) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(code)


def _read_services_file(home: Path) -> dict:
    try:
        return json.loads((home / _SERVICES_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_services_file(home: Path, database_url: str | None, redis_url: str | None) -> Path:
    path = home / _SERVICES_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "database_url": database_url, "redis_url": redis_url}))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


@contextlib.contextmanager
def backing_services(settings: Settings, *, postgres: bool = True, redis: bool = True,
                     serving: bool = False) -> Iterator[tuple[str | None, str | None]]:
    """(database URL, Redis URL) for the duration: the configured ones, else embedded ones under
    `INSIGHTS_HOME`. A short command whose home is held by a running `insights serve` uses that
    server's embedded services; `serving` (the server itself) owns them and records them in
    `services.json` instead."""
    database_url, redis_url = settings.database_url, settings.redis_url
    embed_pg = postgres and database_url is None
    embed_redis = redis and redis_url is None
    if not (embed_pg or embed_redis):
        yield database_url, redis_url
        return

    from server.embedded import EmbeddedServices, EmbeddedServicesError

    home = Path(settings.home).expanduser().absolute()
    services = EmbeddedServices(home, postgres=embed_pg, redis=embed_redis)
    what = " and ".join(n for n, on in (("PostgreSQL", embed_pg), ("Redis", embed_redis)) if on)
    try:
        log.info("starting embedded %s under %s", what, home)
        services.start()
    except EmbeddedServicesError as e:
        # Another process (normally `insights serve`) owns this home: use its servers.
        running = _read_services_file(home)
        pid = running.get("pid")
        import psutil

        if not serving and "in use" in str(e) and pid and psutil.pid_exists(pid) \
                and (not embed_pg or running.get("database_url")) and (not embed_redis or running.get("redis_url")):
            log.info("using the embedded services of the running insights process %s", pid)
            yield (running["database_url"] if embed_pg else database_url), (running["redis_url"] if embed_redis else redis_url)
            return
        raise click.ClickException(f"cannot start the embedded {what}: {e}") from None
    published = None
    try:
        if serving:
            published = _write_services_file(home, services.database_url, services.redis_url)
        yield (services.database_url if embed_pg else database_url), (services.redis_url if embed_redis else redis_url)
    finally:
        if published is not None:
            published.unlink(missing_ok=True)
        services.stop()


def _check_migrated(database_url: str) -> str | None:
    """An explanation when the database is not at the latest revision, else None."""
    from server import migrate

    try:
        current, head = migrate.current(database_url), migrate.head()
    except Exception as e:  # noqa: BLE001 - unreachable or broken database: say so, no traceback
        return f"cannot read the database revision: {type(e).__name__}: {e}"
    if current == head:
        return None
    return (f"the database is at revision {current or 'empty'}, the code expects {head}: "
            "run `insights migrate upgrade` (or `insights serve --migrate`)")


def _raise_on_sigterm() -> None:
    """SIGTERM ends the command like Ctrl-C does (cleanup in `finally` blocks, exit status 0)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


# --- the command group ------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), prog_name="insights")
def main() -> None:
    """Insights: one GraphQL API for incidents, AI analyses, KPIs and tracking plans.

    Settings come from INSIGHTS_* environment variables (see the README). With neither
    INSIGHTS_DATABASE_URL nor INSIGHTS_REDIS_URL set, Insights runs zero-config: an embedded
    PostgreSQL and Redis under INSIGHTS_HOME (default ./.insights).
    """


# --- serve ------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to listen on.  [default: INSIGHTS_HOST or 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on.  [default: INSIGHTS_PORT or 8000]")
@click.option("--worker-threads", type=click.IntRange(min=0), default=None,
              help="Dramatiq worker threads to run in-process (0: none).  [default: INSIGHTS_WORKER_THREADS (1) "
                   "with embedded services; 0 with external ones unless INSIGHTS_WORKER_THREADS is set]")
@click.option("--scheduler/--no-scheduler", default=None,
              help="Run the scheduler in-process.  [default: INSIGHTS_RUN_SCHEDULER, else on with embedded "
                   "services and off with external ones]")
@click.option("--migrate/--no-migrate", "run_migrations", default=None,
              help="Apply database migrations before serving.  [default: on for the embedded database, "
                   "off for an external one (run `insights migrate upgrade` there)]")
@click.option("--reload", is_flag=True, help="Restart on code changes (development only).")
def serve(host: str | None, port: int | None, worker_threads: int | None, scheduler: bool | None,
          run_migrations: bool | None, reload: bool) -> None:
    """Run the API server (GraphQL at /graphql, health at /api/v1/health).

    \b
    Zero-config (no INSIGHTS_DATABASE_URL / INSIGHTS_REDIS_URL): starts an embedded PostgreSQL
    and Redis under INSIGHTS_HOME, applies migrations, and runs the API, a worker and the
    scheduler in this one process. Ctrl-C stops everything; the next start reuses the data.
    Production (both URLs set): runs the API only; run `insights worker` and `insights
    scheduler` separately, and `insights migrate upgrade` (or pass --migrate) on upgrades.
    """
    settings = _settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    embedded = settings.database_url is None or settings.redis_url is None
    if worker_threads is None:
        explicit = "worker_threads" in settings.model_fields_set
        worker_threads = settings.worker_threads if (embedded or explicit) else 0
    if scheduler is None:
        scheduler = settings.run_scheduler if settings.run_scheduler is not None else embedded
    if run_migrations is None:
        run_migrations = settings.database_url is None

    _raise_on_sigterm()
    try:
        with backing_services(settings, serving=True) as (database_url, redis_url):
            from server import migrate

            if run_migrations:
                migrate.upgrade(database_url)
            else:
                problem = _check_migrated(database_url)
                if problem:
                    log.warning("%s", problem)
            _serve(settings, database_url, redis_url, worker_threads=worker_threads, scheduler=scheduler,
                   reload=reload, embedded=embedded)
    except KeyboardInterrupt:
        pass
    click.echo("Insights stopped.", err=True)


def _banner(settings: Settings, embedded: bool, worker_threads: int, scheduler: bool, has_users: bool | None) -> str:
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    base = f"http://{shown_host}:{settings.port}"
    home = Path(settings.home).expanduser().absolute()
    if settings.database_url is None and settings.redis_url is None:
        mode = f"zero-config: embedded PostgreSQL and Redis under {home}"
    elif embedded:
        inside, outside = ("PostgreSQL", "Redis") if settings.database_url is None else ("Redis", "PostgreSQL")
        mode = f"embedded {inside} under {home}, external {outside}"
    else:
        mode = "external PostgreSQL and Redis"
    roles = ["API"] + ([f"worker ({worker_threads} thread{'s' if worker_threads != 1 else ''})"] if worker_threads else []) \
        + (["scheduler"] if scheduler else [])
    lines = [
        "",
        f"  Insights {_version()} is running ({mode}; {', '.join(roles)})",
        f"  GraphiQL:  {base}/graphql",
        f"  Health:    {base}/api/v1/health",
    ]
    if has_users is not True:
        lines.append("  First user: `insights user create` (also while the server runs), "
                     "or the userRegister mutation in GraphiQL")
    lines += ["  Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def _serve(settings: Settings, database_url: str, redis_url: str, *, worker_threads: int, scheduler: bool,
           reload: bool, embedded: bool) -> None:
    import uvicorn

    common = dict(host=settings.host, port=settings.port, lifespan="on", ws="websockets-sansio",
                  log_config=None, log_level=settings.log_level.lower(), timeout_graceful_shutdown=10,
                  ws_per_message_deflate=settings.ws_compression)
    if reload:
        os.environ[_RELOAD_ENV] = json.dumps({"database_url": database_url, "redis_url": redis_url,
                                              "worker_threads": worker_threads, "scheduler": scheduler,
                                              "host": settings.host, "port": settings.port})
        click.echo(_banner(settings, embedded, worker_threads, scheduler, None))
        root = Path(__file__).resolve().parent.parent
        uvicorn.run("server.cli:reload_app", factory=True, reload=True,
                    reload_dirs=[str(root / d) for d in ("server", "graph", "workers")], **common)
        return

    from server.app import create_app

    app = create_app(settings, database_url, redis_url, worker_threads=worker_threads, scheduler=scheduler)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # noqa: ANN001
            await super().startup(sockets)
            if self.started:
                click.echo(_banner(settings, embedded, worker_threads, scheduler, await _has_users(app)))

    Server(uvicorn.Config(app, **common)).run()


async def _has_users(app) -> bool | None:  # noqa: ANN001
    from sqlalchemy import text

    try:
        async with app.state.runtime.db.session() as s:
            return bool(await s.scalar(text("SELECT EXISTS (SELECT 1 FROM users)")))
    except Exception:  # only decides whether to print a hint
        return None


def reload_app():  # noqa: ANN201
    """App factory for `serve --reload` (uvicorn imports it in the reloaded process)."""
    from server.app import create_app

    cfg = json.loads(os.environ[_RELOAD_ENV])
    settings = _settings()
    settings.host, settings.port = cfg["host"], cfg["port"]
    return create_app(settings, cfg["database_url"], cfg["redis_url"], worker_threads=cfg["worker_threads"],
                      scheduler=cfg["scheduler"])


# --- worker and scheduler ---------------------------------------------------------------------


def _require_external(settings: Settings, command: str) -> tuple[str, str]:
    if settings.database_url is None or settings.redis_url is None:
        _fail(f"`insights {command}` needs INSIGHTS_DATABASE_URL and INSIGHTS_REDIS_URL. In zero-config mode "
              f"`insights serve` runs the worker and the scheduler in-process.", code=2)
    return settings.database_url, settings.redis_url


@main.command()
@click.option("--processes", "-p", type=click.IntRange(min=1), default=None,
              help="Worker processes.  [default: number of CPUs]")
@click.option("--threads", "-t", type=click.IntRange(min=1), default=8, show_default=True,
              help="Worker threads per process.")
@click.option("--queues", "-Q", multiple=True, type=click.Choice(QUEUES), default=QUEUES, show_default=True,
              help="Queue to consume (repeat the option for several).")
def worker(processes: int | None, threads: int, queues: tuple[str, ...]) -> None:
    """Run Dramatiq worker processes against INSIGHTS_REDIS_URL.

    Idle workers poll every 100 ms, so a new job is picked up at once. SIGINT or SIGTERM stops
    the workers after their current jobs.
    """
    settings = _settings()
    _require_external(settings, "worker")
    # Must be set before dramatiq is imported (dramatiq.worker reads it at import time); the
    # forked worker processes inherit it.
    os.environ.setdefault("dramatiq_worker_timeout", str(WORKER_TIMEOUT_MS))
    if "dramatiq" in sys.modules:  # pragma: no cover - guards against an import slipping in above
        log.warning("dramatiq was imported before the worker timeout was set")
    from dramatiq import cli as dramatiq_cli

    argv = ["workers.entrypoint", "--processes", str(processes or os.cpu_count() or 1), "--threads", str(threads),
            "--path", str(Path(__file__).resolve().parent.parent), "--queues", *queues]
    if settings.log_level.upper() == "DEBUG":
        argv.append("--verbose")
    args = dramatiq_cli.make_argument_parser().parse_args(argv)
    sys.exit(dramatiq_cli.main(args))


@main.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduler: turns due schedules into jobs and re-sends lost jobs.

    Safe to run more than once (due rows are claimed with FOR UPDATE SKIP LOCKED). Stops on
    Ctrl-C or SIGTERM.
    """
    import asyncio

    settings = _settings()
    database_url, redis_url = _require_external(settings, "scheduler")

    async def run() -> None:
        from server.db import statements
        from server.runtime import Runtime
        from workers.broker import setup_broker
        from workers.scheduler import run_forever

        setup_broker(redis_url)  # the tick enqueues jobs
        rt = Runtime.create(settings, database_url, redis_url)
        statements.install(rt.db.engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_forever(rt, stop)
        finally:
            await rt.close()

    problem = _check_migrated(database_url)
    if problem:
        _fail(problem)
    asyncio.run(run())
    click.echo("scheduler stopped", err=True)


# --- migrate ----------------------------------------------------------------------------------


@main.group()
def migrate() -> None:
    """Database migrations (Alembic). Uses INSIGHTS_DATABASE_URL, else the embedded database."""


@migrate.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from server import migrate as m

    settings = _settings()
    with backing_services(settings, redis=False) as (database_url, _):
        m.upgrade(database_url, revision)
        click.echo(f"database at {m.current(database_url) or 'empty'}")


@migrate.command()
@click.argument("revision", default="-1")
def downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (default: -1, one step back; `base` empties it)."""
    from server import migrate as m

    settings = _settings()
    with backing_services(settings, redis=False) as (database_url, _):
        m.downgrade(database_url, revision)
        click.echo(f"database at {m.current(database_url) or 'empty'}")


@migrate.command()
def current() -> None:
    """Print the database's revision ("empty" when no migration was applied)."""
    from server import migrate as m

    settings = _settings()
    with backing_services(settings, redis=False) as (database_url, _):
        click.echo(m.current(database_url) or "empty")


# --- user -------------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.option("--email", required=True, help="Login email address.")
@click.option("--name", default=None, help="Display name.")
@click.option("--organization", "organization", default=None, metavar="NAME",
              help="Also create an organization with this name, owned by the user.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
def user_create(email: str, name: str | None, organization: str | None, password_stdin: bool) -> None:
    """Create a user (the first one typically, who then owns their organization).

    Without --password-stdin the password is asked twice, hidden.
    """
    import asyncio

    from server.errors import DomainError, DomainErrors

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("no password on standard input")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    from server.domains.accounts.service import create_user

    settings = _settings()

    async def run(database_url: str, redis_url: str):  # noqa: ANN202
        from server.runtime import Runtime

        rt = Runtime.create(settings, database_url, redis_url)
        try:
            return await create_user(rt, email, password, name=name, organization_name=organization)
        finally:
            await rt.close()

    with backing_services(settings) as (database_url, redis_url):
        if settings.database_url is None:
            from server import migrate as m

            m.upgrade(database_url)  # the embedded database is ours to keep current
        else:
            problem = _check_migrated(database_url)
            if problem:
                _fail(problem)
        try:
            created = asyncio.run(run(database_url, redis_url))
        except DomainErrors as e:
            _fail("; ".join(err.message for err in e.errors))
        except DomainError as e:
            _fail(e.message)
    user_obj = created[0] if isinstance(created, tuple) else created
    shown = getattr(user_obj, "email", email)
    line = f"Created user {shown}"
    if organization:
        line += f" (owner of organization {organization!r})"
    click.echo(line)


# --- schema -----------------------------------------------------------------------------------


@main.group()
def schema() -> None:
    """The GraphQL schema."""


def schema_sdl() -> str:
    from graph.schema import build_schema
    from server.settings import Settings

    return str(build_schema(Settings(introspection=True))).rstrip("\n") + "\n"


@schema.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
def schema_export(output: Path | None) -> None:
    """Print the schema in GraphQL SDL (schema.graphql at the repository root is this output)."""
    sdl = schema_sdl()
    if output is None:
        click.echo(sdl, nl=False)
    else:
        output.write_text(sdl)
        click.echo(f"wrote {output}", err=True)


if __name__ == "__main__":
    main(prog_name="insights")
