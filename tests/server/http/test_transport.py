"""`/graphql` over POST, GET and websockets (both subprotocols), through the real server."""

from __future__ import annotations

import json

import orjson
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus

from graph.core.node import to_global_id
from tests.server.http.conftest import client, recv_json, recv_until, ws_session

SOME_JOB = to_global_id("Job", "00000000-0000-4000-8000-000000000001")


async def test_post_runs_a_query_and_answers_json_encoded_by_orjson(http):
    r = await http.post("/graphql", json={"query": "query Probe { __typename }", "operationName": "Probe"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"data": {"__typename": "Query"}}
    assert r.content == orjson.dumps({"data": {"__typename": "Query"}})  # compact, as orjson writes it
    assert r.headers["x-request-id"]


async def test_request_id_is_taken_from_the_client_when_sane(http):
    r = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "bad id\twith junk"})
    assert r.headers["x-request-id"] != "bad id\twith junk" and len(r.headers["x-request-id"]) == 16


async def test_get_runs_a_query(http):
    r = await http.get("/graphql", params={"query": "query Q($n: ID!) { node(id: $n) { id } }",
                                           "variables": json.dumps({"n": SOME_JOB})},
                       headers={"accept": "application/json"})
    assert r.status_code == 200
    assert r.json() == {"data": {"node": None}}


async def test_get_refuses_a_mutation(http):
    mutation = 'mutation { jobCancel(input: {id: "%s"}) { userErrors { code } } }' % SOME_JOB
    r = await http.get("/graphql", params={"query": mutation}, headers={"accept": "application/json"})
    assert r.status_code == 400, r.text
    assert r.text == "mutations are not allowed when using GET"


async def test_post_runs_a_mutation_with_user_errors(http):
    r = await http.post("/graphql", json={"query": 'mutation { jobCancel(input: {id: "not-an-id"}) '
                                                   "{ job { id } userErrors { code field message } } }"})
    assert r.status_code == 200
    payload = r.json()["data"]["jobCancel"]
    assert payload["job"] is None
    assert payload["userErrors"] == [{"code": "VALIDATION", "field": ["input", "id"],
                                      "message": "`not-an-id` is not a valid ID"}]


def _errors(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        payload = m.get("payload")
        if isinstance(payload, list):  # graphql-transport-ws `error`
            out += payload
        elif isinstance(payload, dict):
            out += payload.get("errors") or ([payload] if m["type"] == "error" else [])
    return out


async def test_graphql_transport_ws_acks_and_runs_queries_and_subscriptions(live):
    async with ws_session(live.ws_url, "graphql-transport-ws") as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await recv_until(ws, "connection_ack"))[-1]["type"] == "connection_ack"

        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "query Q { __typename }"}}))
        messages = await recv_until(ws, "complete")
        assert [m["type"] for m in messages] == ["next", "complete"]
        assert messages[0]["payload"] == {"data": {"__typename": "Query"}}

        # A real subscription: an anonymous caller is refused with a coded error, and the socket lives on.
        await ws.send(json.dumps({"id": "2", "type": "subscribe",
                                  "payload": {"query": 'subscription { jobUpdated(id: "%s") { id } }' % SOME_JOB}}))
        messages = await recv_until(ws, "complete", "error")
        assert [e["extensions"]["code"] for e in _errors(messages)] == ["UNAUTHENTICATED"], messages

        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json(ws))["type"] == "pong"


async def test_legacy_graphql_ws_acks_and_runs_subscriptions(live):
    async with ws_session(live.ws_url, "graphql-ws") as ws:
        assert ws.subprotocol == "graphql-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await recv_until(ws, "connection_ack"))[-1]["type"] == "connection_ack"

        await ws.send(json.dumps({"id": "1", "type": "start",
                                  "payload": {"query": 'subscription S { jobUpdated(id: "%s") { id } }' % SOME_JOB}}))
        messages = await recv_until(ws, "complete", "error")
        assert [e["extensions"]["code"] for e in _errors(messages)] == ["UNAUTHENTICATED"], messages

        # The legacy protocol is for subscriptions only; a query is refused clearly, not as an internal error.
        await ws.send(json.dumps({"id": "2", "type": "start", "payload": {"query": "query Q { __typename }"}}))
        messages = await recv_until(ws, "complete", "error")
        errors = _errors(messages)
        assert [(e["message"], e["extensions"]["code"]) for e in errors] == [("queries are not allowed", "BAD_REQUEST")]


async def test_websocket_messages_are_text_frames(live):
    async with ws_session(live.ws_url, "graphql-transport-ws") as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = await recv_json(ws)  # fails on a binary frame
        assert ack["type"] == "connection_ack"


async def test_websocket_with_a_bad_token_is_refused(live):
    async with ws_session(live.ws_url, "graphql-transport-ws") as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer not.a.jwt"}}))
        try:
            msg = await recv_json(ws)
        except Exception:  # closed without a message: also a refusal
            msg = None
        assert msg is None or msg.get("type") != "connection_ack"
        await ws.wait_closed()
        assert ws.close_code == 4403, ws.close_code


@pytest.mark.parametrize("payload", [{"authorization": 12345}, {"authorization": "Bearer insk_unknown"}])
async def test_websocket_with_bad_authorization_payloads_is_refused_cleanly(live, payload):
    async with ws_session(live.ws_url, "graphql-transport-ws") as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        await ws.wait_closed()
    assert ws.close_code == 4403, (ws.close_code, ws.close_reason)


async def test_unknown_subprotocol_is_closed_with_4406(live):
    async with ws_session(live.ws_url, "made-up-protocol") as ws:
        assert ws.subprotocol is None
        await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (4406, "Subprotocol not acceptable")


async def test_cors_and_websocket_origins_follow_settings(start_server):
    allowed, other = "https://app.example.com", "https://evil.example.net"
    server = start_server(cors_origins=[allowed], ws_allowed_origins=[allowed])
    preflight = {"access-control-request-method": "POST",
                 "access-control-request-headers": "content-type,authorization"}
    async with client(server.url) as http:
        ok = await http.options("/graphql", headers={"origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()

        bad = await http.options("/graphql", headers={"origin": other, **preflight})
        assert bad.status_code == 400
        assert "access-control-allow-origin" not in bad.headers

        simple = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": allowed})
        assert simple.headers["access-control-allow-origin"] == allowed
        simple = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": other})
        assert "access-control-allow-origin" not in simple.headers

    async with ws_session(server.ws_url, "graphql-transport-ws", additional_headers=Headers(origin=allowed)) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert (await recv_json(ws))["type"] == "connection_ack"
    with pytest.raises(InvalidStatus) as refused:
        async with ws_session(server.ws_url, "graphql-transport-ws", additional_headers=Headers(origin=other)):
            pass
    assert refused.value.response.status_code == 403
