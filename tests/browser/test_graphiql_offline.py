"""GraphiQL works with no internet access, from our own vendored assets.

Unit tests check the rendered page (no external URL, every ``integrity`` hash
matches the vendored bytes).  Browser tests load the page in real headless
Chromium (Debian's ``/usr/bin/chromium``; skipped when absent) with every host
but 127.0.0.1 unresolvable, against a small self-contained starlette app:

* ``GET /graphql`` with ``Accept: text/html`` -> :func:`server.graphiql.graphiql_html`
* ``POST /graphql`` / WebSocket ``/graphql`` -> a tiny strawberry schema whose
  ``viewer { email }`` answers only with the ``insights_session`` cookie set
* ``/static`` -> ``StaticFiles(directory=server/static)``

The lead can swap the tiny app for the real Insights app and keep using
``graphiql_driver.run_viewer_query_in_graphiql``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import importlib.util
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from strawberry.asgi import GraphQL
from strawberry.types import Info

from server.graphiql import GRAPHIQL_DIR, STATIC_DIR, graphiql_html

from .graphiql_driver import (
    GraphiQLDriverError,
    PageLog,
    chromium_or_skip,
    run_query_in_graphiql,
    run_viewer_query_in_graphiql,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SESSION_COOKIE = "insights_session"
SESSION_TOKEN = "offline-graphiql-test-session"
VIEWER_EMAIL = "viewer@insights.test"


# --------------------------------------------------------------------------- tiny app


def _signed_in(info: Info) -> bool:
    conn: HTTPConnection = info.context["request"]  # Request (HTTP) or WebSocket
    return conn.cookies.get(SESSION_COOKIE) == SESSION_TOKEN


@strawberry.type
class Viewer:
    email: str


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self, info: Info) -> Viewer:
        if not _signed_in(info):
            raise PermissionError(f"not signed in: no valid {SESSION_COOKIE} cookie")
        return Viewer(email=VIEWER_EMAIL)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, info: Info, count: int = 3) -> AsyncGenerator[int, None]:
        if not _signed_in(info):
            raise PermissionError(f"not signed in: no valid {SESSION_COOKIE} cookie")
        for i in range(1, count + 1):
            await asyncio.sleep(0.05)
            yield i


schema = strawberry.Schema(query=Query, subscription=Subscription)


class GraphQLEndpoint:
    """ASGI app at /graphql: the IDE page for browsers, strawberry for the rest."""

    def __init__(self) -> None:
        self.graphql = GraphQL(schema, graphql_ide=None)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            accept = HTTPConnection(scope).headers.get("accept", "")
            if "text/html" in accept:
                await HTMLResponse(graphiql_html())(scope, receive, send)
                return
        await self.graphql(scope, receive, send)


def make_app(extra_routes: list | None = None) -> Starlette:
    endpoint = GraphQLEndpoint()
    return Starlette(
        routes=[
            *(extra_routes or []),
            Route("/graphql", endpoint),
            WebSocketRoute("/graphql", endpoint.graphql),
            Mount("/static", StaticFiles(directory=STATIC_DIR)),
        ]
    )


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port (in a thread); yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def live_server() -> Iterator[str]:
    with serve(make_app()) as base_url:
        yield base_url


def _session_cookies(base_url: str) -> list[dict]:
    return [{"name": SESSION_COOKIE, "value": SESSION_TOKEN, "url": base_url}]


# --------------------------------------------------------------------------- unit tests

# Every <script src=... integrity=...> / <link href=... integrity=...> in the page.
_SRI_TAG = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"[^>]*?integrity="([^"]+)"', re.S)
_URL_ATTR = re.compile(r'\b(?:src|href|action|data-graphql-path)="([^"]*)"')


def _vendor_module():
    path = REPO_ROOT / "tools" / "vendor_graphiql.py"
    spec = importlib.util.spec_from_file_location("vendor_graphiql", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def _static_file(url_path: str, static_prefix: str = "/static/graphiql") -> Path:
    assert url_path.startswith(static_prefix + "/"), url_path
    return GRAPHIQL_DIR / url_path[len(static_prefix) + 1 :]


def test_page_has_no_external_url() -> None:
    html = graphiql_html()
    assert "http://" not in html and "https://" not in html
    assert re.search(r"""(?:src|href)=["']?//""", html) is None  # no protocol-relative URL
    assert "unpkg" not in html and "esm.sh" not in html and "jsdelivr" not in html
    urls = _URL_ATTR.findall(html)
    assert urls, "no src/href found"
    for url in urls:
        assert url.startswith("/"), url
    for url in (u for u in urls if u != "/graphql"):
        assert url.startswith("/static/graphiql/"), url
        assert _static_file(url).is_file(), f"{url} is not a file under {GRAPHIQL_DIR}"
    # The bootstrap script and page CSS we wrote must not reach out either.
    for name in ("insights-graphiql.js", "insights-graphiql.css"):
        text = (GRAPHIQL_DIR / name).read_text()
        assert "http://" not in text and "https://" not in text, name


def test_every_integrity_hash_matches_vendored_bytes() -> None:
    html = graphiql_html()
    tags = _SRI_TAG.findall(html)
    assert len(tags) == 6, tags  # react, react-dom, graphiql css+js, explorer css+js
    openssl = shutil.which("openssl")
    for url, integrity in tags:
        assert integrity.startswith("sha384-"), integrity
        data = _static_file(url).read_bytes()
        assert _sri(data) == integrity, url
        if openssl:  # independent second opinion
            digest = subprocess.run(
                [openssl, "dgst", "-sha384", "-binary", str(_static_file(url))],
                capture_output=True,
                check=True,
            ).stdout
            assert "sha384-" + base64.b64encode(digest).decode() == integrity, url
    # Every vendored package file is referenced with integrity.
    vendor = _vendor_module()
    referenced = {url for url, _ in tags}
    assert referenced == {f"/static/graphiql/{a.rel_path}" for a in vendor.ASSETS}


