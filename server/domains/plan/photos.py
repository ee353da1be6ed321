"""Event photos (screenshots and Figma specs of a tracked event) and their threaded comments.

What the seed's `event-photos` routes do, as services for GraphQL (graph/plan/photos.py) and the
REST shim (server/rest/photos.py):

- **Upload** (`upload_photo`): PNG, JPEG, GIF or WebP, recognized by its magic bytes (the declared
  Content-Type only has to be one of those, or `application/octet-stream`; the stored type is the
  detected one), at most `INSIGHTS_PHOTO_MAX_BYTES` (10 MiB by default), kind PHOTO (default) or
  FIGMA (an exported frame), optional title (<= 500 characters). The bytes are written first, then
  the row, in that order, so a refused upload stores nothing; if the row cannot be written (the
  event vanished, the database failed) the file is deleted again: no orphan files, no rows
  pointing at nothing. New photos go after the event's last one.
- **Figma link** (`set_figma_link`): a FIGMA entry holding a URL (1..2000 characters, http or
  https) and a title (<= 500, default ""), as the seed's "Attach Figma Spec" makes one; given
  `photo_id` it changes that FIGMA entry of the event instead of adding one.
- **Reorder** (`reorder_photos`): the full list of the event's photo IDs in their new order
  (each exactly once); positions become 0..n-1.
- **Delete** (`delete_photo`): the row (its comments go with it) and, after commit, its file.
- **Download** (`photo_for_download`): members of the organization (viewers too) read the bytes
  through the API at DOWNLOAD_PATH; any other caller gets NOT_FOUND, as for a missing photo.
- **Comments**: body 1..4000 characters (trimmed), optional parent, which must be a comment on
  the same photo (replies may nest). Any member of the organization may comment, viewers
  included: a comment discusses the plan without changing it (the seed gives no role rule; the
  issue's "viewers read, editors change the plan" is about the plan itself). Read-only API keys
  may not. A comment is deleted by its author or by an organization owner (its replies go with it).

Roles: viewers read and download; editors upload, link, reorder and delete photos. Every change
is audited and announced through changes.plan_changed.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Role
from server.domains.accounts.validation import collect
from server.domains.plan.access import can_read, require_plan_role, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.models import Event, EventPhoto, PhotoComment, PhotoKind
from server.domains.plan.photo_storage import object_key, photo_storage
from server.errors import DomainError, DomainErrors, ErrorCode, forbidden, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

DOWNLOAD_PATH = "/api/v1/photos/{photoId}"
TITLE_MAX = 500
URL_MAX = 2000
FILENAME_MAX = 255
BODY_MAX = 4000

# What we accept, by the file's first bytes: (content type, extension).
PNG, JPEG, GIF, WEBP = ("image/png", "png"), ("image/jpeg", "jpg"), ("image/gif", "gif"), ("image/webp", "webp")
ACCEPTED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# Declared types we take at their word only as far as "some image": the bytes decide which.
DECLARED_OK = {*ACCEPTED_TYPES, "image/jpg", "image/pjpeg", "application/octet-stream", ""}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FileRefused(DomainError):
    """A refused file, with the HTTP status the REST route answers (413 too large, 415 not a
    supported image); GraphQL reports it as a VALIDATION user error on `input.file`."""

    def __init__(self, status: int, message: str, field: list[str] | None = None):
        super().__init__(ErrorCode.VALIDATION, message, field)
        self.status = status


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PNG, JPEG, GIF or WebP image by its magic bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_file(data: bytes, declared_type: str | None, max_bytes: int, field: list[str]) -> tuple[str, str]:
    """(content type, extension) of an acceptable photo, else FileRefused."""
    if len(data) > max_bytes:
        raise FileRefused(413, f"the photo is larger than the limit of {max_bytes} bytes", field)
    if not data:
        raise FileRefused(422, "the file is empty", field)
    declared = media_type(declared_type)
    if declared not in DECLARED_OK:
        raise FileRefused(415, f"`{declared}` is not accepted: send a PNG, JPEG, GIF or WebP image", field)
    detected = sniff(data)
    if detected is None:
        raise FileRefused(415, "the file is not a PNG, JPEG, GIF or WebP image (checked by its content, "
                               "whatever its declared type)", field)
    return detected


def clean_filename(value: str | None) -> str | None:
    """The file's own name (no directories, no control characters), cut to 255 characters."""
    name = _CONTROL.sub("", (value or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:FILENAME_MAX] or None


def clean_title(value: str | None, field: list[str]) -> str:
    title = (value or "").strip()
    if len(title) > TITLE_MAX:
        raise invalid(f"title must be at most {TITLE_MAX} characters", field)
    return title


def clean_url(value: str | None, field: list[str]) -> str:
    url = (value or "").strip()
    if not 1 <= len(url) <= URL_MAX:
        raise invalid(f"url must be 1 to {URL_MAX} characters", field)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise invalid("url is not a valid URL", field) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or _CONTROL.search(url) or " " in url:
        raise invalid("url must be an http:// or https:// link, e.g. https://www.figma.com/file/...", field)
    return url


def clean_body(value: str | None, field: list[str]) -> str:
    body = (value or "").strip()
    if not 1 <= len(body) <= BODY_MAX:
        raise invalid(f"body must be 1 to {BODY_MAX} characters", field)
    return body


def snapshot(p: EventPhoto) -> dict:
    """What the audit log keeps of a photo."""
    return {"event_id": str(p.event_id), "kind": p.kind.value, "original_filename": p.original_filename,
            "content_type": p.content_type, "size_bytes": p.size_bytes, "external_url": p.external_url,
            "title": p.title}


def download_path(photo_global_id: str) -> str:
    return DOWNLOAD_PATH.replace("{photoId}", photo_global_id)


# --- lookups ---------------------------------------------------------------------------------

async def _event(session: AsyncSession, principal: Principal, event_id: uuid.UUID, field: list[str],
                 minimum: Role = Role.editor, lock: bool = False) -> Event:
    """The event if the principal may change its photos (`minimum`), else NOT_FOUND/FORBIDDEN.
    `lock`: FOR NO KEY UPDATE, so uploads, links and reorders of one event take turns (positions
    are computed from what is there)."""
    principal.require_user()
    q = select(Event).where(Event.id == event_id, *visible(Event, principal))
    if lock:
        q = q.with_for_update(key_share=True)
    event = (await session.execute(q)).scalar_one_or_none()
    if event is None:
        raise not_found("event", field)
    require_plan_role(principal, event.organization_id, event.project_id, minimum, "event", field)
    return event


async def _photo(session: AsyncSession, principal: Principal, photo_id: uuid.UUID, field: list[str],
                 minimum: Role = Role.editor) -> EventPhoto:
    principal.require_user()
    photo = (await session.execute(select(EventPhoto).where(EventPhoto.id == photo_id,
                                                            *visible(EventPhoto, principal)))).scalar_one_or_none()
    if photo is None:
        raise not_found("photo", field)
    require_plan_role(principal, photo.organization_id, photo.project_id, minimum, "photo", field)
    return photo


async def _next_position(session: AsyncSession, event_id: uuid.UUID) -> int:
    top = (await session.execute(select(func.max(EventPhoto.sort_order)).where(EventPhoto.event_id == event_id))).scalar()
    return 0 if top is None else top + 1


def _announce(uow: UnitOfWork, rt: Runtime, principal: Principal, photo: EventPhoto, action: PlanAction,
              summary: str, request_id: str | None, **kw: Any) -> None:
    plan_changed(uow, rt, principal, organization_id=photo.organization_id, project_id=photo.project_id,
                 entity=PlanEntity.EVENT_PHOTO, action=action, entity_ids=photo.id, summary=summary,
                 request_id=request_id, **kw)


# --- photos ----------------------------------------------------------------------------------

async def upload_photo(rt: Runtime, principal: Principal, event_id: uuid.UUID, *, data: bytes,
                       filename: str | None, declared_type: str | None, kind: PhotoKind = PhotoKind.PHOTO,
                       title: str | None = "", request_id: str | None = None) -> EventPhoto:
    principal.require_user()
    (content_type, extension), title = collect(
        lambda: check_file(data, declared_type, rt.settings.photo_max_bytes, ["input", "file"]),
        lambda: clean_title(title, ["input", "title"]))
    async with rt.db.session() as s:  # refuse strangers and viewers before writing anything
        event = await _event(s, principal, event_id, ["input", "eventId"])
        photo_id = uuid.uuid4()
        key = object_key(event.organization_id, event.project_id, event.id, photo_id, extension)

    # The file first (outside the transaction: a slow bucket holds no lock nor connection), then
    # the row; whatever stops the row from being committed takes the file back.
    storage = photo_storage(rt)
    try:
        await storage.put(key, data, content_type)
        async with rt.db.unit_of_work() as uow:
            event = await _event(uow.session, principal, event_id, ["input", "eventId"], lock=True)
            now = utcnow()
            photo = EventPhoto(id=photo_id, organization_id=event.organization_id, project_id=event.project_id,
                               event_id=event.id, kind=kind, storage_backend=storage.backend, storage_key=key,
                               original_filename=clean_filename(filename), content_type=content_type,
                               size_bytes=len(data), title=title,
                               sort_order=await _next_position(uow.session, event.id),
                               uploaded_by_id=principal.user_id, created_at=now, updated_at=now)
            uow.session.add(photo)
            await uow.session.flush()
            _announce(uow, rt, principal, photo, PlanAction.CREATED,
                      f"added {kind.value} {photo.original_filename or photo.id} to event {event.name}", request_id,
                      after=snapshot(photo))
    except BaseException:
        await storage.delete_quietly(storage.backend, key)
        raise
    return photo


async def set_figma_link(rt: Runtime, principal: Principal, event_id: uuid.UUID, *, url: str | None,
                         title: str | None = "", photo_id: uuid.UUID | None = None,
                         request_id: str | None = None) -> tuple[EventPhoto, bool]:
    """(the FIGMA entry, whether it was created)."""
    principal.require_user()
    url, title = collect(lambda: clean_url(url, ["input", "url"]), lambda: clean_title(title, ["input", "title"]))
    async with rt.db.unit_of_work() as uow:
        event = await _event(uow.session, principal, event_id, ["input", "eventId"], lock=True)
        if photo_id is not None:
            photo = (await uow.session.execute(select(EventPhoto).where(
                EventPhoto.id == photo_id, EventPhoto.event_id == event.id,
                EventPhoto.kind == PhotoKind.FIGMA))).scalar_one_or_none()
            if photo is None:
                raise invalid("photoId must be a FIGMA entry of this event", ["input", "photoId"])
            before = snapshot(photo)
            photo.external_url, photo.title = url, title
            if snapshot(photo) != before:
                photo.updated_at = utcnow()
                await uow.session.flush()
                _announce(uow, rt, principal, photo, PlanAction.UPDATED, f"changed the Figma link of event {event.name}",
                          request_id, before=before, after=snapshot(photo))
            return photo, False
        now = utcnow()
        photo = EventPhoto(id=uuid.uuid4(), organization_id=event.organization_id, project_id=event.project_id,
                           event_id=event.id, kind=PhotoKind.FIGMA, external_url=url, title=title,
                           sort_order=await _next_position(uow.session, event.id), uploaded_by_id=principal.user_id,
                           created_at=now, updated_at=now)
        uow.session.add(photo)
        await uow.session.flush()
        _announce(uow, rt, principal, photo, PlanAction.CREATED, f"linked a Figma spec to event {event.name}",
                  request_id, after=snapshot(photo))
    return photo, True


async def reorder_photos(rt: Runtime, principal: Principal, event_id: uuid.UUID, photo_ids: list[uuid.UUID],
                         request_id: str | None = None) -> list[EventPhoto]:
    """`photo_ids`: every photo of the event, once each, in the new order."""
    principal.require_user()
    async with rt.db.unit_of_work() as uow:
        event = await _event(uow.session, principal, event_id, ["input", "eventId"], lock=True)
        current = set((await uow.session.execute(
            select(EventPhoto.id).where(EventPhoto.event_id == event.id))).scalars())
        errors: list[DomainError] = []
        seen: set[uuid.UUID] = set()
        for i, pid in enumerate(photo_ids):
            if pid in seen:
                errors.append(invalid("this photo is listed twice", ["input", "photoIds", str(i)]))
            elif pid not in current:
                errors.append(invalid("not a photo of this event", ["input", "photoIds", str(i)]))
            seen.add(pid)
        missing = current - seen
        if missing:
            errors.append(invalid(f"photoIds must list every photo of the event; {len(missing)} missing",
                                  ["input", "photoIds"]))
        if errors:
            raise DomainErrors(errors)
        if photo_ids:
            await uow.session.execute(
                update(EventPhoto).where(EventPhoto.event_id == event.id)
                .values(sort_order=case({pid: i for i, pid in enumerate(photo_ids)}, value=EventPhoto.id),
                        updated_at=utcnow()).execution_options(synchronize_session=False))
            plan_changed(uow, rt, principal, organization_id=event.organization_id, project_id=event.project_id,
                         entity=PlanEntity.EVENT_PHOTO, action=PlanAction.UPDATED, entity_ids=photo_ids,
                         verb="reorder", summary=f"reordered the photos of event {event.name}",
                         after={"event_id": str(event.id), "order": [str(p) for p in photo_ids]},
                         activity=False, request_id=request_id)
        rows = (await uow.session.execute(
            select(EventPhoto).where(EventPhoto.event_id == event.id)
            .order_by(EventPhoto.sort_order, EventPhoto.id).execution_options(populate_existing=True))).scalars().all()
    return list(rows)


async def delete_photo(rt: Runtime, principal: Principal, photo_id: uuid.UUID,
                       request_id: str | None = None) -> EventPhoto:
    storage = photo_storage(rt)
    async with rt.db.unit_of_work() as uow:
        photo = await _photo(uow.session, principal, photo_id, ["input", "id"])
        await uow.session.delete(photo)
        _announce(uow, rt, principal, photo, PlanAction.DELETED,
                  f"removed {photo.kind.value} {photo.original_filename or photo.external_url or photo.id}",
                  request_id, before=snapshot(photo))
        backend, key = photo.storage_backend, photo.storage_key

        async def remove_file() -> None:
            await storage.delete_quietly(backend, key)

        if key:
            uow.after_commit(remove_file)  # the row is gone for sure before its file goes
    return photo


async def photo_for_download(rt: Runtime, principal: Principal, photo_id: uuid.UUID) -> EventPhoto:
    """The photo if the principal may read it (any member of its organization; a project-bound
    key for its project only), else NOT_FOUND."""
    if not principal.authenticated:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "sign in or send an API key")
    async with rt.db.session() as s:
        photo = (await s.execute(select(EventPhoto).where(EventPhoto.id == photo_id,
                                                          *visible(EventPhoto, principal)))).scalar_one_or_none()
    if photo is None or not can_read(principal, photo.organization_id, photo.project_id):
        raise not_found("photo")
    return photo


