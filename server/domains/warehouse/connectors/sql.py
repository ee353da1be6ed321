"""SQL building for the warehouses, with sqlglot: expressions built in Python, rendered per dialect.

Rules every warehouse query follows (scans, previews, metrics replays, schema checks):

- The user's base query is parsed with the data source's dialect and must be ONE read-only query
  (`SELECT`, `WITH .. SELECT`, `UNION`/`INTERSECT`/`EXCEPT` of selects). It is used as a
  subquery `SELECT .. FROM (<base query>) AS base`, rendered from the parsed tree, so what runs
  is exactly what was validated (no comment or quoting tricks survive the round trip).
- Column names given by users (time column, event type column, breakdown columns) become quoted
  identifiers of `base` (`base_column`), JSON paths become the dialect's JSON extraction with
  validated path segments (`json_value`). Values (time range bounds, limits of rows) are
  parameters (`param`), bound by the driver: never text in the SQL.
- Time buckets are computed in the warehouse (`bucket_epoch`), as epoch seconds of the bucket
  start (UTC), so every driver returns the same plain integer whatever its timestamp types and
  time zone handling: `date_trunc` (PostgreSQL, DuckDB), `toStartOfInterval` (ClickHouse),
  `TIMESTAMP_TRUNC` (BigQuery) for hours, days and ISO weeks (starting Monday), and epoch
  arithmetic (`floor(epoch / 900) * 900`) for the 15-minute and 6-hour intervals.

A `Statement` is the query expression and its parameter values; a connector renders it for its
driver (`Connector.render`): placeholders become `$1` (asyncpg), `$name` (DuckDB),
`{name:Type}` (ClickHouse server-side binding) or `@name` (BigQuery query parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from server.domains.warehouse.models import DataSourceType, ScanInterval

DIALECTS: dict[DataSourceType, str] = {
    DataSourceType.POSTGRES: "postgres",
    DataSourceType.DUCKDB: "duckdb",
    DataSourceType.CLICKHOUSE: "clickhouse",
    DataSourceType.BIGQUERY: "bigquery",
}
BASE = "base"  # alias of the base query's subquery
MAX_QUERY_CHARS = 100_000
MAX_IDENTIFIER = 255
_PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_JSON_KEY = re.compile(r"^[A-Za-z0-9_\-$@ ]{1,128}$")
# 1970-01-05 was a Monday: ISO weeks in epoch arithmetic are offset by four days.
_MONDAY_OFFSET = 4 * 86400


class SqlError(ValueError):
    """A query or name a user gave that cannot be used (the message says why)."""


@dataclass
class Statement:
    """A query to run on a warehouse: the expression and the values of its `param(...)`s."""

    expression: exp.Query
    params: dict[str, Any] = field(default_factory=dict)

    def sql(self, dialect: str, pretty: bool = False) -> str:
        """The SQL with sqlglot's generic placeholders (for logs and tests; connectors render
        their own placeholders with `Connector.render`)."""
        return self.expression.sql(dialect=dialect, pretty=pretty)


# --- the base query --------------------------------------------------------------------------

_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
           exp.Into, exp.Copy, exp.Set, exp.TruncateTable, exp.LoadData)


def parse_base_query(sql: str, dialect: str) -> exp.Query:
    """The user's base query as one read-only query expression, or SqlError."""
    text = (sql or "").strip().rstrip(";").strip()
    if not text:
        raise SqlError("the base query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise SqlError(f"the base query is longer than {MAX_QUERY_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except (ParseError, TokenError) as e:
        raise SqlError(f"the base query is not valid {dialect} SQL: {_first_line(e)}") from None
    if len(statements) != 1:
        raise SqlError("the base query must be exactly one SELECT statement")
    query = statements[0]
    if not isinstance(query, exp.Query):
        raise SqlError("the base query must be a SELECT (or WITH .. SELECT, or a UNION of SELECTs)")
    for node in query.walk():
        if isinstance(node, _WRITES):
            raise SqlError("the base query must only read (no INTO, INSERT, UPDATE, DELETE, DDL or SET)")
    return query


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__


def base_subquery(base: exp.Query) -> exp.Subquery:
    return base.copy().subquery(BASE)


def select_from_base(base: exp.Query, *projections: exp.Expression | str) -> exp.Select:
    """`SELECT <projections> FROM (<base>) AS base`."""
    return exp.select(*projections).from_(base_subquery(base))


# --- names and values ------------------------------------------------------------------------

def check_identifier(name: str | None, what: str = "column") -> str:
    """A user-given column name: 1..255 characters, no NUL or control characters. It is always
    rendered quoted, so any other character is fine."""
    if name is None or not name.strip():
        raise SqlError(f"the {what} name is empty")
    if len(name) > MAX_IDENTIFIER:
        raise SqlError(f"the {what} name is longer than {MAX_IDENTIFIER} characters")
    if any(ord(c) < 32 for c in name):
        raise SqlError(f"the {what} name contains control characters")
    return name


def base_column(name: str) -> exp.Column:
    """`base."<name>"`: a column of the base query, always quoted (case kept, no injection)."""
    return exp.column(check_identifier(name), table=BASE, quoted=True)


def param(name: str) -> exp.Placeholder:
    """A bound parameter; `Statement.params[name]` holds its value."""
    if not _PARAM_NAME.match(name):
        raise ValueError(f"bad parameter name {name!r}")
    return exp.Placeholder(this=name)


def split_json_path(path: str) -> tuple[str, list[str]]:
    """`properties.page.title` -> ("properties", ["page", "title"]): the JSON column, then keys."""
    parts = (path or "").split(".")
    if len(parts) < 2 or any(not p for p in parts):
        raise SqlError(f"`{path}` is not a JSON path: write the JSON column, then dotted keys (`properties.page`)")
    check_identifier(parts[0])
    for key in parts[1:]:
        if not _JSON_KEY.match(key):
            raise SqlError(f"JSON path `{path}`: key `{key}` may only use letters, digits, `_`, `-`, `$`, `@` and spaces")
    return parts[0], parts[1:]


def json_value(path: str, dialect: str) -> exp.Expression:
    """The text value at a dotted JSON path of a base column (NULL when absent).

    PostgreSQL: `json_extract_path_text(col::json, 'a', 'b')`; DuckDB: `json_extract_string`;
    ClickHouse: `JSONExtractString(col, 'a', 'b')` (or the value of a native JSON/Map column);
    BigQuery: `JSON_VALUE(col, '$.a.b')`. The keys are validated literals (a path is part of the
    query's shape, like a column name, not a value)."""
    column, keys = split_json_path(path)
    col = base_column(column)
    lits = [exp.Literal.string(k) for k in keys]
    if dialect == "postgres":
        return exp.Anonymous(this="json_extract_path_text", expressions=[exp.Cast(this=col, to=exp.DataType.build("json")), *lits])
    if dialect == "duckdb":
        return exp.Anonymous(this="json_extract_string",
                             expressions=[col, exp.Literal.string("$." + ".".join(_quoted_key(k) for k in keys))])
    if dialect == "clickhouse":
        # Strings unquoted, other scalars as their JSON text, NULL when absent (as elsewhere;
        # JSONExtractString alone says '' for both a missing key and a number).
        doc = exp.Anonymous(this="toString", expressions=[col])

        def call(fn: str) -> exp.Expression:
            return exp.Anonymous(this=fn, expressions=[doc.copy(), *[lit.copy() for lit in lits]])

        kind = call("JSONType")
        return exp.Anonymous(this="multiIf", expressions=[
            exp.EQ(this=kind, expression=exp.Literal.string("String")), call("JSONExtractString"),
            exp.and_(call("JSONHas"), exp.NEQ(this=kind.copy(), expression=exp.Literal.string("Null"))),
            call("JSONExtractRaw"), exp.Null()])
    if dialect == "bigquery":
        return exp.Anonymous(this="JSON_VALUE", expressions=[col, exp.Literal.string("$." + ".".join(_quoted_key(k) for k in keys))])
    raise ValueError(f"unknown dialect {dialect}")


def _quoted_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) else '"' + key + '"'


# --- time ------------------------------------------------------------------------------------

def epoch_seconds(value: exp.Expression, dialect: str) -> exp.Expression:
    """Seconds since 1970-01-01 UTC of a timestamp expression, as an integer."""
    if dialect == "postgres":
        inner = exp.Extract(this=exp.var("EPOCH"), expression=value)
    elif dialect == "duckdb":
        inner = exp.Anonymous(this="epoch", expressions=[value])
    elif dialect == "clickhouse":
        return exp.Anonymous(this="toInt64", expressions=[exp.Anonymous(this="toUnixTimestamp", expressions=[value])])
    elif dialect == "bigquery":
        return exp.Anonymous(this="UNIX_SECONDS", expressions=[exp.Anonymous(this="TIMESTAMP", expressions=[value])])
    else:
        raise ValueError(f"unknown dialect {dialect}")
    return exp.Cast(this=exp.Floor(this=inner), to=exp.DataType.build("bigint"))


_TRUNC_UNIT = {ScanInterval.ONE_HOUR: "hour", ScanInterval.ONE_DAY: "day", ScanInterval.ONE_WEEK: "week"}
_CH_INTERVAL = {ScanInterval.FIFTEEN_MINUTES: (15, "MINUTE"), ScanInterval.ONE_HOUR: (1, "HOUR"),
                ScanInterval.SIX_HOURS: (6, "HOUR"), ScanInterval.ONE_DAY: (1, "DAY"), ScanInterval.ONE_WEEK: (1, "WEEK")}


def bucket_epoch(value: exp.Expression, interval: ScanInterval, dialect: str) -> exp.Expression:
    """Epoch seconds (UTC) of the start of the `interval` bucket holding a timestamp.

    Hours, days and weeks (ISO, from Monday) use the dialect's truncation; 15 minutes and 6
    hours use epoch arithmetic (`floor(epoch / n) * n`), which every dialect computes alike.
    Timestamps without a time zone are taken as UTC (connectors also set the session time zone
    to UTC where the warehouse has one)."""
    seconds = interval.seconds
    if dialect == "clickhouse":
        n, unit = _CH_INTERVAL[interval]
        start = exp.Anonymous(this="toStartOfInterval", expressions=[
            value, exp.Interval(this=exp.Literal.number(n), unit=exp.var(unit)), exp.Literal.string("UTC")])
        # Day and week buckets come back as Date: make them a UTC DateTime before taking the epoch.
        return epoch_seconds(exp.Anonymous(this="toDateTime", expressions=[start, exp.Literal.string("UTC")]), dialect)
    if interval in _TRUNC_UNIT:
        unit = _TRUNC_UNIT[interval]
        if dialect in ("postgres", "duckdb"):
            truncated = exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(unit), value])
        elif dialect == "bigquery":
            part = exp.var("WEEK(MONDAY)") if unit == "week" else exp.var(unit.upper())
            truncated = exp.Anonymous(this="TIMESTAMP_TRUNC", expressions=[exp.Anonymous(this="TIMESTAMP", expressions=[value]), part])
        else:
            raise ValueError(f"unknown dialect {dialect}")
        return epoch_seconds(truncated, dialect)
    epoch = epoch_seconds(value, dialect)
    if dialect == "bigquery":
        floored = exp.Anonymous(this="DIV", expressions=[epoch, exp.Literal.number(seconds)])
    else:
        floored = exp.Floor(this=exp.Div(this=epoch, expression=exp.Literal.number(seconds)))
    return exp.Cast(this=exp.Mul(this=floored, expression=exp.Literal.number(seconds)), to=exp.DataType.build("bigint"))


