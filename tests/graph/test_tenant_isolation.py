"""Tenant isolation of `node(id:)` and `nodes(ids:)` for EVERY type implementing `Node`.

For each Node type, an object is created in organization A through the public API (factories in
tests/support/factories.py). A's owner gets it; a member of organization B (with a session or
with an API key) and an anonymous caller get null, exactly as for a missing object. A Node type
without a factory fails this test: add one when adding a type.
"""

from __future__ import annotations

import pytest

import graph.schema  # noqa: F401  registers every domain's node types
from graph.core.node import registered_nodes
from tests.support.client import GQL
from tests.support.factories import FACTORIES, World

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
KEY = """mutation { apiKeyCreate(input: {name: "b's key", scope: read}) { token userErrors { code message } } }"""

TYPES = sorted(set(registered_nodes()) | set(FACTORIES))


@pytest.fixture(scope="module")
async def worlds(live):  # noqa: ANN001, ANN201
    gql = GQL(live.url)
    a = await World.create(gql, "Org A")
    b = await World.create(gql, "Org B")
    data = await gql(KEY, token=b.owner_token)
    assert data["apiKeyCreate"]["userErrors"] == []
    anonymous = GQL(live.url)  # its own client: `gql` keeps the session cookies of the logins it made
    yield gql, a, b, data["apiKeyCreate"]["token"], anonymous
    await gql.aclose()
    await anonymous.aclose()


async def test_every_node_type_has_a_factory(worlds):
    gql, *_ = worlds
    data = await gql('{ __type(name: "Node") { possibleTypes { name } } }')
    in_schema = {t["name"] for t in data["__type"]["possibleTypes"]}
    assert {"User", "Organization", "Membership", "ApiKey", "Invite", "Job", "AuditEntry"} <= in_schema
    missing = in_schema - set(FACTORIES)
    assert not missing, f"Node types without a factory in tests/support/factories.py: {sorted(missing)}"
    unregistered = in_schema - set(registered_nodes())
    assert not unregistered, f"Node types not registered with register_node (node(id:) cannot load them): {sorted(unregistered)}"


@pytest.mark.parametrize("type_name", TYPES)
async def test_node_of_another_tenant_is_null(worlds, type_name):
    gql, a, b, b_key, anonymous = worlds
    assert type_name in FACTORIES, f"no factory for Node type {type_name}: add one to tests/support/factories.py"
    gid = await FACTORIES[type_name](a)

    mine = await gql(NODE, {"id": gid}, token=a.owner_token)
    assert mine["node"] == {"__typename": type_name, "id": gid}
    mine = await gql(NODES, {"ids": [gid, gid]}, token=a.owner_token)
    assert mine["nodes"] == [{"__typename": type_name, "id": gid}] * 2

    for who, client, token in (("org B's owner", gql, b.owner_token), ("org B's API key", gql, b_key),
                               ("anonymous", anonymous, None)):
        theirs = await client(NODE, {"id": gid}, token=token)
        assert theirs["node"] is None, f"{who} can read {type_name} {gid} of another organization"
        theirs = await client(NODES, {"ids": [gid]}, token=token)
        assert theirs["nodes"] == [None], f"{who} can read {type_name} {gid} of another organization"
