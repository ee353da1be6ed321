"""JSON answers of the REST routes, errors in the `{error, details, code}` format (seed 001)."""

from __future__ import annotations

import orjson
from starlette.responses import Response


def json_response(status: int, body: dict, request_id: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    extra = {"X-Request-ID": request_id} if request_id else {}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={**extra, **(headers or {})})


def error_response(status: int, code: str, message: str, request_id: str | None = None,
                   details: dict | None = None, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": message, "details": details, "code": code}, request_id, headers)
