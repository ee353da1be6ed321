"""One Redis pub/sub listener per API process, fanned out to bounded per-subscriber queues.

A subscriber whose queue is full is dropped (its stream ends) rather than letting memory grow;
the listener reconnects with backoff when Redis goes away and re-subscribes every channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis

log = logging.getLogger("insights.pubsub")

_CLOSED = object()


class Subscription:
    def __init__(self, maxsize: int):
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.dropped = False

    def offer(self, message: object) -> bool:
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            return False

    async def __aiter__(self) -> AsyncIterator[dict]:
        while True:
            item = await self.queue.get()
            if item is _CLOSED:
                return
            yield item


class PubSubHub:
    def __init__(self, redis: aioredis.Redis, queue_size: int = 100):
        self.redis = redis
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self._pubsub = None
        self._task: asyncio.Task | None = None
        self._changed = asyncio.Event()
        self._stopping = False
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pubsub-hub")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            with contextlib_suppress():
                await self._task
        for subs in self._subs.values():
            for sub in subs:
                sub.offer(_CLOSED)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        sub = Subscription(self.queue_size)
        first = channel not in self._subs
        self._subs.setdefault(channel, set()).add(sub)
        if first and self._pubsub is not None:
            try:
                await self._pubsub.subscribe(channel)
            except Exception:  # the listener re-subscribes everything on reconnect
                log.warning("subscribe to %s deferred until reconnect", channel)
        try:
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
                    if self._pubsub is not None:
                        try:
                            await self._pubsub.unsubscribe(channel)
                        except Exception:
                            pass

    def _dispatch(self, channel: str, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        for sub in list(self._subs.get(channel, ())):
            if not sub.offer(message):
                log.warning("dropping slow subscriber of %s", channel)
                self._subs[channel].discard(sub)
                # Make room for the end-of-stream marker so the consumer stops.
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(_CLOSED)

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                # A placeholder channel keeps the connection in subscribe mode when nobody listens.
                await pubsub.subscribe("insights:hub", *self._subs.keys())
                self._pubsub = pubsub
                self.connected.set()
                backoff = 0.2
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
                        self._dispatch(channel, msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.connected.clear()
                self._pubsub = None
                log.warning("pub/sub listener lost Redis (%s); reconnecting in %.1f s", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self._pubsub = None
                try:
                    await pubsub.aclose()
                except Exception:
                    pass


def contextlib_suppress():  # noqa: ANN201
    import contextlib

    return contextlib.suppress(asyncio.CancelledError, Exception)
