"""The long-lived resources one process (API replica or worker loop) shares: settings, DB, Redis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from server.db.engine import Database
from server.settings import Settings

if TYPE_CHECKING:
    from server.pubsub.hub import PubSubHub


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    hub: "PubSubHub | None" = None
    extras: dict = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, database_url: str, redis_url: str) -> "Runtime":
        return cls(
            settings=settings,
            db=Database(database_url, settings.db_pool_size),
            redis=aioredis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30),
        )

    async def close(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
        await self.redis.aclose()
        await self.db.dispose()
