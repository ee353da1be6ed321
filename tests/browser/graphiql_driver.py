"""Drive the GraphiQL page in real headless Chromium, with no internet access.

Reusable by any test that has an HTTP server on the loopback interface:

    from .graphiql_driver import chromium_or_skip, run_viewer_query_in_graphiql

    chromium_or_skip()
    text = run_viewer_query_in_graphiql(
        "http://127.0.0.1:8123",
        cookies=[{"name": "insights_session", "value": token, "url": "http://127.0.0.1:8123"}],
    )
    assert "alice@example.com" in text

Chromium is Debian's (``/usr/bin/chromium``; ``apt-get install -y chromium``),
driven by Playwright's sync API (no ``playwright install``).  Every host name
except the server's own loopback host is made unresolvable
(``--host-resolver-rules``), and every request the page makes is checked: one
that goes to another host raises :class:`ExternalRequestError`.

The functions are synchronous.  From an ``async def`` test (a running event
loop in the current thread) use :func:`arun_query_in_graphiql` /
:func:`arun_viewer_query_in_graphiql`, which run the browser in a worker thread
so a server living on that same loop keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("INSIGHTS_CHROMIUM", "/usr/bin/chromium")

VIEWER_QUERY = "{ viewer { email } }"

BASE_CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

LOOPBACK_HOSTS = frozenset({"127.0.0.1"})

# Schemes that never touch the network.
_LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-extension", "devtools"})


class ExternalRequestError(AssertionError):
    """The page tried to reach a host other than the server under test."""


class GraphiQLDriverError(AssertionError):
    """GraphiQL did not load or did not show a result in time."""


@dataclass
class PageLog:
    """What the page did; filled in while the browser runs."""

    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"external requests: {self.external}\nfailed/4xx-5xx: {self.failed}\n"
            f"page errors: {self.page_errors}\nconsole: {self.console[-20:]}\n"
            f"requests: {self.requests}"
        )


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def chromium_or_skip() -> None:
    """pytest.skip() unless Debian's Chromium and Playwright are usable."""
    import pytest  # noqa: PLC0415

    if not chromium_available():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


def chromium_args(allowed_hosts: set[str] | frozenset[str] = LOOPBACK_HOSTS) -> list[str]:
    exclude = " , ".join(f"EXCLUDE {h}" for h in sorted(allowed_hosts))
    return [*BASE_CHROMIUM_ARGS, f"--host-resolver-rules=MAP * ~NOTFOUND , {exclude}"]


def _host_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in _LOCAL_SCHEMES:
        return None
    return parts.hostname or ""


# GraphiQL 3.x uses CodeMirror 5: the wrapper element carries the editor instance.
_SET_QUERY_JS = """(query) => {
    const el = document.querySelector('.graphiql-query-editor .CodeMirror');
    if (!el || !el.CodeMirror) return false;
    el.CodeMirror.setValue(query);
    el.CodeMirror.focus();
    return true;
}"""

# GraphiQL re-parses the editor 100 ms (debounced) after a change and picks
# HTTP vs WebSocket from that parsed document: wait until it matches the text.
_QUERY_PARSED_JS = """() => {
    const el = document.querySelector('.graphiql-query-editor .CodeMirror');
    const cm = el && el.CodeMirror;
    const ast = cm && cm.documentAST;
    return !!(ast && ast.loc && ast.loc.source && ast.loc.source.body === cm.getValue());
}"""


_READ_RESULT = """
    const el = document.querySelector('.graphiql-response .CodeMirror');
    let text = null;
    if (el && el.CodeMirror) text = el.CodeMirror.getValue();
    else {
        const pane = document.querySelector('.graphiql-response');
        text = pane ? pane.innerText : null;
    }
"""

# Result pane text (CodeMirror 5 instance of GraphiQL's response editor).
_RESULT_JS = "() => {" + _READ_RESULT + " return text; }"

# Truthy once the result pane is non-empty and (if given) contains `expect`.
_WAIT_JS = (
    "(expect) => {"
    + _READ_RESULT
    + " return !!(text && text.trim() && (expect === null || text.includes(expect))); }"
)


