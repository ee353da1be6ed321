"""Relay nodes of the accounts domain (tenant-checked), and notification preferences."""

from __future__ import annotations

from tests.graph.accounts.helpers import INVITE, add_member, errors_of, owner_with_org, signed_in
from tests.support.client import unique_email

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on User { email } ... on Organization { name } ... on Membership { role }
  ... on Invite { email } } }"""


async def test_nodes_resolve_for_members_and_are_null_for_others(gql):  # noqa: ANN001
    owner_token, owner, org = await owner_with_org(gql)
    member_token, member, membership = await add_member(gql, owner_token, org["id"], "viewer")
    invite = (await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=owner_token))
    invite_id = invite["organizationInvite"]["invite"]["id"]
    stranger_token, stranger = await signed_in(gql)

    async def node(gid: str, token: str):  # noqa: ANN202
        return (await gql(NODE, {"id": gid}, token=token))["node"]

    assert (await node(org["id"], member_token))["name"] == org["name"]
    assert (await node(owner["id"], member_token))["email"] == owner["email"]  # colleague
    assert (await node(membership, member_token))["role"] == "viewer"
    assert (await node(invite_id, owner_token))["__typename"] == "Invite"
    assert await node(invite_id, member_token) is None  # invites are for owners
    for gid in (org["id"], owner["id"], membership, invite_id):
        assert await node(gid, stranger_token) is None
    assert (await node(stranger["id"], stranger_token))["email"] == stranger["email"]  # yourself
    assert await node(stranger["id"], owner_token) is None  # no shared organization
    missing = "T3JnYW5pemF0aW9uOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA"  # Organization:0000...
    assert await node(missing, owner_token) is None
    assert (await gql("query($id: ID!) { organization(id: $id) { id } }", {"id": org["id"]},
                      token=stranger_token))["organization"] is None


PREFS = "{ viewer { notificationPreferences { event channels } } }"
PREFS_UPDATE = """mutation($input: NotificationPreferencesUpdateInput!) { notificationPreferencesUpdate(input: $input) {
  notificationPreferences { event channels } userErrors { code field message } } }"""


async def test_notification_preferences_defaults_and_update(gql, sql):  # noqa: ANN001
    token, user = await signed_in(gql)
    defaults = {p["event"]: p["channels"] for p in (await gql(PREFS, token=token))["viewer"]["notificationPreferences"]}
    assert defaults["incident_created"] == ["email", "in_app"] and defaults["weekly_digest"] == ["email"]
    assert len(defaults) == 8

    data = await gql(PREFS_UPDATE, {"input": {"preferences": [
        {"event": "incident_created", "channels": ["slack", "email", "slack"]},
        {"event": "weekly_digest", "channels": []}]}}, token=token)
    assert data["notificationPreferencesUpdate"]["userErrors"] == []
    now = {p["event"]: p["channels"] for p in (await gql(PREFS, token=token))["viewer"]["notificationPreferences"]}
    assert now["incident_created"] == ["email", "slack"] and now["weekly_digest"] == []
    assert now["anomaly_detected"] == defaults["anomaly_detected"]  # untouched events keep the default
    audit = await sql.fetchrow("select before, after from audit_log where action = 'notification_preferences.update' "
                               "and actor_email = $1", user["email"])
    assert "weekly_digest" in audit["after"] and "anomaly_detected" not in audit["after"]


async def test_notification_preferences_reject_duplicates_and_bad_names(gql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    data = await gql(PREFS_UPDATE, {"input": {"preferences": [
        {"event": "job_finished", "channels": ["email"]}, {"event": "job_finished", "channels": []}]}}, token=token)
    assert errors_of(data["notificationPreferencesUpdate"]) == [("VALIDATION", ["input", "preferences", "1", "event"])]
    r = await gql.raw(PREFS_UPDATE, {"input": {"preferences": [{"event": "nope", "channels": ["email"]}]}}, token=token)
    assert r.json()["errors"]  # not an enum value: GraphQL rejects it before the resolver
    prefs = {p["event"]: p["channels"] for p in (await gql(PREFS, token=token))["viewer"]["notificationPreferences"]}
    assert prefs["job_finished"] == ["in_app"]


async def test_api_key_cannot_change_notification_preferences(gql):  # noqa: ANN001
    from tests.graph.accounts.helpers import api_key

    token, _ = await signed_in(gql)
    key, _ = await api_key(gql, token, scope="write")
    data = await gql(PREFS_UPDATE, {"input": {"preferences": [{"event": "job_finished", "channels": []}]}}, token=key)
    assert errors_of(data["notificationPreferencesUpdate"]) == [("FORBIDDEN", None)]
