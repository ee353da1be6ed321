"""ClickHouse over HTTP with `clickhouse-connect`.

- Parameters use ClickHouse's server-side binding, `{name:Type}` (`DateTime64(6, 'UTC')`,
  `Int64`, `Float64`, `String`, `Bool`): the values travel as HTTP parameters and the server
  parses them as that type. Nothing is formatted into the query text.
- `max_execution_time` is the spec's timeout (the server stops a query the client gave up on),
  unless the user's profile is read-only (`readonly = 1`): then no setting may be sent, and the
  profile's limits and the client's timeout apply.
- clickhouse-connect is synchronous: every call runs in a worker thread; streaming reads the
  HTTP response block by block (`query_row_block_stream`), one block in memory at a time.
- Errors carry the server's own message (`Code: 60. DB::Exception: ...`) without the client's
  wrapping, the request URL or the server version.

Tested end to end against ClickHouse's HTTP interface on loopback (tests/support/clickhouse_http.py)
and, through `execute`/`execute_blocks` (the two methods that talk to the server), on chDB.

Extra params: `secure` (HTTPS, default false), `verify` (check the TLS certificate, default
true), `compress` (default true).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

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
    param_type,
    register,
)
from server.domains.warehouse.connectors.postgres import _group_tables
from server.domains.warehouse.connectors.sql import Statement
from server.domains.warehouse.models import DataSourceType

_DONE = object()


def ch_type(value: Any) -> str:
    return param_type(value, {"bool": "Bool", "int": "Int64", "float": "Float64", "datetime": "DateTime64(6, 'UTC')",
                              "date": "Date", "text": "String"})


def ch_value(value: Any) -> Any:
    """A parameter value as ClickHouse parses it for its `ch_type` (datetimes as UTC text)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@register