def bucket_start_of(epoch: int, interval: ScanInterval) -> int:
    """The same bucket arithmetic in Python (for chunk boundaries and tests)."""
    if interval == ScanInterval.ONE_WEEK:
        return (epoch - _MONDAY_OFFSET) // interval.seconds * interval.seconds + _MONDAY_OFFSET
    return epoch // interval.seconds * interval.seconds


def time_range(value: exp.Expression, start: str = "t_from", end: str = "t_to") -> exp.Condition:
    """`value >= :start AND value < :end` (half-open: consecutive chunks never count a row twice)."""
    return exp.and_(exp.GTE(this=value, expression=param(start)), exp.LT(this=value, expression=param(end)))


# --- ready-made statements ---------------------------------------------------------------------

def describe_statement(base: exp.Query) -> Statement:
    """`SELECT * FROM (<base>) AS base LIMIT 0`: the columns of a base query, no rows (validation)."""
    return Statement(select_from_base(base, exp.Star()).limit(0))


def sample_statement(base: exp.Query, limit: int, *, time_column: str | None = None, since: datetime | None = None,
                     dialect: str = "postgres") -> Statement:
    """Up to `limit` rows of the base query (previews), newest first when there is a time column,
    and only rows since `since` when given."""
    q = select_from_base(base, exp.Star())
    params: dict[str, Any] = {"row_limit": int(limit)}
    if time_column:
        col = base_column(time_column)
        if since is not None:
            q = q.where(exp.GTE(this=col, expression=param("t_from")))
            params["t_from"] = since
        q = q.order_by(exp.Ordered(this=col, desc=True))
    return Statement(q.limit(param("row_limit")), params)


