"""`ErrorShaping` on a small schema of its own: expected failures keep their message and code,
unexpected ones are masked to "internal error" plus the request id, which the log line carries
together with the traceback; streamed results (subscriptions) are shaped too."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncGenerator
from types import SimpleNamespace

import strawberry

from graph.core.extensions import ErrorShaping, InsightsSchema
from server import metrics
from server.errors import DomainError, ErrorCode

SECRET = "postgres://admin:hunter2@db"


@strawberry.type
class Query:
    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError(f"could not connect to {SECRET}")

    @strawberry.field
    def missing(self) -> int:
        raise DomainError(ErrorCode.NOT_FOUND, "widget not found", ["input", "id"])

    @strawberry.field
    def fine(self) -> int:
        return 1

    @strawberry.field
    def broken_promise(self) -> int:
        return None  # type: ignore[return-value]  # a bug: non-null field resolves to null


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        yield 1
        raise RuntimeError(f"stream broke at {SECRET}")

    @strawberry.subscription
    async def refused(self) -> AsyncGenerator[int, None]:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "sign in or send an API key")
        yield 0  # pragma: no cover


schema = InsightsSchema(query=Query, subscription=Subscription, extensions=[ErrorShaping])


def errors_counted(operation: str, code: str) -> float:
    return metrics.registry.get_sample_value(
        "insights_graphql_errors_total", {"operation": operation, "code": code}) or 0.0


async def test_unexpected_error_is_masked_and_logged_with_the_request_id(caplog):
    before = errors_counted("Boom", "INTERNAL")
    with caplog.at_level(logging.ERROR, logger="insights.graphql"):
        result = await schema.execute("query Boom { fine boom }", context_value=SimpleNamespace(request_id="req-7f3a"))
    assert result.data is None or result.data.get("fine") == 1
    [error] = result.errors
    assert error.message == "internal error (request id req-7f3a)"
    assert SECRET not in error.message and "RuntimeError" not in error.message
    assert error.extensions == {"code": "INTERNAL", "requestId": "req-7f3a"}
    assert error.path == ["boom"]

    records = [r for r in caplog.records if r.name == "insights.graphql" and "req-7f3a" in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    record = records[0]
    assert "Boom" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    logged = "".join(traceback.format_exception(*record.exc_info))
    assert SECRET in logged and "in boom" in logged  # the traceback reaches the log, not the client
    assert errors_counted("Boom", "INTERNAL") == before + 1


async def test_domain_error_keeps_its_message_code_and_field():
    result = await schema.execute("query { missing }", context_value=SimpleNamespace(request_id="r1"))
    [error] = result.errors
    assert error.message == "widget not found"
    assert error.extensions == {"code": "NOT_FOUND", "field": ["input", "id"]}


async def test_validation_errors_get_a_code():
    result = await schema.execute("query { nope }", context_value=SimpleNamespace(request_id="r2"))
    [error] = result.errors
    assert "nope" in error.message
    assert error.extensions["code"] == "GRAPHQL_VALIDATION_FAILED"


async def sent(query: str, request_id: str) -> list[tuple]:
    """Each streamed result as a transport sends it: read when it is yielded, not after the stream ends."""
    stream = await schema.subscribe(query, context_value=SimpleNamespace(request_id=request_id))
    return [(r.data, [(e.message, dict(e.extensions or {})) for e in r.errors or ()]) async for r in stream]


async def test_streamed_errors_are_masked_when_sent(caplog):
    with caplog.at_level(logging.ERROR, logger="insights.graphql"):
        results = await sent("subscription Ticks { ticks }", "req-s1")
    assert results[0] == ({"ticks": 1}, [])
    [(message, extensions)] = results[-1][1]
    assert message == "internal error (request id req-s1)"
    assert SECRET not in message
    assert extensions == {"code": "INTERNAL", "requestId": "req-s1"}
    assert any("req-s1" in r.getMessage() and r.exc_info for r in caplog.records if r.name == "insights.graphql")


async def test_streamed_domain_error_gets_its_code_when_sent():
    results = await sent("subscription { refused }", "r3")
    [(message, extensions)] = results[-1][1]
    assert message == "sign in or send an API key"
    assert extensions["code"] == "UNAUTHENTICATED"


async def test_a_non_null_field_resolving_to_null_is_internal_and_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="insights.graphql"):
        result = await schema.execute("query Promise { brokenPromise }", context_value=SimpleNamespace(request_id="r4"))
    [error] = result.errors
    assert error.extensions["code"] == "INTERNAL"
    assert error.message == "internal error (request id r4)"
    assert any("r4" in r.getMessage() for r in caplog.records if r.name == "insights.graphql")


async def test_expected_errors_are_not_logged_as_errors_but_unexpected_ones_are(caplog):
    with caplog.at_level(logging.DEBUG):
        await schema.execute("query { missing }", context_value=SimpleNamespace(request_id="r5"))
        await schema.execute("query { nope }", context_value=SimpleNamespace(request_id="r5"))
        await schema.execute("query {", context_value=SimpleNamespace(request_id="r5"))
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        await schema.execute("query { boom }", context_value=SimpleNamespace(request_id="r6"))
    assert any(r.levelno >= logging.ERROR and r.exc_info for r in caplog.records)


def test_operation_labels_are_capped():
    from graph.core.extensions import operation_label

    seen: set[str] = set()
    assert [operation_label(f"Op{i}", seen, cap=3) for i in range(5)] == ["Op0", "Op1", "Op2", "other", "other"]
    assert operation_label("Op1", seen, cap=3) == "Op1"  # known names keep their label
    assert operation_label(None, set(), cap=3) == "anonymous"
    assert operation_label("x" * 500, set(), cap=3) == "x" * 100