class ClickHouseConnector(Connector):
    db_type = DataSourceType.CLICKHOUSE
    dialect = "clickhouse"
    label = "ClickHouse"
    default_port = 8123

    def __init__(self, spec: ConnectionSpec):
        super().__init__(spec)
        self.client: Any = None
        self._lock = threading.Lock()

    # --- the two methods that talk to the server (tests run them on chDB) ---------------------

    def execute(self, sql: str, params: dict[str, Any], limit: int | None = None) -> Rows:
        """Run a query; at most `limit` rows (None: all)."""
        settings = self._settings(max_execution_time=int(self.timeout))
        if limit is not None:
            settings.update(self._settings(max_result_rows=limit, result_overflow_mode="break"))
        with self._lock:
            result = self.client.query(sql, parameters=params or None, settings=settings)
        columns = [ColumnInfo(n, t.name) for n, t in zip(result.column_names, result.column_types)]
        rows = [tuple(r) for r in result.result_rows]
        return Rows(columns, rows[:limit] if limit is not None else rows)

    def execute_blocks(self, sql: str, params: dict[str, Any]) -> Iterator[Rows]:
        """Run a query and yield its rows block by block as they arrive."""
        settings = self._settings(max_execution_time=int(self.timeout))
        with self._lock:
            stream = self.client.query_row_block_stream(sql, parameters=params or None, settings=settings)
            with stream:
                source = stream.source
                columns = [ColumnInfo(n, t.name) for n, t in zip(source.column_names, source.column_types)]
                for block in stream:
                    yield Rows(columns, [tuple(r) for r in block])

    def _settings(self, **wanted: Any) -> dict[str, Any]:
        """The query settings the user may change. A read-only profile (`readonly = 1`, the usual
        way to give a tool warehouse access) fixes them all, and clickhouse-connect refuses to
        send a fixed one: the profile's own limits apply then (and the client's timeout)."""
        known = self.client.server_settings
        return {k: v for k, v in wanted.items() if not ((d := known.get(k)) is not None and d.readonly)}

    # --- connector ------------------------------------------------------------------------------

    def _open(self) -> Any:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        extra = self.spec.extra or {}
        try:
            return clickhouse_connect.get_client(
                host=self.spec.host or "localhost", port=self.spec.port or self.default_port,
                username=self.spec.username or "default", password=self.spec.password or "",
                database=self.spec.database or None, secure=_bool(extra.get("secure"), False),
                verify=_bool(extra.get("verify"), True), compress=_bool(extra.get("compress"), True),
                connect_timeout=min(self.timeout, 30), send_receive_timeout=self.timeout,
                query_retries=0, autogenerate_session_id=False)
        except ClickHouseError as e:
            raise self.translate(e, "connecting") from None

    async def connect(self) -> None:
        self.client = await in_thread(self._open)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await in_thread(client.close)

    def render(self, statement: Statement) -> tuple[str, dict[str, Any]]:
        names: set[str] = set()

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder):
                names.add(node.name)
                return exp.var(f"{{{node.name}:{ch_type(statement.params[node.name])}}}")
            return node

        sql = statement.expression.transform(swap).sql(dialect=self.dialect)
        return sql, {n: ch_value(statement.params[n]) for n in names}

    async def _version(self) -> str:
        rows = await in_thread(self.execute, "SELECT version()", {})
        return str(rows.rows[0][0])

    async def _tables(self, limit: int = MAX_TABLES) -> list[TableInfo]:
        rows = await in_thread(self.execute, """
            SELECT database, table, name, type FROM system.columns
            WHERE database = currentDatabase() ORDER BY database, table, position""", {})
        return _group_tables(rows.rows)[:limit]

    async def _describe(self, statement: Statement) -> list[ColumnInfo]:
        wrapped = Statement(exp.select(exp.Star()).from_(statement.expression.subquery("q")).limit(0),
                            statement.params)
        sql, params = self.render(wrapped)
        return (await in_thread(self.execute, sql, params, None)).columns

    async def _fetch(self, statement: Statement, limit: int | None) -> Rows:
        sql, params = self.render(statement)
        return await in_thread(self.execute, sql, params, limit)

    async def _stream(self, statement: Statement, chunk_rows: int) -> AsyncIterator[Rows]:
        sql, params = self.render(statement)
        blocks = self.execute_blocks(sql, params)
        try:
            while True:
                block = await in_thread(next, blocks, _DONE)
                if block is _DONE:
                    return
                # A server block can be larger than a chunk: hand it out in chunk-sized slices.
                for i in range(0, len(block.rows), chunk_rows):
                    yield Rows(block.columns, block.rows[i:i + chunk_rows])
        finally:
            await in_thread(blocks.close)

    def translate(self, e: Exception, doing: str) -> ConnectorError:
        code = getattr(e, "code", None)  # the server's error code, when it answered
        text = server_message(str(e)) or type(e).__name__
        lowered = text.lower()
        if code in AUTH_CODES or (code is None and "authentication failed" in lowered):
            return ConnectorError(f"ClickHouse: authentication failed: {text[:300]}", kind="auth")
        if code in TIMEOUT_CODES or (code is None and ("timeout" in lowered or "timed out" in lowered)):
            return ConnectorError(f"ClickHouse: timed out after {self.timeout:g} s while {doing}", kind="timeout")
        if code is None and ("connection" in lowered or "max retries" in lowered or "refused" in lowered):
            return ConnectorError(f"ClickHouse: cannot connect to {self.spec.host}:{self.spec.port or 8123}: "
                                  f"{connection_reason(text)[:300]}", kind="connect")
        return ConnectorError(f"ClickHouse: {doing} failed: {text[:500]}", kind="query")


AUTH_CODES = {192, 193, 194, 516}  # UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
TIMEOUT_CODES = {159, 209}         # TIMEOUT_EXCEEDED, SOCKET_TIMEOUT
# "Received ClickHouse exception, code: 60, server response: Code: 60. DB::Exception: <message>.
# (UNKNOWN_TABLE) (version 24.8.1.1 (official build)) (for url http://host:8123)"
_SERVER_MESSAGE = re.compile(r"Code: \d+\. DB::Exception: (.*?)(?:\s*\(version (?:[^()]|\([^()]*\))*\))?"
                             r"(?:\s*\(for url [^)]*\))?\s*$", re.S)
_CONNECT_REASON = re.compile(r"Failed to establish a new connection: (.*?)['\"]?\)")


def server_message(text: str) -> str:
    """The server's own message out of clickhouse-connect's wrapping (no URL, no version)."""
    text = text.strip()
    m = _SERVER_MESSAGE.search(text)
    if m:
        return " ".join(m.group(1).split())
    return text.splitlines()[0] if text else ""


def connection_reason(text: str) -> str:
    """`[Errno 111] Connection refused` out of urllib3's retry message."""
    m = _CONNECT_REASON.search(text)
    return m.group(1) if m else text