def count_by_bucket(base: exp.Query, dialect: str, *, time_column: str, interval: ScanInterval, start: datetime,
                    end: datetime, group_by: dict[str, exp.Expression] | None = None,
                    limit: int | None = None) -> Statement:
    """The scan's aggregate: rows counted per time bucket (and per `group_by` expression, each
    under its alias), in the warehouse, over `[start, end)`:

        SELECT <bucket epoch> AS bucket, <expr> AS <alias>, ..., COUNT(*) AS n
        FROM (<base>) AS base WHERE time >= :t_from AND time < :t_to
        GROUP BY bucket, <aliases> ORDER BY bucket

    Result rows: (bucket epoch seconds, *group values, count)."""
    col = base_column(time_column)
    groups = group_by or {}
    projections: list[exp.Expression] = [bucket_epoch(col, interval, dialect).as_("bucket")]
    projections += [e.as_(alias, quoted=True) for alias, e in groups.items()]
    projections.append(exp.Count(this=exp.Star()).as_("n"))
    q = select_from_base(base, *projections).where(time_range(col))
    # Group by position: the same in every dialect, and no expression repeated.
    q = q.group_by(*[exp.Literal.number(i) for i in range(1, len(groups) + 2)]).order_by(exp.Literal.number(1))
    params: dict[str, Any] = {"t_from": start, "t_to": end}
    if limit is not None:
        q = q.limit(param("row_limit"))
        params["row_limit"] = int(limit)
    return Statement(q, params)


__all__ = [
    "BASE", "DIALECTS", "SqlError", "Statement", "base_column", "base_subquery", "bucket_epoch", "bucket_start_of",
    "check_identifier", "count_by_bucket", "describe_statement", "epoch_seconds", "json_value", "param",
    "parse_base_query", "sample_statement", "select_from_base", "split_json_path", "time_range",
]
