"""Service-level tests against the real database: the CLI helper, the export, grouped paging."""

from __future__ import annotations

import uuid

import orjson
import pytest
from sqlalchemy import select

from server.db.paging import PageRequest, keyset_page
from server.domains.accounts import service as accounts
from server.domains.accounts.export import export_organization
from server.domains.accounts.grouped_pages import keyset_pages_by
from server.domains.accounts.models import ApiKey, KeyScope, Membership, Role
from server.errors import DomainError, ErrorCode
from server.security.principal import Principal
from tests.support.client import unique_email

PASSWORD = "correct horse battery"


async def _principal(rt, user_id: uuid.UUID) -> Principal:  # noqa: ANN001
    from server.security.authn import load_roles

    async with rt.db.session() as s:
        roles = await load_roles(s, user_id)
    return Principal(user_id=user_id, roles=roles, address="127.0.0.1")


async def test_create_user_with_organization(rt):  # noqa: ANN001
    email = unique_email("cli")
    user = await accounts.create_user(rt, email, PASSWORD, "Admin", organization_name="First Org")
    principal = await _principal(rt, user.id)
    assert list(principal.roles.values()) == [Role.owner]
    result = await accounts.login(rt, Principal(address="10.9.9.9"), email, PASSWORD)
    assert result.user.id == user.id


async def test_create_user_validates_like_register(rt):  # noqa: ANN001
    email = unique_email("cli")
    await accounts.create_user(rt, email, PASSWORD)
    with pytest.raises(DomainError) as e:
        await accounts.create_user(rt, email.upper(), PASSWORD)
    assert e.value.code == ErrorCode.CONFLICT
    with pytest.raises(DomainError) as e:
        await accounts.create_user(rt, "bad", "short")
    assert e.value.code == ErrorCode.VALIDATION and len(e.value.errors) == 2
    with pytest.raises(DomainError):
        await accounts.create_user(rt, unique_email(), PASSWORD, organization_name="  ")


async def test_export_has_members_invites_and_keys_but_no_secrets(rt):  # noqa: ANN001
    owner = await accounts.create_user(rt, unique_email("owner"), PASSWORD, "Owner", organization_name="Export Co")
    p_owner = await _principal(rt, owner.id)
    org_id = next(iter(p_owner.roles))
    invite, invite_token = await accounts.create_invite(rt, p_owner, org_id, unique_email("pending"), Role.editor)
    member = await accounts.create_user(rt, unique_email("member"), PASSWORD)
    _, accept_token = await accounts.create_invite(rt, p_owner, org_id, member.email, Role.viewer)
    await accounts.accept_invite(rt, await _principal(rt, member.id), accept_token)
    p_member = await _principal(rt, member.id)
    bound, bound_token = await accounts.create_api_key(rt, p_owner, "bound", KeyScope.write, organization_id=org_id)
    _, unbound_token = await accounts.create_api_key(rt, p_member, "member personal", expires_in_days=5)
    outsider = await accounts.create_user(rt, unique_email("outsider"), PASSWORD, organization_name="Other")
    await accounts.create_api_key(rt, await _principal(rt, outsider.id), "not exported")
    await accounts.revoke_api_key(rt, p_owner, bound.id)

    data = await export_organization(rt, org_id)
    assert data["organization"]["name"] == "Export Co"
    assert [(m["email"], m["role"]) for m in data["members"]] == [(owner.email, "owner"), (member.email, "viewer")]
    assert sorted((i["email"], i["status"]) for i in data["invites"]) == sorted(
        [(invite.email, "pending"), (member.email, "accepted")])
    keys = {k["name"]: k for k in data["apiKeys"]}
    assert set(keys) == {"bound", "member personal"}
    assert keys["bound"]["revokedAt"] is not None and keys["bound"]["ownerEmail"] == owner.email
    assert keys["member personal"]["expiresAt"] is not None and keys["member personal"]["organizationBound"] is False
    text = orjson.dumps(data).decode()
    async with rt.db.session() as s:
        hashes = (await s.execute(select(ApiKey.key_hash).where(ApiKey.id == bound.id))).scalars().all()
    for secret in (invite_token, accept_token, bound_token, unbound_token, *hashes, "argon2"):
        assert secret not in text