def test_vendored_files_and_versions_txt_are_consistent() -> None:
    vendor = _vendor_module()
    assert vendor.check() == []
    versions = (GRAPHIQL_DIR / "VERSIONS.txt").read_text()
    for a in vendor.ASSETS:
        assert f"{a.spec}  {a.rel_path}  package/{a.path}  {a.sha384}" in versions
    # None of the page's files may be git-ignored (the repo ignores e.g. every dist/).
    git = shutil.which("git")
    if git and (REPO_ROOT / ".git").exists():
        files = [str(f) for f in GRAPHIQL_DIR.rglob("*") if f.is_file()]
        ignored = subprocess.run(
            [git, "check-ignore", *files], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.split()
        assert ignored == [], f"git ignores vendored GraphiQL files: {ignored}"


def test_vendored_css_loads_nothing_remote() -> None:
    for css in GRAPHIQL_DIR.rglob("*.css"):
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text()):
            assert ref.startswith("data:"), f"{css.name} references {ref[:80]}"
        assert "@import" not in css.read_text(), css.name


def test_graphiql_html_paths_are_substituted_and_validated() -> None:
    html = graphiql_html("/api/graphql", "/assets/gq/")
    assert 'data-graphql-path="/api/graphql"' in html
    assert 'src="/assets/gq/react@18.2.0/react.production.min.js"' in html
    assert "{{" not in html and "/static/graphiql" not in html
    for bad in ("https://example.com/graphql", "//evil.test/graphql", "graphql", '/x"><script>'):
        with pytest.raises(ValueError):
            graphiql_html(bad)
        with pytest.raises(ValueError):
            graphiql_html("/graphql", bad)


def test_graphiql_html_is_cached() -> None:
    assert graphiql_html() is graphiql_html()
    assert graphiql_html("/api/graphql") is graphiql_html("/api/graphql")
    assert graphiql_html("/graphql", "/static/graphiql") == graphiql_html()


def test_tiny_app_serves_page_and_assets(live_server: str) -> None:
    """Over real HTTP (no browser): page, vendored bytes and the endpoint the page talks to."""
    with httpx.Client(base_url=live_server, trust_env=False) as client:
        page = client.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and page.text == graphiql_html()
        for url, integrity in _SRI_TAG.findall(page.text):
            res = client.get(url)
            assert res.status_code == 200, url
            assert _sri(res.content) == integrity, url
        client.cookies.set(SESSION_COOKIE, SESSION_TOKEN)
        res = client.post("/graphql", json={"query": "{ viewer { email } }"})
        assert res.json() == {"data": {"viewer": {"email": VIEWER_EMAIL}}}


# --------------------------------------------------------------------------- browser tests


def _assert_offline(log: PageLog, base_url: str) -> None:
    assert log.external == []
    hosts = {urlsplit(r.split(" ", 1)[1]).hostname for r in log.requests}
    assert hosts == {"127.0.0.1"}, log.requests
    assert log.failed == [], log.summary()
    assert log.page_errors == [], log.summary()
    loaded = {urlsplit(r.split(" ", 1)[1]).path for r in log.requests}
    for url, _ in _SRI_TAG.findall(graphiql_html()):
        assert url in loaded, f"{url} was not loaded: {log.requests}"


def test_graphiql_runs_viewer_query_offline(live_server: str, tmp_path: Path) -> None:
    chromium_or_skip()
    log = PageLog()
    text = run_viewer_query_in_graphiql(
        live_server,
        _session_cookies(live_server),
        log=log,
        screenshot_path=str(tmp_path / "graphiql.png"),
    )
    assert VIEWER_EMAIL in text, f"{text!r}\n{log.summary()}"
    _assert_offline(log, live_server)
    # The query went to our endpoint over HTTP POST (same origin).
    assert f"POST {live_server}/graphql" in log.requests


def test_graphiql_sends_no_session_without_cookie(live_server: str) -> None:
    """Without the cookie the endpoint refuses: proves the success above came via the cookie."""
    chromium_or_skip()
    log = PageLog()
    text = run_viewer_query_in_graphiql(live_server, None, log=log)
    assert "not signed in" in text and VIEWER_EMAIL not in text, text
    assert log.external == []


def test_graphiql_subscription_over_websocket_offline(live_server: str) -> None:
    chromium_or_skip()
    log = PageLog()
    text = run_query_in_graphiql(
        live_server,
        "subscription { ticks(count: 3) }",
        cookies=_session_cookies(live_server),
        expect='"ticks": 3',
        log=log,
    )
    assert '"ticks": 3' in text, text
    ws_host = urlsplit(live_server).netloc
    assert f"WS ws://{ws_host}/graphql" in log.requests, log.requests
    assert log.external == []


def test_tampered_asset_is_refused_by_integrity_check() -> None:
    """The integrity attributes are live: one changed byte and the browser refuses the file."""
    chromium_or_skip()
    url = "/static/graphiql/react@18.2.0/react.production.min.js"
    tampered = _static_file(url).read_bytes() + b"\n"

    async def serve_tampered(request):  # noqa: ARG001
        return Response(tampered, media_type="text/javascript")

    log = PageLog()
    with serve(make_app([Route(url, serve_tampered)])) as base_url:
        with pytest.raises(GraphiQLDriverError):
            run_query_in_graphiql(
                base_url,
                "{ viewer { email } }",
                cookies=_session_cookies(base_url),
                timeout_ms=5_000,
                log=log,
            )
    assert any("integrity" in line.lower() for line in log.console), log.console
    assert log.external == []
