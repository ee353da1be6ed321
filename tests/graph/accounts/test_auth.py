"""Register, log in, log out, profile: through real HTTP against the live server."""

from __future__ import annotations

import json

import httpx
import websockets

from tests.graph.accounts.helpers import (
    LOGIN,
    LOGOUT,
    REGISTER,
    UPDATE,
    VIEWER,
    errors_of,
    fresh_address,
    from_address,
    signed_in,
)
from tests.support.client import unique_email

PASSWORD = "correct horse battery"


async def test_register_login_viewer_and_audit(gql, sql):  # noqa: ANN001
    email = unique_email("Mixed.Case")
    data = await gql(REGISTER, {"input": {"email": email, "password": PASSWORD, "name": "  Ada  "}}, token="")
    reg = data["userRegister"]
    assert reg["userErrors"] == []
    assert reg["user"]["email"] == email  # stored as given
    assert reg["user"]["name"] == "Ada"

    data = await gql(LOGIN, {"input": {"email": email.upper(), "password": PASSWORD}}, token="")
    login = data["userLogin"]
    assert login["userErrors"] == [] and login["token"].count(".") == 2
    assert login["user"]["id"] == reg["user"]["id"]

    me = (await gql(VIEWER, token=login["token"]))["viewer"]
    assert me["email"] == email and me["id"] == reg["user"]["id"] and me["organizations"]["nodes"] == []

    row = await sql.fetchrow("select id, password_hash from users where email = $1", email)
    user_id = row["id"]
    assert row["password_hash"].startswith("$argon2id$")
    actions = [r["action"] for r in await sql.fetch(
        "select action, before, after from audit_log where actor_user_id = $1 order by created_at", user_id)]
    assert actions == ["user.register", "user.login"]
    snapshots = await sql.fetch("select coalesce(before::text, '') || coalesce(after::text, '') as t "
                                "from audit_log where actor_user_id = $1", user_id)
    assert all("argon2" not in r["t"] and PASSWORD not in r["t"] for r in snapshots)


async def test_viewer_is_null_when_anonymous(gql):  # noqa: ANN001
    assert (await gql("{ viewer { id } }", token=""))["viewer"] is None


async def test_register_rejects_bad_input_with_every_field(gql):  # noqa: ANN001
    data = await gql(REGISTER, {"input": {"email": "not-an-email", "password": "short", "name": "x" * 256}}, token="")
    assert sorted(errors_of(data["userRegister"])) == [
        ("VALIDATION", ["input", "email"]), ("VALIDATION", ["input", "name"]), ("VALIDATION", ["input", "password"])]
    assert data["userRegister"]["user"] is None


async def test_password_and_email_length_limits(gql):  # noqa: ANN001
    ok = await gql(REGISTER, {"input": {"email": unique_email(), "password": "x" * 8}}, token="")
    assert ok["userRegister"]["userErrors"] == []
    too_long = await gql(REGISTER, {"input": {"email": unique_email(), "password": "x" * 256}}, token="")
    assert errors_of(too_long["userRegister"]) == [("VALIDATION", ["input", "password"])]
    long_email = "a" * 60 + "@" + ".".join(["b" * 60] * 5) + ".com"  # 370 characters
    data = await gql(REGISTER, {"input": {"email": long_email, "password": PASSWORD}}, token="")
    assert errors_of(data["userRegister"]) == [("VALIDATION", ["input", "email"])]


async def test_duplicate_email_ignoring_case_is_conflict(gql, sql):  # noqa: ANN001
    email = unique_email()
    await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}}, token="")
    data = await gql(REGISTER, {"input": {"email": email.upper(), "password": PASSWORD}}, token="")
    assert errors_of(data["userRegister"]) == [("CONFLICT", ["input", "email"])]
    assert await sql.fetchval("select count(*) from users where lower(email) = lower($1)", email) == 1


async def test_wrong_password_and_unknown_email_fail_the_same_way(gql):  # noqa: ANN001
    email = unique_email()
    await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}}, token="")
    headers = from_address(fresh_address())
    wrong = await gql(LOGIN, {"input": {"email": email, "password": "wrong password"}}, token="", headers=headers)
    unknown = await gql(LOGIN, {"input": {"email": unique_email(), "password": PASSWORD}}, token="", headers=headers)
    assert wrong["userLogin"]["userErrors"] == unknown["userLogin"]["userErrors"]
    assert wrong["userLogin"]["userErrors"][0]["code"] == "UNAUTHENTICATED"
    assert wrong["userLogin"]["token"] is None and unknown["userLogin"]["token"] is None


