"""Fixed-window rate limits kept in Redis, shared by every API replica.

Each window is one `INCR` + `EXPIRE` in a pipeline. When Redis is unreachable the limit is not
enforced (fail open): reads keep working while Redis is down, as DESIGN.md asks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("insights.ratelimit")


@dataclass(frozen=True)
class Window:
    seconds: int
    limit: int


@dataclass
class Verdict:
    allowed: bool
    retry_after: int = 0
    limit: int = 0
    remaining: int = 0


def _key(bucket: str, window: Window, now: int) -> str:
    return f"rl:{bucket}:{window.seconds}:{now // window.seconds}"


async def _count(redis: aioredis.Redis, bucket: str, windows: list[Window], cost: int) -> tuple[int, list[int]] | None:
    """Add `cost` to the current count of every window of `bucket`, in one round trip: (now, the
    counts after), or None when Redis is unreachable (the caller fails open)."""
    now = int(time.time())
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for w in windows:
                key = _key(bucket, w, now)
                pipe.incrby(key, cost)
                pipe.expire(key, w.seconds + 1)
            return now, (await pipe.execute())[::2]
    except (RedisError, OSError) as e:
        log.warning("rate limit not enforced, redis unavailable: %s", e)
        return None


async def hit(redis: aioredis.Redis, bucket: str, windows: list[Window], cost: int = 1) -> Verdict:
    """Count one request against every window of `bucket`; refused if any window is over."""
    counted = await _count(redis, bucket, windows, cost)
    if counted is None:
        return Verdict(True)
    now, counts = counted
    verdict = Verdict(True, limit=windows[0].limit, remaining=max(windows[0].limit - counts[0], 0))
    for count, w in zip(counts, windows):
        if count > w.limit:
            retry = w.seconds - now % w.seconds
            if not verdict.allowed:
                retry = max(retry, verdict.retry_after)
            verdict = Verdict(False, retry_after=retry, limit=w.limit, remaining=0)
    return verdict


async def hit_many(redis: aioredis.Redis, bucket: str, window: Window, n: int) -> tuple[int, int]:
    """Count `n` requests (in arrival order) against one window of `bucket` in one round trip:
    (how many of them are within the limit, seconds until the window resets). The first ones are
    admitted, the rest refused, exactly as `n` calls of `hit` would have it."""
    counted = await _count(redis, bucket, [window], n)
    if counted is None:
        return n, 0
    now, [count] = counted
    return max(0, min(n, window.limit - (count - n))), window.seconds - now % window.seconds


async def peek_exceeded(redis: aioredis.Redis, bucket: str, window: Window) -> int:
    """Seconds until `bucket` may try again (0 when under the limit), without counting a hit."""
    now = int(time.time())
    try:
        count = await redis.get(_key(bucket, window, now))
    except (RedisError, OSError):
        return 0
    if count is not None and int(count) >= window.limit:
        return window.seconds - now % window.seconds
    return 0
