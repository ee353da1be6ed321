"""The one interface every warehouse connector implements, and what it returns.

    spec = ConnectionSpec(db_type=DataSourceType.POSTGRES, host=..., port=..., database=..., ...)
    async with open_connector(spec) as conn:            # connects (with the spec's timeout)
        message = await conn.test()                     # "PostgreSQL 16.4": raises ConnectorError
        tables = await conn.tables()                    # [TableInfo(schema, name, [ColumnInfo(name, type)])]
        columns = await conn.describe(statement)        # a query's columns, no rows fetched
        rows = await conn.fetch(statement, limit=10)    # Rows(columns, rows) (at most `limit` rows)
        async with conn.stream(statement, chunk_rows=10_000) as chunks:
            async for chunk in chunks: ...              # Rows of at most chunk_rows: bounded memory

A `Statement` (connectors/sql.py) is a sqlglot expression plus parameter values; `conn.render`
turns it into the driver's SQL text and parameters (each connector binds parameters its own
way). Everything a connector does runs under the spec's timeout; every failure it can explain is
a `ConnectorError` whose message is safe to show to the user (no secrets). Blocking client
libraries (duckdb, clickhouse-connect, google-cloud-bigquery) run in threads, so a connector
never blocks the event loop.

Stopping: `conn.stop_when(event)` (a job's cancel, see `jobs.watch_cancel`) cancels the operation
in flight once the event is set, and it and every later one raise ConnectorError(kind="cancelled").
Cancelling the task that awaits an operation (a stop, a timeout) stops the query in the warehouse
where the driver can: asyncpg sends PostgreSQL a cancel request, DuckDB interrupts the statement
(ClickHouse and BigQuery calls run on in their thread until they end or time out).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import dataclasses
import datetime as dt
import decimal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from server.domains.warehouse.connectors.sql import Statement
from server.domains.warehouse.models import DataSourceType

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30
DEFAULT_CHUNK_ROWS = 10_000
MAX_TABLES = 1000  # introspection stops after this many tables (a schema browser, not a catalog dump)


class ConnectorError(Exception):
    """A warehouse operation failed for a reason the user can act on (unreachable host, bad
    credentials, unknown table, timeout, bad SQL). The message never contains secrets."""

    def __init__(self, message: str, *, kind: str = "error"):
        super().__init__(message)
        self.message = message
        self.kind = kind  # "connect", "auth", "query", "timeout", "config", "cancelled", "error"


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to connect: the data source's settings with the password decrypted."""

    db_type: DataSourceType
    database: str
    host: str = ""
    port: int | None = None
    username: str = ""
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: list[ColumnInfo]


@dataclass
class Rows:
    """Rows of a result (tuples in `columns` order)."""

    columns: list[ColumnInfo]
    rows: list[tuple]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def dicts(self) -> list[dict[str, Any]]:
        names = self.names
        return [dict(zip(names, r)) for r in self.rows]


