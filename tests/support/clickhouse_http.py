"""ClickHouse's HTTP interface on a loopback port, executed by chDB: the ClickHouse connector's
end-to-end tests talk to it through clickhouse-connect exactly as they would to clickhouse-server.

Why not a real server: none installs from the registries this project reaches (Debian's
`clickhouse-server` is 18.16 from 2018, without DateTime64 or query parameters; PyPI ships no
server binary). chDB is ClickHouse's engine as a library (its parser, analyzer, functions,
formats, settings and error texts), so this module only adds the HTTP layer, after
clickhouse-server's HTTPHandler:

- the query in the POST body, in the `query` parameter, or both (parameter first); multipart form
  fields `query` and `param_*` (clickhouse-connect's form encoding for long parameters);
- `param_<name>` values bound by the engine to `{name:Type}` placeholders (escaped text, parsed
  as the server parses them); `database`; `default_format` when the query has no FORMAT clause
  (else TabSeparated); every other parameter is a setting, set on a fresh session per request
  (unknown ones fail with UNKNOWN_SETTING); one statement per request; `session_id` is accepted
  but settings do not outlive a request;
- users from `X-ClickHouse-User`/`X-ClickHouse-Key`, HTTP basic auth or the `user`/`password`
  parameters (none: `default`); a wrong password or unknown user is
  `Code: 516. DB::Exception: <user>: Authentication failed: ...` with 403; a user may be
  read-only (`readonly = 1`: no writes, no setting changes) and GET runs with `readonly = 2`;
- errors as `Code: N. DB::Exception: ... (NAME) (version V)` with `X-ClickHouse-Exception-Code`
  and the status exceptionCodeToHTTPStatus gives the code;
- results streamed chunk by chunk as the engine produces them (`wait_end_of_query=1` buffers
  them), compressed with the client's best `Accept-Encoding` (the server's order: zstd, lz4,
  gzip, deflate) when `enable_http_compression` is on; an error after the first bytes is the
  25.11+ exception block marked with the response's `X-ClickHouse-Exception-Tag`; a client that
  hangs up cancels its query;
- `GET /ping` and `GET /` answer `Ok.`; `GET /stats` (ours, not ClickHouse's) counts the queries
  that passed authentication (`ClickHouseHttp.requests`: tests check that nothing ran).

It runs as a subprocess, a server process of its own with its own chDB:

    with ClickHouseHttp.start({"reader": User("s3cret", readonly=1)}) as ch:
        ch.load_events("wh", rows)                 # CREATE and INSERT over HTTP, as `default`
        spec = ch.spec("wh", username="reader", password="s3cret")
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:  # what clickhouse-connect decompresses with
    from compression import zstd  # Python 3.14
except ImportError:
    from backports import zstd

ROOT = Path(__file__).resolve().parents[2]

# exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by error name.
_STATUS_BY_NAME = {
    401: {"REQUIRED_PASSWORD"},
    403: {"UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"},
    400: {"BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
          "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
          "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
          "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
          "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
          "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
          "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"},
    404: {"UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
          "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
          "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"},
    413: {"QUERY_IS_TOO_LARGE"},
    501: {"NOT_IMPLEMENTED"},
    503: {"SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"},
    411: {"HTTP_LENGTH_REQUIRED"},
    408: {"TIMEOUT_EXCEEDED"},
    415: {"UNSUPPORTED_MEDIA_TYPE"},
}
# HTTP parameters the server reads itself; every other one (but param_*) is a setting.
_TRANSPORT = {"query", "database", "default_format", "user", "password", "quota_key", "query_id", "stacktrace",
              "role", "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
              "client_protocol_version", "close_session", "compress", "decompress"}
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"^Code: (\d+)\. DB::Exception: ")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)(?: \(version [^)]*\))?\.?\s*$")
_AUTH_FAILED = "{user}: Authentication failed: password is incorrect, or there is no user with such name"


@dataclasses.dataclass(frozen=True)
class User:
    password: str = ""
    readonly: int = 0  # the user's profile: 1 = no writes and no setting changes


class ChError(Exception):
    """A ClickHouse exception: code, symbolic name, and the text the server sends."""

    def __init__(self, code: int, name: str, message: str, version: str):
        self.code, self.name = code, name
        self.text = f"Code: {code}. DB::Exception: {message}. ({name}) (version {version})"
        super().__init__(self.text)

    @property
    def status(self) -> int:
        return next((s for s, names in _STATUS_BY_NAME.items() if self.name in names), 500)

    @classmethod
    def from_engine(cls, e: Exception, version: str) -> "ChError":
        """chDB's exception text (sometimes wrapped twice) as the server's."""
        text = str(e).strip()
        while (m := _CODE.match(text)) and _CODE.match(text[m.end():]):
            text = text[m.end():]  # "Code: 115. DB::Exception: Code: 115. DB::Exception: ..."
        m = _CODE.match(text)
        if not m:
            return cls(1001, "STD_EXCEPTION", text, version)
        body = text[m.end():]
        name = _NAME.search(body)
        message = body[:name.start()].rstrip(" .") if name else body
        message = re.sub(r"\. \([A-Z_]+\) \(version [^)]*\)$", "", message)
        return cls(int(m.group(1)), name.group(1) if name else "UNKNOWN_EXCEPTION", message, version)


# --- response compression (the server's preference order) -------------------------------------

def _encoder(accept: str) -> tuple[str, Callable[[bytes], bytes], Callable[[], bytes]] | None:
    """(Content-Encoding, compress a chunk so it can be decoded at once, finish) or None."""
    if "zstd" in accept:
        z = zstd.ZstdCompressor()
        return "zstd", lambda b: z.compress(b, zstd.ZstdCompressor.FLUSH_BLOCK), lambda: z.flush()
    if "lz4" in accept:
        import lz4.frame

        lz = lz4.frame.LZ4FrameCompressor(auto_flush=True)
        started = [False]

        def lz4_chunk(b: bytes) -> bytes:
            head = b"" if started[0] else lz.begin()
            started[0] = True
            return head + lz.compress(b)

        return "lz4", lz4_chunk, lambda: (b"" if started[0] else lz.begin()) + lz.flush()
    for name, wbits in (("gzip", 31), ("deflate", 15)):
        if name in accept:
            zo = zlib.compressobj(wbits=wbits)
            return name, lambda b, zo=zo: zo.compress(b) + zo.flush(zlib.Z_SYNC_FLUSH), zo.flush
    return None


# --- the server (runs in the subprocess) ----------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, users: dict[str, User]):
        from chdb import _chdb

        self.connect = lambda: _chdb.connect(":memory:")  # one session per request, one shared engine
        self.anchor = self.connect()  # the in-memory engine lives while a connection is open
        row = _scalar(self.anchor, "SELECT version(), timezone()").split("\t")
        self.version, self.timezone = row[0], row[1]
        self.users = {"default": User(), **users}
        self.requests = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def count(self) -> None:
        with self.lock:
            self.requests += 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve(get=True)

    def do_POST(self) -> None:  # noqa: N802
        self._serve(get=False)

    # --- request --------------------------------------------------------------------------------

    def _serve(self, get: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        body = self._read_body()
        if url.path == "/ping" or (get and url.path == "/" and not url.query):
            return self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
        if url.path == "/stats":  # not ClickHouse's: what the tests read back
            return self._send(200, json.dumps({"requests": self.server.requests}).encode(),
                              {"Content-Type": "application/json"})
        if url.path != "/":
            text = f"There is no handle {url.path}\n\nUse / or /ping for health checks.\n"
            return self._send(404, text.encode(), {"Content-Type": "text/html; charset=UTF-8"})
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            if self.headers.get_content_type() == "multipart/form-data":
                params.update(self._form(body))
                body = b""
            user = self._authenticate(params)
            query = "\n".join(p for p in (params.get("query", ""), body.decode("utf-8", "replace")) if p)
            if not query.strip():
                raise ChError(62, "SYNTAX_ERROR", "Empty query", self.server.version)
            self.server.count()
            self._execute(query, params, user, get, query_id)
        except ChError as e:
            self._error(e, query_id)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _form(self, body: bytes) -> dict[str, str]:
        """multipart/form-data fields; files would be external tables, which this server lacks."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        fields = {}
        for part in BytesParser(policy=HTTP).parsebytes(head + body).iter_parts():
            if part.get_filename():
                raise ChError(48, "NOT_IMPLEMENTED", "External tables are not supported by this test server",
                              self.server.version)
            name = part.get_param("name", header="content-disposition")
            fields[name] = part.get_payload(decode=True).decode()
        return fields

    def _authenticate(self, params: dict[str, str]) -> User:
        name, password = self.headers.get("X-ClickHouse-User"), self.headers.get("X-ClickHouse-Key")
        basic = self.headers.get("Authorization", "")
        if name is None and basic.lower().startswith("basic "):
            name, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        elif name is None and "user" in params:
            name, password = params["user"], params.get("password", "")
        name = name or "default"
        user = self.server.users.get(name)
        if user is None or not secrets.compare_digest(user.password, password or ""):
            raise ChError(516, "AUTHENTICATION_FAILED", _AUTH_FAILED.format(user=name), self.server.version)
        return user

    # --- execution ------------------------------------------------------------------------------

    def _execute(self, query: str, params: dict[str, str], user: User, get: bool, query_id: str) -> None:
        conn = self.server.connect()
        try:
            read_only, compressing = self._prepare(conn, query, params, user, get)
            fmt = m.group(1) if (m := _FORMAT_CLAUSE.search(query)) else params.get("default_format") or "TabSeparated"
            binds = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
            encoder = _encoder(self.headers.get("Accept-Encoding", "")) if compressing else None
            headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Query-Id": query_id,
                       "X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": self.server.timezone}
            if encoder:
                headers["Content-Encoding"] = encoder[0]
            if params.get("wait_end_of_query") == "1" or not read_only:
                self._buffered(conn, query, fmt, binds, headers, encoder)
            else:
                self._streamed(conn, query, fmt, binds, headers, encoder)
        finally:
            conn.close()

    def _prepare(self, conn: Any, query: str, params: dict[str, str], user: User, get: bool) -> tuple[bool, bool]:
        """The request's session (the user's profile, database and settings); (the query only
        reads, the response is to be compressed)."""
        try:
            conn.query("SET enable_http_compression = 0", "TabSeparated")  # the server's default
            readonly = user.readonly or (2 if get else 0)
            if readonly:
                conn.query(f"SET readonly = {readonly}", "TabSeparated")
            if params.get("database"):
                conn.query(f"USE {_ident(params['database'])}", "TabSeparated")
            for name, value in params.items():
                if name not in _TRANSPORT and not name.startswith("param_"):
                    self._set(conn, name, value)
            statements = conn.classify_query(query)
            compressing = _scalar(conn, "SELECT getSetting('enable_http_compression')") in ("1", "true")
        except RuntimeError as e:
            raise ChError.from_engine(e, self.server.version) from None
        if statements["statement_count"] > 1:
            raise ChError(62, "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed)", self.server.version)
        return str(statements["query_class"]).endswith("READ_ONLY"), compressing

    def _set(self, conn: Any, name: str, value: str) -> None:
        if not _SETTING_NAME.match(name):
            raise ChError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'", self.server.version)
        conn.query(f"SET {name} = {_literal(value)}", "TabSeparated")

    def _buffered(self, conn: Any, query: str, fmt: str, binds: dict, headers: dict, encoder: Any) -> None:
        try:
            result = conn.query(query, fmt, params=binds)
        except RuntimeError as e:
            raise ChError.from_engine(e, self.server.version) from None
        data = bytes(result.bytes())
        if encoder:
            data = encoder[1](data) + encoder[2]()
        headers["X-ClickHouse-Summary"] = _summary(result)
        self._send(200, data, headers)

    def _streamed(self, conn: Any, query: str, fmt: str, binds: dict, headers: dict, encoder: Any) -> None:
        """Chunks as the engine makes them; the headers go with the first (errors before it get a
        status of their own, as on the server)."""
        version = self.server.version
        try:
            stream = conn.send_query(query, fmt, params=binds)
            first = conn.streaming_fetch_result(stream)
        except RuntimeError as e:
            raise ChError.from_engine(e, version) from None
        tag = secrets.token_hex(8)
        headers.update({"Transfer-Encoding": "chunked", "X-ClickHouse-Exception-Tag": tag,
                        "X-ClickHouse-Summary": _summary(first)})
        self._head(200, headers)
        pack = encoder[1] if encoder else (lambda b: b)
        try:
            for data in _chunks(conn, stream, first):
                self._chunk(pack(data))
        except RuntimeError as e:  # the 25.11+ mid-stream exception block
            text = ChError.from_engine(e, version).text + "\n"
            self._chunk(pack(f"__exception__\r\n{tag}\r\n{text}{len(text)} {tag}\r\n__exception__\r\n".encode()))
        except OSError:  # the client hung up: stop the query
            conn.streaming_cancel_query(stream)
            self.close_connection = True
            return
        try:
            if encoder:
                self._chunk(encoder[2]())
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    # --- response -------------------------------------------------------------------------------

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in {"X-ClickHouse-Server-Display-Name": "chdb-http", "Keep-Alive": "timeout=10", **headers}.items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._head(status, {**headers, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _error(self, e: ChError, query_id: str) -> None:
        self._send(e.status, (e.text + "\n").encode(), {
            "Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(e.code),
            "X-ClickHouse-Query-Id": query_id})


def _chunks(conn: Any, stream: Any, first: Any) -> Iterator[bytes]:
    result = first
    while result is not None:
        data = bytes(result.bytes())
        if not data:
            return
        yield data
        result = conn.streaming_fetch_result(stream)


def _scalar(conn: Any, sql: str) -> str:
    return bytes(conn.query(sql, "TabSeparated").bytes()).decode().strip()


def _summary(result: Any) -> str:
    if result is None:
        return json.dumps({})
    return json.dumps({"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
                       "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
                       "elapsed_ns": str(int(result.elapsed() * 1e9))})


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="{}", help='JSON {"name": {"password": "...", "readonly": 0}}')
    args = parser.parse_args()
    users = {name: User(**spec) for name, spec in json.loads(args.users).items()}
    server = _Server(users)
    print(f"listening on {server.server_address[1]}", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nobody reads on: never block on a full pipe
    # The test process holds our stdin: when it ends, however it ends, so do we.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


# --- the test side --------------------------------------------------------------------------------

class ClickHouseHttp:
    """A running server subprocess (use `start` as a context manager)."""

    def __init__(self, process: subprocess.Popen, port: int, users: dict[str, User]):
        self.process, self.port, self.users = process, port, users
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"

    @classmethod
    def start(cls, users: dict[str, User] | None = None, timeout: float = 60) -> "ClickHouseHttp":
        users = users or {}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.clickhouse_http",
             "--users", json.dumps({k: dataclasses.asdict(v) for k, v in users.items()})],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].startswith("listening on "):
            process.kill()
            raise RuntimeError(f"the ClickHouse HTTP test server did not start: {line}")
        return cls(process, int(line[0].split()[-1]), users)

    def __enter__(self) -> "ClickHouseHttp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.stdout.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def execute(self, query: str, data: bytes = b"", *, user: str = "default", **params: str) -> bytes:
        """POST a query (and data after it) as `user`; the body of the answer (HTTPError otherwise)."""
        url = f"{self.url}/?" + urllib.parse.urlencode({"query": query, "wait_end_of_query": "1", **params})
        password = self.users.get(user, User()).password
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "X-ClickHouse-User": user, "X-ClickHouse-Key": password})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{e.code}: {e.read().decode()}") from None

    @property
    def requests(self) -> int:
        """Queries the server has run (past authentication)."""
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as response:
            return json.loads(response.read())["requests"]

    def load_events(self, database: str, rows: list[dict]) -> None:
        """`database.events` (tests/support/warehouse.py's columns) holding `rows`."""
        from tests.support.warehouse import CH_DDL, _ch_ts

        self.execute(f"CREATE DATABASE IF NOT EXISTS {_ident(database)}")
        self.execute(CH_DDL.format(db=_ident(database)))
        lines = "\n".join(json.dumps({**r, "ts": _ch_ts(r["ts"]), "ts_naive": _ch_ts(r["ts"]),
                                      "props": json.dumps(r["props"])}) for r in rows)
        self.execute(f"INSERT INTO {_ident(database)}.events FORMAT JSONEachRow", lines.encode())

    def spec(self, database: str, **overrides: Any):  # noqa: ANN201
        """A ConnectionSpec of type ClickHouse for this server."""
        from server.domains.warehouse.connectors.base import ConnectionSpec
        from server.domains.warehouse.models import DataSourceType

        values: dict[str, Any] = dict(db_type=DataSourceType.CLICKHOUSE, host=self.host, port=self.port,
                                      database=database, timeout_seconds=20)
        values.update(overrides)
        return ConnectionSpec(**values)


if __name__ == "__main__":
    main()