async def test_grouped_pages_match_single_keyset_pages(rt):  # noqa: ANN001
    """Batched pages of several organizations equal what keyset_page returns for each alone."""
    org_ids = []
    for n in (5, 1, 0):
        owner = await accounts.create_user(rt, unique_email("g"), PASSWORD, organization_name=f"G{n}")
        p = await _principal(rt, owner.id)
        org_id = next(iter(p.roles))
        org_ids.append(org_id)
        for _ in range(n):
            member = await accounts.create_user(rt, unique_email("gm"), PASSWORD)
            _, token = await accounts.create_invite(rt, p, org_id, member.email)
            await accounts.accept_invite(rt, await _principal(rt, member.id), token)
    order = [Membership.created_at, Membership.id]

    async def no_count() -> int:
        return -1

    for req in (PageRequest(first=2), PageRequest(last=2), PageRequest(first=0), PageRequest(first=10)):
        batched = await keyset_pages_by(rt.db, Membership, select(Membership), Membership.organization_id, org_ids,
                                        order, req, lambda g: no_count)
        for org_id in org_ids:
            alone = await keyset_page(rt.db, select(Membership).where(Membership.organization_id == org_id), order, req,
                                      descending=False)
            got = batched[org_id]
            assert [m.id for m in got.items] == [m.id for m in alone.items]
            assert got.cursors == alone.cursors
            assert (got.has_next_page, got.has_previous_page) == (alone.has_next_page, alone.has_previous_page)
        # follow a cursor
        first = batched[org_ids[0]]
        if first.cursors and req.first:
            nxt = await keyset_pages_by(rt.db, Membership, select(Membership), Membership.organization_id, [org_ids[0]],
                                        order, PageRequest(first=req.first, after=first.cursors[-1]), lambda g: no_count)
            alone = await keyset_page(rt.db, select(Membership).where(Membership.organization_id == org_ids[0]), order,
                                      PageRequest(first=req.first, after=first.cursors[-1]), descending=False)
            assert [m.id for m in nxt[org_ids[0]].items] == [m.id for m in alone.items]


async def _two_owner_org(rt):  # noqa: ANN001, ANN202
    a = await accounts.create_user(rt, unique_email("a"), PASSWORD, organization_name="Race")
    pa = await _principal(rt, a.id)
    org_id = next(iter(pa.roles))
    b = await accounts.create_user(rt, unique_email("b"), PASSWORD)
    _, token = await accounts.create_invite(rt, pa, org_id, b.email, Role.owner)
    mb = await accounts.accept_invite(rt, await _principal(rt, b.id), token)
    async with rt.db.session() as s:
        ma = (await s.execute(select(Membership).where(Membership.user_id == a.id))).scalar_one()
    return org_id, (a, ma), (b, mb)


async def _owners(rt, org_id) -> int:  # noqa: ANN001
    async with rt.db.session() as s:
        return len((await s.execute(select(Membership).where(
            Membership.organization_id == org_id, Membership.role == Role.owner))).scalars().all())


async def test_owners_demoting_each_other_at_once_leave_one_owner(rt):  # noqa: ANN001
    import asyncio

    org_id, (a, ma), (b, mb) = await _two_owner_org(rt)
    pa, pb = await _principal(rt, a.id), await _principal(rt, b.id)
    results = await asyncio.gather(accounts.update_membership(rt, pa, mb.id, Role.viewer),
                                   accounts.update_membership(rt, pb, ma.id, Role.viewer), return_exceptions=True)
    assert sum(isinstance(r, DomainError) for r in results) == 1, results
    assert await _owners(rt, org_id) == 1


async def test_both_owners_leaving_at_once_leave_one_owner(rt):  # noqa: ANN001
    import asyncio

    org_id, (a, ma), (b, mb) = await _two_owner_org(rt)
    pa, pb = await _principal(rt, a.id), await _principal(rt, b.id)
    results = await asyncio.gather(accounts.remove_membership(rt, pa, ma.id), accounts.remove_membership(rt, pb, mb.id),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, DomainError)]
    assert len(errors) == 1 and errors[0].code == ErrorCode.CONFLICT
    assert await _owners(rt, org_id) == 1
