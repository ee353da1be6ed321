"""Per-operation context: who is asking, the runtime, a request id, and the operation's dataloaders."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.dataloader import DataLoader

from server.runtime import Runtime
from server.security.principal import Principal

Batch = Callable[[Runtime, Principal, list[Any]], Awaitable[list[Any]]]


class Context:
    def __init__(self, rt: Runtime, principal: Principal, request: Any = None, response: Any = None,
                 request_id: str | None = None):
        self.rt = rt
        self.principal = principal
        self.request = request
        self.response = response
        self.request_id = request_id or uuid.uuid4().hex[:16]
        self.connection_params: dict | None = None
        self._loaders: dict[Batch, DataLoader] = {}

    @property
    def settings(self):  # noqa: ANN201
        return self.rt.settings

    def loader(self, batch: Batch) -> DataLoader:
        """The operation's dataloader for `batch(rt, principal, keys)`, created on first use."""
        dl = self._loaders.get(batch)
        if dl is None:
            dl = DataLoader(load_fn=functools.partial(batch, self.rt, self.principal))
            self._loaders[batch] = dl
        return dl

    def reset_loaders(self) -> None:
        """Subscriptions call this per pushed event, so each event reads fresh rows."""
        self._loaders.clear()
