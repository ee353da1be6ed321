"""Event photo and photo comment mutations (server/domains/plan/photos.py does the work):

    eventPhotoUpload      multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)
    eventPhotoDelete      eventPhotosReorder      eventFigmaLinkSet
    photoCommentCreate    photoCommentDelete

Reading goes through the types: `Event.photos`, `EventPhoto.url` (the authenticated download at
`GET /api/v1/photos/{photoId}`), `EventPhoto.comments` (top-level, oldest first) and
`PhotoComment.replies`. Tools that cannot send multipart GraphQL upload with
`POST /api/v1/events/{eventId}/photos` (server/rest/photos.py).
"""

from __future__ import annotations

import uuid

import strawberry
from strawberry.file_uploads import Upload

from graph.core.errors import UserError, mutate
from graph.core.node import from_global_id, to_global_id
from graph.plan.mutations import decode_input_id
from graph.plan.types import EventPhoto, PhotoComment, PhotoKind
from server.domains.plan import photos
from server.domains.plan.models import PhotoKind as PhotoKindEnum
from server.errors import DomainError, DomainErrors, invalid


@strawberry.input(description="A photo to add to an event: send it as a GraphQL multipart request.")
class EventPhotoUploadInput:
    event_id: strawberry.ID
    file: Upload = strawberry.field(description="PNG, JPEG, GIF or WebP (checked by content), at most "
                                                "`INSIGHTS_PHOTO_MAX_BYTES` (10 MiB by default).")
    kind: PhotoKind = strawberry.field(default=PhotoKindEnum.PHOTO, description="PHOTO (default) or FIGMA (an exported frame).")
    title: str = strawberry.field(default="", description="At most 500 characters.")


@strawberry.input
class EventPhotoDeleteInput:
    id: strawberry.ID = strawberry.field(description="The photo (or Figma link) to delete; an uploaded file goes too.")


@strawberry.input
class EventPhotosReorderInput:
    event_id: strawberry.ID
    photo_ids: list[strawberry.ID] = strawberry.field(description="Every photo of the event, once each, in the new order.")


@strawberry.input(description="Attach a Figma spec link to an event, or change one (`photoId`).")
class EventFigmaLinkSetInput:
    event_id: strawberry.ID
    url: str = strawberry.field(description="1 to 2000 characters, http:// or https://.")
    title: str = strawberry.field(default="", description="At most 500 characters.")
    photo_id: strawberry.ID | None = strawberry.field(
        default=None, description="A FIGMA entry of this event to change; absent: add a new one.")


@strawberry.input
class PhotoCommentCreateInput:
    photo_id: strawberry.ID
    body: str = strawberry.field(description="1 to 4000 characters.")
    parent_id: strawberry.ID | None = strawberry.field(default=None, description="The comment this one replies to "
                                                                                 "(a comment on the same photo).")


@strawberry.input
class PhotoCommentDeleteInput:
    id: strawberry.ID = strawberry.field(description="The comment to delete (its replies go with it). Its author "
                                                     "or an organization owner.")


