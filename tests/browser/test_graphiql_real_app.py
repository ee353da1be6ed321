"""GraphiQL served by the real Insights app, in headless Chromium with no internet: a signed-in
browser (session cookie from `userLogin`) runs `{ viewer { email } }` and sees its email."""

from __future__ import annotations

from tests.browser.graphiql_driver import arun_viewer_query_in_graphiql, chromium_or_skip
from tests.support.client import register_and_login, unique_email


async def test_graphiql_runs_viewer_query_against_the_real_app(live, gql):
    chromium_or_skip()
    email = unique_email("browser")
    token, _ = await register_and_login(gql, email)
    text = await arun_viewer_query_in_graphiql(
        live.url, cookies=[{"name": "insights_session", "value": token, "url": live.url}])
    assert email in text


async def test_graphiql_page_is_served_with_local_assets_only(live, gql):
    r = await gql.http.get("/graphql", headers={"accept": "text/html"})
    assert r.status_code == 200
    assert "graphiql" in r.text.lower()
    assert "https://" not in r.text and "http://" not in r.text
