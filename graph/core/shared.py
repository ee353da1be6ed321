"""One execution per subscription event, shared by every subscriber that would compute the same result.

Why: a pushed event reaches every subscriber of its channel (1,000 websockets of one organization
in bench/incident_fanout.py), and graphql-core completes the selection once per subscriber. For a
four-field selection that was about half of the server's CPU per event (bench --ablate share:
~430 ms against ~215 ms per event on the shared 2-core machine). When subscribers run the same
document with the same variables and would see the same data, the first one executes and the
others take its result.

Why not also serialize once and write the same bytes to every socket: encoding one `next` message
with orjson takes under 1 µs, well under 1% of a subscriber's cost; what remains per subscriber is
mostly the socket write and permessage-deflate, which are per connection by nature (each
connection has its own compression context). Sharing the `ExecutionResult` keeps Strawberry's
transport (message ids, error shaping per request id) untouched.

How: `SharedEventExecutor` is the schema's graphql-core executor (InsightsSchema installs it). For
each event graphql-core builds a per-event executor whose root value is what the subscription's
generator yielded. A generator that wants its events shared yields `share(payload, key)`: `key`
says which event this is *and* everything about the subscriber that can change what the selection
resolves to (`visibility_key`). The executor then keys the result by

    (payload key, the operation node (so the document and operation name), the variables)

and keeps it in a small per-event-loop LRU of futures: the first subscriber's execution runs as its
own task (shielded, so one subscriber closing its websocket does not cancel the others' result),
the later ones await or take the finished result. Everything else stays per subscriber: the
generator's access check before it yields, error shaping (request ids), and sending.

The operation node is compared by identity: the parser cache (graph/core/extensions.CachedParser)
hands the same `DocumentNode` to every request with the same text, so identical documents share;
a document parsed twice merely does not share. Entries hold the node, so its id is not reused
while the entry lives. Variables must be plain JSON-like values (or other hashable scalars);
anything else makes the subscription run alone.

DESIGN §4 (each event resolves with fresh loaders) still holds: the shared execution *is* a fresh
resolution of that event, with the first subscriber's per-event loaders; it is just not repeated
for subscribers that would get the same answer.

What must stay true for this to be safe: the result of a selection may depend on the subscriber
only through `visibility_key` (organization memberships and roles, key scope, key project). The
loaders decide visibility from exactly these facts. A field whose value depends on *who* asks
(the user id, e.g. "viewerIsAssignee") must not be reachable from a shared payload unless that
fact is added to `visibility_key`.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import enum
import functools
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

SHARE_ATTR = "_insights_share_key"
MEMO_SIZE = 512  # results kept per event loop; an event is only looked up while it fans out (< 1 s)

_SCALARS = (str, int, float, bool, type(None), uuid.UUID, decimal.Decimal, datetime.date, datetime.time,
            datetime.timedelta, enum.Enum)
_UNSET = object()
_memos: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict] = weakref.WeakKeyDictionary()


def share(payload: Any, key: Hashable) -> Any:
    """Mark a subscription payload as shareable under `key` (which must include the event's
    identity and `visibility_key` of the subscriber) and return it."""
    setattr(payload, SHARE_ATTR, key)
    return payload


def share_key_of(payload: Any) -> Hashable | None:
    return getattr(payload, SHARE_ATTR, None)


def visibility_key(principal: Any) -> Hashable:
    """Everything about a principal that the loaders consult to decide what it may see: two
    principals with equal keys see the same data (the user id is not part of it: being a member
    of an organization already makes one a colleague of its members, see load_users)."""
    roles = principal.roles
    bound = principal.key_organization_id
    if bound is not None:  # an organization-bound key sees that organization only
        roles = {bound: roles[bound]} if bound in roles else {}
    return (principal.user_id is not None, frozenset(roles.items()), principal.scope, principal.key_project_id)


def _freeze(value: Any) -> Hashable:
    """A hashable, type-faithful form of coerced variable values; raises TypeError for others."""
    if isinstance(value, _SCALARS):
        return (type(value), value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_freeze(v) for v in value))
    raise TypeError(f"cannot share on a variable of type {type(value).__name__}")


def _memo() -> OrderedDict:
    loop = asyncio.get_running_loop()
    memo = _memos.get(loop)
    if memo is None:
        memo = _memos[loop] = OrderedDict()
    return memo


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, plus sharing of subscription event results (see the module doc)."""

    _per_event = False
    _fingerprint: Any = _UNSET

    def _operation_fingerprint(self) -> Hashable | None:
        """(operation node, variables) of this subscription, or None when it cannot share."""
        if self._fingerprint is _UNSET:
            try:
                variables = _freeze(dict(self.variable_values.coerced))
            except TypeError:
                self._fingerprint = None
            else:
                self._fingerprint = (id(self.operation), variables)
        return self._fingerprint

    def build_per_event_executor(self, payload: Any):  # noqa: ANN201
        fingerprint = self._operation_fingerprint()  # once per subscription; the copies inherit it
        key = share_key_of(payload)
        if key is not None and fingerprint is not None:
            entry = _memo().get((key, fingerprint))
            if entry is not None and not isinstance(entry[0], asyncio.Future):
                return _Finished(entry[0])  # another subscriber's result: no executor needed
        executor = super().build_per_event_executor(payload)
        executor._per_event = True
        return executor

    def execute_operation(self, serially: bool | None = None):  # noqa: ANN201
        if not self._per_event:
            return super().execute_operation(serially)
        key = share_key_of(self.root_value)
        fingerprint = self._fingerprint
        if key is None or fingerprint is None:
            return super().execute_operation(serially)
        key = (key, fingerprint)
        memo = _memo()
        entry = memo.get(key)
        if entry is not None:
            pending = entry[0]
            if isinstance(pending, asyncio.Future):
                if not pending.done():
                    return _wait(pending)
                if pending.cancelled() or pending.exception() is not None:
                    memo.pop(key, None)  # do not hand a failure to later subscribers: run again
                    return super().execute_operation(serially)
                return pending.result()
            return pending
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            result = asyncio.ensure_future(result)
            result.add_done_callback(functools.partial(_settle, memo, key))
        memo[key] = (result, self.operation)  # the node keeps id(operation) in the key unique
        while len(memo) > MEMO_SIZE:
            memo.popitem(last=False)
        return _wait(result) if isinstance(result, asyncio.Future) else result


class _Finished:
    """Stands in for a per-event executor when the event's result is already there."""

    __slots__ = ("result",)

    def __init__(self, result: Any):
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return self.result


def _settle(memo: OrderedDict, key: Hashable, task: asyncio.Future) -> None:
    """A finished execution: later subscribers take its result without waiting (or, when it
    failed, run their own). Retrieving the exception also keeps asyncio from logging it as never
    retrieved when every waiter has gone."""
    entry = memo.get(key)
    failed = task.cancelled() or task.exception() is not None
    if entry is not None and entry[0] is task:
        if failed:
            del memo[key]
        else:
            memo[key] = (task.result(), entry[1])


async def _wait(pending: asyncio.Future):  # noqa: ANN202
    return await asyncio.shield(pending)  # a subscriber that leaves does not cancel the others' result

