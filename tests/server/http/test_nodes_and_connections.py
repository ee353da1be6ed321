"""Relay nodes and keyset connections over HTTP with real accounts: batching (constant SQL
statements), connection arguments, paging through `auditLog`, foreign IDs in mutations, the
rate-limit buckets of anonymous and signed-in callers, and an authenticated subscription."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.server.http.conftest import client, recv_until, ws_session
from tests.support.client import GQL, register_and_login, unique_email
from tests.support.factories import INVITE, World, ok
from tests.support.sql import count_statements

AUDIT = """query($org: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  auditLog(organizationId: $org, first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id action } } } }"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on AuditEntry { action } ... on Invite { email } } }"


@pytest.fixture(scope="module")
async def world(live):  # noqa: ANN001, ANN201
    gql = GQL(live.url)
    w = await World.create(gql, "Paging Org")
    for _ in range(24):  # each invite is an Invite node and writes an AuditEntry
        ok((await w.owner(INVITE, {"input": {"organizationId": w.org_id, "email": unique_email("p")}}))["organizationInvite"])
    yield w
    await gql.aclose()


async def audit_page(w: World, **args) -> dict:  # noqa: ANN003
    return (await w.owner(AUDIT, {"org": w.org_id, **args}))["auditLog"]


async def test_nodes_runs_the_same_sql_for_2_and_20_ids(world):
    audit = [e["node"]["id"] for e in (await audit_page(world, first=20))["edges"]]
    invites = (await world.owner("query($id: ID!) { organization(id: $id) { invites(first: 20) { nodes { id } } } }",
                                 {"id": world.org_id}))["organization"]["invites"]["nodes"]
    invites = [i["id"] for i in invites]
    assert len(audit) == 20 and len(invites) == 20

    async def statements(ids: list[str]) -> int:
        async def run() -> None:
            data = await world.owner(NODES, {"ids": ids})
            assert all(n is not None for n in data["nodes"]) and len(data["nodes"]) == len(ids)

        await run()  # warm: connections opened, caches filled
        return min([await count_statements(run) for _ in range(3)])  # min: ignore unrelated background SQL

    two = await statements(audit[:2] + invites[:2])
    twenty = await statements(audit + invites)
    assert two == twenty, (two, twenty)
    assert two <= 6  # authentication (session, roles) + one batch per node type


async def test_forward_and_backward_paging_see_every_entry_once(world):
    everything = await audit_page(world, first=500)
    ids = [e["node"]["id"] for e in everything["edges"]]
    assert everything["totalCount"] == len(ids) >= 25
    assert everything["pageInfo"]["hasNextPage"] is False and everything["pageInfo"]["hasPreviousPage"] is False

    seen, after = [], None
    while True:
        page = await audit_page(world, first=7, after=after)
        assert page["totalCount"] == len(ids)
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids

    seen, before = [], None
    while True:
        page = await audit_page(world, last=7, before=before)
        seen = [e["node"]["id"] for e in page["edges"]] + seen
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert seen == ids


async def test_connection_argument_errors(world, settings):
    async def error(**args) -> dict:  # noqa: ANN003
        r = await world.gql.raw(AUDIT, {"org": world.org_id, **args}, token=world.owner_token)
        assert r.status_code == 200
        [e] = r.json()["errors"]
        return e

    e = await error(first=settings.page_size_max + 1)
    assert e["extensions"] == {"code": "VALIDATION", "field": ["first"]}
    assert str(settings.page_size_max) in e["message"]
    e = await error(first=2, last=2)
    assert e["extensions"]["code"] == "VALIDATION" and "not both" in e["message"]
    e = await error(first=2, after="garbage")
    assert e["extensions"] == {"code": "VALIDATION", "field": ["after"]} and e["message"] == "malformed cursor"
    e = await error(last=2, before="W3siZCI6ICJ5ZXN0ZXJkYXkifSwgMV0")  # [{"d": "yesterday"}, 1]
    assert e["extensions"] == {"code": "VALIDATION", "field": ["before"]}
    assert (await audit_page(world, first=settings.page_size_max))["totalCount"] >= 25  # the maximum itself is fine


async def test_a_foreign_id_in_a_mutation_is_not_found_and_changes_nothing(live, world):
    job = ok((await world.owner("""mutation($input: OrganizationExportInput!) { organizationExport(input: $input) {
        job { id } userErrors { code field message } } }""", {"input": {"organizationId": world.org_id}}))["organizationExport"])["job"]
    stranger = await World.create(world.gql, "Stranger Org")
    data = await world.gql("""mutation($id: ID!) { jobCancel(input: {id: $id}) { job { id status }
        userErrors { code field message } } }""", {"id": job["id"]}, token=stranger.owner_token)
    assert data["jobCancel"]["job"] is None
    assert [e["code"] for e in data["jobCancel"]["userErrors"]] == ["NOT_FOUND"]
    mine = await world.owner("query($id: ID!) { job(id: $id) { cancelRequested status } }", {"id": job["id"]})
    assert mine["job"]["cancelRequested"] is False and mine["job"]["status"] != "cancelled"


async def test_authenticated_subscription_over_websocket(live, world):
    job = ok((await world.owner("""mutation($input: OrganizationExportInput!) { organizationExport(input: $input) {
        job { id } userErrors { code field message } } }""", {"input": {"organizationId": world.org_id}}))["organizationExport"])["job"]
    async with ws_session(live.ws_url, "graphql-transport-ws") as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": world.owner_token}}))
        assert (await recv_until(ws, "connection_ack"))[-1]["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "j", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { jobUpdated(id: $id) { id status } }", "variables": {"id": job["id"]}}}))
        messages = await recv_until(ws, "next")
        # Finish it from here whatever the worker is doing: a pending job is cancelled at once, and
        # a running one at its next step; a finished one stays as it is (the stream has ended).
        await world.owner("mutation($id: ID!) { jobCancel(input: {id: $id}) { userErrors { code } } }", {"id": job["id"]})
        if messages[-1]["payload"]["data"]["jobUpdated"]["status"] in ("pending", "running"):
            messages += await recv_until(ws, "complete", "error", timeout=30)
    updates = [m["payload"]["data"]["jobUpdated"] for m in messages if m["type"] == "next"]
    assert updates and all(u["id"] == job["id"] for u in updates)
    assert updates[-1]["status"] in ("succeeded", "failed", "cancelled"), messages


async def test_anonymous_and_signed_in_callers_have_separate_rate_limit_buckets(start_server):
    if time.time() % 60 > 55:  # fixed windows: stay inside one minute
        await asyncio.sleep(61 - time.time() % 60)
    server = start_server(rate_limit_per_minute=4)
    async with client(server.url) as http:  # one address for everything below
        gql = GQL(server.url)
        gql.http = http
        token, _ = await register_and_login(gql)  # anonymous requests 1 and 2

        probe = {"query": "{ viewer { email } }"}
        signed_in = [(await http.post("/graphql", json=probe, headers={"authorization": f"Bearer {token}"})).status_code
                     for _ in range(5)]
        assert signed_in == [200, 200, 200, 200, 429]

        http.cookies.clear()  # truly anonymous again (login set the session cookie)
        anonymous = [(await http.post("/graphql", json=probe)).status_code for _ in range(3)]
        assert anonymous == [200, 200, 429]  # 2 left after register and login
