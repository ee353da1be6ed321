"""DuckDB database files (the demo warehouse, local analytics files) with the `duckdb` package.

- The file is opened READ ONLY, with file system access from SQL disabled
  (`enable_external_access = false`, configuration locked): a base query can read the tables of
  this file and nothing else on the server (no `read_csv('/etc/passwd')`, no ATTACH, no
  extension loading). The path itself is checked by the data source service (under
  `INSIGHTS_WAREHOUSE_DUCKDB_DIR` unless absolute paths are allowed).
- DuckDB's Python API blocks: every call runs in a worker thread. Cancelling the task awaiting
  it (a timeout, a job's cancel) interrupts the statement and waits for the thread to return, so
  the connection is free again (the statement runs on a cursor: interrupting the connection it
  came from would not stop it).
- Parameters are DuckDB's named `$name` parameters.

Extra params: `threads` (DuckDB worker threads for this connection, default 1: scans run
beside the API on the same machine), `memory_limit` (e.g. `512MB`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlglot import exp

from server.domains.warehouse.connectors.base import (
    MAX_TABLES,
    ColumnInfo,
    ConnectionSpec,
    Connector,
    ConnectorError,
    Rows,
    TableInfo,
    in_thread,
    register,
)
from server.domains.warehouse.connectors.postgres import _group_tables
from server.domains.warehouse.connectors.sql import Statement
from server.domains.warehouse.models import DataSourceType

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")
INTERRUPT_EVERY = 0.05  # seconds between interrupts of a cancelled statement (one sent before it began is lost)
INTERRUPT_WAIT = 10.0   # then give up waiting for its thread

# `duckdb` is imported when a DuckDB data source is used, not with the schema: importing it costs
# time and memory every process (API, CLI) would pay, and its bindings report "leaks" at exit.


def _columns(description: list | None) -> list[ColumnInfo]:
    return [ColumnInfo(d[0], str(d[1])) for d in description or []]


@register
class DuckDBConnector(Connector):
    db_type = DataSourceType.DUCKDB
    dialect = "duckdb"
    label = "DuckDB"

    def __init__(self, spec: ConnectionSpec):
        super().__init__(spec)
        self.conn: "duckdb.DuckDBPyConnection | None" = None
        self._lock = threading.Lock()  # one statement at a time on the connection
        self._cursor: "duckdb.DuckDBPyConnection | None" = None  # the statement's, while one runs

    def _open(self) -> "duckdb.DuckDBPyConnection":
        import duckdb

        path = self.spec.database
        if not os.path.isfile(path):
            raise ConnectorError(f"DuckDB: no database file at {path}", kind="config")
        extra = self.spec.extra or {}
        config: dict[str, Any] = {"enable_external_access": False, "autoload_known_extensions": False,
                                  "autoinstall_known_extensions": False, "threads": int(extra.get("threads") or 1)}
        if extra.get("memory_limit"):
            config["memory_limit"] = str(extra["memory_limit"])
        try:
            conn = duckdb.connect(path, read_only=True, config=config)
            try:
                # TimeZone belongs to the (built-in) ICU extension: set it, then lock every setting.
                # DuckDB shares one database instance per file within a process: while another
                # connection of ours has the file open, its settings are already made and locked.
                tz, locked = conn.execute(
                    "SELECT current_setting('TimeZone'), current_setting('lock_configuration')").fetchone()
                if tz not in ("UTC", "Etc/UTC"):
                    conn.execute("SET TimeZone = 'UTC'")
                if not locked:
                    conn.execute("SET lock_configuration = true")
            except BaseException:
                conn.close()
                raise
            return conn
        except duckdb.Error as e:
            raise ConnectorError(f"DuckDB: cannot open {path}: {e}", kind="connect") from None

    async def connect(self) -> None:
        self.conn = await in_thread(self._open)

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await in_thread(conn.close)

    async def interrupt(self) -> None:
        self._interrupt()

    def _interrupt(self) -> None:
        cursor = self._cursor
        if cursor is not None:
            cursor.interrupt()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a thread; when we are cancelled, interrupt its statement until the thread
        returned (at most INTERRUPT_WAIT s), then let the cancel through."""
        future = asyncio.ensure_future(in_thread(fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_consume)
            deadline = asyncio.get_running_loop().time() + INTERRUPT_WAIT
            while not future.done() and asyncio.get_running_loop().time() < deadline:
                self._interrupt()
                await asyncio.wait((future,), timeout=INTERRUPT_EVERY)
            raise

    def _c(self) -> "duckdb.DuckDBPyConnection":
        if self.conn is None:
            raise ConnectorError("DuckDB: not connected", kind="connect")
        return self.conn

    def render(self, statement: Statement) -> tuple[str, dict[str, Any]]:
        names = {n.name for n in statement.expression.find_all(exp.Placeholder)}
        return statement.expression.sql(dialect=self.dialect), {n: statement.params[n] for n in names}

    def _run(self, sql: str, params: dict | None = None, fetch: int | None = -1) -> Rows:
        with self._lock:
            cur = self._cursor = self._c().cursor()
            try:
                cur.execute(sql, params or None)
                columns = _columns(cur.description)
                rows = [] if fetch is None else (cur.fetchall() if fetch < 0 else cur.fetchmany(fetch))
                return Rows(columns, rows)
            finally:
                self._cursor = None
                cur.close()

    async def _version(self) -> str:
        rows = await self._call(self._run, "SELECT version()")
        return str(rows.rows[0][0])

    async def _tables(self, limit: int = MAX_TABLES) -> list[TableInfo]:
        rows = await self._call(self._run, """
            SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
            WHERE table_catalog = current_database() AND table_schema NOT IN ('information_schema', 'pg_catalog')
            ORDER BY table_schema, table_name, ordinal_position""")
        return _group_tables(rows.rows)[:limit]

    async def _describe(self, statement: Statement) -> list[ColumnInfo]:
        wrapped = Statement(exp.select(exp.Star()).from_(statement.expression.subquery("q")).limit(0),
                            statement.params)
        sql, params = self.render(wrapped)
        return (await self._call(self._run, sql, params, None)).columns

    async def _fetch(self, statement: Statement, limit: int | None) -> Rows:
        sql, params = self.render(statement)
        return await self._call(self._run, sql, params, -1 if limit is None else limit)

    async def _stream(self, statement: Statement, chunk_rows: int) -> AsyncIterator[Rows]:
        sql, params = self.render(statement)
        # The cursor stays open across chunks: the lock is held from execute to the last fetch.
        acquired = asyncio.ensure_future(in_thread(self._lock.acquire))
        try:
            await asyncio.shield(acquired)
        except asyncio.CancelledError:  # the thread still takes the lock: give it back then
            acquired.add_done_callback(lambda _: self._lock.release())
            raise
        cur = None
        try:
            cur = self._cursor = self._c().cursor()
            await self._call(cur.execute, sql, params or None)
            columns = _columns(cur.description)
            while True:
                rows = await self._call(cur.fetchmany, chunk_rows)
                if not rows:
                    return
                yield Rows(columns, rows)
                if len(rows) < chunk_rows:
                    return
        finally:
            self._cursor = None
            if cur is not None:
                cur.close()
            self._lock.release()

    def translate(self, e: Exception, doing: str) -> ConnectorError:
        import duckdb

        if isinstance(e, duckdb.InterruptException):
            return ConnectorError(f"DuckDB: timed out after {self.timeout:g} s while {doing}", kind="timeout")
        if isinstance(e, duckdb.Error):
            text = str(e).strip().splitlines()[0]
            return ConnectorError(f"DuckDB: {doing} failed: {text[:500]}", kind="query")
        return super().translate(e, doing)


def _consume(future: "asyncio.Future[Any]") -> None:
    """Retrieve the outcome of a thread nobody awaits any more (an interrupted statement)."""
    if not future.cancelled():
        future.exception()
