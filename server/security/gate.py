"""The front door of `/graphql`: request id, body limit, authentication, CSRF and rate limits.

A pure ASGI middleware, so a refused request costs no GraphQL parsing, and the 429 carries a
`Retry-After` header (which a GraphQL result alone could not set).
"""

from __future__ import annotations

import logging
import re
import uuid
from urllib.parse import parse_qs

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.errors import DomainError, ErrorCode
from server.runtime import Runtime
from server.security.authn import authenticate
from server.security.principal import Principal
from server.security.rate_limit import Window, hit

log = logging.getLogger("insights.gate")

BODY_TYPES = ("application/json", "multipart/form-data")  # what a POST may carry
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def graphql_error_body(message: str, code: str, **extra: object) -> bytes:
    return orjson.dumps({"data": None, "errors": [{"message": message, "extensions": {"code": code, **extra}}]})


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def request_id_of(header: str | None) -> str:
    """The client's `X-Request-ID` when it is a sane token (it ends up in logs), else a new one."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex[:16]


class GraphQLGate:
    def __init__(self, app: ASGIApp, runtime_getter, paths: tuple[str, ...] = ("/graphql",)):  # noqa: ANN001
        self.app = app
        self.runtime_getter = runtime_getter
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        rt: Runtime = self.runtime_getter()
        conn = HTTPConnection(scope)
        request_id = request_id_of(conn.headers.get("x-request-id"))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        address = conn.client.host if conn.client else None
        if scope["type"] == "websocket":
            # Websockets authenticate in connection_init; see graph.view.
            state["principal"] = Principal(address=address)
            return await self.app(scope, receive, send)

        inner_send = send

        async def send(message: Message) -> None:  # every answer names its request id, and is counted
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
                metrics.http_requests.labels(scope["path"], str(message["status"])).inc()
            await inner_send(message)

        method = scope["method"]
        if method == "GET" and "text/html" in conn.headers.get("accept", "") \
                and "query" not in parse_qs(scope.get("query_string", b"").decode("latin-1")):
            # The GraphiQL page itself; a GET that carries a query is an operation like any other.
            state["principal"] = Principal(address=address)
            return await self.app(scope, receive, send)

        limit = rt.settings.max_body_bytes
        if method == "POST" and media_type(conn.headers.get("content-type", "")) == "multipart/form-data":
            # A file upload (GraphQL multipart request spec): room for one photo besides the
            # `operations` and `map` parts. JSON bodies keep the small limit.
            limit += rt.settings.photo_max_bytes
        length = conn.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await send_json(send, 413, graphql_error_body(f"request body over {limit} bytes", "PAYLOAD_TOO_LARGE"))

        authorization = conn.headers.get("authorization")
        cookie = conn.cookies.get(rt.settings.session_cookie_name)
        if method == "POST" and media_type(conn.headers.get("content-type", "")) not in BODY_TYPES:
            return await send_json(send, 415, graphql_error_body(
                "POST /graphql needs Content-Type: application/json (or multipart/form-data for uploads)",
                "UNSUPPORTED_MEDIA_TYPE"))
        if cookie and not authorization and method == "POST" \
                and media_type(conn.headers.get("content-type", "")) == "multipart/form-data" \
                and not conn.headers.get("x-insights-csrf"):
            # A form post from another site can send multipart with our cookie; JSON it cannot.
            return await send_json(send, 403, graphql_error_body(
                "cookie-authenticated uploads need the X-Insights-CSRF header", "FORBIDDEN"))
        try:
            principal = await authenticate(rt.db, rt.settings.signing_key(), authorization,
                                           None if authorization else cookie, address)
        except DomainError as e:
            if cookie and not authorization:  # a stale cookie should not lock a browser out of GraphiQL
                principal = Principal(address=address)
            else:
                return await send_json(send, 401, graphql_error_body(e.message, e.code.value),
                                       [(b"www-authenticate", b"Bearer")])
        except Exception:  # the database is down: the client did nothing wrong, so no 500
            log.exception("could not authenticate (request_id=%s)", request_id)
            return await send_json(send, 503, graphql_error_body(
                "authentication is unavailable right now; try again shortly", "UNAVAILABLE", requestId=request_id),
                [(b"retry-after", b"5")])
        state["principal"] = principal

        verdict = await hit(rt.redis, principal.rate_key, [
            Window(60, rt.settings.rate_limit_per_minute), Window(3600, rt.settings.rate_limit_per_hour)])
        if not verdict.allowed:
            metrics.rate_limited.inc()
            return await send_json(send, 429, graphql_error_body(
                f"rate limit of {verdict.limit} requests exceeded; retry in {verdict.retry_after} s",
                ErrorCode.RATE_LIMITED.value, retryAfter=verdict.retry_after),
                [(b"retry-after", str(verdict.retry_after).encode())])

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await send_json(send, 413, graphql_error_body(f"request body over {limit} bytes", "PAYLOAD_TOO_LARGE"))
