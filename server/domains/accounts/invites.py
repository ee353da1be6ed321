"""Organization invites: an owner invites an email address; the person with that address accepts
with the emailed token into their existing account.

Only a SHA-256 of the token is stored. The email goes out after commit and a mail failure never
fails the invite (the owner gets the token in the response too and can re-invite, which replaces
the pending invite).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts import mailer
from server.domains.accounts.models import Invite, Membership, Organization, Role, User
from server.domains.accounts.organizations import lock_organization, require_owner_now
from server.domains.accounts.validation import clean_email
from server.domains.platform import audit
from server.errors import DomainError, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal
from server.security.tokens import new_opaque_token, sha256_hex
from server.settings import Settings


class InviteStatus(str, enum.Enum):
    pending = "pending"
    accepted = "accepted"
    expired = "expired"


def invite_status(invite: Invite, now: datetime | None = None) -> InviteStatus:
    if invite.accepted_at is not None:
        return InviteStatus.accepted
    return InviteStatus.expired if invite.expires_at <= (now or utcnow()) else InviteStatus.pending


def invite_snapshot(invite: Invite) -> dict:
    """What the audit log keeps of an invite: never the token or its hash."""
    return {"email": invite.email, "role": invite.role.value, "expiresAt": invite.expires_at.isoformat()}


async def create_invite(rt: Runtime, principal: Principal, organization_id: uuid.UUID, email: str,
                        role: Role = Role.viewer, *, request_id: str | None = None) -> tuple[Invite, str]:
    """Owners only. Returns the invite and its token (shown once; also emailed)."""
    principal.require_role(organization_id, Role.owner)
    email = clean_email(email, ["input", "email"])
    async with rt.db.unit_of_work() as uow:
        await lock_organization(uow, organization_id)
        await require_owner_now(uow, principal, organization_id)
        if await _member_with_email(uow, organization_id, email):
            raise DomainError(ErrorCode.CONFLICT, "this person is already a member", ["input", "email"])
        await _drop_pending(uow, organization_id, email)
        token = new_opaque_token()
        invite = Invite(id=uuid.uuid4(), organization_id=organization_id, email=email, role=role,
                        token_hash=sha256_hex(token), invited_by_id=principal.user_id,
                        expires_at=utcnow() + timedelta(days=rt.settings.invite_ttl_days))
        uow.session.add(invite)
        audit.record(uow, principal, "organization.invite", organization_id=organization_id, target_type="Invite",
                     target_id=invite.id, summary=f"invited {email} as {role.value}", after=invite_snapshot(invite),
                     request_id=request_id)
        org_name = (await uow.session.get(Organization, organization_id)).name
        mail = invite_mail(rt.settings, invite, token, org_name, principal.email)

        async def send() -> None:
            await mailer.send_quietly(rt.settings, mail)

        uow.after_commit(send)
    return invite, token


async def _member_with_email(uow: UnitOfWork, organization_id: uuid.UUID, email: str) -> bool:
    return (await uow.session.execute(select(Membership.id).join(User, User.id == Membership.user_id).where(
        Membership.organization_id == organization_id, func.lower(User.email) == email.lower()))).first() is not None


async def _drop_pending(uow: UnitOfWork, organization_id: uuid.UUID, email: str) -> None:
    """Inviting the same address again replaces its pending invite: only the newest token works."""
    await uow.session.execute(delete(Invite).where(
        Invite.organization_id == organization_id, func.lower(Invite.email) == email.lower(),
        Invite.accepted_at.is_(None)))


def invite_mail(settings: Settings, invite: Invite, token: str, org_name: str, inviter: str | None) -> mailer.Mail:
    url = f"{settings.base_url.rstrip('/')}/graphql"
    body = (
        f"{inviter or 'Someone'} invited you to join the organization \"{org_name}\" on Insights "
        f"as {invite.role.value}.\n\n"
        f"Your invite token: {token}\n\n"
        f"To accept, sign in (or register) as {invite.email} at {url} and run:\n\n"
        f"  mutation {{ organizationInviteAccept(input: {{token: \"{token}\"}}) "
        f"{{ organization {{ id name }} userErrors {{ message }} }} }}\n\n"
        f"The invite expires on {invite.expires_at:%Y-%m-%d %H:%M} UTC.\n"
    )
    return mailer.Mail(to=invite.email, subject=f"You are invited to {org_name} on Insights", body=body)


async def accept_invite(rt: Runtime, principal: Principal, token: str, *,
                        request_id: str | None = None) -> Membership:
    """Join the invite's organization. The signed-in account's email must be the invited one."""
    user_id = principal.require_interactive()
    token = (token or "").strip()
    if not token:
        raise invalid("token must not be empty", ["input", "token"])
    async with rt.db.unit_of_work() as uow:
        invite = await _lock_invite(uow, token)
        user = await uow.session.get(User, user_id)
        if user is None or user.email.lower() != invite.email.lower():
            raise DomainError(ErrorCode.FORBIDDEN, "this invite was sent to another email address; "
                              "sign in with the invited address", ["input", "token"])
        await lock_organization(uow, invite.organization_id)
        membership = await _join(uow, invite, user_id)
        audit.record(uow, principal, "invite.accept", organization_id=invite.organization_id,
                     target_type="Membership", target_id=membership.id,
                     summary=f"{user.email} joined as {invite.role.value}",
                     after={"role": invite.role.value, "inviteId": str(invite.id)}, request_id=request_id)
    principal.roles[membership.organization_id] = membership.role
    return membership


async def _lock_invite(uow: UnitOfWork, token: str) -> Invite:
    invite = (await uow.session.execute(
        select(Invite).where(Invite.token_hash == sha256_hex(token)).with_for_update())).scalar_one_or_none()
    if invite is None:
        raise not_found("invite", ["input", "token"])
    status = invite_status(invite)
    if status == InviteStatus.accepted:
        raise DomainError(ErrorCode.CONFLICT, "this invite was already accepted", ["input", "token"])
    if status == InviteStatus.expired:
        raise DomainError(ErrorCode.EXPIRED, "this invite has expired; ask for a new one", ["input", "token"])
    return invite


async def _join(uow: UnitOfWork, invite: Invite, user_id: uuid.UUID) -> Membership:
    existing = (await uow.session.execute(select(Membership.id).where(
        Membership.organization_id == invite.organization_id, Membership.user_id == user_id))).first()
    if existing is not None:
        raise DomainError(ErrorCode.CONFLICT, "you are already a member of this organization", ["input", "token"])
    membership = Membership(id=uuid.uuid4(), organization_id=invite.organization_id, user_id=user_id, role=invite.role)
    uow.session.add(membership)
    invite.accepted_at = utcnow()
    invite.accepted_by_id = user_id
    try:
        await uow.session.flush()
    except IntegrityError:
        raise DomainError(ErrorCode.CONFLICT, "you are already a member of this organization", ["input", "token"]) from None
    return membership
