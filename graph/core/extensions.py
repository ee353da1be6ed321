"""Schema extensions: error shaping (user-facing codes, masked internals), per-operation metrics,
and the depth/alias/token limits."""

from __future__ import annotations

import inspect
import logging
import time
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError, StrawberryInputCoercionError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.utils.await_maybe import await_maybe

from server import metrics
from server.errors import DomainError

if TYPE_CHECKING:
    from server.settings import Settings

log = logging.getLogger("insights.graphql")

# What Strawberry raises for a request that cannot run as sent (no query, unknown operation name,
# an operation type the transport does not take): the client's mistake, so the message is kept.
REQUEST_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)
# Input values Strawberry cannot convert while it builds a resolver's arguments, e.g. an explicit
# null for a `Maybe[T]` field sent through variables (graphql-core's validation cannot see it):
# the client's mistake, so VALIDATION with the message kept.
INPUT_ERRORS = (StrawberryInputCoercionError,)


MAX_OPERATION_LABELS = 1000
_operation_labels: set[str] = set()


def operation_label(name: str | None, seen: set[str] = _operation_labels, cap: int = MAX_OPERATION_LABELS) -> str:
    """The metrics label of an operation name. Clients choose names, so the number of distinct
    labels (Prometheus series, kept in memory forever) is capped; later names count as "other"."""
    label = (name or "anonymous")[:100]
    if label in seen:
        return label
    if len(seen) >= cap:
        return "other"
    seen.add(label)
    return label


def _operation_name(ctx) -> str:  # noqa: ANN001
    return operation_label(ctx.operation_name)


