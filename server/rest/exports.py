"""`GET /api/v1/exports/{job_id}`: authenticated download of a finished organization export."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from server.domains.platform.export import export_file_for
from server.errors import DomainError, ErrorCode
from server.rest.responses import error_response
from server.security.authn import authenticate


async def download_export(request: Request) -> FileResponse | Response:
    rt = request.app.state.runtime
    try:
        job_id = uuid.UUID(request.path_params["job_id"])
    except ValueError:
        return error_response(404, "NOT_FOUND", "export not found")
    try:
        principal = await authenticate(rt.db, rt.settings.signing_key(), request.headers.get("authorization"),
                                       request.cookies.get(rt.settings.session_cookie_name),
                                       request.client.host if request.client else None)
        if not principal.authenticated:
            return error_response(401, "UNAUTHENTICATED", "sign in or send an API key")
        path = await export_file_for(rt, principal, job_id)
    except DomainError as e:
        status = {ErrorCode.UNAUTHENTICATED: 401, ErrorCode.FORBIDDEN: 403}.get(e.code, 404)
        return error_response(status, e.code.value, e.message)
    return FileResponse(path, media_type="application/json",
                        filename=f"insights-export-{job_id}.json")
