"""The Strawberry ASGI view: builds the per-operation context, authenticates websockets in
`connection_init`, encodes with orjson, and serves our vendored GraphiQL page."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected

from graph.context import Context
from server import metrics
from server.errors import DomainError
from server.runtime import Runtime
from server.security.authn import authenticate
from server.security.principal import Principal

log = logging.getLogger("insights.graphql")


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends orjson-encoded messages as text frames: `graphql-transport-ws` and `graphql-ws` are
    text protocols, and clients (graphql-ws, Apollo, gql) reject binary frames. Strawberry's adapter
    sends `bytes` from `encode_json` as binary frames, so it must not get them."""

    async def send_json(self, message) -> None:  # noqa: ANN001
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class InsightsGraphQL(GraphQL):
    websocket_adapter_class = TextWebSocketAdapter  # type: ignore[assignment]

    def __init__(self, schema, runtime_getter, **kwargs: Any):  # noqa: ANN001
        # File uploads (GraphQL multipart request spec, `eventPhotoUpload`). Safe against CSRF
        # because server/security/gate.py refuses cookie-authenticated multipart posts without
        # the X-Insights-CSRF header (which a cross-site form cannot send), and bounds their size.
        kwargs.setdefault("multipart_uploads_enabled", True)
        super().__init__(schema, **kwargs)
        self.runtime_getter = runtime_getter

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = request.scope.get("state", {})
        principal = state.get("principal") or Principal(address=request.client.host if request.client else None)
        return Context(self.runtime_getter(), principal, request=request, response=response,
                       request_id=state.get("request_id"))

    async def on_ws_connect(self, context: Context) -> Any:
        """Authenticate a websocket from `connection_init`'s payload (or the session cookie)."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        authorization = params.get("authorization") or params.get("Authorization")
        if authorization is not None and not isinstance(authorization, str):
            raise ConnectionRejectionError({"message": "`authorization` must be a string", "code": "VALIDATION"})
        if isinstance(authorization, str) and not authorization.lower().startswith(("bearer ", "token ")):
            authorization = f"Bearer {authorization}"
        rt: Runtime = context.rt
        cookie = None if authorization else context.request.cookies.get(rt.settings.session_cookie_name)
        try:
            context.principal = await authenticate(rt.db, rt.settings.signing_key(), authorization, cookie,
                                                   context.principal.address)
        except DomainError as e:
            raise ConnectionRejectionError({"message": e.message, "code": e.code.value}) from None
        except Exception:  # the database is down: refuse cleanly instead of dropping the socket
            log.exception("could not authenticate a websocket (request_id=%s)", context.request_id)
            raise ConnectionRejectionError({"message": "authentication is unavailable right now",
                                            "code": "UNAVAILABLE"}) from None
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

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # its JSONDecodeError is json's, so Strawberry still answers 400

    async def parse_http_body(self, request):  # noqa: ANN001, ANN201
        """Strawberry assumes a JSON body is an object (or a batch list) and fails with a 500 on
        `"text"`, `42` or `null`; those are the client's mistake: 400."""
        if request.method == "POST" and "application/json" in (request.content_type or ""):
            if not isinstance(self.parse_json(await request.get_body()), (dict, list)):
                raise HTTPException(400, "The request body must be a JSON object with a `query`")
        return await super().parse_http_body(request)

    async def parse_multipart(self, request):  # noqa: ANN001, ANN201
        """Strawberry's parser answers 500 to a malformed `operations`/`map` (a path that is not
        in the operations, a map that is not an object of lists): those are the client's mistake."""
        from strawberry.file_uploads.utils import replace_placeholders_with_files

        try:
            form = await request.get_form_data()
        except ValueError:
            raise HTTPException(400, "Unable to parse the multipart body") from None
        operations, files_map = form.form.get("operations"), form.form.get("map", "{}")
        if not isinstance(operations, (str, bytes)) or not isinstance(files_map, (str, bytes)):
            raise HTTPException(400, "a multipart request needs `operations` and `map` fields "
                                     "(GraphQL multipart request spec)")
        try:
            operations, files_map = orjson.loads(operations), orjson.loads(files_map)
        except orjson.JSONDecodeError:
            raise HTTPException(400, "`operations` and `map` must be JSON") from None
        if not isinstance(operations, (dict, list)) or not isinstance(files_map, dict) or not all(
                isinstance(paths, list) and all(isinstance(p, str) for p in paths) for paths in files_map.values()):
            raise HTTPException(400, "`operations` must be an object and `map` an object of lists of paths")
        files = {name: form.files.get(name) for name in files_map}
        if any(f is None or isinstance(f, str) for f in files.values()):
            raise HTTPException(400, "File(s) missing in form data")
        try:
            return replace_placeholders_with_files(operations, files_map, files)
        except (KeyError, IndexError, TypeError, ValueError):
            raise HTTPException(400, "`map` names a path that is not in `operations`") from None

    def encode_json(self, data: object) -> bytes:  # type: ignore[override]
        """HTTP responses: orjson bytes (Strawberry decodes them where it needs text, e.g. streams)."""
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        from server.graphiql import graphiql_html

        return HTMLResponse(graphiql_html())
