"""The ClickHouse connector end to end: clickhouse-connect over HTTP to ClickHouse's HTTP interface
on loopback (tests/support/clickhouse_http.py: the server's protocol, executed by chDB) holding
the generated events. The engine-parametrized connector tests of test_connectors.py run here
again through the real client (imported, so pytest collects them with this module's `engine`),
as a read-only user (how a warehouse should be connected) and as one who may change settings."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlglot import exp

from server.domains.warehouse.connectors import ConnectionSpec, ConnectorError, open_connector, sql
from server.domains.warehouse.connectors.sql import Statement, parse_base_query, select_from_base
from tests.server.warehouse.test_connectors import (  # noqa: F401  run again with this module's `engine`
    test_a_chunk_is_half_open_and_chunks_add_up,
    test_count_by_bucket_matches_python,
    test_json_paths_and_group_rules_shape,
    test_naive_timestamps_are_utc,
    test_parameter_values_are_bound_not_spliced,
    test_stopping_a_stream_early_frees_the_connection,
    test_test_describe_fetch_stream_tables,
    test_unknown_column_and_bad_query_are_connector_errors,
)
from tests.support.clickhouse_http import ClickHouseHttp, User, zstd

READER = User("reader-s3cret", readonly=1)


@pytest.fixture(scope="module")
def clickhouse(warehouse_rows):  # noqa: ANN001, ANN201
    """The server with `wh.events`; users `default` (no password) and `reader` (read-only)."""
    with ClickHouseHttp.start({"reader": READER}) as ch:
        ch.load_events("wh", warehouse_rows)
        yield ch


@pytest.fixture(params=["reader", "default"])
def engine(request, clickhouse):  # noqa: ANN001, ANN201
    """The read-only user (who may not set even the connector's settings, nor turn on compression);
    `default`, who may: max_execution_time, max_result_rows, responses compressed with zstd."""
    spec = reader(clickhouse) if request.param == "reader" else clickhouse.spec("wh")
    return "clickhouse", lambda **o: open_connector(dataclasses.replace(spec, **o))


def reader(clickhouse: ClickHouseHttp) -> ConnectionSpec:
    return clickhouse.spec("wh", username="reader", password=READER.password)


def select_all(query: str) -> Statement:
    return Statement(select_from_base(parse_base_query(query, "clickhouse"), exp.Star()))


# --- failures the user can act on -------------------------------------------------------------

@pytest.mark.parametrize("username, password", [("reader", "wrong"), ("nobody", READER.password)])
async def test_bad_credentials_fail_before_any_query_and_say_why(clickhouse, username, password):
    ran = clickhouse.requests
    with pytest.raises(ConnectorError) as e:
        async with open_connector(clickhouse.spec("wh", username=username, password=password)):
            pass
    assert e.value.kind == "auth"
    assert e.value.message == (f"ClickHouse: authentication failed: {username}: Authentication failed: password is "
                               "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")
    assert clickhouse.requests == ran  # refused at the door


async def test_unknown_database_and_closed_port(clickhouse):
    with pytest.raises(ConnectorError) as e:
        async with open_connector(clickhouse.spec("no_such_db_xyz", username="reader", password=READER.password)):
            pass
    assert e.value.kind == "query" and "no_such_db_xyz" in e.value.message and "UNKNOWN_DATABASE" in e.value.message
    with pytest.raises(ConnectorError) as e:
        async with open_connector(clickhouse.spec("wh", port=1, timeout_seconds=3)):
            pass
    assert e.value.kind == "connect" and e.value.message == "ClickHouse: cannot connect to 127.0.0.1:1: " \
                                                             "[Errno 111] Connection refused"


async def test_errors_are_the_servers_message_without_url_or_version(clickhouse):
    async with open_connector(reader(clickhouse)) as conn:
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(select_all("SELECT * FROM no_such_table"))
    assert e.value.message.startswith("ClickHouse: running the query failed: Unknown table expression identifier "
                                      "'no_such_table'")
    assert e.value.message.endswith("(UNKNOWN_TABLE)") and "version" not in e.value.message
    assert clickhouse.url not in e.value.message


async def test_an_error_after_the_first_blocks_ends_the_stream_with_it(clickhouse):
    """The server has sent rows when the query fails: clickhouse-connect finds the tagged exception
    block in the stream, and the connector reports it."""
    query = "SELECT number, throwIf(number = 900000) AS boom FROM numbers(1000000)"
    async with open_connector(reader(clickhouse)) as conn:
        rows = 0
        with pytest.raises(ConnectorError) as e:
            async with conn.stream(select_all(query), chunk_rows=50_000) as chunks:
                async for chunk in chunks:
                    rows += len(chunk.rows)
        assert 0 < rows < 900_000
        assert e.value.kind == "query" and "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO" in e.value.message
        assert (await conn.fetch(select_all("SELECT 1 AS one"))).rows == [(1,)]  # the connection goes on


async def test_the_timeout_stops_the_query_in_the_server(clickhouse):
    """max_execution_time travels with the query: the server gives up too, not just the client."""
    endless = "SELECT count() AS n FROM numbers(1000000000000)"
    async with open_connector(clickhouse.spec("wh", timeout_seconds=2)) as conn:
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(select_all(endless))
    assert e.value.kind == "timeout"

    deadline = time.monotonic() + 5
    while int(clickhouse.execute("SELECT count() FROM system.processes WHERE query LIKE '%numbers(1000000000000)%' "
                                 "AND query NOT LIKE '%system.processes%'")):
        assert time.monotonic() < deadline, "the query still runs in the server"
        await asyncio.sleep(0.05)


async def test_a_parameter_with_tabs_quotes_and_backslashes_round_trips(clickhouse):
    """Parameter values travel as escaped text and the server unescapes them: what we bind is what
    it compares. A long one moves to a multipart form (clickhouse-connect keeps URLs short)."""
    value = "tab\there 'quote' back\\slash\nnewline"
    async with open_connector(reader(clickhouse)) as conn:
        for v in (value, value + "x" * 5000):
            statement = Statement(exp.select(exp.alias_(sql.param("v"), "v")), {"v": v})
            assert (await conn.fetch(statement)).rows == [(v,)]


# --- the test server speaks ClickHouse's HTTP protocol ------------------------------------------

def http(clickhouse: ClickHouseHttp, path: str = "/", data: bytes | None = None, headers: dict | None = None,
         **params: str) -> tuple:
    """(status, headers, body) of one raw request."""
    url = f"{clickhouse.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_the_test_server_answers_like_clickhouse(clickhouse):
    assert http(clickhouse, "/ping")[::2] == (200, b"Ok.\n") and http(clickhouse)[::2] == (200, b"Ok.\n")
    # Credentials three ways; a wrong one is code 516 with 403.
    basic = {"Authorization": "Basic " + base64.b64encode(f"reader:{READER.password}".encode()).decode()}
    assert http(clickhouse, data=b"SELECT 1", headers=basic)[::2] == (200, b"1\n")
    assert http(clickhouse, data=b"SELECT 2", user="reader", password=READER.password)[2] == b"2\n"
    status, headers, body = http(clickhouse, data=b"SELECT 1", headers={"X-ClickHouse-User": "reader",
                                                                        "X-ClickHouse-Key": "nope"})
    assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "516"
    assert body.startswith(b"Code: 516. DB::Exception: reader: Authentication failed: ")
    # Query parameters, database, default format, the FORMAT clause.
    status, headers, body = http(clickhouse, data=b"SELECT count() FROM events WHERE name = {n:String}",
                                 database="wh", param_n="page.view", default_format="JSONCompact")
    assert status == 200 and headers["X-ClickHouse-Format"] == "JSONCompact" and b'"data"' in body
    # Errors: the status of the code; one statement per request; settings are checked.
    for query, status, code in (("SELECT * FROM nowhere", 404, "60"), ("SELECT 1; SELECT 2", 400, "62"),
                                ("SELEC 1", 400, "62")):
        got = http(clickhouse, data=query.encode())
        assert (got[0], got[1]["X-ClickHouse-Exception-Code"]) == (status, code), got
        assert got[2].startswith(f"Code: {code}. DB::Exception: ".encode()) and b"(version " in got[2]
    assert http(clickhouse, data=b"SELECT 1", no_such_setting="1")[0] == 404
    assert http(clickhouse, data=b"SELECT 1", max_threads="1")[0] == 200
    # A read-only user may neither write nor change settings; GET may not write.
    assert http(clickhouse, data=b"CREATE TABLE wh.t (a Int8) ENGINE = Memory", headers=basic)[1][
        "X-ClickHouse-Exception-Code"] == "164"
    assert http(clickhouse, data=b"SELECT 1", headers=basic, max_threads="1")[1]["X-ClickHouse-Exception-Code"] == "164"
    assert http(clickhouse, query="CREATE TABLE wh.t (a Int8) ENGINE = Memory")[1][
        "X-ClickHouse-Exception-Code"] == "164"
    # Compression on request, zstd first.
    accept = {"Accept-Encoding": "gzip, lz4, zstd"}
    assert "Content-Encoding" not in http(clickhouse, data=b"SELECT 1", headers=accept)[1]  # off by default
    status, headers, body = http(clickhouse, data=b"SELECT number FROM numbers(1000)", headers=accept,
                                 enable_http_compression="1")
    assert headers["Content-Encoding"] == "zstd" and zstd.decompress(body).split() == [b"%d" % i for i in range(1000)]
