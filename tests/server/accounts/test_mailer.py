"""The invite mailer against a local SMTP server, and its fallbacks."""

from __future__ import annotations

import logging
import socket

import httpx

from server.domains.accounts import mailer
from server.settings import Settings
from tests.graph.accounts.helpers import INVITE, LOGIN, ORG_CREATE, REGISTER
from tests.server.accounts.smtp_recorder import SMTPRecorder
from tests.support.client import unique_email


def _settings(tmp_path, **kw) -> Settings:  # noqa: ANN001, ANN003
    return Settings(home=tmp_path, secret_key="k" * 40, smtp_starttls=False, smtp_from="insights@example.org", **kw)


async def test_send_over_smtp(tmp_path):  # noqa: ANN001
    async with SMTPRecorder() as smtp:
        await mailer.send(_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port),
                          mailer.Mail(to="ada@example.com", subject="Hello", body="Line one\n.\nLast"))
    [got] = smtp.messages
    assert got.mail_from == "insights@example.org" and got.recipients == ["ada@example.com"]
    assert got.message["Subject"] == "Hello" and got.message.get_content().splitlines() == ["Line one", ".", "Last"]


async def test_logged_when_no_smtp_host(tmp_path, caplog):  # noqa: ANN001
    with caplog.at_level(logging.INFO, logger="insights.mail"):
        assert await mailer.send_quietly(_settings(tmp_path), mailer.Mail("bob@example.com", "Subj", "token abc"))
    assert any("bob@example.com" in r.getMessage() and "token abc" in r.getMessage() for r in caplog.records)


async def test_unreachable_smtp_is_logged_not_raised(tmp_path, caplog):  # noqa: ANN001
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="insights.mail"):
        sent = await mailer.send_quietly(_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port),
                                         mailer.Mail("c@example.com", "S", "B"))
    assert sent is False
    assert any("could not send email to c@example.com" in r.getMessage() for r in caplog.records)


async def _owner_token(http: httpx.AsyncClient) -> tuple[str, str]:
    email, password = unique_email(), "correct horse battery"
    await http.post("/graphql", json={"query": REGISTER, "variables": {"input": {"email": email, "password": password}}})
    token = (await http.post("/graphql", json={"query": LOGIN, "variables": {"input": {"email": email, "password": password}}})
             ).json()["data"]["userLogin"]["token"]
    org = (await http.post("/graphql", json={"query": ORG_CREATE, "variables": {"input": {"name": "Mail Co"}}},
                           headers={"authorization": f"Bearer {token}"})).json()["data"]["organizationCreate"]
    return token, org["organization"]["id"]


async def test_invite_email_goes_through_smtp(start_server):  # noqa: ANN001
    async with SMTPRecorder() as smtp:
        server = start_server(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
                              public_url="https://insights.example.org")
        async with httpx.AsyncClient(base_url=server.url) as http:
            token, org_id = await _owner_token(http)
            invitee = unique_email("invitee")
            r = await http.post("/graphql", json={"query": INVITE, "variables": {"input": {
                "organizationId": org_id, "email": invitee, "role": "editor"}}}, headers={"authorization": f"Bearer {token}"})
    invite = r.json()["data"]["organizationInvite"]
    assert invite["userErrors"] == []
    [got] = smtp.messages
    body = got.message.get_content()
    assert got.recipients == [invitee] and "Mail Co" in got.message["Subject"]
    assert invite["token"] in body and "https://insights.example.org/graphql" in body and "editor" in body


async def test_invite_succeeds_when_smtp_is_down(start_server, caplog):  # noqa: ANN001
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
    async with httpx.AsyncClient(base_url=server.url) as http:
        token, org_id = await _owner_token(http)
        with caplog.at_level(logging.WARNING, logger="insights.mail"):
            r = await http.post("/graphql", json={"query": INVITE, "variables": {"input": {
                "organizationId": org_id, "email": unique_email()}}}, headers={"authorization": f"Bearer {token}"})
        listed = await http.post("/graphql", json={"query": "query($id: ID!) { organization(id: $id) { invites { totalCount } } }",
                                                   "variables": {"id": org_id}}, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["data"]["organizationInvite"]["userErrors"] == []
    assert listed.json()["data"]["organization"]["invites"]["totalCount"] == 1
    assert any("could not send email" in rec.getMessage() for rec in caplog.records)
