"""Helpers for tests of the HTTP surface: clients from their own loopback address (so each test
has its own anonymous rate-limit bucket), and raw websocket sessions."""

from __future__ import annotations

import json
import random
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect


def fresh_address() -> str:
    """A loopback address no other test uses (the whole of 127.0.0.0/8 reaches the server)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def client(base_url: str, address: str | None = None, **kw) -> httpx.AsyncClient:  # noqa: ANN003
    transport = httpx.AsyncHTTPTransport(local_address=address or fresh_address())
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30, trust_env=False, **kw)


@pytest.fixture
async def http(live):  # noqa: ANN001, ANN201
    async with client(live.url) as c:
        yield c


@asynccontextmanager
async def ws_session(url: str, protocol: str, **kw) -> AsyncIterator[ClientConnection]:  # noqa: ANN003
    async with connect(url, subprotocols=[protocol], proxy=None, open_timeout=10, **kw) as ws:
        yield ws


async def recv_json(ws: ClientConnection, timeout: float = 10) -> dict:
    """The next message, which must be a text frame (these are text protocols)."""
    import asyncio

    frame = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(frame, str), f"binary websocket frame: {frame!r}"
    return json.loads(frame)


async def recv_until(ws: ClientConnection, *types: str, timeout: float = 10) -> list[dict]:
    """Messages up to and including the first of one of `types` (keep-alives skipped)."""
    got: list[dict] = []
    while True:
        try:
            msg = await recv_json(ws, timeout)
        except TimeoutError:
            raise AssertionError(f"no {types} within {timeout} s; received {got}") from None
        if msg.get("type") in ("ka", "ping", "pong"):
            continue
        got.append(msg)
        if msg.get("type") in types:
            return got