def jsonable(value: Any) -> Any:
    """A warehouse value as JSON (previews, samples): timestamps as ISO text, decimals as
    numbers, bytes as base64, nested lists and maps converted recursively."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return str(value)


# Python kinds of bound parameter values, most specific first (bool is an int, datetime a date).
_PARAM_KINDS = (("bool", bool), ("int", int), ("float", float), ("datetime", dt.datetime), ("date", dt.date))


def param_type(value: Any, names: dict[str, str]) -> str:
    """The warehouse type to bind `value` as: `names` maps bool, int, float, datetime, date and text
    to the dialect's type names."""
    for kind, cls in _PARAM_KINDS:
        if isinstance(value, cls):
            return names[kind]
    return names["text"]


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Connector(abc.ABC):
    """One open connection to a warehouse. Use as `async with open_connector(spec) as c:`."""

    db_type: ClassVar[DataSourceType]
    dialect: ClassVar[str]     # the sqlglot dialect the SQL is rendered in
    label: ClassVar[str]       # "PostgreSQL", for messages
    default_port: ClassVar[int | None] = None

    def __init__(self, spec: ConnectionSpec):
        self.spec = spec
        self._stop: asyncio.Event | None = None

    def stop_when(self, event: asyncio.Event) -> None:
        """Give up on operations once `event` is set (see the module docstring)."""
        self._stop = event

    @property
    def timeout(self) -> float:
        return float(self.spec.timeout_seconds or DEFAULT_TIMEOUT_SECONDS)

    async def __aenter__(self) -> "Connector":
        await self._guard(self.connect(), "connecting")
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self.close(), 5)
        except Exception:  # closing a broken connection is best effort
            pass

    async def _guard(self, work: Awaitable[T], doing: str) -> T:
        """Run one operation under the timeout; driver errors become ConnectorError."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._unless_stopped(work, doing)
        except (ConnectorError, StopAsyncIteration):
            raise
        except TimeoutError:
            await self.interrupt()
            raise ConnectorError(f"{self.label}: timed out after {self.timeout:g} s while {doing}", kind="timeout") from None
        except Exception as e:  # every driver has its own exception tree
            raise self.translate(e, doing) from None

    async def _unless_stopped(self, work: Awaitable[T], doing: str) -> T:
        """`work`, run as a task that is cancelled (and awaited, so the driver has stopped the query
        before we go on) when the stop event is set first, or when we are cancelled (a timeout)."""
        stop = self._stop
        if stop is None:
            return await work
        if stop.is_set():
            if asyncio.iscoroutine(work):
                work.close()
            raise self._stopped(doing)
        task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))
        if task.cancelled():
            raise self._stopped(doing)
        return task.result()

    def _stopped(self, doing: str) -> ConnectorError:
        return ConnectorError(f"{self.label}: cancelled while {doing}", kind="cancelled")

    def translate(self, e: Exception, doing: str) -> ConnectorError:
        """A driver exception as a ConnectorError with a user-facing message."""
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return ConnectorError(f"{self.label}: {doing} failed: {text[:500]}", kind="query")

    async def interrupt(self) -> None:
        """Stop what the connection is running (called on timeout); default: nothing."""

    # --- what each connector implements ---------------------------------------------------------

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def render(self, statement: Statement) -> tuple[str, Any]:
        """The driver's SQL text and parameters for a statement."""

    @abc.abstractmethod
    async def _version(self) -> str: ...

    @abc.abstractmethod
    async def _tables(self, limit: int) -> list[TableInfo]: ...

    @abc.abstractmethod
    async def _describe(self, statement: Statement) -> list[ColumnInfo]: ...

    @abc.abstractmethod
    async def _fetch(self, statement: Statement, limit: int | None) -> Rows: ...

    @abc.abstractmethod
    def _stream(self, statement: Statement, chunk_rows: int) -> AsyncIterator[Rows]: ...

    # --- the public operations (timeouts and error translation around the above) ----------------

    async def test(self) -> str:
        """A short success message naming the server (its version); ConnectorError otherwise."""
        version = await self._guard(self._version(), "testing the connection")
        return f"connected to {self.label} {version}".strip()

    async def tables(self, limit: int = MAX_TABLES) -> list[TableInfo]:
        return await self._guard(self._tables(limit), "reading the schema")

    async def describe(self, statement: Statement) -> list[ColumnInfo]:
        return await self._guard(self._describe(statement), "describing the query")

    async def fetch(self, statement: Statement, limit: int | None = None) -> Rows:
        return await self._guard(self._fetch(statement, limit), "running the query")

    def stream(self, statement: Statement, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> "ResultStream":
        """The result in chunks of at most `chunk_rows` rows; only one chunk is held at a time.
        Each chunk (not the whole stream) must arrive within the timeout. Use it as

            async with conn.stream(statement) as chunks:
                async for chunk in chunks: ...

        so that stopping early closes the driver's cursor at once (a bare `async for` that
        breaks leaves it open until garbage collection, and the connection busy)."""
        return ResultStream(self._chunks(statement, chunk_rows))

    async def _chunks(self, statement: Statement, chunk_rows: int) -> AsyncIterator[Rows]:
        iterator = self._stream(statement, max(1, chunk_rows)).__aiter__()
        try:
            while True:
                try:
                    chunk = await self._guard(_anext(iterator), "reading the result")
                except StopAsyncIteration:
                    return
                yield chunk
        finally:  # closes the driver's cursor (and transaction, lock) now
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                try:
                    await asyncio.wait_for(aclose(), 5)
                except Exception:
                    pass


class ResultStream:
    """Chunks of a result: an async iterator, and an async context manager that closes it."""

    def __init__(self, chunks: AsyncIterator[Rows]):
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[Rows]:
        return self._chunks

    async def __aenter__(self) -> AsyncIterator[Rows]:
        return self._chunks

    async def __aexit__(self, *exc: object) -> None:
        await self._chunks.aclose()  # type: ignore[attr-defined]


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


_REGISTRY: dict[DataSourceType, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    _REGISTRY[cls.db_type] = cls
    return cls


def connector_class(db_type: DataSourceType) -> type[Connector]:
    from server.domains.warehouse import connectors  # noqa: F401  registers the implementations

    return _REGISTRY[db_type]


def open_connector(spec: ConnectionSpec) -> Connector:
    """The connector of the spec's type (not connected yet: use `async with`)."""
    return connector_class(spec.db_type)(spec)
