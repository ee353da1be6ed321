"""The app the GraphQL-overhead benchmark serves: the real Insights app plus

- `GET /bench/plain-audit`: the same audit rows and actors, loaded by the same service code
  (audit_query + keyset_page + the accounts user loader), encoded with orjson: the baseline;
- an `x-count-statements` request header that answers with `x-sql-statements`, the number of SQL
  statements the request ran (server/db/statements.py).

Benchmark-only: it is not part of the product and is never imported by it.
"""

from __future__ import annotations

import os
import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from server.app import create_app
from server.db.paging import PageRequest, keyset_page
from server.db.statements import record_statements
from server.domains.accounts.loaders import load_users
from server.domains.platform import audit
from server.domains.platform.models import AuditEntry
from server.security.authn import authenticate
from server.settings import Settings


async def plain_audit(request: Request) -> Response:
    rt = request.app.state.runtime
    principal = await authenticate(rt.db, rt.settings.signing_key(), request.headers.get("authorization"), None)
    org = uuid.UUID(request.query_params["org"])
    principal.require_member(org)
    page = await keyset_page(rt.db, audit.audit_query(principal, org), [AuditEntry.created_at, AuditEntry.id],
                             PageRequest(int(request.query_params.get("first", 100))))
    actor_ids = list({e.actor_user_id for e in page.items if e.actor_user_id})
    actors = {u.id: u for u in await load_users(rt, principal, actor_ids) if u}
    items = []
    for e in page.items:
        item = audit.entry_dict(e)
        actor = actors.get(e.actor_user_id)
        item["actor"] = {"id": str(actor.id), "email": actor.email, "name": actor.name} if actor else None
        items.append(item)
    return Response(orjson.dumps({"items": items, "hasNextPage": page.has_next_page}), media_type="application/json")


class CountStatements:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (b"x-count-statements", b"1") not in scope["headers"]:
            return await self.app(scope, receive, send)
        with record_statements() as rec:
            start = None

            async def capture(message):  # noqa: ANN001, ANN202
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message  # hold the headers until the body is done
                    return
                if start is not None:
                    start["headers"] = [*start["headers"], (b"x-sql-statements", str(len(rec)).encode())]
                    await send(start)
                    start = None
                await send(message)

            await self.app(scope, receive, capture)


def make() -> ASGIApp:
    settings = Settings(rate_limit_per_minute=10_000_000, rate_limit_per_hour=10_000_000,
                        max_query_cost=1_000_000)
    app = create_app(settings, os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"])
    app.router.routes.append(Route("/bench/plain-audit", plain_audit))
    app.add_middleware(CountStatements)
    return app
