"""The REST side of event photos on a live server: `POST /api/v1/events/{eventId}/photos` with the
raw image as the body, and the authenticated download `GET /api/v1/photos/{photoId}`. Every
refusal is `{error, details, code}` with its 4xx status, and stores nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.graph.accounts.helpers import api_key
from tests.graph.plan.helpers import Org
from tests.graph.plan.photo_ops import EVENT_PHOTOS, GIF, NOT_AN_IMAGE, WEBP, PhotoPlan, photo_files, png
from tests.support.client import GQL, LOGIN
from tests.support.plan_rows import gid


@pytest.fixture
async def http(live):  # noqa: ANN001, ANN201
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture
async def org(gql):  # noqa: ANN001, ANN201
    return await Org.create(gql)


@pytest.fixture
async def plan(org):  # noqa: ANN001, ANN201
    return await PhotoPlan.create(org)


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


async def post(http: httpx.AsyncClient, token: str | None, event: str, data: bytes, content_type: str = "image/png",
               params: dict | None = None, headers: dict | None = None) -> httpx.Response:
    h = {"content-type": content_type, **(bearer(token) if token else {}), **(headers or {})}
    return await http.post(f"/api/v1/events/{event}/photos", content=data, params=params or {}, headers=h)


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "details", "code"} and body["code"] == code and body["error"], body
    return body


async def test_upload_answers_201_and_the_download_gives_the_same_bytes(live, http, org, plan):
    image = png(16, 4, seed=7)
    before = photo_files(live)
    r = await post(http, org.token, plan.event, image, params={"filename": "C:\\shots\\home.png", "title": "Home"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("RXZlbnRQaG90bz")  # base64 of "EventPhoto:"
    assert (body["kind"], body["contentType"], body["sizeBytes"], body["originalFilename"], body["title"],
            body["eventId"], body["order"]) == ("PHOTO", "image/png", len(image), "home.png", "Home", plan.event, 0)
    assert r.headers["location"] == body["url"] == f"/api/v1/photos/{body['id']}"
    assert len(photo_files(live) - before) == 1

    got = await http.get(body["url"], headers=bearer(org.token))
    assert got.status_code == 200 and got.content == image
    assert got.headers["content-type"] == "image/png"
    assert got.headers["cache-control"] == "private, max-age=3600"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-length"] == str(len(image))
    assert "home.png" in got.headers["content-disposition"]
    cached = await http.get(body["url"], headers={**bearer(org.token), "if-none-match": got.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""

    # The photo is there for GraphQL too, and a bare UUID works as the event ID.
    photos = (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"]
    assert [p["id"] for p in photos] == [body["id"]]
    from tests.support.plan_rows import raw

    r = await post(http, org.token, str(raw(plan.event)), GIF, "image/gif")
    assert r.status_code == 201 and r.json()["eventId"] == plan.event
    assert_error(await post(http, org.token, str(uuid.uuid4()), image), 404, "NOT_FOUND")


async def test_kinds_and_types(http, org, plan):
    r = await post(http, org.token, plan.event, GIF, "image/gif", {"kind": "figma"})
    assert r.status_code == 201 and (r.json()["kind"], r.json()["contentType"]) == ("FIGMA", "image/gif")
    r = await post(http, org.token, plan.event, WEBP, "application/octet-stream")
    assert r.status_code == 201 and r.json()["contentType"] == "image/webp"
    body = assert_error(await post(http, org.token, plan.event, png(), params={"kind": "drawing"}), 422, "VALIDATION")
    assert body["details"] == {"field": ["kind"]}


async def test_refusals_store_nothing(live, http, org, plan):
    before = photo_files(live)
    body = assert_error(await post(http, org.token, plan.event, NOT_AN_IMAGE), 415, "VALIDATION")
    assert "PNG, JPEG, GIF or WebP" in body["error"]
    assert_error(await post(http, org.token, plan.event, NOT_AN_IMAGE, "image/svg+xml"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(await post(http, org.token, plan.event, png(), "application/x-www-form-urlencoded"), 415,
                 "UNSUPPORTED_MEDIA_TYPE")
    assert_error(await post(http, org.token, plan.event, b""), 422, "VALIDATION")
    assert_error(await post(http, org.token, plan.event, png(), params={"title": "t" * 501}), 422, "VALIDATION")
    assert_error(await post(http, org.token, gid("Event", uuid.uuid4()), png()), 404, "NOT_FOUND")
    assert_error(await post(http, org.token, plan.project, png()), 404, "NOT_FOUND")  # not an Event ID
    assert_error(await post(http, None, plan.event, png()), 401, "UNAUTHENTICATED")
    assert_error(await post(http, "not-a-token", plan.event, png()), 401, "UNAUTHENTICATED")
    r = await http.get(f"/api/v1/events/{plan.event}/photos", headers=bearer(org.token))
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert photo_files(live) == before
    assert (await org(EVENT_PHOTOS, {"id": plan.event}))["node"]["photos"] == []


async def test_roles_and_tenants(gql, http, org, plan):
    viewer = await org.member("viewer")
    assert_error(await post(http, viewer, plan.event, png()), 403, "FORBIDDEN")
    read_key, _ = await api_key(gql, org.token, scope="read")
    assert_error(await post(http, read_key, plan.event, png()), 403, "FORBIDDEN")
    write_key, _ = await api_key(gql, org.token, scope="write")
    r = await post(http, write_key, plan.event, png())
    assert r.status_code == 201
    url = r.json()["url"]

    other = await Org.create(gql, "Other Co")
    assert_error(await post(http, other.token, plan.event, png()), 404, "NOT_FOUND")
    assert_error(await http.get(url, headers=bearer(other.token)), 404, "NOT_FOUND")
    other_key, _ = await api_key(gql, other.token, scope="read")
    assert_error(await http.get(url, headers=bearer(other_key)), 404, "NOT_FOUND")
    assert_error(await http.get(url), 401, "UNAUTHENTICATED")
    assert_error(await http.get("/api/v1/photos/not-an-id", headers=bearer(org.token)), 404, "NOT_FOUND")
    assert_error(await http.get(f"/api/v1/photos/{gid('EventPhoto', uuid.uuid4())}", headers=bearer(org.token)),
                 404, "NOT_FOUND")

    got = await http.get(url, headers=bearer(viewer))  # viewers download
    assert got.status_code == 200 and got.content == png()
    got = await http.get(url, headers=bearer(read_key))
    assert got.status_code == 200


async def test_cookie_sessions_need_the_csrf_header_to_upload_but_not_to_download(live, org, plan):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as browser:
        r = await browser.post("/graphql", json={"query": LOGIN, "variables": {
            "input": {"email": org.user["email"], "password": "correct horse battery"}}})
        assert r.status_code == 200 and browser.cookies
        assert_error(await post(browser, None, plan.event, png()), 403, "FORBIDDEN")
        r = await post(browser, None, plan.event, png(), headers={"x-insights-csrf": "1"})
        assert r.status_code == 201
        got = await browser.get(r.json()["url"])
        assert got.status_code == 200 and got.content == png()


@pytest.fixture(scope="module")
def small_limit(start_server):  # noqa: ANN001, ANN201
    return start_server(photo_max_bytes=4096)


async def test_over_the_limit_is_413_by_header_or_while_streaming(small_limit):
    client = GQL(small_limit.url)
    org = await Org.create(client)
    plan = await PhotoPlan.create(org)
    async with httpx.AsyncClient(base_url=small_limit.url, timeout=30) as http:
        exact = png() + b"\x00" * (4096 - len(png()))
        r = await post(http, org.token, plan.event, exact)
        assert r.status_code == 201, r.text
        before = photo_files(small_limit)
        body = assert_error(await post(http, org.token, plan.event, exact + b"\x00"), 413, "PAYLOAD_TOO_LARGE")
        assert "4096" in body["error"]

        async def chunks():  # no Content-Length: the limit is enforced while reading
            yield png()
            for _ in range(10):
                yield b"\x00" * 1000

        r = await http.post(f"/api/v1/events/{plan.event}/photos", content=chunks(),
                            headers={"content-type": "image/png", **bearer(org.token)})
        assert "content-length" not in r.request.headers
        assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert photo_files(small_limit) == before
    await client.aclose()
