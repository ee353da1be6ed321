"""`GET /api/v1/health`: database and Redis status; 503 when the database is down."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse


async def _check(coro, timeout: float = 2.0) -> dict:  # noqa: ANN001
    try:
        await asyncio.wait_for(coro, timeout)
        return {"status": "ok"}
    except Exception as e:  # health reports failures, it does not raise them
        return {"status": "down", "error": f"{type(e).__name__}: {e}"[:300]}


async def health(request: Request) -> JSONResponse:
    rt = request.app.state.runtime

    async def db_ping() -> None:
        async with rt.db.session() as s:
            await s.execute(text("select 1"))

    database, redis = await asyncio.gather(_check(db_ping()), _check(rt.redis.ping()))
    ok = database["status"] == "ok"
    body = {"status": "ok" if ok and redis["status"] == "ok" else ("degraded" if ok else "down"),
            "database": database, "redis": redis, "version": request.app.state.version}
    return JSONResponse(body, status_code=200 if ok else 503)
