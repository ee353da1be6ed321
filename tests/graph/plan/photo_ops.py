"""Images, operations and a multipart client (the GraphQL multipart request spec, by hand with
httpx) shared by the event photo tests (GraphQL and REST)."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.graph.plan.catalog import event_type
from tests.graph.plan.event_ops import CREATE as EVENT_CREATE
from tests.graph.plan.helpers import ERRORS, Org
from tests.support.live import LiveServer


def png(width: int = 2, height: int = 2, seed: int = 0) -> bytes:
    """A real (decodable) RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes((seed + x + y) % 256 for x in range(width * 3)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 24
NOT_AN_IMAGE = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"

PHOTO = """id kind originalFilename contentType sizeBytes storageBackend externalUrl title order url createdAt
  event { id } uploadedBy { id }"""
UPLOAD = f"""mutation($input: EventPhotoUploadInput!) {{ eventPhotoUpload(input: $input) {{
  photo {{ {PHOTO} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: EventPhotoDeleteInput!) {{ eventPhotoDelete(input: $input) {{ deletedPhotoId {ERRORS} }} }}"""
REORDER = f"""mutation($input: EventPhotosReorderInput!) {{ eventPhotosReorder(input: $input) {{
  photos {{ id order }} {ERRORS} }} }}"""
FIGMA = f"""mutation($input: EventFigmaLinkSetInput!) {{ eventFigmaLinkSet(input: $input) {{
  photo {{ {PHOTO} }} created {ERRORS} }} }}"""
EVENT_PHOTOS = f"""query($id: ID!) {{ node(id: $id) {{ ... on Event {{ photos {{ {PHOTO} }} }} }} }}"""

COMMENT = "id body createdAt updatedAt parentId parent { id } author { id } photo { id }"
COMMENT_CREATE = f"""mutation($input: PhotoCommentCreateInput!) {{ photoCommentCreate(input: $input) {{
  comment {{ {COMMENT} }} {ERRORS} }} }}"""
COMMENT_DELETE = f"""mutation($input: PhotoCommentDeleteInput!) {{ photoCommentDelete(input: $input) {{
  deletedCommentId deletedReplyIds {ERRORS} }} }}"""
THREADS = """query($id: ID!) { node(id: $id) { ... on EventPhoto { id comments(first: 20) { id body parentId
  author { id } replies(first: 20) { id body parentId replies(first: 20) { id body parentId } } } } } }"""


@dataclass
class PhotoPlan:
    """A project with one event type and an event, made through the API."""

    org: Org
    project: str
    event: str

    @classmethod
    async def create(cls, org: Org, name: str = "Photo plan") -> "PhotoPlan":
        project = (await org.project(name))["id"]
        et = (await event_type(org, project, "screen"))["id"]
        data = await org(EVENT_CREATE, {"input": {"eventTypeId": et, "name": "checkout viewed"}})
        assert data["eventCreate"]["userErrors"] == [], data
        return cls(org, project, data["eventCreate"]["event"]["id"])

    async def another_event(self, name: str) -> str:
        et = (await event_type(self.org, self.project, f"t{abs(hash(name)) % 10**8}"))["id"]
        data = await self.org(EVENT_CREATE, {"input": {"eventTypeId": et, "name": name}})
        assert data["eventCreate"]["userErrors"] == [], data
        return data["eventCreate"]["event"]["id"]


def multipart(variables: dict, data: bytes, filename: str = "shot.png",
              content_type: str = "image/png", query: str = UPLOAD) -> tuple[dict, dict]:
    """(form fields, files) of a GraphQL multipart request uploading `data` as `input.file`."""
    operations = {"query": query, "variables": {"input": {**variables["input"], "file": None}}}
    return ({"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
            {"0": (filename, data, content_type)})


async def upload_raw(http: httpx.AsyncClient, token: str | None, event_id: str, data: bytes, *,
                     filename: str = "shot.png", content_type: str = "image/png", headers: dict | None = None,
                     **extra: object) -> httpx.Response:
    form, files = multipart({"input": {"eventId": event_id, **extra}}, data, filename, content_type)
    h = {"authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", data=form, files=files, headers={**h, **(headers or {})})


async def upload(http: httpx.AsyncClient, token: str, event_id: str, data: bytes, **kw: object) -> dict:
    """The `eventPhotoUpload` payload of a multipart request (HTTP 200 and no errors asserted)."""
    r = await upload_raw(http, token, event_id, data, **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body.get("errors"), body
    return body["data"]["eventPhotoUpload"]


def photo_files(live: LiveServer) -> set[Path]:
    """Every stored photo file of the live server (local backend)."""
    root = live.runtime.settings.photos_dir
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()
