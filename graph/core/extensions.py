"""Schema extensions: error shaping (user-facing codes, masked internals) and per-operation metrics."""

from __future__ import annotations

import logging
import time

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from server import metrics
from server.errors import DomainError

log = logging.getLogger("insights.graphql")


def _operation_name(ctx) -> str:  # noqa: ANN001
    return (ctx.operation_name or "anonymous")[:100]


class ErrorShaping(SchemaExtension):
    """`DomainError` keeps its message and gets `extensions.code`; anything unexpected is logged
    with the request id and masked as "internal error", so no internals leak to clients."""

    def on_operation(self):  # noqa: ANN201
        yield
        result = self.execution_context.result
        if not result or not result.errors:
            return
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", None)
        shaped = []
        for err in result.errors:
            original = err.original_error
            if isinstance(original, DomainError):
                code = original.code.value
                shaped.append(GraphQLError(original.message, nodes=err.nodes, path=err.path,
                                           extensions={"code": code, **({"field": original.field} if original.field else {})}))
            elif original is None or isinstance(original, GraphQLError):
                code = (err.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED")
                shaped.append(GraphQLError(err.message, nodes=err.nodes, path=err.path, extensions={**(err.extensions or {}), "code": code}))
            else:
                code = "INTERNAL"
                log.error("internal error in %s (request_id=%s)", _operation_name(self.execution_context),
                          request_id, exc_info=original)
                shaped.append(GraphQLError(f"internal error (request id {request_id})", nodes=err.nodes, path=err.path,
                                           extensions={"code": code, "requestId": request_id}))
            metrics.graphql_errors.labels(_operation_name(self.execution_context), code).inc()
        result.errors = shaped


class OperationMetrics(SchemaExtension):
    def on_operation(self):  # noqa: ANN201
        started = time.perf_counter()
        yield
        ec = self.execution_context
        name = _operation_name(ec)
        op_type = ec.operation_type.value if ec.operation_type else "unknown"
        metrics.graphql_requests.labels(name, op_type).inc()
        metrics.graphql_latency.labels(name).observe(time.perf_counter() - started)
