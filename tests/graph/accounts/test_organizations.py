"""Organizations, members, roles and invites, with tenant isolation and owner-only management."""

from __future__ import annotations

import logging
from datetime import timedelta

from tests.graph.accounts.helpers import (
    ACCEPT,
    INVITE,
    MEMBERS,
    MEMBERSHIP_REMOVE,
    MEMBERSHIP_UPDATE,
    ORG_CREATE,
    VIEWER,
    add_member,
    errors_of,
    membership_id_of,
    owner_with_org,
    raw_id,
    signed_in,
)
from tests.support.client import unique_email


async def test_create_organization_makes_creator_owner(gql, sql):  # noqa: ANN001
    token, user = await signed_in(gql)
    data = await gql(ORG_CREATE, {"input": {"name": "  Zeta Corp "}}, token=token)
    created = data["organizationCreate"]
    assert created["userErrors"] == []
    assert created["organization"]["name"] == "Zeta Corp" and created["organization"]["viewerRole"] == "owner"
    assert created["membership"]["role"] == "owner"
    await gql(ORG_CREATE, {"input": {"name": "Alpha"}}, token=token)
    orgs = (await gql(VIEWER, token=token))["viewer"]["organizations"]["nodes"]
    assert [o["name"] for o in orgs] == ["Alpha", "Zeta Corp"]
    assert await sql.fetchval("select count(*) from audit_log where action = 'organization.create' and actor_email = $1",
                              user["email"]) == 2


async def test_create_organization_validates_name(gql):  # noqa: ANN001
    token, _ = await signed_in(gql)
    for name in ("   ", "x" * 256):
        data = await gql(ORG_CREATE, {"input": {"name": name}}, token=token)
        assert errors_of(data["organizationCreate"]) == [("VALIDATION", ["input", "name"])]


async def test_invite_accept_and_members_list(gql, sql, caplog):  # noqa: ANN001
    owner_token, owner, org = await owner_with_org(gql)
    email = unique_email("Invitee")
    with caplog.at_level(logging.INFO, logger="insights.mail"):
        data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": email, "role": "editor"}},
                         token=owner_token)
    invite = data["organizationInvite"]
    assert invite["userErrors"] == [] and invite["invite"]["status"] == "pending"
    token = invite["token"]
    mails = [r.getMessage() for r in caplog.records if r.name == "insights.mail"]
    assert any(email in m and token in m for m in mails), mails
    stored = await sql.fetchrow("select token_hash from invites where email = $1", email)
    assert stored["token_hash"] != token and len(stored["token_hash"]) == 64

    member_token, member = await signed_in(gql, email=email.upper())  # address case does not matter
    accepted = (await gql(ACCEPT, {"input": {"token": token}}, token=member_token))["organizationInviteAccept"]
    assert accepted["userErrors"] == []
    assert accepted["membership"]["role"] == "editor" and accepted["organization"]["viewerRole"] == "editor"

    listed = (await gql(MEMBERS, {"id": org["id"]}, token=owner_token))["organization"]
    assert listed["members"]["totalCount"] == 2
    assert [(m["user"]["email"], m["role"]) for m in listed["members"]["nodes"]] == [
        (owner["email"], "owner"), (member["email"], "editor")]
    assert listed["invites"]["nodes"][0]["status"] == "accepted"

    # the token is single-use
    again = (await gql(ACCEPT, {"input": {"token": token}}, token=member_token))["organizationInviteAccept"]
    assert errors_of(again) == [("CONFLICT", ["input", "token"])]
    actions = {r["action"] for r in await sql.fetch("select action from audit_log where organization_id = "
                                                     "(select organization_id from invites where email = $1)", email)}
    assert {"organization.create", "organization.invite", "invite.accept"} <= actions


async def test_members_see_members_but_not_invites(gql):  # noqa: ANN001
    owner_token, _, org = await owner_with_org(gql)
    viewer_token, _, _ = await add_member(gql, owner_token, org["id"], "viewer")
    await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=owner_token)
    as_viewer = (await gql(MEMBERS, {"id": org["id"]}, token=viewer_token))["organization"]
    assert as_viewer["viewerRole"] == "viewer" and as_viewer["members"]["totalCount"] == 2
    assert as_viewer["invites"] is None
    as_owner = (await gql(MEMBERS, {"id": org["id"]}, token=owner_token))["organization"]
    assert as_owner["invites"]["totalCount"] == 2  # the accepted one and the pending one


async def test_accept_with_other_email_is_forbidden(gql):  # noqa: ANN001
    owner_token, _, org = await owner_with_org(gql)
    data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=owner_token)
    intruder_token, _ = await signed_in(gql)
    res = (await gql(ACCEPT, {"input": {"token": data["organizationInvite"]["token"]}}, token=intruder_token))
    assert errors_of(res["organizationInviteAccept"]) == [("FORBIDDEN", ["input", "token"])]
    assert (await gql(MEMBERS, {"id": org["id"]}, token=intruder_token))["organization"] is None


