"""The GraphiQL IDE page, served from our own vendored assets (works offline).

strawberry's stock page loads React/GraphiQL from unpkg.com.  We serve the very
same files (vendored by ``tools/vendor_graphiql.py`` into
``server/static/graphiql/``, byte-identical, so the page keeps strawberry's
``integrity`` hashes) and render ``server/static/graphiql/index.html`` with the
paths of this deployment.

The app must mount ``server/static`` at ``/static`` (e.g. starlette
``Mount("/static", StaticFiles(directory=STATIC_DIR))``) for the default
``static_prefix`` to resolve, and answer ``GET graphql_path`` with
``Accept: text/html`` with :func:`graphiql_html`.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
GRAPHIQL_DIR = STATIC_DIR / "graphiql"
TEMPLATE_PATH = GRAPHIQL_DIR / "index.html"

__all__ = ["GRAPHIQL_DIR", "STATIC_DIR", "TEMPLATE_PATH", "graphiql_html"]


def _check_local_path(name: str, value: str) -> str:
    """Only same-origin absolute paths: the page must never point off-site."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        raise ValueError(f"{name} must be an absolute path on this origin (like '/graphql'), got {value!r}")
    if any(ch in value for ch in "\"'<>`") or any(ord(ch) < 0x20 for ch in value):
        raise ValueError(f"{name} contains characters not allowed in a path: {value!r}")
    return value


@functools.cache
def graphiql_html(graphql_path: str = "/graphql", static_prefix: str = "/static/graphiql") -> str:
    """Return the full GraphiQL HTML page.

    ``graphql_path``: path of the GraphQL endpoint (HTTP POST for queries and
    mutations; WebSocket, graphql-transport-ws, for subscriptions), same origin.
    ``static_prefix``: URL path under which ``server/static/graphiql/`` is served.

    The result is cached per argument pair.
    """
    graphql_path = _check_local_path("graphql_path", graphql_path)
    static_prefix = _check_local_path("static_prefix", static_prefix).rstrip("/")
    # Template comments are notes for developers, not for the browser.
    template = re.sub(r"<!--.*?-->\s*", "", TEMPLATE_PATH.read_text(encoding="utf-8"), flags=re.S)
    return template.replace("{{STATIC_PREFIX}}", html.escape(static_prefix, quote=True)).replace(
        "{{GRAPHQL_PATH}}", html.escape(graphql_path, quote=True)
    )