async def forget_files(uow: UnitOfWork, rt: Runtime, *, project_id: uuid.UUID | None = None,
                       event_ids: list[uuid.UUID] | None = None) -> None:
    """For deletes that take photos with them through ON DELETE CASCADE (a project, events):
    call inside their unit of work, before the delete; the files go after commit."""
    q = select(EventPhoto.storage_backend, EventPhoto.storage_key).where(EventPhoto.storage_key.is_not(None))
    if project_id is not None:
        q = q.where(EventPhoto.project_id == project_id)
    if event_ids is not None:
        q = q.where(EventPhoto.event_id.in_(event_ids))
    objects = (await uow.session.execute(q)).all()
    if not objects:
        return
    storage = photo_storage(rt)

    async def remove_files() -> None:
        for backend, key in objects:
            await storage.delete_quietly(backend, key)

    uow.after_commit(remove_files)


# --- comments --------------------------------------------------------------------------------

async def create_comment(rt: Runtime, principal: Principal, photo_id: uuid.UUID, *, body: str | None,
                         parent_id: uuid.UUID | None = None, request_id: str | None = None) -> PhotoComment:
    principal.require_user()
    (body,) = collect(lambda: clean_body(body, ["input", "body"]))
    async with rt.db.unit_of_work() as uow:
        photo = await _photo(uow.session, principal, photo_id, ["input", "photoId"], Role.viewer)
        if parent_id is not None:
            parent = (await uow.session.execute(select(PhotoComment.id).where(
                PhotoComment.id == parent_id, PhotoComment.photo_id == photo.id))).first()
            if parent is None:
                raise invalid("parentId must be a comment on the same photo", ["input", "parentId"])
        now = utcnow()
        comment = PhotoComment(id=uuid.uuid4(), organization_id=photo.organization_id, project_id=photo.project_id,
                               photo_id=photo.id, parent_id=parent_id, author_id=principal.user_id, body=body,
                               created_at=now, updated_at=now)
        uow.session.add(comment)
        await uow.session.flush()
        plan_changed(uow, rt, principal, organization_id=photo.organization_id, project_id=photo.project_id,
                     entity=PlanEntity.PHOTO_COMMENT, action=PlanAction.CREATED, entity_ids=comment.id,
                     summary=f"commented on photo {photo.original_filename or photo.title or photo.id}",
                     after={"photo_id": str(photo.id), "parent_id": str(parent_id) if parent_id else None,
                            "body": body[:200]}, request_id=request_id)
    return comment