@strawberry.type
class EventPhotoUploadPayload:
    photo: EventPhoto | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventPhotoDeletePayload:
    deleted_photo_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventPhotosReorderPayload:
    photos: list[EventPhoto] | None = strawberry.field(default=None, description="The event's photos in their new order.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventFigmaLinkSetPayload:
    photo: EventPhoto | None = None
    created: bool | None = strawberry.field(default=None, description="Whether a new FIGMA entry was added.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PhotoCommentCreatePayload:
    comment: PhotoComment | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PhotoCommentDeletePayload:
    deleted_comment_id: strawberry.ID | None = None
    deleted_reply_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Replies (at any depth) deleted with it.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _optional_id(gid: str | None, type_name: str, field: str) -> uuid.UUID | None:
    return None if gid is None else decode_input_id(gid, type_name, field)


def _photo_ids(gids: list[str]) -> list[uuid.UUID]:
    out, errors = [], []
    for i, gid in enumerate(gids):
        try:
            type_name, raw = from_global_id(gid)
            if type_name != "EventPhoto":
                raise invalid(f"`{gid}` is not an EventPhoto ID")
            out.append(raw)
        except DomainError as e:
            errors.append(invalid(e.message, ["input", "photoIds", str(i)]))
    if errors:
        raise DomainErrors(errors)
    return out


async def _read_upload(file: object, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    """(at most max_bytes + 1 bytes of the file, its name, its declared type)."""
    if not hasattr(file, "read"):
        raise invalid("file must be a file part of a multipart request (GraphQL multipart request spec)",
                      ["input", "file"])
    try:
        data = await file.read(max_bytes + 1)  # type: ignore[attr-defined]
    finally:
        close = getattr(file, "close", None)
        if close is not None:
            await close()  # its spooled temporary file goes now, not whenever the request is collected
    return bytes(data), getattr(file, "filename", None), getattr(file, "content_type", None)


@strawberry.type
class PhotosMutation:
    @strawberry.mutation(description="Add a photo to an event (GraphQL multipart request; editors and owners). "
                                     "It goes after the event's last photo.")
    async def event_photo_upload(self, info: strawberry.Info, input: EventPhotoUploadInput) -> EventPhotoUploadPayload:
        ctx = info.context

        async def work() -> EventPhotoUploadPayload:
            event_id = decode_input_id(input.event_id, "Event", "eventId")
            data, filename, declared = await _read_upload(input.file, ctx.settings.photo_max_bytes)
            row = await photos.upload_photo(ctx.rt, ctx.principal, event_id, data=data, filename=filename,
                                            declared_type=declared, kind=input.kind, title=input.title,
                                            request_id=ctx.request_id)
            return EventPhotoUploadPayload(photo=EventPhoto.from_row(row))

        return await mutate(EventPhotoUploadPayload, work)

    @strawberry.mutation(description="Delete a photo or Figma link of an event, with its comments and its file. "
                                     "Editors and owners.")
    async def event_photo_delete(self, info: strawberry.Info, input: EventPhotoDeleteInput) -> EventPhotoDeletePayload:
        ctx = info.context

        async def work() -> EventPhotoDeletePayload:
            row = await photos.delete_photo(ctx.rt, ctx.principal, decode_input_id(input.id, "EventPhoto", "id"),
                                            request_id=ctx.request_id)
            return EventPhotoDeletePayload(deleted_photo_id=to_global_id("EventPhoto", row.id))

        return await mutate(EventPhotoDeletePayload, work)

    @strawberry.mutation(description="Put an event's photos in a new order: the full list of its photo IDs. "
                                     "Editors and owners.")
    async def event_photos_reorder(self, info: strawberry.Info,
                                   input: EventPhotosReorderInput) -> EventPhotosReorderPayload:
        ctx = info.context

        async def work() -> EventPhotosReorderPayload:
            event_id = decode_input_id(input.event_id, "Event", "eventId")
            rows = await photos.reorder_photos(ctx.rt, ctx.principal, event_id, _photo_ids(input.photo_ids),
                                               request_id=ctx.request_id)
            return EventPhotosReorderPayload(photos=[EventPhoto.from_row(r) for r in rows])

        return await mutate(EventPhotosReorderPayload, work)

    @strawberry.mutation(description="Attach a Figma spec link to an event (a FIGMA entry among its photos), or "
                                     "change one given `photoId`. Editors and owners.")
    async def event_figma_link_set(self, info: strawberry.Info, input: EventFigmaLinkSetInput) -> EventFigmaLinkSetPayload:
        ctx = info.context

        async def work() -> EventFigmaLinkSetPayload:
            event_id = decode_input_id(input.event_id, "Event", "eventId")
            photo_id = _optional_id(input.photo_id, "EventPhoto", "photoId")
            row, created = await photos.set_figma_link(ctx.rt, ctx.principal, event_id, url=input.url,
                                                       title=input.title, photo_id=photo_id, request_id=ctx.request_id)
            return EventFigmaLinkSetPayload(photo=EventPhoto.from_row(row), created=created)

        return await mutate(EventFigmaLinkSetPayload, work)

    @strawberry.mutation(description="Comment on a photo, or reply to a comment (`parentId`). Any member of the "
                                     "organization, viewers included (not read-only API keys).")
    async def photo_comment_create(self, info: strawberry.Info,
                                   input: PhotoCommentCreateInput) -> PhotoCommentCreatePayload:
        ctx = info.context

        async def work() -> PhotoCommentCreatePayload:
            photo_id = decode_input_id(input.photo_id, "EventPhoto", "photoId")
            parent_id = _optional_id(input.parent_id, "PhotoComment", "parentId")
            row = await photos.create_comment(ctx.rt, ctx.principal, photo_id, body=input.body, parent_id=parent_id,
                                              request_id=ctx.request_id)
            return PhotoCommentCreatePayload(comment=PhotoComment.from_row(row))

        return await mutate(PhotoCommentCreatePayload, work)

    @strawberry.mutation(description="Delete a photo comment and its replies: its author or an organization owner.")
    async def photo_comment_delete(self, info: strawberry.Info,
                                   input: PhotoCommentDeleteInput) -> PhotoCommentDeletePayload:
        ctx = info.context

        async def work() -> PhotoCommentDeletePayload:
            row, replies = await photos.delete_comment(
                ctx.rt, ctx.principal, decode_input_id(input.id, "PhotoComment", "id"), request_id=ctx.request_id)
            return PhotoCommentDeletePayload(deleted_comment_id=to_global_id("PhotoComment", row.id),
                                             deleted_reply_ids=[to_global_id("PhotoComment", r) for r in replies])

        return await mutate(PhotoCommentDeletePayload, work)
