"""The HTTP-only session cookie browsers sign in with. Set on the operation's sub-response, which
Strawberry merges into the HTTP response; over websockets there is no cookie to set."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response


def _http_response(context: Any) -> Response | None:
    response = getattr(context, "response", None)
    return response if isinstance(response, Response) else None


def set_session_cookie(context: Any, token: str) -> None:
    response = _http_response(context)
    if response is None:
        return
    s = context.settings
    response.set_cookie(s.session_cookie_name, token, max_age=s.session_ttl_hours * 3600, path="/",
                        httponly=True, samesite="lax", secure=s.cookie_secure)


def clear_session_cookie(context: Any) -> None:
    response = _http_response(context)
    if response is None:
        return
    s = context.settings
    response.delete_cookie(s.session_cookie_name, path="/", httponly=True, samesite="lax", secure=s.cookie_secure)