async def delete_comment(rt: Runtime, principal: Principal, comment_id: uuid.UUID,
                         request_id: str | None = None) -> tuple[PhotoComment, list[uuid.UUID]]:
    """(the comment, the IDs of its replies at any depth, deleted with it)."""
    principal.require_user()
    async with rt.db.unit_of_work() as uow:
        comment = (await uow.session.execute(select(PhotoComment).where(
            PhotoComment.id == comment_id, *visible(PhotoComment, principal)))).scalar_one_or_none()
        if comment is None:
            raise not_found("comment", ["input", "id"])
        role = require_plan_role(principal, comment.organization_id, comment.project_id, Role.viewer, "comment",
                                 ["input", "id"])
        if comment.author_id != principal.user_id and role != Role.owner:
            raise forbidden("only the comment's author or an organization owner can delete it")
        tree = select(PhotoComment.id).where(PhotoComment.parent_id == comment.id).cte("replies", recursive=True)
        tree = tree.union_all(select(PhotoComment.id).where(PhotoComment.parent_id == tree.c.id))
        replies = list((await uow.session.execute(select(tree.c.id))).scalars())
        await uow.session.delete(comment)
        plan_changed(uow, rt, principal, organization_id=comment.organization_id, project_id=comment.project_id,
                     entity=PlanEntity.PHOTO_COMMENT, action=PlanAction.DELETED, entity_ids=[comment.id, *replies],
                     summary="deleted a photo comment" + (f" and {len(replies)} replies" if replies else ""),
                     before={"photo_id": str(comment.photo_id), "body": comment.body[:200],
                             "author_id": str(comment.author_id) if comment.author_id else None},
                     after=None, request_id=request_id)
    return comment, replies


