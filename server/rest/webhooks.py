"""The inbound REST shim: one route per monitoring tool, the generic ingest URL, replay, and the
JSON Schema of our own format.

    POST /api/grafana/alerts          (PUT too: Grafana's contact point can be set to PUT)
    POST /api/datadog/webhook         POST /api/netdata/alerts        POST /api/pagerduty/webhook
    GET  /api/netdata/alerts?crc_token=...      Netdata Cloud's endpoint challenge (challenges.py)
    POST /api/splunk/alerts           POST /api/jenkins/deployment    POST /api/cloudbees/deployment
    POST /api/dynatrace/problems      POST /api/bigpanda/webhook      POST /api/alertmanager/alerts
    POST /api/v1/webhooks/ingest/{apiKey}       the config's own provider (our generic format for `generic`)
    POST /api/v1/webhooks/replay/{deliveryId}   owners; Bearer JWT / API key / session cookie
    GET  /api/v1/webhooks/schema/generic        public: the JSON Schema of the generic format

Provider routes take the config's `ins_` key as `Authorization: Bearer <key>`, `X-Insights-Key:
<key>`, `?token=<key>`, or as the password (or user) of HTTP Basic auth (Grafana, Jenkins
`user:key@host` URLs). The pipeline itself (checks, status codes, storage) is
server/domains/incidents/deliveries.py. Answers are `{error, details, code}` for every refusal;
a 500 only for our own bugs (logged with the request id), 503 while the database is unreachable.

Keys in URLs end up in access logs: this module installs a filter that masks `ins_...` in
uvicorn's access log lines.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import AsyncIterator

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from server import metrics
from server.domains.incidents.challenges import netdata_challenge
from server.domains.incidents.deliveries import DeliveryRejected, Incoming, Unavailable, is_unavailable, replay
from server.domains.incidents.inbound import receive
from server.domains.incidents.ids import parse_global_id
from server.domains.incidents.normalizers import generic
from server.domains.incidents.webhook_configs import INGEST_PATH_TEMPLATE, KEY_PREFIX, PROVIDER_ROUTES
from server.errors import DomainError, ErrorCode
from server.rest.responses import error_response, json_response
from server.security.authn import authenticate
from server.security.gate import request_id_of
from server.security.rate_limit import Window, hit

log = logging.getLogger("insights.webhooks")

REPLAY_PATH = "/api/v1/webhooks/replay/{deliveryId}"
SCHEMA_PATH = "/api/v1/webhooks/schema/generic"
_KEY_IN_TEXT = re.compile(r"ins_[A-Za-z0-9_\-]+")
_ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _MaskKeys(logging.Filter):
    """Masks webhook keys in access log lines (`?token=ins_...`, `/ingest/ins_...`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and KEY_PREFIX in a for a in record.args):
            record.args = tuple(_KEY_IN_TEXT.sub("ins_***", a) if isinstance(a, str) else a for a in record.args)
        return True


if not any(isinstance(f, _MaskKeys) for f in logging.getLogger("uvicorn.access").filters):
    logging.getLogger("uvicorn.access").addFilter(_MaskKeys())


def key_from(request: Request) -> str | None:
    """The first credential that looks like a webhook key, else the first credential given (an
    unknown key, answered 401), else None."""
    given: list[str] = []
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() in ("bearer", "token") and value:
            given.append(value)
        elif scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
                given += [password, user]
            except (binascii.Error, UnicodeDecodeError):
                given.append(value)
        else:
            given.append(authorization)
    for value in (request.headers.get("x-insights-key"), request.query_params.get("token")):
        if value:
            given.append(value.strip())
    given = [g for g in given if g]
    return next((g for g in given if g.startswith(KEY_PREFIX)), given[0] if given else None)


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise DeliveryRejected(400, "INCOMPLETE_BODY", "the client went away before the body was complete",
                               record=False) from None


def _method_not_allowed(request: Request, allowed: list[str], request_id: str) -> Response:
    return error_response(405, "METHOD_NOT_ALLOWED", f"use {' or '.join(allowed)}", request_id,
                          {"method": request.method}, {"Allow": ", ".join(allowed)})


async def _handle(request: Request, route: str, route_provider: str | None, key: str | None,
                  key_in_path: bool) -> Response:
    rt = request.app.state.runtime
    request_id = request_id_of(request.headers.get("x-request-id"))
    incoming = Incoming(route_provider=route_provider, key=key, key_in_path=key_in_path,
                        headers=request.headers, body=_body(request))
    try:
        answer = await receive(rt, incoming, request_id=request_id)
        response = json_response(answer.status, answer.body, request_id, answer.headers)
    except DeliveryRejected as r:
        response = error_response(r.status, r.code, r.message, request_id, r.details, r.headers)
    except Unavailable:
        log.warning("webhook refused, database unavailable (request_id=%s)", request_id, exc_info=True)
        response = error_response(503, "UNAVAILABLE", "the service is unavailable right now; retry shortly",
                                  request_id, {"requestId": request_id}, {"Retry-After": "5"})
    except Exception:
        log.exception("internal error in webhook %s (request_id=%s)", route, request_id)
        response = error_response(500, "INTERNAL", f"internal error (request id {request_id})", request_id,
                                  {"requestId": request_id})
    metrics.http_requests.labels(route, str(response.status_code)).inc()
    return response


