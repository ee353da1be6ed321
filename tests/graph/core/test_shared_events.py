"""`SharedEventExecutor` on a small schema of its own: subscribers that run the same document with
the same variables on a payload shared under the same key execute once per event; another
document, other variables or another key execute on their own; errors stay per subscriber
(each its own request id); and `StreamingExtensionsRunner` runs stream hooks as Strawberry does."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncGenerator
from types import SimpleNamespace

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from graph.core.extensions import CachedParser, ErrorShaping, InsightsSchema
from graph.core.shared import _freeze, share, visibility_key
from server.domains.accounts.models import KeyScope, Role
from server.security.principal import Principal

calls: Counter = Counter()
EVENTS = 3
run_id = [""]  # events of one test are new events to every other test


@strawberry.type
class Event:
    n: int

    @strawberry.field
    def doubled(self) -> int:
        calls["doubled"] += 1
        return self.n * 2

    @strawberry.field
    async def later(self, plus: int = 0) -> int:
        calls["later"] += 1
        await asyncio.sleep(0.01)
        return self.n + plus

    @strawberry.field
    def broken(self) -> int:
        calls["broken"] += 1
        raise RuntimeError("secret detail")


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self, info: strawberry.Info, shared: bool = True) -> AsyncGenerator[Event, None]:
        for n in range(EVENTS):
            event = Event(n=n)
            yield share(event, ("events", run_id[0], n, info.context.key)) if shared else event


schema = InsightsSchema(query=Query, subscription=Subscription,
                        extensions=[ErrorShaping, lambda: CachedParser(maxsize=10)])


async def run(query: str, key: str = "k", variables: dict | None = None, request_id: str = "r") -> list:
    stream = await schema.subscribe(query, variable_values=variables,
                                    context_value=SimpleNamespace(key=key, request_id=request_id))
    return [r async for r in stream]


async def together(*runs) -> list:  # noqa: ANN002
    return await asyncio.gather(*runs)


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    run_id[0] = uuid.uuid4().hex


async def test_identical_subscriptions_execute_once_per_event():
    results = await together(*(run("subscription { events { n doubled } }") for _ in range(5)))
    assert calls["doubled"] == EVENTS
    for stream in results:
        assert [r.data for r in stream] == [{"events": {"n": n, "doubled": 2 * n}} for n in range(EVENTS)]
        assert all(not r.errors for r in stream)


async def test_an_async_selection_runs_once_while_the_others_wait_for_it():
    results = await together(*(run("subscription { events { later } }") for _ in range(4)))
    assert calls["later"] == EVENTS
    assert all([r.data["events"]["later"] for r in stream] == list(range(EVENTS)) for stream in results)


async def test_other_documents_variables_or_keys_execute_on_their_own():
    q = "subscription($p: Int!) { events { later(plus: $p) } }"
    a, b, c, d, e = await together(run(q, variables={"p": 1}), run(q, variables={"p": 1}),
                                   run(q, variables={"p": 2}), run(q, key="other", variables={"p": 1}),
                                   run("subscription { events { later(plus: 1) } }"))
    assert calls["later"] == 4 * EVENTS  # a and b share; c (variables), d (key) and e (document) do not
    assert [r.data for r in a] == [r.data for r in b] == [r.data for r in d] == [r.data for r in e]
    assert [r.data["events"]["later"] for r in c] == [n + 2 for n in range(EVENTS)]


async def test_payloads_that_are_not_shared_execute_for_each_subscriber():
    await together(*(run("subscription { events(shared: false) { doubled } }") for _ in range(3)))
    assert calls["doubled"] == 3 * EVENTS


async def test_a_shared_failure_is_shaped_for_each_subscriber_with_its_own_request_id():
    a, b = await together(run("subscription { events { n broken } }", request_id="req-a"),
                          run("subscription { events { n broken } }", request_id="req-b"))
    assert calls["broken"] == EVENTS
    assert [e.message for r in a for e in r.errors] == ["internal error (request id req-a)"] * EVENTS
    assert [e.message for r in b for e in r.errors] == ["internal error (request id req-b)"] * EVENTS
    assert all("secret" not in e.message for r in a + b for e in r.errors)


def test_variables_that_cannot_be_compared_are_refused():
    assert _freeze({"a": [1, "x", None], "b": {"c": 1.5}}) == _freeze({"b": {"c": 1.5}, "a": [1, "x", None]})
    assert _freeze({"a": 1}) != _freeze({"a": True}) != _freeze({"a": "1"})
    with pytest.raises(TypeError):
        _freeze({"a": object()})


def test_visibility_key_covers_roles_scope_and_key_binding():
    org, other = uuid.uuid4(), uuid.uuid4()
    alice = Principal(user_id=uuid.uuid4(), roles={org: Role.viewer})
    bob = Principal(user_id=uuid.uuid4(), roles={org: Role.viewer})
    assert visibility_key(alice) == visibility_key(bob)  # same facts, same data
    assert visibility_key(alice) != visibility_key(Principal(user_id=bob.user_id, roles={org: Role.editor}))
    assert visibility_key(alice) != visibility_key(Principal(user_id=bob.user_id, roles={org: Role.viewer, other: Role.viewer}))
    assert visibility_key(alice) != visibility_key(Principal(user_id=bob.user_id, roles={org: Role.viewer},
                                                             scope=KeyScope.read))
    assert visibility_key(alice) != visibility_key(Principal(user_id=bob.user_id, roles={org: Role.viewer},
                                                             key_project_id=uuid.uuid4()))
    bound = Principal(user_id=bob.user_id, roles={org: Role.viewer, other: Role.owner}, key_organization_id=org)
    assert visibility_key(bound) == visibility_key(alice)  # a key bound to `org` sees only `org`


# --- StreamingExtensionsRunner ----------------------------------------------------------------------

seen: list = []


class Recording(SchemaExtension):
    def on_stream_result(self, result):  # noqa: ANN001, ANN201
        seen.append(("enter", result.data))
        yield
        seen.append(("exit", result.data))


class AsyncRecording(SchemaExtension):
    async def on_stream_result(self, result):  # noqa: ANN001, ANN201
        seen.append(("async enter", result.data))
        yield
        seen.append(("async exit", result.data))


class Results(SchemaExtension):
    def get_results(self) -> dict:
        return {"answer": 42}


@pytest.mark.parametrize("extensions, expected", [
    ([Recording], [("enter", 0), ("exit", 0), ("enter", 1), ("exit", 1), ("enter", 2), ("exit", 2)]),
    ([AsyncRecording], [("async enter", 0), ("async exit", 0), ("async enter", 1), ("async exit", 1),
                        ("async enter", 2), ("async exit", 2)]),
])
async def test_stream_hooks_run_around_each_result(extensions, expected):
    s = InsightsSchema(query=Query, subscription=Subscription, extensions=[*extensions, Results])
    seen.clear()
    stream = await s.subscribe("subscription { events(shared: false) { n } }",
                               context_value=SimpleNamespace(key="k", request_id="r"))
    async with contextlib.aclosing(stream):
        async for result in stream:
            assert result.extensions == {"answer": 42}
    assert [(what, data["events"]["n"]) for what, data in seen] == expected