# --- batch loaders (one statement per batch; see loaders.py for the conventions; the photos of
# events are event_loaders.load_event_photo_lists) ----------------------------------------------

async def _comments_by(rt: Runtime, principal: Principal, column: Any, keys: list[uuid.UUID],
                       top_level: bool) -> list[list[PhotoComment]]:
    if not keys or not principal.authenticated or not principal.organization_ids:
        return [[] for _ in keys]
    q = select(PhotoComment).where(column.in_(keys), *visible(PhotoComment, principal))
    if top_level:
        q = q.where(PhotoComment.parent_id.is_(None))
    async with rt.db.session() as s:
        rows = (await s.execute(q.order_by(PhotoComment.created_at, PhotoComment.id))).scalars().all()
    grouped: dict[uuid.UUID, list[PhotoComment]] = {}
    for r in rows:
        grouped.setdefault(getattr(r, column.key), []).append(r)
    return [grouped.get(k, []) for k in keys]


async def load_photo_threads(rt: Runtime, principal: Principal, photo_ids: list[uuid.UUID]) -> list[list[PhotoComment]]:
    """The top-level comments of each photo, oldest first."""
    return await _comments_by(rt, principal, PhotoComment.photo_id, photo_ids, top_level=True)


async def load_comment_replies(rt: Runtime, principal: Principal,
                               comment_ids: list[uuid.UUID]) -> list[list[PhotoComment]]:
    """The direct replies of each comment, oldest first."""
    return await _comments_by(rt, principal, PhotoComment.parent_id, comment_ids, top_level=False)


__all__ = [
    "ACCEPTED_TYPES", "DOWNLOAD_PATH", "FileRefused", "check_file", "create_comment", "delete_comment",
    "delete_photo", "download_path", "forget_files", "load_comment_replies", "load_photo_threads",
    "photo_for_download", "reorder_photos", "set_figma_link", "sniff", "upload_photo",
]
