"""The pub/sub hub against real Redis: fan-out, bounded queues, dropping slow subscribers,
reconnecting after the connection is killed, and publishing after commit."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid

import pytest
import redis.asyncio as aioredis

from server.pubsub.hub import RESYNC, Message, PubSubHub, SubscriberDropped
from server.pubsub.publish import publish, publish_after_commit
from tests.server.jobs.support import wait_for


@pytest.fixture
async def hub(redis_url):  # noqa: ANN001, ANN201
    name = f"hubtest-{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(redis_url, client_name=name, socket_timeout=5, socket_connect_timeout=2)
    h = PubSubHub(client, queue_size=5)
    h.client_name = name
    await h.start()
    await asyncio.wait_for(h.connected.wait(), 5)
    yield h
    await h.stop()
    await client.aclose()


@pytest.fixture
async def redis(redis_url):  # noqa: ANN001, ANN201
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def channel() -> str:
    return f"test:{uuid.uuid4().hex}"


async def next_message(sub, timeout: float = 3.0) -> dict:  # noqa: ANN001
    return await asyncio.wait_for(sub.__aiter__().__anext__(), timeout)


async def test_fan_out_to_every_subscriber_of_a_channel(hub, redis):
    a, b = channel(), channel()
    async with hub.subscribe(a) as s1, hub.subscribe(a) as s2, hub.subscribe(b) as s3:
        # subscribe() returns once Redis confirmed it: a publish right after is delivered.
        await publish(redis, a, {"type": "X", "id": "1"})
        await publish(redis, b, {"type": "X", "id": "2"})
        assert await next_message(s1) == {"type": "X", "id": "1"}
        assert await next_message(s2) == {"type": "X", "id": "1"}
        assert await next_message(s3) == {"type": "X", "id": "2"}
        assert s1.queue.empty() and s3.queue.empty()
        assert hub.subscriber_count(a) == 2
    assert hub.subscriber_count() == 0
    # The last subscriber leaving unsubscribes the channel in Redis.
    async def unsubscribed() -> bool:
        return (await redis.pubsub_numsub(a))[0][1] == 0
    await wait_for(unsubscribed, 3, what="UNSUBSCRIBE")


async def test_slow_subscriber_is_dropped_without_growing_memory(hub, redis):
    ch = channel()
    async with hub.subscribe(ch) as slow, hub.subscribe(ch) as fast:
        received = []

        async def consume() -> None:
            async for message in fast:
                received.append(message["n"])
                if len(received) == 50:
                    return

        consumer = asyncio.create_task(consume())
        for n in range(50):
            await publish(redis, ch, {"type": "X", "n": n})
            await asyncio.sleep(0)  # let the fast consumer run, as a live client would
        await asyncio.wait_for(consumer, 5)
        assert received == list(range(50))
        assert slow.dropped and hub.dropped == 1
        assert slow.queue.qsize() == 1  # only the end marker: nothing accumulates
        assert hub.subscriber_count(ch) == 1  # only the fast one is still fed
        for n in range(50, 60):
            await publish(redis, ch, {"type": "X", "n": n})
        await asyncio.sleep(0.2)
        assert slow.queue.qsize() == 1
        with pytest.raises(SubscriberDropped):
            async for _ in slow:
                pass


async def _hub_connection_id(redis, name: str) -> int | None:  # noqa: ANN001
    for client in await redis.client_list(_type="pubsub"):
        if client.get("name") == name:
            return int(client["id"])
    return None


async def test_reconnects_after_connection_loss_and_resyncs(hub, redis):
    ch = channel()
    async with hub.subscribe(ch) as sub:
        await publish(redis, ch, {"type": "X", "n": 1})
        assert (await next_message(sub))["n"] == 1
        conn_id = await _hub_connection_id(redis, hub.client_name)
        assert conn_id is not None
        connections = hub.connections
        assert await redis.client_kill_filter(_id=conn_id) == 1
        await wait_for(lambda: _true(hub.connections > connections), 10, what="the hub to reconnect")
        # Whatever was published while it was away is lost: subscribers are told to re-read.
        assert await next_message(sub, 5) == RESYNC
        await publish(redis, ch, {"type": "X", "n": 2})
        assert (await next_message(sub))["n"] == 2
        # A channel subscribed after the reconnect works as well.
        ch2 = channel()
        async with hub.subscribe(ch2) as sub2:
            await publish(redis, ch2, {"type": "X", "n": 3})
            assert (await next_message(sub2))["n"] == 3


async def _true(value: bool) -> bool:
    return value


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_without_redis_subscribing_does_not_block_and_stop_ends_streams():
    client = aioredis.from_url(f"redis://127.0.0.1:{_closed_port()}/0", socket_connect_timeout=0.5)
    h = PubSubHub(client)
    await h.start()
    try:
        started = time.monotonic()
        async with h.subscribe(channel()) as sub:
            assert time.monotonic() - started < 0.5
            assert not h.connected.is_set() and h.connections == 0
            await h.stop()
            with contextlib.suppress(asyncio.TimeoutError):
                items = [m async for m in sub]
            assert items == []  # the stream ended
    finally:
        await h.stop()
        await client.aclose()


async def test_publish_after_commit_only_after_commit(rt, hub):
    ch = channel()
    async with hub.subscribe(ch) as sub:
        with contextlib.suppress(RuntimeError):
            async with rt.db.unit_of_work() as uow:
                publish_after_commit(uow, rt.redis, ch, {"type": "X", "n": "rolled back"})
                raise RuntimeError("roll back")
        async with rt.db.unit_of_work() as uow:
            publish_after_commit(uow, rt.redis, ch, {"type": "X", "n": "committed"})
            await asyncio.sleep(0.1)
            assert sub.queue.empty()  # nothing before the commit
        assert (await next_message(sub))["n"] == "committed"
        await asyncio.sleep(0.1)
        assert sub.queue.empty()


# --- preparing a message once for every subscriber ------------------------------------------------

async def test_a_channels_preparation_runs_once_per_message_before_subscribers_get_it(hub, redis):
    ch = channel()
    prepared: list[dict] = []

    async def prepare(message: dict) -> str:
        prepared.append(dict(message))
        await asyncio.sleep(0.05)  # e.g. a database read
        return f"ready {message['n']}"

    async with hub.subscribe(ch, prepare) as s1, hub.subscribe(ch, prepare) as s2, hub.subscribe(ch) as s3:
        await publish(redis, ch, {"type": "X", "n": 1})
        for sub in (s1, s2, s3):
            message = await next_message(sub)
            assert message == {"type": "X", "n": 1} and isinstance(message, Message)
            assert message.prepared == "ready 1"
        assert prepared == [{"type": "X", "n": 1}]
    assert hub.subscriber_count() == 0
    async with hub.subscribe(ch) as plain:  # the preparation left with the channel's last subscriber
        await publish(redis, ch, {"type": "X", "n": 2})
        assert (await next_message(plain)).prepared is None


async def test_prepared_messages_keep_their_order(hub, redis):
    ch = channel()
    delays = {1: 0.2, 2: 0.0, 3: 0.05}

    async def prepare(message: dict) -> int:
        await asyncio.sleep(delays[message["n"]])
        return message["n"] * 10

    async with hub.subscribe(ch, prepare) as sub:
        for n in (1, 2, 3):
            await publish(redis, ch, {"type": "X", "n": n})
        got = [await next_message(sub) for _ in range(3)]
        assert [(m["n"], m.prepared) for m in got] == [(1, 10), (2, 20), (3, 30)]


async def test_a_failed_preparation_still_delivers_the_message_unprepared(hub, redis, caplog):
    ch = channel()

    async def prepare(message: dict) -> str:
        if message["n"] == 1:
            raise RuntimeError("database is down")
        return "ok"

    async with hub.subscribe(ch, prepare) as sub:
        await publish(redis, ch, {"type": "X", "n": 1})
        await publish(redis, ch, {"type": "X", "n": 2})
        first, second = await next_message(sub), await next_message(sub)
        assert (first["n"], first.prepared) == (1, None)
        assert (second["n"], second.prepared) == (2, "ok")
    assert any("preparing a message" in r.getMessage() for r in caplog.records)
