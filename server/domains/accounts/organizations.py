"""Organizations and their memberships: create, change a member's role, remove (or leave).

Every membership change first locks the organization row, so concurrent changes in one
organization run one after another: two owners demoting each other at the same moment cannot
leave it without an owner.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, select, update

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import ApiKey, Membership, Organization, Role
from server.domains.accounts.validation import ORGANIZATION_NAME_MAX, clean_required_name
from server.domains.platform import audit
from server.errors import DomainError, ErrorCode, forbidden, not_found
from server.runtime import Runtime
from server.security.principal import Principal


async def add_organization(uow: UnitOfWork, name: str, owner_id: uuid.UUID) -> tuple[Organization, Membership]:
    """Insert an organization and its owner's membership. Flushed one after the other: the models
    have no relationship() that would tell the unit of work the foreign-key order."""
    org = Organization(id=uuid.uuid4(), name=name)
    uow.session.add(org)
    await uow.session.flush()
    membership = Membership(id=uuid.uuid4(), organization_id=org.id, user_id=owner_id, role=Role.owner)
    uow.session.add(membership)
    await uow.session.flush()
    return org, membership


async def create_organization(rt: Runtime, principal: Principal, name: str, *,
                              request_id: str | None = None) -> tuple[Organization, Membership]:
    """The creator becomes its first owner."""
    user_id = principal.require_interactive()
    name = clean_required_name(name, ["input", "name"], ORGANIZATION_NAME_MAX)
    async with rt.db.unit_of_work() as uow:
        org, membership = await add_organization(uow, name, user_id)
        audit.record(uow, principal, "organization.create", organization_id=org.id, target_type="Organization",
                     target_id=org.id, summary=f"created organization {name}", after={"name": name},
                     request_id=request_id)
    principal.roles[org.id] = Role.owner  # the rest of this request sees the new organization
    return org, membership


# --- locking and permission helpers ----------------------------------------------------------

async def lock_organization(uow: UnitOfWork, organization_id: uuid.UUID) -> None:
    await uow.session.execute(select(Organization.id).where(Organization.id == organization_id).with_for_update())


async def current_role(uow: UnitOfWork, organization_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
    """The role as committed now (the principal's roles were read when the request began)."""
    return (await uow.session.execute(select(Membership.role).where(
        Membership.organization_id == organization_id, Membership.user_id == user_id))).scalar_one_or_none()


async def require_owner_now(uow: UnitOfWork, principal: Principal, organization_id: uuid.UUID,
                            what: str = "organization") -> None:
    """Owner check against the locked, committed membership: NOT_FOUND for non-members (tenant
    isolation), FORBIDDEN for members below owner."""
    principal.require_role(organization_id, Role.owner, what)
    role = await current_role(uow, organization_id, principal.require_user())
    if role is None:
        raise not_found(what)
    if role != Role.owner:
        raise forbidden("this needs the owner role")


async def owner_count(uow: UnitOfWork, organization_id: uuid.UUID) -> int:
    return (await uow.session.execute(select(func.count()).select_from(Membership).where(
        Membership.organization_id == organization_id, Membership.role == Role.owner))).scalar_one()


def last_owner() -> DomainError:
    return DomainError(ErrorCode.CONFLICT, "an organization needs at least one owner; make someone else owner first",
                       ["input", "id"])


async def _visible_membership(rt: Runtime, principal: Principal, membership_id: uuid.UUID) -> Membership:
    """The membership if it belongs to one of the caller's organizations, else NOT_FOUND."""
    async with rt.db.session() as s:
        m = await s.get(Membership, membership_id)
    if m is None or principal.role_in(m.organization_id) is None:
        raise not_found("membership", ["input", "id"])
    return m


async def _lock_membership(uow: UnitOfWork, membership_id: uuid.UUID) -> Membership:
    m = (await uow.session.execute(
        select(Membership).where(Membership.id == membership_id).with_for_update())).scalar_one_or_none()
    if m is None:  # removed while we waited for the lock
        raise not_found("membership", ["input", "id"])
    return m


# --- membership changes ----------------------------------------------------------------------

async def update_membership(rt: Runtime, principal: Principal, membership_id: uuid.UUID, role: Role | None, *,
                            request_id: str | None = None) -> Membership:
    """Owners change roles; demoting the last owner is a CONFLICT. `role=None` changes nothing."""
    principal.require_user()
    found = await _visible_membership(rt, principal, membership_id)
    async with rt.db.unit_of_work() as uow:
        await lock_organization(uow, found.organization_id)
        await require_owner_now(uow, principal, found.organization_id, "membership")
        m = await _lock_membership(uow, membership_id)
        if role is None or role == m.role:
            return m
        if m.role == Role.owner and await owner_count(uow, m.organization_id) <= 1:
            raise last_owner()
        before = {"role": m.role.value}
        m.role = role
        audit.record(uow, principal, "membership.update", organization_id=m.organization_id,
                     target_type="Membership", target_id=m.id, summary=f"changed a member's role to {role.value}",
                     before=before, after={"role": role.value, "userId": str(m.user_id)}, request_id=request_id)
    if m.user_id == principal.user_id:
        principal.roles[m.organization_id] = role
    return m


async def remove_membership(rt: Runtime, principal: Principal, membership_id: uuid.UUID, *,
                            request_id: str | None = None) -> Membership:
    """Owners remove members; any member may remove themself (leave). The last owner stays.
    The removed member's API keys bound to this organization are revoked with the membership."""
    user_id = principal.require_user()
    principal.require_write()
    found = await _visible_membership(rt, principal, membership_id)
    leaving = found.user_id == user_id
    if leaving:  # leaving changes the account itself: a person, not a key
        principal.require_interactive()
    async with rt.db.unit_of_work() as uow:
        await lock_organization(uow, found.organization_id)
        if not leaving:
            await require_owner_now(uow, principal, found.organization_id, "membership")
        m = await _lock_membership(uow, membership_id)
        if m.role == Role.owner and await owner_count(uow, m.organization_id) <= 1:
            raise last_owner()
        await uow.session.delete(m)
        await uow.session.execute(update(ApiKey).where(
            ApiKey.user_id == m.user_id, ApiKey.organization_id == m.organization_id, ApiKey.revoked_at.is_(None),
        ).values(revoked_at=utcnow()))
        audit.record(uow, principal, "membership.remove", organization_id=m.organization_id,
                     target_type="Membership", target_id=m.id,
                     summary="left the organization" if leaving else "removed a member",
                     before={"role": m.role.value, "userId": str(m.user_id)}, request_id=request_id)
    if leaving:
        principal.roles.pop(m.organization_id, None)
    return m


def my_organizations_query(principal: Principal) -> Select:
    """The organizations the principal belongs to (just the bound one for an organization-bound key)."""
    return select(Organization).where(Organization.id.in_(principal.organization_ids))
