"""Event photos through the real API: `eventPhotoUpload` as a GraphQL multipart request (httpx
sending `operations`, `map` and the file part), the download behind `EventPhoto.url`, type and
size checks by content, `eventPhotosReorder`, `eventPhotoDelete` (the file goes too),
`eventFigmaLinkSet`, roles, tenant isolation, audit entries and `planChanged`."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.graph.accounts.helpers import api_key
from tests.graph.plan.catalog import audit_actions, recv, subscribe_plan
from tests.graph.plan.helpers import Org, errors_of
from tests.graph.plan.photo_ops import (
    DELETE,
    EVENT_PHOTOS,
    FIGMA,
    GIF,
    JPEG,
    NOT_AN_IMAGE,
    REORDER,
    WEBP,
    PhotoPlan,
    multipart,
    photo_files,
    png,
    upload,
    upload_raw,
)
from tests.support.plan_rows import gid
from tests.support.sql import count_statements


@pytest.fixture
async def http(live):  # noqa: ANN001, ANN201
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture
async def plan(org):  # noqa: ANN001, ANN201
    return await PhotoPlan.create(org)


async def test_multipart_upload_then_download_the_same_bytes(live, http, org, plan):
    image = png(8, 8, seed=3)
    before = photo_files(live)
    payload = await upload(http, org.token, plan.event, image, filename="dir/../checkout.png", title="Checkout")
    assert payload["userErrors"] == []
    photo = payload["photo"]
    assert (photo["kind"], photo["contentType"], photo["sizeBytes"], photo["originalFilename"], photo["title"],
            photo["storageBackend"], photo["order"], photo["externalUrl"]) == (
        "PHOTO", "image/png", len(image), "checkout.png", "Checkout", "local", 0, None)
    assert photo["event"] == {"id": plan.event} and photo["uploadedBy"] == {"id": org.user["id"]}
    assert photo["url"] == f"/api/v1/photos/{photo['id']}"
    added = photo_files(live) - before
    assert len(added) == 1 and next(iter(added)).read_bytes() == image

    r = await http.get(photo["url"], headers={"authorization": f"Bearer {org.token}"})
    assert r.status_code == 200 and r.content == image
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"].startswith("private")

    listed = (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"]
    assert listed == [photo]


async def test_every_accepted_type_is_recognized_by_its_bytes(http, org, plan):
    for data, declared, expected in ((GIF, "image/gif", "image/gif"), (JPEG, "image/jpeg", "image/jpeg"),
                                     (WEBP, "image/webp", "image/webp"),
                                     (png(), "application/octet-stream", "image/png"),
                                     (JPEG, "image/png", "image/jpeg")):  # the bytes decide, not the label
        payload = await upload(http, org.token, plan.event, data, filename="x", content_type=declared)
        assert payload["userErrors"] == [], declared
        assert payload["photo"]["contentType"] == expected
    photos = (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"]
    assert [p["order"] for p in photos] == [0, 1, 2, 3, 4]


async def test_wrong_magic_bytes_and_other_types_are_refused_and_nothing_is_stored(live, http, org, plan):
    before = photo_files(live)
    for data, declared in ((NOT_AN_IMAGE, "image/png"), (NOT_AN_IMAGE, "image/svg+xml"), (png(), "text/html"),
                           (b"", "image/png"), (b"GIF87", "image/gif")):
        payload = await upload(http, org.token, plan.event, data, content_type=declared)
        assert errors_of(payload) == [("VALIDATION", ["input", "file"])], (data[:10], declared)
        assert payload["photo"] is None
    payload = await upload(http, org.token, plan.event, png(), title="t" * 501)
    assert errors_of(payload) == [("VALIDATION", ["input", "title"])]
    assert photo_files(live) == before
    assert (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"] == []


async def test_kind_figma_upload_and_bad_kind(http, org, plan):
    payload = await upload(http, org.token, plan.event, png(), kind="FIGMA")
    assert payload["userErrors"] == [] and payload["photo"]["kind"] == "FIGMA"
    r = await upload_raw(http, org.token, plan.event, png(), kind="DRAWING")
    assert r.status_code == 200 and r.json()["errors"] and r.json()["data"] is None


async def test_unknown_event_other_organizations_event_and_roles(live, gql, http, org, plan):
    before = photo_files(live)
    payload = await upload(http, org.token, gid("Event", uuid.uuid4()), png())
    assert errors_of(payload) == [("NOT_FOUND", ["input", "eventId"])]
    payload = await upload(http, org.token, plan.project, png())
    assert errors_of(payload) == [("VALIDATION", ["input", "eventId"])]

    other = await Org.create(gql, "Other Co")
    payload = await upload(http, other.token, plan.event, png())
    assert errors_of(payload) == [("NOT_FOUND", ["input", "eventId"])]

    viewer = await org.member("viewer")
    payload = await upload(http, viewer, plan.event, png())
    assert errors_of(payload) == [("FORBIDDEN", None)]
    read_key, _ = await api_key(gql, org.token, scope="read")
    payload = await upload(http, read_key, plan.event, png())
    assert errors_of(payload) == [("FORBIDDEN", None)]
    assert photo_files(live) == before  # no refusal stored anything
    editor = await org.member("editor")
    payload = await upload(http, editor, plan.event, png())
    assert payload["userErrors"] == []

    # Viewers read and download; the other organization does not even see the photo.
    r = await http.get(payload["photo"]["url"], headers={"authorization": f"Bearer {viewer}"})
    assert r.status_code == 200 and r.content == png()
    r = await http.get(payload["photo"]["url"], headers={"authorization": f"Bearer {other.token}"})
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = await http.get(payload["photo"]["url"])
    assert r.status_code == 401
    assert (await other(EVENT_PHOTOS, {"id": plan.event}))["node"] is None


async def test_reorder_takes_the_full_list_once_each(http, org, plan):
    ids = [(await upload(http, org.token, plan.event, png(seed=i)))["photo"]["id"] for i in range(3)]
    data = await org(REORDER, {"input": {"eventId": plan.event, "photoIds": [ids[2], ids[0], ids[1]]}})
    assert data["eventPhotosReorder"]["userErrors"] == []
    assert data["eventPhotosReorder"]["photos"] == [{"id": ids[2], "order": 0}, {"id": ids[0], "order": 1},
                                                    {"id": ids[1], "order": 2}]
    listed = (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"]
    assert [p["id"] for p in listed] == [ids[2], ids[0], ids[1]]

    other_event = await plan.another_event("signup viewed")
    foreign = (await upload(http, org.token, other_event, png()))["photo"]["id"]
    data = await org(REORDER, {"input": {"eventId": plan.event, "photoIds": [ids[0], ids[0], foreign, "bogus"]}})
    assert errors_of(data["eventPhotosReorder"]) == [
        ("VALIDATION", ["input", "photoIds", "3"])]  # malformed IDs are reported first, alone
    data = await org(REORDER, {"input": {"eventId": plan.event, "photoIds": [ids[0], ids[0], foreign]}})
    assert errors_of(data["eventPhotosReorder"]) == [
        ("VALIDATION", ["input", "photoIds", "1"]), ("VALIDATION", ["input", "photoIds", "2"]),
        ("VALIDATION", ["input", "photoIds"])]
    assert data["eventPhotosReorder"]["photos"] is None
    listed = (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"]
    assert [p["id"] for p in listed] == [ids[2], ids[0], ids[1]]  # unchanged

    viewer = await org.member("viewer")
    data = await org(REORDER, {"input": {"eventId": plan.event, "photoIds": ids}}, viewer)
    assert errors_of(data["eventPhotosReorder"]) == [("FORBIDDEN", None)]


async def test_delete_removes_the_row_its_comments_and_its_file(live, http, org, plan):
    before = photo_files(live)
    photo = (await upload(http, org.token, plan.event, png(seed=9)))["photo"]
    (added,) = photo_files(live) - before

    viewer = await org.member("viewer")
    data = await org(DELETE, {"input": {"id": photo["id"]}}, viewer)
    assert errors_of(data["eventPhotoDelete"]) == [("FORBIDDEN", None)]
    assert added.exists()

    data = await org(DELETE, {"input": {"id": photo["id"]}})
    assert data["eventPhotoDelete"] == {"deletedPhotoId": photo["id"], "userErrors": []}
    assert not added.exists()
    r = await http.get(photo["url"], headers={"authorization": f"Bearer {org.token}"})
    assert r.status_code == 404
    data = await org(DELETE, {"input": {"id": photo["id"]}})
    assert errors_of(data["eventPhotoDelete"]) == [("NOT_FOUND", ["input", "id"])]


async def test_figma_links_are_added_changed_and_validated(http, org, plan):
    data = await org(FIGMA, {"input": {"eventId": plan.event, "url": "https://www.figma.com/file/abc/Checkout",
                                       "title": "Checkout spec"}})
    payload = data["eventFigmaLinkSet"]
    assert payload["userErrors"] == [] and payload["created"] is True
    link = payload["photo"]
    assert (link["kind"], link["externalUrl"], link["url"], link["title"], link["storageBackend"],
            link["contentType"]) == ("FIGMA", "https://www.figma.com/file/abc/Checkout",
                                     "https://www.figma.com/file/abc/Checkout", "Checkout spec", None, None)

    data = await org(FIGMA, {"input": {"eventId": plan.event, "photoId": link["id"],
                                       "url": "https://figma.com/file/xyz", "title": ""}})
    assert data["eventFigmaLinkSet"]["created"] is False
    assert (data["eventFigmaLinkSet"]["photo"]["id"], data["eventFigmaLinkSet"]["photo"]["externalUrl"]) == (
        link["id"], "https://figma.com/file/xyz")

    for url, title in (("", ""), ("ftp://figma.com/x", ""), ("javascript:alert(1)", ""), ("https://", ""),
                       ("https://figma.com/" + "a" * 1990, "")):
        data = await org(FIGMA, {"input": {"eventId": plan.event, "url": url, "title": title}})
        assert errors_of(data["eventFigmaLinkSet"]) == [("VALIDATION", ["input", "url"])], url
    data = await org(FIGMA, {"input": {"eventId": plan.event, "url": "https://figma.com/" + "a" * 1982,
                                       "title": "t" * 500}})
    assert data["eventFigmaLinkSet"]["userErrors"] == []  # 2000 characters, 500 characters: the limits
    data = await org(FIGMA, {"input": {"eventId": plan.event, "url": "x", "title": "t" * 501}})
    assert errors_of(data["eventFigmaLinkSet"]) == [("VALIDATION", ["input", "url"]),
                                                    ("VALIDATION", ["input", "title"])]

    photo = (await upload(http, org.token, plan.event, png()))["photo"]
    data = await org(FIGMA, {"input": {"eventId": plan.event, "photoId": photo["id"], "url": "https://figma.com/f"}})
    assert errors_of(data["eventFigmaLinkSet"]) == [("VALIDATION", ["input", "photoId"])]

    r = await http.get(f"/api/v1/photos/{link['id']}", headers={"authorization": f"Bearer {org.token}"})
    assert r.status_code == 404 and r.json()["details"]["externalUrl"] == "https://figma.com/file/xyz"

    viewer = await org.member("viewer")
    data = await org(FIGMA, {"input": {"eventId": plan.event, "url": "https://figma.com/f"}}, viewer)
    assert errors_of(data["eventFigmaLinkSet"]) == [("FORBIDDEN", None)]


async def test_every_change_is_audited_and_announced(live, http, org, plan):
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, plan.project)
        photo = (await upload(http, org.token, plan.event, png()))["photo"]
        msg = await recv(ws)
        assert msg["payload"]["data"]["planChanged"] == {"entityType": "EVENT_PHOTO", "entityId": photo["id"],
                                                          "action": "CREATED", "projectId": plan.project}
        link = (await org(FIGMA, {"input": {"eventId": plan.event, "url": "https://figma.com/f"}}))[
            "eventFigmaLinkSet"]["photo"]
        assert (await recv(ws))["payload"]["data"]["planChanged"]["entityId"] == link["id"]
        await org(REORDER, {"input": {"eventId": plan.event, "photoIds": [link["id"], photo["id"]]}})
        got = {(await recv(ws))["payload"]["data"]["planChanged"]["entityId"] for _ in range(2)}
        assert got == {link["id"], photo["id"]}
        await org(DELETE, {"input": {"id": photo["id"]}})
        msg = await recv(ws)
        assert msg["payload"]["data"]["planChanged"]["action"] == "DELETED"
    actions = [a["action"] for a in await audit_actions(org, plan.project)]
    for action in ("event_photo.create", "event_photo.reorder", "event_photo.delete"):
        assert action in actions, actions


async def test_cookie_sessions_need_the_csrf_header_for_multipart(live, gql, org, plan):
    from tests.support.client import LOGIN

    email = org.user["email"]
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as browser:
        r = await browser.post("/graphql", json={"query": LOGIN, "variables": {
            "input": {"email": email, "password": "correct horse battery"}}})
        assert r.status_code == 200 and browser.cookies, r.text
        r = await upload_raw(browser, None, plan.event, png())
        assert r.status_code == 403 and r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        r = await upload_raw(browser, None, plan.event, png(), headers={"x-insights-csrf": "1"})
        assert r.status_code == 200 and r.json()["data"]["eventPhotoUpload"]["userErrors"] == []


async def test_multipart_may_be_larger_than_the_json_limit_but_json_may_not(live, http, org, plan):
    limit = live.runtime.settings.max_body_bytes
    big = png() + b"\x00" * (limit + 1000)  # a valid PNG start; over the JSON limit, under the photo limit
    payload = await upload(http, org.token, plan.event, big)
    assert payload["userErrors"] == [] and payload["photo"]["sizeBytes"] == len(big)
    r = await http.post("/graphql", content=json.dumps({"query": "{ __typename }", "pad": "x" * limit}),
                        headers={"content-type": "application/json", "authorization": f"Bearer {org.token}"})
    assert r.status_code == 413


async def test_malformed_multipart_requests_are_400_not_500(http, org, plan):
    auth = {"authorization": f"Bearer {org.token}"}
    form, files = multipart({"input": {"eventId": plan.event}}, png())
    for fields in ({**form, "map": json.dumps({"0": ["variables.nothing.here"]})},
                   {**form, "map": json.dumps({"0": "variables.input.file"})},
                   {**form, "map": json.dumps({"1": ["variables.input.file"]})},
                   {**form, "operations": "not json"},
                   {"map": form["map"]}):
        r = await http.post("/graphql", data=fields, files=files, headers=auth)
        assert r.status_code == 400, (fields, r.status_code, r.text)
    r = await http.post("/graphql", data={**form, "map": "{}"}, files=files, headers=auth)  # no file mapped
    assert r.status_code == 200 and r.json()["errors"] and r.json()["data"] is None  # `file: Upload!` is null
    operations = json.loads(form["operations"])
    operations["variables"]["input"]["file"] = "not a file part"
    r = await http.post("/graphql", data={"operations": json.dumps(operations), "map": "{}"}, files=files,
                        headers=auth)
    assert errors_of(r.json()["data"]["eventPhotoUpload"]) == [("VALIDATION", ["input", "file"])]


@pytest.fixture(scope="module")
def small_limit(start_server):  # noqa: ANN001, ANN201
    return start_server(photo_max_bytes=2048)


async def test_a_photo_over_the_limit_is_refused_with_nothing_stored(small_limit):
    async with httpx.AsyncClient(base_url=small_limit.url, timeout=30) as http:
        from tests.support.client import GQL

        client = GQL(small_limit.url)
        org = await Org.create(client)
        plan = await PhotoPlan.create(org)
        ok = await upload(http, org.token, plan.event, png() + b"\x00" * (2048 - len(png())))
        assert ok["userErrors"] == []
        before = photo_files(small_limit)
        payload = await upload(http, org.token, plan.event, png() + b"\x00" * 2048)
        assert errors_of(payload) == [("VALIDATION", ["input", "file"])]
        assert "2048" in payload["userErrors"][0]["message"]
        assert photo_files(small_limit) == before
        # Far over the limit: the gate refuses the body before GraphQL reads it.
        r = await upload_raw(http, org.token, plan.event, png() + b"\x00" * (small_limit.runtime.settings.max_body_bytes
                                                                            + 10_000))
        assert r.status_code == 413
        await client.aclose()


async def test_photos_and_threads_of_many_events_cost_a_constant_number_of_statements(http, org, plan):
    from tests.graph.plan.photo_ops import COMMENT_CREATE

    events = [plan.event, await plan.another_event("a"), await plan.another_event("b")]
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { ... on Event { id photos(first: 10) { id url uploadedBy { id }
      comments(first: 10) { id author { id } replies(first: 10) { id author { id } } } } } } }"""

    async def fill(event: str, n: int) -> None:
        for i in range(n):
            photo = (await upload(http, org.token, event, png(seed=i)))["photo"]
            top = (await org(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": "first"}}))[
                "photoCommentCreate"]["comment"]
            await org(COMMENT_CREATE, {"input": {"photoId": photo["id"], "body": "reply", "parentId": top["id"]}})

    await fill(events[0], 1)
    small = await count_statements(lambda: org(query, {"ids": events[:1]}))
    for e in events:
        await fill(e, 3)
    seen: list[str] = []
    large = await count_statements(lambda: org(query, {"ids": events}), seen)
    assert large == small, seen
    data = await org(query, {"ids": events})
    assert [len(n["photos"]) for n in data["nodes"]] == [4, 3, 3]
    assert all(len(p["comments"]) == 1 and len(p["comments"][0]["replies"]) == 1
               for n in data["nodes"] for p in n["photos"])
