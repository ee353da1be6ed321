"""PostgreSQL (and compatible: Redshift-style, TimescaleDB, ...) with asyncpg.

- Session time zone UTC and a server-side `statement_timeout` of the spec's timeout, so the
  server stops a query the client gave up on.
- Every query runs in a READ ONLY transaction (a base query calling a writing function fails).
- Parameters are `$1..$n`, cast to their type (`$1::timestamptz`): asyncpg binds them.
- Streaming uses a server-side cursor (`prefetch` = chunk size): memory stays one chunk.

Extra params: `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`),
`schema` (search_path), `application_name`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlglot import exp

from server.domains.warehouse.connectors.base import (
    MAX_TABLES,
    ColumnInfo,
    ConnectionSpec,
    Connector,
    ConnectorError,
    Rows,
    TableInfo,
    param_type,
    register,
)
from server.domains.warehouse.connectors.sql import Statement
from server.domains.warehouse.models import DataSourceType

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _pg_type(value: Any) -> str:
    return param_type(value, {"bool": "boolean", "int": "bigint", "float": "double precision", "datetime": "timestamptz",
                              "date": "date", "text": "text"})


@register
class PostgresConnector(Connector):
    db_type = DataSourceType.POSTGRES
    dialect = "postgres"
    label = "PostgreSQL"
    default_port = 5432

    def __init__(self, spec: ConnectionSpec):
        super().__init__(spec)
        self.conn: asyncpg.Connection | None = None

    async def connect(self) -> None:
        extra = self.spec.extra or {}
        settings = {"TimeZone": "UTC", "statement_timeout": str(int(self.timeout * 1000)),
                    "application_name": str(extra.get("application_name") or "insights-scan")[:63],
                    "default_transaction_read_only": "on"}
        if extra.get("schema"):
            settings["search_path"] = str(extra["schema"])
        ssl = extra.get("sslmode")
        try:
            self.conn = await asyncpg.connect(
                host=self.spec.host or "localhost", port=self.spec.port or self.default_port,
                user=self.spec.username or None, password=self.spec.password or None, database=self.spec.database,
                timeout=self.timeout, command_timeout=self.timeout, server_settings=settings, ssl=ssl or None,
                statement_cache_size=0)
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as e:
            raise ConnectorError(f"PostgreSQL: authentication failed: {e}", kind="auth") from None
        except asyncpg.InvalidCatalogNameError as e:
            raise ConnectorError(f"PostgreSQL: {e}", kind="config") from None
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError) as e:
            raise ConnectorError(f"PostgreSQL: cannot connect to {self.spec.host}:{self.spec.port or 5432}: "
                                 f"{e.strerror or e}" if isinstance(e, OSError) else f"PostgreSQL: cannot connect: {e}",
                                 kind="connect") from None

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close(timeout=5)
            self.conn = None

    async def interrupt(self) -> None:
        if self.conn is not None:  # the server-side statement_timeout stops the query; drop the connection
            self.conn.terminate()
            self.conn = None

    def _c(self) -> asyncpg.Connection:
        if self.conn is None:
            raise ConnectorError("PostgreSQL: not connected", kind="connect")
        return self.conn

    def render(self, statement: Statement) -> tuple[str, list[Any]]:
        order: list[str] = []

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder):
                name = node.name
                if name not in order:
                    order.append(name)
                value = statement.params[name]
                return exp.Cast(this=exp.var(f"${order.index(name) + 1}"), to=exp.DataType.build(_pg_type(value)))
            return node

        sql = statement.expression.transform(swap).sql(dialect=self.dialect)
        return sql, [statement.params[name] for name in order]

    async def _version(self) -> str:
        return str(await self._c().fetchval("SELECT current_setting('server_version')"))

    async def _tables(self, limit: int = MAX_TABLES) -> list[TableInfo]:
        rows = await self._c().fetch("""
            WITH t AS (
              SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition AND has_table_privilege(c.oid, 'SELECT')
              ORDER BY n.nspname, c.relname LIMIT $1)
            SELECT t.nspname, t.relname, a.attname, format_type(a.atttypid, a.atttypmod)
            FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY t.nspname, t.relname, a.attnum""", limit)
        return _group_tables((r[0], r[1], r[2], r[3]) for r in rows)

    async def _describe(self, statement: Statement) -> list[ColumnInfo]:
        sql, _ = self.render(statement)
        async with self._c().transaction(readonly=True):
            prepared = await self._c().prepare(sql)
            return [ColumnInfo(a.name, a.type.name) for a in prepared.get_attributes()]

    async def _fetch(self, statement: Statement, limit: int | None) -> Rows:
        sql, args = self.render(statement)
        async with self._c().transaction(readonly=True):
            prepared = await self._c().prepare(sql)
            columns = [ColumnInfo(a.name, a.type.name) for a in prepared.get_attributes()]
            if limit is None:
                records = await prepared.fetch(*args)
            else:
                cursor = await prepared.cursor(*args)
                records = await cursor.fetch(limit)
        return Rows(columns, [tuple(r) for r in records])

    async def _stream(self, statement: Statement, chunk_rows: int) -> AsyncIterator[Rows]:
        sql, args = self.render(statement)
        async with self._c().transaction(readonly=True):
            prepared = await self._c().prepare(sql)
            columns = [ColumnInfo(a.name, a.type.name) for a in prepared.get_attributes()]
            cursor = await prepared.cursor(*args)
            while True:
                records = await cursor.fetch(chunk_rows)
                if not records:
                    return
                yield Rows(columns, [tuple(r) for r in records])
                if len(records) < chunk_rows:
                    return

    def translate(self, e: Exception, doing: str) -> ConnectorError:
        if isinstance(e, asyncpg.QueryCanceledError):
            return ConnectorError(f"PostgreSQL: timed out after {self.timeout:g} s while {doing}", kind="timeout")
        if isinstance(e, asyncpg.PostgresError):
            return ConnectorError(f"PostgreSQL: {doing} failed: {e}", kind="query")
        return super().translate(e, doing)


def _group_tables(rows) -> list[TableInfo]:  # noqa: ANN001
    """(schema, table, column, type) rows in table order -> TableInfo list."""
    tables: list[TableInfo] = []
    for schema, table, column, type_ in rows:
        if not tables or (tables[-1].schema, tables[-1].name) != (schema, table):
            tables.append(TableInfo(schema=schema, name=table, columns=[]))
        tables[-1].columns.append(ColumnInfo(column, type_))
    return tables