async def test_unknown_and_expired_invites(gql, sql):  # noqa: ANN001
    owner_token, _, org = await owner_with_org(gql)
    email = unique_email()
    data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": email}}, token=owner_token)
    token = data["organizationInvite"]["token"]
    member_token, _ = await signed_in(gql, email=email)
    unknown = await gql(ACCEPT, {"input": {"token": "not-a-real-token"}}, token=member_token)
    assert errors_of(unknown["organizationInviteAccept"]) == [("NOT_FOUND", ["input", "token"])]
    await sql.execute("update invites set expires_at = now() - interval '1 minute' where email = $1", email)
    expired = await gql(ACCEPT, {"input": {"token": token}}, token=member_token)
    assert errors_of(expired["organizationInviteAccept"]) == [("EXPIRED", ["input", "token"])]
    status = (await gql(MEMBERS, {"id": org["id"]}, token=owner_token))["organization"]["invites"]["nodes"][0]
    assert status["status"] == "expired"


async def test_invite_expiry_follows_setting(gql, settings):  # noqa: ANN001
    from datetime import datetime, timezone

    owner_token, _, org = await owner_with_org(gql)
    data = await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=owner_token)
    expires = datetime.fromisoformat(data["organizationInvite"]["invite"]["expiresAt"])
    delta = expires - datetime.now(timezone.utc)
    assert timedelta(days=settings.invite_ttl_days) - timedelta(minutes=1) < delta <= timedelta(days=settings.invite_ttl_days)


async def test_reinvite_replaces_pending_invite(gql):  # noqa: ANN001
    owner_token, _, org = await owner_with_org(gql)
    email = unique_email()
    first = (await gql(INVITE, {"input": {"organizationId": org["id"], "email": email}}, token=owner_token))
    second = (await gql(INVITE, {"input": {"organizationId": org["id"], "email": email.upper(), "role": "editor"}},
                        token=owner_token))
    member_token, _ = await signed_in(gql, email=email)
    old = await gql(ACCEPT, {"input": {"token": first["organizationInvite"]["token"]}}, token=member_token)
    assert errors_of(old["organizationInviteAccept"]) == [("NOT_FOUND", ["input", "token"])]
    new = await gql(ACCEPT, {"input": {"token": second["organizationInvite"]["token"]}}, token=member_token)
    assert new["organizationInviteAccept"]["membership"]["role"] == "editor"


async def test_invite_validation_and_existing_member(gql):  # noqa: ANN001
    owner_token, owner, org = await owner_with_org(gql)
    bad = await gql(INVITE, {"input": {"organizationId": org["id"], "email": "nope"}}, token=owner_token)
    assert errors_of(bad["organizationInvite"]) == [("VALIDATION", ["input", "email"])]
    member = await gql(INVITE, {"input": {"organizationId": org["id"], "email": owner["email"].upper()}}, token=owner_token)
    assert errors_of(member["organizationInvite"]) == [("CONFLICT", ["input", "email"])]
    wrong_id = await gql(INVITE, {"input": {"organizationId": owner["id"], "email": unique_email()}}, token=owner_token)
    assert errors_of(wrong_id["organizationInvite"]) == [("VALIDATION", ["input", "organizationId"])]


async def test_viewers_and_editors_cannot_invite_or_change_roles(gql, sql):  # noqa: ANN001
    owner_token, owner, org = await owner_with_org(gql)
    editor_token, _, _ = await add_member(gql, owner_token, org["id"], "editor")
    viewer_token, _, viewer_membership = await add_member(gql, owner_token, org["id"], "viewer")
    owner_membership = await membership_id_of(gql, owner_token, org["id"], owner["email"])
    for token in (editor_token, viewer_token):
        inv = await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=token)
        assert errors_of(inv["organizationInvite"]) == [("FORBIDDEN", None)]
        up = await gql(MEMBERSHIP_UPDATE, {"input": {"id": viewer_membership, "role": "owner"}}, token=token)
        assert errors_of(up["membershipUpdate"]) == [("FORBIDDEN", None)]
        rm = await gql(MEMBERSHIP_REMOVE, {"input": {"id": owner_membership}}, token=token)
        assert errors_of(rm["membershipRemove"]) == [("FORBIDDEN", None)]
    assert await sql.fetchval("select count(*) from audit_log where organization_id = $1::uuid "
                              "and action in ('membership.update', 'membership.remove')", raw_id(org["id"])) == 0
    listed = (await gql(MEMBERS, {"id": org["id"]}, token=owner_token))["organization"]["members"]["nodes"]
    assert sorted(m["role"] for m in listed) == ["editor", "owner", "viewer"]


