"""One Redis pub/sub listener per API process, fanned out to bounded per-subscriber queues.

- A subscriber whose queue is full is dropped: its queue is emptied and its stream ends with
  `SubscriberDropped`, rather than letting memory grow.
- `subscribe()` returns once Redis confirmed the subscription (or the listener is disconnected),
  so a caller that subscribes and then reads the database misses no change made after its read.
- When Redis goes away the listener reconnects with backoff, re-subscribes every channel and then
  sends each subscriber a `{"type": "Resync"}` event: events published while it was away are lost,
  so subscribers re-read what they show.
- A channel may have a `prepare` function (given to `subscribe`): the work every subscriber of the
  process would otherwise repeat for a message (parse it, read the changed row, check who may
  still see it). It runs once per message, before the message is handed out, and subscribers find
  its outcome in `message.prepared`. Why before: 1,000 subscribers awaiting one shared read cost
  1,000 more task wake-ups per event (about a sixth of the fan-out's CPU in
  bench/incident_fanout.py); this way each wakes once, with everything at hand. Messages of a channel are still delivered in order (each waits
  for the one before); a preparation that fails or takes longer than PREPARE_TIMEOUT is logged and
  the message goes out with `prepared = None` (subscribers then do the work themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis

log = logging.getLogger("insights.pubsub")

PLACEHOLDER = "insights:hub"  # keeps the connection in subscribe mode when nobody listens
RESYNC = {"type": "Resync"}
CONFIRM_TIMEOUT = 2.0
PREPARE_TIMEOUT = 5.0
MAX_PREPARING = 1000  # messages being prepared at once (all channels); past that, sent unprepared
BACKOFF_START, BACKOFF_MAX = 0.1, 10.0

_CLOSED = object()
_DROPPED = object()


class Message(dict):
    """A message as subscribers get it: the published JSON object, plus `prepared`, what the
    channel's `prepare` function made of it (once for every subscriber of this process; None when
    the channel has none or it failed). Shared by the subscribers: read it, never change it."""

    __slots__ = ("prepared",)

    def __init__(self, data: dict, prepared: object = None):
        super().__init__(data)
        self.prepared = prepared


Prepare = Callable[[dict], Awaitable[object]]


class SubscriberDropped(Exception):
    """The subscriber did not keep up with its events and was dropped."""


class Subscription:
    def __init__(self, channel: str, maxsize: int):
        self.channel = channel
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.dropped = False
        self.ended = False

    def offer(self, message: object) -> bool:
        if self.ended:
            return True
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            return False

    def end(self, marker: object = _CLOSED) -> None:
        """Release what is queued and leave only the end marker (never blocks, never grows)."""
        if self.ended:
            return
        self.ended = True
        self.dropped = marker is _DROPPED
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(marker)

    async def __aiter__(self) -> AsyncIterator[dict]:
        while True:
            item = await self.queue.get()
            if item is _CLOSED:
                return
            if item is _DROPPED:
                raise SubscriberDropped(f"subscriber of {self.channel} fell behind and was dropped")
            yield item


class PubSubHub:
    def __init__(self, redis: aioredis.Redis, queue_size: int = 100):
        self.redis = redis
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self._pubsub = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._confirm: dict[str, asyncio.Event] = {}
        self._resync: set[str] = set()
        self._prepare: dict[str, Prepare] = {}
        self._tails: dict[str, asyncio.Task] = {}  # per channel: the last message on its way out
        self._preparing = 0
        self.connected = asyncio.Event()
        self.connections = 0  # how many times the listener (re)connected
        self.dropped = 0      # how many slow subscribers were dropped

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pubsub-hub")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for tail in list(self._tails.values()):
            tail.cancel()
        for subs in self._subs.values():
            for sub in subs:
                sub.end(_CLOSED)

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subs.get(channel, ()))
        return sum(len(s) for s in self._subs.values())

    @asynccontextmanager
    async def subscribe(self, channel: str, prepare: Prepare | None = None) -> AsyncIterator[Subscription]:
        """Subscribe to `channel`. `prepare(message)`: see the module doc; a channel has one (the
        first subscriber's that gives one: all subscribers of a channel are the same code)."""
        sub = Subscription(channel, self.queue_size)
        first = channel not in self._subs
        self._subs.setdefault(channel, set()).add(sub)
        if prepare is not None:
            self._prepare.setdefault(channel, prepare)
        try:
            if first:
                await self._subscribe_channel(channel)
            elif (pending := self._confirm.get(channel)) is not None:  # another subscriber's SUBSCRIBE in flight
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(pending.wait(), CONFIRM_TIMEOUT)
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
                    self._prepare.pop(channel, None)
                    pubsub = self._pubsub
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.unsubscribe(channel)

    async def _subscribe_channel(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:  # disconnected: the listener subscribes it (and resyncs) on connect
            return
        event = self._confirm.setdefault(channel, asyncio.Event())
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(event.wait(), CONFIRM_TIMEOUT)
        except Exception as e:  # the listener re-subscribes everything (and resyncs) on reconnect
            log.warning("subscribe to %s not confirmed (%s); relying on reconnect", channel, e)

    def _deliver(self, channel: str, data: object, prepare_it: bool = True) -> None:
        """Hand `data` to the channel's subscribers: at once, or after its preparation (and after
        the channel's earlier messages, which may still be in preparation)."""
        prepare = self._prepare.get(channel) if prepare_it and isinstance(data, dict) else None
        previous = self._tails.get(channel)
        if prepare is None and previous is None:
            self._dispatch(channel, Message(data) if isinstance(data, dict) and data is not RESYNC else data)
            return
        if self._preparing >= MAX_PREPARING:
            prepare = None
        task = asyncio.get_running_loop().create_task(self._prepare_and_dispatch(channel, data, prepare, previous))
        self._tails[channel] = task
        task.add_done_callback(lambda t: self._tails.pop(channel) if self._tails.get(channel) is t else None)

    async def _prepare_and_dispatch(self, channel: str, data: object, prepare: Prepare | None,
                                    previous: asyncio.Task | None) -> None:
        prepared = None
        if prepare is not None:
            self._preparing += 1
            try:
                prepared = await asyncio.wait_for(prepare(data), PREPARE_TIMEOUT)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("preparing a message of %s failed; subscribers get it unprepared", channel, exc_info=True)
            finally:
                self._preparing -= 1
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)  # the channel's order; a cancelled dispatch does not cancel this one
        self._dispatch(channel, Message(data, prepared) if isinstance(data, dict) and data is not RESYNC else data)

    def _dispatch(self, channel: str, message: object) -> None:
        for sub in list(self._subs.get(channel, ())):
            if not sub.offer(message):
                log.warning("dropping slow subscriber of %s", channel)
                self.dropped += 1
                self._subs[channel].discard(sub)
                sub.end(_DROPPED)

    def _on_message(self, msg: dict) -> None:
        kind = msg.get("type")
        channel = msg.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "message":
            try:
                data = orjson.loads(msg["data"])
            except orjson.JSONDecodeError:
                return
            self._deliver(channel, data)
        elif kind == "subscribe":
            event = self._confirm.pop(channel, None)
            if event is not None:
                event.set()
            if channel in self._resync:
                self._resync.discard(channel)
                self._deliver(channel, RESYNC, prepare_it=False)

    def _release_waiters(self) -> None:
        for event in self._confirm.values():
            event.set()
        self._confirm.clear()

    async def _run(self) -> None:
        backoff = BACKOFF_START
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(PLACEHOLDER)
                # From here on subscribe() sends its own SUBSCRIBE; the ones already registered are
                # subscribed here, and their subscribers re-read once Redis confirms.
                self._pubsub = pubsub
                channels = list(self._subs)
                if channels:
                    self._resync.update(channels)
                    await pubsub.subscribe(*channels)
                self.connections += 1
                self.connected.set()
                backoff = BACKOFF_START
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg:
                        self._on_message(msg)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.connected.clear()
                self._pubsub = None
                self._release_waiters()
                if self._stopping:
                    return
                log.warning("pub/sub listener lost Redis (%s); reconnecting in %.1f s", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                self.connected.clear()
                self._pubsub = None
                self._resync.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
