"""Event photos over plain HTTP, for what GraphQL cannot carry well:

    POST /api/v1/events/{eventId}/photos?filename=&kind=&title=
        The raw image as the body (`Content-Type: image/png`, `image/jpeg`, `image/gif`,
        `image/webp` or `application/octet-stream`), for tools that cannot send a GraphQL
        multipart request (`curl --data-binary @shot.png -H 'Content-Type: image/png'`). Editors
        and owners; answers 201 with the photo (`id` is its global ID) and a `Location` header.
    GET  /api/v1/photos/{photoId}
        The bytes, for members of the photo's organization (viewers too); any other caller gets
        404 as for a missing photo. `EventPhoto.url` points here.

Authentication as for the rest of the API: `Authorization: Bearer <session JWT or API key>`
(or `Token <key>`), or the session cookie; a cookie-authenticated upload also needs the
`X-Insights-CSRF` header (any value), which a cross-site form cannot send. IDs are global IDs
(bare UUIDs are accepted too). Refusals are `{error, details, code}`: 401, 403, 404, 413 (over
`INSIGHTS_PHOTO_MAX_BYTES`), 415 (not a PNG, JPEG, GIF or WebP, judged by the bytes), 422,
429, and 503 while the database or the photo storage is unreachable.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from server import metrics
from server.domains.incidents.deliveries import is_unavailable
from server.domains.incidents.ids import global_id, parse_global_id
from server.domains.plan import photos
from server.domains.plan.models import EventPhoto, PhotoKind
from server.domains.plan.photo_storage import StorageUnavailable, StoredObjectMissing, photo_storage
from server.errors import DomainError, DomainErrors, ErrorCode
from server.rest.responses import error_response, json_response
from server.security.authn import authenticate
from server.security.gate import media_type, request_id_of
from server.security.principal import Principal
from server.security.rate_limit import Window, hit

log = logging.getLogger("insights.photos")

UPLOAD_PATH = "/api/v1/events/{eventId}/photos"
DOWNLOAD_PATH = photos.DOWNLOAD_PATH
_STATUS = {ErrorCode.UNAUTHENTICATED: 401, ErrorCode.FORBIDDEN: 403, ErrorCode.NOT_FOUND: 404,
           ErrorCode.CONFLICT: 409, ErrorCode.RATE_LIMITED: 429}


class _Refusal(Exception):
    def __init__(self, response: Response):
        self.response = response


def _error(e: DomainError, request_id: str) -> Response:
    errors = e.errors if isinstance(e, DomainErrors) else [e]
    first = next((x for x in errors if isinstance(x, photos.FileRefused)), errors[0])
    status = first.status if isinstance(first, photos.FileRefused) else _STATUS.get(first.code, 422)
    details = {"errors": [{"code": x.code.value, "field": x.field, "message": x.message} for x in errors]}
    return error_response(status, first.code.value if status != 413 else "PAYLOAD_TOO_LARGE", first.message,
                          request_id, details)


async def _principal(request: Request, request_id: str, *, csrf: bool) -> Principal:
    rt = request.app.state.runtime
    authorization = request.headers.get("authorization")
    cookie = request.cookies.get(rt.settings.session_cookie_name)
    if csrf and cookie and not authorization and not request.headers.get("x-insights-csrf"):
        raise _Refusal(error_response(403, "FORBIDDEN", "cookie-authenticated uploads need the X-Insights-CSRF header",
                                      request_id))
    principal = await authenticate(rt.db, rt.settings.signing_key(), authorization, None if authorization else cookie,
                                   request.client.host if request.client else None)
    if not principal.authenticated:
        raise _Refusal(error_response(401, "UNAUTHENTICATED", "sign in or send an API key", request_id,
                                      headers={"WWW-Authenticate": "Bearer"}))
    return principal


def _unavailable(request_id: str) -> Response:
    return error_response(503, "UNAVAILABLE", "the service is unavailable right now; retry shortly", request_id,
                          {"requestId": request_id}, {"Retry-After": "5"})


def photo_body(photo: EventPhoto, public_url: str | None = None) -> dict:
    gid = global_id("EventPhoto", photo.id)
    url = ((public_url or "").rstrip("/") + photos.download_path(gid)) if photo.storage_key else photo.external_url
    return {"id": gid, "eventId": global_id("Event", photo.event_id), "projectId": global_id("Project", photo.project_id),
            "kind": photo.kind.name, "originalFilename": photo.original_filename, "contentType": photo.content_type,
            "sizeBytes": photo.size_bytes, "storageBackend": photo.storage_backend, "title": photo.title,
            "order": photo.sort_order, "url": url, "externalUrl": photo.external_url,
            "uploadedById": global_id("User", photo.uploaded_by_id) if photo.uploaded_by_id else None,
            "createdAt": photo.created_at.isoformat()}


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise photos.FileRefused(413, f"the photo is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refusal(error_response(400, "INCOMPLETE_BODY", "the client went away before the body was complete",
                                      request_id_of(request.headers.get("x-request-id")))) from None
    return b"".join(chunks)


async def upload(request: Request) -> Response:
    request_id = request_id_of(request.headers.get("x-request-id"))
    response = await _upload(request, request_id)
    metrics.http_requests.labels(UPLOAD_PATH, str(response.status_code)).inc()
    return response


async def _upload(request: Request, request_id: str) -> Response:
    rt = request.app.state.runtime
    settings = rt.settings
    if request.method != "POST":
        return error_response(405, "METHOD_NOT_ALLOWED", "use POST", request_id, {"method": request.method},
                              {"Allow": "POST"})
    try:
        principal = await _principal(request, request_id, csrf=True)
        verdict = await hit(rt.redis, principal.rate_key, [Window(60, settings.rate_limit_per_minute),
                                                           Window(3600, settings.rate_limit_per_hour)])
        if not verdict.allowed:
            return error_response(429, "RATE_LIMITED", f"rate limit exceeded; retry in {verdict.retry_after} s",
                                  request_id, {"retryAfter": verdict.retry_after},
                                  {"Retry-After": str(verdict.retry_after)})
        declared = media_type(request.headers.get("content-type"))
        if declared not in photos.DECLARED_OK or not declared:
            return error_response(415, "UNSUPPORTED_MEDIA_TYPE",
                                  "send the image itself as the body, with Content-Type image/png, image/jpeg, "
                                  "image/gif, image/webp or application/octet-stream", request_id,
                                  {"contentType": declared or None})
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.photo_max_bytes:
            return error_response(413, "PAYLOAD_TOO_LARGE", f"the photo is {length} bytes; the limit is "
                                  f"{settings.photo_max_bytes} bytes", request_id, {"limit": settings.photo_max_bytes})
        event_id = parse_global_id(request.path_params["eventId"], "Event")
        if event_id is None:
            return error_response(404, "NOT_FOUND", "event not found", request_id)
        kind_text = (request.query_params.get("kind") or "photo").strip().upper()
        if kind_text not in PhotoKind.__members__:
            return error_response(422, "VALIDATION", "kind must be PHOTO or FIGMA", request_id, {"field": ["kind"]})
        data = await _read_body(request, settings.photo_max_bytes)
        photo = await photos.upload_photo(rt, principal, event_id, data=data,
                                          filename=request.query_params.get("filename"), declared_type=declared,
                                          kind=PhotoKind[kind_text], title=request.query_params.get("title", ""),
                                          request_id=request_id)
        body = photo_body(photo, settings.public_url)
        return json_response(201, body, request_id, {"Location": body["url"]})
    except _Refusal as r:
        return r.response
    except DomainError as e:
        return _error(e, request_id)
    except StorageUnavailable:
        log.exception("photo storage failed during an upload (request_id=%s)", request_id)
        return _unavailable(request_id)
    except Exception as e:
        if is_unavailable(e):
            return _unavailable(request_id)
        log.exception("internal error in photo upload (request_id=%s)", request_id)
        return error_response(500, "INTERNAL", f"internal error (request id {request_id})", request_id,
                              {"requestId": request_id})


async def download(request: Request) -> Response:
    """Not rate limited like GraphQL: a page of events shows dozens of photos at once."""
    request_id = request_id_of(request.headers.get("x-request-id"))
    rt = request.app.state.runtime
    try:
        principal = await _principal(request, request_id, csrf=False)
        photo_id = parse_global_id(request.path_params["photoId"], "EventPhoto")
        if photo_id is None:
            return error_response(404, "NOT_FOUND", "photo not found", request_id)
        photo = await photos.photo_for_download(rt, principal, photo_id)
        if not photo.storage_key or not photo.storage_backend:
            return error_response(404, "NOT_FOUND", "this is a Figma link, not a stored file: open its externalUrl",
                                  request_id, {"externalUrl": photo.external_url})
        etag = f'"{photo.id}"'  # a photo's bytes never change: a new upload is a new photo
        headers = {"Cache-Control": "private, max-age=3600", "ETag": etag, "X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": "default-src 'none'; sandbox", "X-Request-ID": request_id}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        got = await photo_storage(rt).open(photo.storage_backend, photo.storage_key)
        name = photo.original_filename or f"photo-{global_id('EventPhoto', photo.id)}"
        headers.update({"Content-Length": str(got.size),
                        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name, safe='')}"})
        return StreamingResponse(got.chunks, media_type=photo.content_type or "application/octet-stream",
                                 headers=headers)
    except _Refusal as r:
        return r.response
    except DomainError as e:
        return _error(e, request_id)
    except StoredObjectMissing:
        log.warning("photo %s has a row but no file (request_id=%s)", request.path_params["photoId"], request_id)
        return error_response(404, "NOT_FOUND", "the file of this photo is missing", request_id)
    except StorageUnavailable:
        log.exception("photo storage failed during a download (request_id=%s)", request_id)
        return _unavailable(request_id)
    except Exception as e:
        if is_unavailable(e):
            return _unavailable(request_id)
        log.exception("internal error in photo download (request_id=%s)", request_id)
        return error_response(500, "INTERNAL", f"internal error (request id {request_id})", request_id,
                              {"requestId": request_id})


def routes() -> list[Route]:
    return [Route(UPLOAD_PATH, upload, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route(DOWNLOAD_PATH, download, methods=["GET"])]