async def test_other_organizations_owner_gets_not_found(gql):  # noqa: ANN001
    owner_token, owner, org = await owner_with_org(gql)
    _, _, member_membership = await add_member(gql, owner_token, org["id"], "viewer")
    stranger_token, _, _ = await owner_with_org(gql, "Other Inc")
    up = await gql(MEMBERSHIP_UPDATE, {"input": {"id": member_membership, "role": "owner"}}, token=stranger_token)
    assert errors_of(up["membershipUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    rm = await gql(MEMBERSHIP_REMOVE, {"input": {"id": member_membership}}, token=stranger_token)
    assert errors_of(rm["membershipRemove"]) == [("NOT_FOUND", ["input", "id"])]
    inv = await gql(INVITE, {"input": {"organizationId": org["id"], "email": unique_email()}}, token=stranger_token)
    assert errors_of(inv["organizationInvite"]) == [("NOT_FOUND", None)]
    assert (await gql(MEMBERS, {"id": org["id"]}, token=stranger_token))["organization"] is None
    roles = (await gql(MEMBERS, {"id": org["id"]}, token=owner_token))["organization"]["members"]["nodes"]
    assert sorted(m["role"] for m in roles) == ["owner", "viewer"]


async def test_change_role_and_last_owner_protection(gql, sql):  # noqa: ANN001
    owner_token, owner, org = await owner_with_org(gql)
    owner_membership = await membership_id_of(gql, owner_token, org["id"], owner["email"])
    demote = await gql(MEMBERSHIP_UPDATE, {"input": {"id": owner_membership, "role": "editor"}}, token=owner_token)
    assert errors_of(demote["membershipUpdate"]) == [("CONFLICT", ["input", "id"])]
    leave = await gql(MEMBERSHIP_REMOVE, {"input": {"id": owner_membership}}, token=owner_token)
    assert errors_of(leave["membershipRemove"]) == [("CONFLICT", ["input", "id"])]

    second_token, _, second_membership = await add_member(gql, owner_token, org["id"], "viewer")
    promoted = await gql(MEMBERSHIP_UPDATE, {"input": {"id": second_membership, "role": "owner"}}, token=owner_token)
    assert promoted["membershipUpdate"] == {"membership": {"id": second_membership, "role": "owner"}, "userErrors": []}
    unchanged = await gql(MEMBERSHIP_UPDATE, {"input": {"id": second_membership}}, token=owner_token)
    assert unchanged["membershipUpdate"]["membership"]["role"] == "owner"
    # now the first owner may step down
    demote = await gql(MEMBERSHIP_UPDATE, {"input": {"id": owner_membership, "role": "viewer"}}, token=owner_token)
    assert demote["membershipUpdate"]["membership"]["role"] == "viewer"
    # ...and has lost owner rights within the same token
    again = await gql(MEMBERSHIP_UPDATE, {"input": {"id": second_membership, "role": "viewer"}}, token=owner_token)
    assert errors_of(again["membershipUpdate"]) == [("FORBIDDEN", None)]
    audit = await sql.fetch("select before->>'role' as was, after->>'role' as now from audit_log "
                            "where action = 'membership.update' and target_id = $1 order by created_at",
                            raw_id(second_membership))
    assert [(r["was"], r["now"]) for r in audit] == [("viewer", "owner")]


async def test_owner_removes_member_and_their_bound_keys_die(gql, sql):  # noqa: ANN001
    from tests.graph.accounts.helpers import api_key

    owner_token, _, org = await owner_with_org(gql)
    member_token, member, membership = await add_member(gql, owner_token, org["id"], "editor")
    key, _ = await api_key(gql, member_token, organizationId=org["id"], scope="write")
    assert (await gql.raw("{ viewer { id } }", token=key)).status_code == 200
    removed = await gql(MEMBERSHIP_REMOVE, {"input": {"id": membership}}, token=owner_token)
    assert removed["membershipRemove"]["userErrors"] == []
    assert removed["membershipRemove"]["removedMembershipId"] == membership
    assert removed["membershipRemove"]["organization"]["id"] == org["id"]
    assert (await gql(MEMBERS, {"id": org["id"]}, token=member_token))["organization"] is None
    assert (await gql.raw("{ viewer { id } }", token=key)).status_code == 401
    assert await sql.fetchval("select count(*) from audit_log where action = 'membership.remove' and target_id = $1",
                              raw_id(membership)) == 1
    assert await sql.fetchval("select revoked_at is not null from api_keys where user_id = $1::uuid",
                              raw_id(member["id"])) is True


async def test_member_can_leave(gql):  # noqa: ANN001
    owner_token, _, org = await owner_with_org(gql)
    member_token, _, membership = await add_member(gql, owner_token, org["id"], "viewer")
    left = await gql(MEMBERSHIP_REMOVE, {"input": {"id": membership}}, token=member_token)
    assert left["membershipRemove"]["userErrors"] == [] and left["membershipRemove"]["organization"] is None
    assert (await gql(VIEWER, token=member_token))["viewer"]["organizations"]["nodes"] == []