class ErrorShaping(SchemaExtension):
    """`DomainError` keeps its message and gets `extensions.code`; anything unexpected is logged
    with the request id and masked as "internal error", so no internals leak to clients.

    Streamed results (subscriptions, operations over websockets) are shaped one by one as they are
    sent, like single results at the end of the operation."""

    _streamed = False

    def _shape(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", None)
        operation = _operation_name(self.execution_context)
        shaped = []
        for err in errors:
            original = err.original_error
            if isinstance(original, DomainError):
                code = original.code.value
                shaped.append(GraphQLError(original.message, nodes=err.nodes, path=err.path,
                                           extensions={"code": code, **({"field": original.field} if original.field else {})}))
            elif isinstance(original, REQUEST_ERRORS):
                code = "BAD_REQUEST"
                shaped.append(GraphQLError(err.message, nodes=err.nodes, path=err.path, extensions={"code": code}))
            elif isinstance(original, INPUT_ERRORS) and err.path is not None:
                code = "VALIDATION"
                shaped.append(GraphQLError(err.message, nodes=err.nodes, path=err.path, extensions={"code": code}))
            elif original is None or isinstance(original, GraphQLError):
                code = (err.extensions or {}).get("code")
                if code is None and isinstance(err, GraphQLSyntaxError):
                    code = "GRAPHQL_PARSE_FAILED"
                if code is None:
                    # Errors without a path come from parsing and validation; with a path they are
                    # execution failures graphql-core raised itself (a non-null field resolved to
                    # null): a bug on our side, logged like any other internal error.
                    code = "GRAPHQL_VALIDATION_FAILED" if err.path is None else "INTERNAL"
                    if code == "INTERNAL":
                        log.error("internal error in %s (request_id=%s): %s", operation, request_id, err.message)
                shaped.append(GraphQLError(err.message, nodes=err.nodes, path=err.path,
                                           extensions={**(err.extensions or {}), "code": code}))
            else:
                code = "INTERNAL"
                log.error("internal error in %s (request_id=%s)", operation, request_id, exc_info=original)
                shaped.append(GraphQLError(f"internal error (request id {request_id})", nodes=err.nodes, path=err.path,
                                           extensions={"code": code, "requestId": request_id}))
            metrics.graphql_errors.labels(operation, code).inc()
        return shaped

    def _shape_result(self, result: Any) -> None:
        if result is not None and getattr(result, "errors", None):
            result.errors = self._shape(result.errors)

    def on_operation(self):  # noqa: ANN201
        self._streamed = False
        yield
        if self._streamed:  # every streamed result was shaped when it was sent
            return
        result = self.execution_context.result
        self._shape_result(getattr(result, "initial_result", result))

    def on_stream_result(self, result):  # noqa: ANN001, ANN201
        self._streamed = True
        self._shape_result(result)
        for part in (getattr(result, "incremental", None) or ()):
            self._shape_result(part)
        yield


class CachedParser(ParserCache):
    """`ParserCache` that leaves a document it cannot parse to Strawberry.

    `ParserCache` parses while entering the parse hooks, outside Strawberry's own error handling,
    so a syntax error (or too many tokens) escaped every `on_operation` hook: no error code, no
    metrics, and over websockets no clean error. Failing here, Strawberry parses again where the
    error becomes an ordinary result (only bad documents pay a second parse)."""

    def on_parse(self):  # noqa: ANN201
        ec = self.execution_context
        try:
            ec.graphql_document = self.cached_parse_document(ec.query, **ec.parse_options)
        except GraphQLError:
            pass
        yield


class OperationMetrics(SchemaExtension):
    def on_operation(self):  # noqa: ANN201
        started = time.perf_counter()
        yield
        ec = self.execution_context
        name = _operation_name(ec)
        try:
            op_type = ec.operation_type.value
        except RuntimeError:  # the document did not parse, so there is no operation
            op_type = "unknown"
        metrics.graphql_requests.labels(name, op_type).inc()
        metrics.graphql_latency.labels(name).observe(time.perf_counter() - started)


class StreamingExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner, with the two steps it repeats for every streamed result done cheaply.

    Strawberry looks up every extension's `on_stream_result` hook, wraps it in a new
    `contextlib.contextmanager` and an `AsyncExitStack`, and awaits every extension's
    `get_results`, for each result it streams. A subscription pushed to 1,000 websockets did that
    1,000 times per event: roughly a tenth of the fan-out's CPU. Here the hooks are found once per
    operation, a synchronous generator hook runs directly, and extensions that keep the default
    `get_results` are skipped. Anything else (async hooks, plain callables) goes through
    Strawberry's own path, so behaviour does not change."""

    _stream_hooks: list | None = None
    _stream_general = False
    _results_from: list | None = None

    def _hooks(self) -> list | None:
        if self._stream_hooks is None:
            default = SchemaExtension.on_stream_result
            hooks = []
            for extension in self.extensions:
                fn = getattr(type(extension), "on_stream_result", default)
                if fn is default:
                    continue
                if not inspect.isgeneratorfunction(fn):
                    hooks = None  # not ours to shortcut: Strawberry's general path
                    break
                hooks.append((extension, fn))
            self._stream_hooks = hooks if hooks is not None else []
            self._stream_general = hooks is None
        return None if self._stream_general else self._stream_hooks

    def on_stream_result(self, result):  # noqa: ANN001, ANN201
        hooks = self._hooks()
        if hooks is None:
            return super().on_stream_result(result)
        return _SyncStreamHooks(hooks, result)

    async def get_extensions_results(self, ctx) -> dict[str, Any]:  # noqa: ANN001
        if self._results_from is None:
            default = SchemaExtension.get_results
            self._results_from = [e for e in self.extensions if getattr(type(e), "get_results", default) is not default]
        data: dict[str, Any] = {}
        for extension in self._results_from:
            data.update(await await_maybe(extension.get_results()))
        if ctx.extensions_results:
            data.update(ctx.extensions_results)
        return data


class _SyncStreamHooks:
    """`on_stream_result` generator hooks entered in order and left in reverse, as an ExitStack would."""

    __slots__ = ("hooks", "result", "running")

    def __init__(self, hooks: list, result: Any):
        self.hooks = hooks
        self.result = result
        self.running: list = []

    async def __aenter__(self) -> None:
        for extension, fn in self.hooks:
            gen = fn(extension, self.result)
            next(gen)
            self.running.append(gen)

    async def __aexit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        suppressed = False
        while self.running:
            gen = self.running.pop()
            try:
                if exc is None or suppressed:
                    next(gen)
                else:
                    gen.throw(exc)
            except StopIteration:
                if exc is not None and not suppressed:
                    suppressed = True  # the hook swallowed the exception, as contextmanager does
                continue
            except BaseException as raised:
                if raised is exc:
                    continue
                raise
            raise RuntimeError("on_stream_result hook did not stop")
        return suppressed


def expected_error(err: GraphQLError) -> bool:
    """A failure the client caused (bad input, parse/validation, a DomainError): not worth an ERROR log."""
    original = err.original_error
    if isinstance(original, (DomainError, *REQUEST_ERRORS, *INPUT_ERRORS)):
        return True
    return (original is None or isinstance(original, GraphQLError)) and err.path is None


class InsightsSchema(strawberry.Schema):
    """Strawberry logs every error of every operation at ERROR level with its traceback, so each
    typo or NOT_FOUND looked like an incident. Expected errors are left out; unexpected ones are
    still logged (and by `ErrorShaping` with the request id).

    Executes with `graph.core.shared.SharedEventExecutor`: identical subscriptions share one
    execution per event."""

    def __init__(self, *args: Any, **kwargs: Any):
        from graph.core.shared import SharedEventExecutor

        kwargs.setdefault("execution_context_class", SharedEventExecutor)
        super().__init__(*args, **kwargs)

    def create_extensions_runner(self, execution_context, extensions):  # noqa: ANN001, ANN201
        return StreamingExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        super().process_errors([e for e in errors if not expected_error(e)], execution_context)


def limit_extensions(settings: "Settings") -> list:
    """Depth and alias limits as validation rules built once per schema, plus the token limit.

    Strawberry's `QueryDepthLimiter`/`MaxAliasesLimiter` build a new rule class per instance; as
    extension factories that is one per request, and since `ValidationCache` keys on the rules,
    it never hit. Sharing the rule classes makes identical documents validate once.
    """
    rules = (depth_rule(settings.max_query_depth, None, None), aliases_rule(settings.max_aliases))
    return [
        lambda: AddValidationRules(list(rules)),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
    ]