async def test_login_sets_http_only_lax_cookie_that_authenticates(gql, live):  # noqa: ANN001
    email = unique_email()
    await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}}, token="")
    r = await gql.raw(LOGIN, {"input": {"email": email, "password": PASSWORD}}, token="")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("insights_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "max-age=86400" in lowered
    assert "secure" not in lowered.replace("samesite", "")  # cookie_secure is off in tests
    async with httpx.AsyncClient(base_url=live.url) as browser:
        browser.cookies.set("insights_session", r.cookies["insights_session"])
        me = (await browser.post("/graphql", json={"query": "{ viewer { email } }"})).json()
    assert me["data"]["viewer"]["email"] == email


async def test_secure_cookie_when_configured(start_server):  # noqa: ANN001
    server = start_server(cookie_secure=True, session_ttl_hours=2)
    async with httpx.AsyncClient(base_url=server.url) as http:
        email = unique_email()
        await http.post("/graphql", json={"query": REGISTER, "variables": {"input": {"email": email, "password": PASSWORD}}})
        r = await http.post("/graphql", json={"query": LOGIN, "variables": {"input": {"email": email, "password": PASSWORD}}})
    cookie = r.headers["set-cookie"].lower()
    assert "; secure" in cookie and "max-age=7200" in cookie


async def test_cookie_post_with_text_plain_is_refused_and_changes_nothing(gql, live, sql):  # noqa: ANN001
    token, user = await signed_in(gql)
    async with httpx.AsyncClient(base_url=live.url) as browser:
        browser.cookies.set("insights_session", token)
        body = '{"query": "mutation { organizationCreate(input: {name: \\"csrf\\"}) { organization { id } } }"}'
        r = await browser.post("/graphql", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 415
    owned = await sql.fetchval("select count(*) from memberships m join users u on u.id = m.user_id "
                               "where u.email = $1", user["email"])
    assert owned == 0


async def test_logout_revokes_token_and_clears_cookie(gql, live):  # noqa: ANN001
    token, _ = await signed_in(gql)
    r = await gql.raw(LOGOUT, token=token)
    body = r.json()["data"]["userLogout"]
    assert body == {"revokedSessions": 1, "userErrors": []}
    cleared = r.headers["set-cookie"].lower()
    assert cleared.startswith("insights_session=") and "max-age=0" in cleared
    again = await gql.raw(VIEWER, token=token)
    assert again.status_code == 401
    assert again.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_logout_all_sessions(gql):  # noqa: ANN001
    email = unique_email()
    token1, _ = await signed_in(gql, email=email)
    token2 = (await gql(LOGIN, {"input": {"email": email, "password": PASSWORD}}, token=""))["userLogin"]["token"]
    data = await gql(LOGOUT, {"input": {"allSessions": True}}, token=token2)
    assert data["userLogout"]["revokedSessions"] == 2
    assert (await gql.raw(VIEWER, token=token1)).status_code == 401


async def test_anonymous_logout_is_a_harmless_no_op(gql):  # noqa: ANN001
    data = await gql(LOGOUT, token="")
    assert data["userLogout"] == {"revokedSessions": 0, "userErrors": []}


async def _connection_init(url: str, token: str) -> dict:
    """The server's answer to connection_init: its first message, or the close frame's code."""
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        try:
            return json.loads(await ws.recv())
        except websockets.ConnectionClosed as closed:
            return {"closed": closed.rcvd.code if closed.rcvd else None}


async def test_logged_out_token_cannot_open_a_subscription(gql, live):  # noqa: ANN001
    token, _ = await signed_in(gql)
    assert (await _connection_init(live.ws_url, token))["type"] == "connection_ack"
    await gql(LOGOUT, token=token)
    assert await _connection_init(live.ws_url, token) == {"closed": 4403}


async def test_update_profile_name_absent_and_null(gql):  # noqa: ANN001
    token, user = await signed_in(gql, name="Old Name")
    data = await gql(UPDATE, {"input": {"name": "New Name"}}, token=token)
    assert data["userUpdate"]["user"]["name"] == "New Name"
    data = await gql(UPDATE, {"input": {}}, token=token)  # absent: unchanged
    assert data["userUpdate"]["user"]["name"] == "New Name"
    data = await gql(UPDATE, {"input": {"name": None}}, token=token)  # null: removed
    assert data["userUpdate"]["userErrors"] == [] and data["userUpdate"]["user"]["name"] is None


async def test_change_email_and_password_need_current_password(gql, sql):  # noqa: ANN001
    email = unique_email()
    token, user = await signed_in(gql, email=email)
    new_email = unique_email("renamed")
    data = await gql(UPDATE, {"input": {"email": new_email}}, token=token, headers=from_address(fresh_address()))
    assert errors_of(data["userUpdate"]) == [("FORBIDDEN", ["input", "currentPassword"])]
    data = await gql(UPDATE, {"input": {"email": new_email, "password": "a brand new secret",
                                        "currentPassword": PASSWORD}}, token=token)
    assert data["userUpdate"]["userErrors"] == [] and data["userUpdate"]["user"]["email"] == new_email
    login = await gql(LOGIN, {"input": {"email": new_email, "password": "a brand new secret"}}, token="")
    assert login["userLogin"]["userErrors"] == []
    user_id = await sql.fetchval("select id::text from users where email = $1", new_email)
    audit = await sql.fetchrow("select before, after from audit_log where action = 'user.update' and target_id = $1",
                               user_id)
    assert email in audit["before"] and new_email in audit["after"] and "secret" not in audit["after"]


async def test_password_change_signs_out_other_sessions(gql):  # noqa: ANN001
    email = unique_email()
    token1, _ = await signed_in(gql, email=email)
    token2 = (await gql(LOGIN, {"input": {"email": email, "password": PASSWORD}}, token=""))["userLogin"]["token"]
    data = await gql(UPDATE, {"input": {"password": "another long secret", "currentPassword": PASSWORD}}, token=token2)
    assert data["userUpdate"]["userErrors"] == []
    assert (await gql.raw(VIEWER, token=token1)).status_code == 401
    assert (await gql.raw(VIEWER, token=token2)).status_code == 200


async def test_update_email_to_taken_one_is_conflict(gql):  # noqa: ANN001
    taken = unique_email()
    await signed_in(gql, email=taken)
    token, _ = await signed_in(gql)
    data = await gql(UPDATE, {"input": {"email": taken.upper(), "currentPassword": PASSWORD}}, token=token)
    assert errors_of(data["userUpdate"]) == [("CONFLICT", ["input", "email"])]


async def test_update_validates(gql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    data = await gql(UPDATE, {"input": {"email": "nope", "password": "short", "currentPassword": PASSWORD}}, token=token)
    assert sorted(errors_of(data["userUpdate"])) == [("VALIDATION", ["input", "email"]), ("VALIDATION", ["input", "password"])]


async def test_anonymous_update_is_unauthenticated(gql):  # noqa: ANN001
    data = await gql(UPDATE, {"input": {"name": "x"}}, token="")
    assert errors_of(data["userUpdate"]) == [("UNAUTHENTICATED", None)]


async def _login(http: httpx.AsyncClient, email: str, password: str, address: str) -> dict:
    r = await http.post("/graphql", json={"query": LOGIN, "variables": {"input": {"email": email, "password": password}}},
                        headers=from_address(address))
    return r.json()["data"]["userLogin"]


async def test_failed_logins_are_limited_per_account(start_server):  # noqa: ANN001
    server = start_server(login_attempts_per_15min=3)
    email = unique_email()
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/graphql", json={"query": REGISTER, "variables": {"input": {"email": email, "password": PASSWORD}}})
        for _ in range(3):  # each from another address: only the account bucket fills
            assert (await _login(http, email, "wrong password", fresh_address()))["userErrors"][0]["code"] == "UNAUTHENTICATED"
        blocked = await _login(http, email.upper(), PASSWORD, fresh_address())
        assert blocked["token"] is None and blocked["userErrors"][0]["code"] == "RATE_LIMITED"
        other = unique_email()
        await http.post("/graphql", json={"query": REGISTER, "variables": {"input": {"email": other, "password": PASSWORD}}})
        assert (await _login(http, other, PASSWORD, fresh_address()))["token"]  # other accounts are unaffected


async def test_failed_logins_are_limited_per_address(start_server):  # noqa: ANN001
    server = start_server(login_attempts_per_15min=3)
    address = fresh_address()
    email = unique_email()
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/graphql", json={"query": REGISTER, "variables": {"input": {"email": email, "password": PASSWORD}}})
        for _ in range(3):  # different unknown accounts, one address
            assert (await _login(http, unique_email(), PASSWORD, address))["userErrors"][0]["code"] == "UNAUTHENTICATED"
        assert (await _login(http, email, PASSWORD, address))["userErrors"][0]["code"] == "RATE_LIMITED"
        assert (await _login(http, email, PASSWORD, fresh_address()))["token"]