async def _challenge(request: Request, route: str) -> Response:
    """Netdata Cloud's `GET ?crc_token=` ownership check, authenticated with the config's key."""
    rt = request.app.state.runtime
    request_id = request_id_of(request.headers.get("x-request-id"))
    try:
        body = await netdata_challenge(rt, key_from(request), request.query_params.get("crc_token"))
        response = json_response(200, body, request_id, {"Cache-Control": "no-store"})
    except DeliveryRejected as r:
        response = error_response(r.status, r.code, r.message, request_id, r.details, r.headers)
    except Exception as e:
        if isinstance(e, Unavailable) or is_unavailable(e):
            response = error_response(503, "UNAVAILABLE", "the service is unavailable right now; retry shortly",
                                      request_id, {"requestId": request_id}, {"Retry-After": "5"})
        else:
            log.exception("internal error in webhook challenge %s (request_id=%s)", route, request_id)
            response = error_response(500, "INTERNAL", f"internal error (request id {request_id})", request_id,
                                      {"requestId": request_id})
    metrics.http_requests.labels(route, str(response.status_code)).inc()
    return response


def provider_endpoint(provider: str, path: str):  # noqa: ANN201
    allowed = ["POST", "PUT"] if provider == "grafana" else ["POST"]
    challenge = provider == "netdata"  # GET ?crc_token=... (Netdata Cloud's endpoint check)

    async def endpoint(request: Request) -> Response:
        if challenge and request.method == "GET":
            return await _challenge(request, path)
        if request.method not in allowed:
            return _method_not_allowed(request, ["GET", *allowed] if challenge else allowed,
                                       request_id_of(request.headers.get("x-request-id")))
        return await _handle(request, path, provider, key_from(request), False)

    endpoint.__name__ = f"webhook_{provider}"
    return endpoint


async def ingest(request: Request) -> Response:
    if request.method != "POST":
        return _method_not_allowed(request, ["POST"], request_id_of(request.headers.get("x-request-id")))
    return await _handle(request, INGEST_PATH_TEMPLATE, None, request.path_params["apiKey"], True)


async def replay_delivery(request: Request) -> Response:
    rt = request.app.state.runtime
    request_id = request_id_of(request.headers.get("x-request-id"))
    if request.method != "POST":
        return _method_not_allowed(request, ["POST"], request_id)
    response = await _replay(request, rt, request_id)
    metrics.http_requests.labels(REPLAY_PATH, str(response.status_code)).inc()
    return response


async def _replay(request: Request, rt, request_id: str) -> Response:  # noqa: ANN001
    authorization = request.headers.get("authorization")
    cookie = request.cookies.get(rt.settings.session_cookie_name)
    if cookie and not authorization and not request.headers.get("x-insights-csrf"):
        return error_response(403, "FORBIDDEN", "cookie-authenticated requests need the X-Insights-CSRF header",
                              request_id)
    try:
        principal = await authenticate(rt.db, rt.settings.signing_key(), authorization,
                                       None if authorization else cookie,
                                       request.client.host if request.client else None)
        if not principal.authenticated:
            return error_response(401, "UNAUTHENTICATED", "sign in or send an API key", request_id,
                                  headers={"WWW-Authenticate": "Bearer"})
        verdict = await hit(rt.redis, principal.rate_key, [Window(60, rt.settings.rate_limit_per_minute),
                                                           Window(3600, rt.settings.rate_limit_per_hour)])
        if not verdict.allowed:
            return error_response(429, "RATE_LIMITED", f"rate limit exceeded; retry in {verdict.retry_after} s",
                                  request_id, {"retryAfter": verdict.retry_after},
                                  {"Retry-After": str(verdict.retry_after)})
        delivery_id = parse_global_id(request.path_params["deliveryId"], "WebhookDelivery")
        if delivery_id is None:
            return error_response(404, "NOT_FOUND", "webhook delivery not found", request_id)
        answer = await replay(rt, principal, delivery_id, request_id=request_id)
        return json_response(answer.status, answer.body, request_id)
    except DeliveryRejected as r:
        return error_response(r.status, r.code, r.message, request_id, r.details, r.headers)
    except DomainError as e:
        status = {ErrorCode.UNAUTHENTICATED: 401, ErrorCode.FORBIDDEN: 403, ErrorCode.NOT_FOUND: 404,
                  ErrorCode.RATE_LIMITED: 429, ErrorCode.CONFLICT: 409}.get(e.code, 422)
        return error_response(status, e.code.value, e.message, request_id,
                              {"field": e.field} if e.field else None)
    except Exception as e:
        if isinstance(e, Unavailable) or is_unavailable(e):
            return error_response(503, "UNAVAILABLE", "the service is unavailable right now; retry shortly",
                                  request_id, {"requestId": request_id}, {"Retry-After": "5"})
        log.exception("internal error in webhook replay (request_id=%s)", request_id)
        return error_response(500, "INTERNAL", f"internal error (request id {request_id})", request_id,
                              {"requestId": request_id})


async def generic_schema(request: Request) -> Response:
    return Response(orjson.dumps(generic.schema()), media_type="application/schema+json",
                    headers={"Cache-Control": "public, max-age=300"})


def routes() -> list[Route]:
    """Every route of the shim, for server/app.py."""
    out = [Route(path, provider_endpoint(provider, path), methods=_ANY_METHOD)
           for provider, path in PROVIDER_ROUTES.items()]
    out += [
        Route(INGEST_PATH_TEMPLATE, ingest, methods=_ANY_METHOD),
        Route(REPLAY_PATH, replay_delivery, methods=_ANY_METHOD),
        Route(SCHEMA_PATH, generic_schema, methods=["GET"]),
    ]
    return out
