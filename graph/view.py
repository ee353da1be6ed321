"""The Strawberry ASGI view: builds the per-operation context, authenticates websockets in
`connection_init`, encodes with orjson, and serves our vendored GraphiQL page."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from graph.context import Context
from server import metrics
from server.errors import DomainError
from server.runtime import Runtime
from server.security.authn import authenticate
from server.security.principal import Principal

log = logging.getLogger("insights.graphql")


class InsightsGraphQL(GraphQL):
    def __init__(self, schema, runtime_getter, **kwargs: Any):  # noqa: ANN001
        super().__init__(schema, **kwargs)
        self.runtime_getter = runtime_getter

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = request.scope.get("state", {})
        principal = state.get("principal") or Principal(address=request.client.host if request.client else None)
        return Context(self.runtime_getter(), principal, request=request, response=response,
                       request_id=state.get("request_id"))

    async def on_ws_connect(self, context: Context) -> Any:
        """Authenticate a websocket from `connection_init`'s payload (or the session cookie)."""
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if isinstance(authorization, str) and not authorization.lower().startswith(("bearer ", "token ")):
            authorization = f"Bearer {authorization}"
        rt: Runtime = context.rt
        cookie = None if authorization else context.request.cookies.get(rt.settings.session_cookie_name)
        try:
            context.principal = await authenticate(rt.db, rt.settings.signing_key(), authorization, cookie,
                                                   context.principal.address)
        except DomainError as e:
            raise ConnectionRejectionError({"message": e.message, "code": e.code.value}) from None
        return None

    async def run(self, request, context=None, root_value=None):  # noqa: ANN001, ANN201
        from strawberry.types.unset import UNSET

        if request.scope["type"] != "websocket":
            return await super().run(request, UNSET if context is None else context, UNSET if root_value is None else root_value)
        metrics.websocket_connections.inc()
        try:
            return await super().run(request, UNSET if context is None else context, UNSET if root_value is None else root_value)
        finally:
            metrics.websocket_connections.dec()

    def encode_json(self, data: object) -> bytes:  # type: ignore[override]
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        from server.graphiql import graphiql_html

        return HTMLResponse(graphiql_html())