def run_query_in_graphiql(
    base_url: str,
    query: str,
    *,
    cookies: list[dict] | None = None,
    graphql_path: str = "/graphql",
    expect: str | None = None,
    timeout_ms: int = 30_000,
    log: PageLog | None = None,
    screenshot_path: str | None = None,
) -> str:
    """Open ``base_url + graphql_path`` in GraphiQL, run ``query``, return the result pane text.

    ``cookies``: Playwright cookie dicts (``{"name", "value", "url"}`` or with
    ``domain``/``path``) added to the browser context before the page loads.
    ``expect``: wait until the result pane contains this text (e.g. the last
    value of a subscription); by default wait for any non-empty result.
    Raises :class:`ExternalRequestError` if the page requested any other host
    than ``base_url``'s, :class:`GraphiQLDriverError` on timeout.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "run_query_in_graphiql() uses Playwright's sync API and cannot run on a thread with a "
            "running event loop; use `await arun_query_in_graphiql(...)` instead"
        )

    from playwright.sync_api import Error as PlaywrightError  # noqa: PLC0415
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    log = log if log is not None else PageLog()
    server_host = urlsplit(base_url).hostname or "127.0.0.1"
    allowed = set(LOOPBACK_HOSTS) | {server_host}
    page_url = base_url.rstrip("/") + graphql_path

    def on_request(request) -> None:
        log.requests.append(f"{request.method} {request.url}")
        host = _host_of(request.url)
        if host is not None and host not in allowed:
            log.external.append(request.url)

    def on_websocket(ws) -> None:
        log.requests.append(f"WS {ws.url}")
        host = _host_of(ws.url)
        if host is not None and host not in allowed:
            log.external.append(ws.url)

    def on_response(response) -> None:
        if response.status >= 400:
            log.failed.append(f"{response.status} {response.url}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(allowed)
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            if cookies:
                context.add_cookies(cookies)
            page = context.new_page()
            page.on("request", on_request)
            page.on("websocket", on_websocket)
            page.on("response", on_response)
            page.on("requestfailed", lambda r: log.failed.append(f"{r.failure} {r.url}"))
            page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))

            try:
                page.goto(page_url, wait_until="load", timeout=timeout_ms)
                page.wait_for_selector(
                    ".graphiql-query-editor .CodeMirror", state="visible", timeout=timeout_ms
                )
                if not page.evaluate(_SET_QUERY_JS, query):
                    raise GraphiQLDriverError("GraphiQL query editor (CodeMirror) not found")
                page.wait_for_function(_QUERY_PARSED_JS, timeout=timeout_ms)
                page.click("button.graphiql-execute-button", timeout=timeout_ms)
                page.wait_for_function(_WAIT_JS, arg=expect, timeout=timeout_ms)
                text = page.evaluate(_RESULT_JS) or ""
            except PlaywrightError as exc:
                partial = ""
                try:
                    partial = page.evaluate(_RESULT_JS) or ""
                except PlaywrightError:
                    pass
                raise GraphiQLDriverError(
                    f"GraphiQL at {page_url} gave no result: {exc}\nresult pane: {partial!r}\n{log.summary()}"
                ) from exc
            finally:
                if screenshot_path:
                    try:
                        page.screenshot(path=screenshot_path)
                    except PlaywrightError:
                        pass
            context.close()
        finally:
            browser.close()

    if log.external:
        raise ExternalRequestError(f"page requested hosts other than {sorted(allowed)}: {log.external}")
    return text


def run_viewer_query_in_graphiql(
    base_url: str,
    cookies: list[dict] | None = None,
    *,
    log: PageLog | None = None,
    screenshot_path: str | None = None,
) -> str:
    """Run ``{ viewer { email } }`` in GraphiQL at ``base_url``/graphql; return the result pane text.

    Pass ``log=PageLog()`` to inspect every request the page made afterwards.
    """
    return run_query_in_graphiql(
        base_url, VIEWER_QUERY, cookies=cookies, log=log, screenshot_path=screenshot_path
    )


async def arun_query_in_graphiql(base_url: str, query: str, **kwargs) -> str:
    """Async wrapper of :func:`run_query_in_graphiql` (runs it in a worker thread)."""
    return await asyncio.to_thread(functools.partial(run_query_in_graphiql, base_url, query, **kwargs))


async def arun_viewer_query_in_graphiql(base_url: str, cookies: list[dict] | None = None) -> str:
    """Async wrapper of :func:`run_viewer_query_in_graphiql`."""
    return await asyncio.to_thread(run_viewer_query_in_graphiql, base_url, cookies)
