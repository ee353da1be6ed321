"""A real Insights server under uvicorn on a loopback port, in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn

from server.app import create_app
from server.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVING: dict[str, "LiveServer"] = {}


class LiveServer:
    def __init__(self, settings: Settings, database_url: str, redis_url: str, *, worker_threads: int = 1,
                 scheduler: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        _SERVING[self.url] = self
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.app = create_app(settings, database_url, redis_url, worker_threads=worker_threads, scheduler=scheduler)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", ws="websockets-sansio",
                                                    ws_per_message_deflate=settings.ws_compression))
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"live-server-{self.port}")

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    @staticmethod
    def at(url: str) -> "LiveServer":
        """The live server answering at `url` (test helpers that only hold a client find its database)."""
        return _SERVING[url.rstrip("/")]

    @property
    def runtime(self):  # noqa: ANN201
        return self.app.state.runtime
