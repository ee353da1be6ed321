"""Bad input at `/graphql`: clear 4xx answers or coded GraphQL errors, never a 500, nothing changed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from graph.core.node import to_global_id
from server.db.engine import Database
from server.domains.platform.models import AuditEntry
from server.jobs.models import Job
from server.security.tokens import issue_session_jwt

ORG = to_global_id("Organization", "00000000-0000-4000-8000-000000000003")
EXPORT = "mutation($id: ID!) { organizationExport(input: {organizationId: $id}) { job { id } userErrors { code } } }"


def codes(r) -> list[str]:  # noqa: ANN001
    return [e["extensions"]["code"] for e in r.json().get("errors") or []]


async def row_counts(database_url: str) -> tuple[int, int]:
    db = Database(database_url, 1)
    try:
        async with db.session() as s:
            jobs = (await s.execute(select(func.count()).select_from(Job))).scalar_one()
            audit = (await s.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
        return jobs, audit
    finally:
        await db.dispose()


@pytest.mark.parametrize("body, status", [
    (b'{"query": "{ __typename }"', 400),  # truncated JSON
    (b"not json at all", 400),
    (b"", 400),
])
async def test_malformed_json_is_400(http, body, status):
    r = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert "JSON" in r.text


@pytest.mark.parametrize("body, message", [
    (b'"just a string"', "The request body must be a JSON object with a `query`"),
    (b"42", "The request body must be a JSON object with a `query`"),
    (b"null", "The request body must be a JSON object with a `query`"),
    (b"[]", "Batching is not enabled"),
    (b"{}", "No GraphQL query found in the request"),
    (b'{"query": null}', "No GraphQL query found in the request"),
    (b'{"query": 5}', "The GraphQL operation's `query` must be a string or null, if provided."),
    (b'{"query": "{ __typename }", "variables": "nope"}', "The GraphQL operation's `variables` must be an object or null, if provided."),
    (b'{"query": "{ __typename }", "variables": [1]}', "The GraphQL operation's `variables` must be an object or null, if provided."),
    (b'{"query": "{ __typename }", "operationName": 7}', 'Unknown operation named "7".'),
])
async def test_wrong_json_shapes_are_400(http, body, message):
    r = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.text) == (400, message)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "",
                                          "application/graphql-response+json", "text/plain; x=application/json"])
async def test_wrong_content_type_is_415(http, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = await http.post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)
    assert r.status_code == 415
    assert codes(r) == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_json_with_a_charset_is_fine(http):
    r = await http.post("/graphql", content=b'{"query": "{ __typename }"}',
                        headers={"content-type": "application/json; charset=utf-8"})
    assert r.json() == {"data": {"__typename": "Query"}}


async def test_oversized_body_with_content_length_is_413(http, settings):
    filler = "x" * (settings.max_body_bytes + 10)
    r = await http.post("/graphql", json={"query": "{ __typename }", "extensions": {"pad": filler}})
    assert r.status_code == 413
    assert codes(r) == ["PAYLOAD_TOO_LARGE"]


async def test_oversized_streamed_body_without_content_length_is_413(http, settings):
    chunk = b" " * 65536
    chunks = settings.max_body_bytes // len(chunk) + 2

    async def body():  # noqa: ANN202
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(chunks):
            yield chunk
        yield b'"}'

    r = await http.post("/graphql", content=body(), headers={"content-type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
    assert r.status_code == 413
    assert codes(r) == ["PAYLOAD_TOO_LARGE"]


async def test_small_streamed_body_is_fine(http):
    async def body():  # noqa: ANN202
        yield b'{"query": "{ __typ'
        yield b'ename }"}'

    r = await http.post("/graphql", content=body(), headers={"content-type": "application/json"})
    assert r.json() == {"data": {"__typename": "Query"}}


async def test_syntax_errors_are_coded(http):
    r = await http.post("/graphql", json={"query": "query Broken {"})
    assert r.status_code == 200
    assert codes(r) == ["GRAPHQL_PARSE_FAILED"]
    assert r.json()["errors"][0]["message"].startswith("Syntax Error")


async def test_unknown_operation_name_is_a_clear_error(http):
    r = await http.post("/graphql", json={"query": "query A { __typename }", "operationName": "B"})
    assert (r.status_code, r.text) == (400, 'Unknown operation named "B".')


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-jwt",
    "Bearer insk_no_such_key",
    "Token insk_no_such_key",
    "Basic dXNlcjpwYXNz",
    "Bearer",
])
async def test_bad_credentials_are_401(http, authorization):
    r = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"authorization": authorization})
    assert r.status_code == 401
    assert codes(r) == ["UNAUTHENTICATED"]
    assert r.headers["www-authenticate"] == "Bearer"


async def test_expired_token_is_401_and_changes_nothing(http, settings, database_url):
    expired = issue_session_jwt(settings.signing_key(), uuid.uuid4(), uuid.uuid4(),
                                datetime.now(timezone.utc) - timedelta(minutes=5))
    forged = issue_session_jwt("some-other-key-" + "y" * 32, uuid.uuid4(), uuid.uuid4(),
                               datetime.now(timezone.utc) + timedelta(hours=1))
    before = await row_counts(database_url)
    for token in (expired, forged):
        r = await http.post("/graphql", json={"query": EXPORT, "variables": {"id": ORG}},
                            headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert codes(r) == ["UNAUTHENTICATED"]
        assert "expired" in r.json()["errors"][0]["message"]
    assert await row_counts(database_url) == before


async def test_a_stale_session_cookie_falls_back_to_anonymous(http, settings):
    expired = issue_session_jwt(settings.signing_key(), uuid.uuid4(), uuid.uuid4(),
                                datetime.now(timezone.utc) - timedelta(minutes=5))
    r = await http.post("/graphql", json={"query": "{ __typename }"},
                        headers={"cookie": f"{settings.session_cookie_name}={expired}"})
    assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("gid", ["garbage", "!!!", to_global_id("Job", "not-a-uuid"), "Sm9iOg"])
async def test_malformed_node_ids_are_validation_errors(http, gid):
    r = await http.post("/graphql", json={"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": gid}})
    assert r.status_code == 200
    [error] = r.json()["errors"]
    assert error["extensions"] == {"code": "VALIDATION", "field": ["id"]}
    assert error["message"] == f"`{gid}` is not a valid ID"

    r = await http.post("/graphql", json={"query": "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                                          "variables": {"ids": [to_global_id("Job", uuid.uuid4()), gid]}})
    [error] = r.json()["errors"]
    assert error["extensions"] == {"code": "VALIDATION", "field": ["ids", "1"]}


async def test_unknown_types_and_missing_objects_are_null(http):
    ids = [to_global_id("Spaceship", uuid.uuid4()), to_global_id("Job", uuid.uuid4()),
           to_global_id("Organization", uuid.uuid4())]
    r = await http.post("/graphql", json={"query": "query($ids: [ID!]!, $one: ID!) { nodes(ids: $ids) { id } "
                                                   "node(id: $one) { id } }",
                                          "variables": {"ids": ids, "one": ids[0]}})
    assert r.json() == {"data": {"nodes": [None, None, None], "node": None}}


async def test_too_many_ids_is_a_validation_error(http, settings):
    ids = [to_global_id("Job", uuid.uuid4()) for _ in range(settings.page_size_max + 1)]
    r = await http.post("/graphql", json={"query": "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                                          "variables": {"ids": ids}})
    [error] = r.json()["errors"]
    assert error["extensions"] == {"code": "VALIDATION", "field": ["ids"]}
    assert error["message"] == f"at most {settings.page_size_max} ids"


async def test_wrong_variable_types_are_coded(http):
    r = await http.post("/graphql", json={"query": "query($id: ID!) { node(id: $id) { id } }",
                                          "variables": {"id": {"nested": True}}})
    assert r.status_code == 200
    assert codes(r) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_an_id_of_the_wrong_type_in_a_mutation_is_a_user_error(http):
    r = await http.post("/graphql", json={"query": "mutation($id: ID!) { jobCancel(input: {id: $id}) "
                                                   "{ job { id } userErrors { code field message } } }",
                                          "variables": {"id": ORG}})
    assert r.json()["data"]["jobCancel"] == {"job": None, "userErrors": [
        {"code": "VALIDATION", "field": ["input", "id"], "message": f"`{ORG}` is not a Job ID"}]}
