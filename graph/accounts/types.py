"""Accounts types: `Viewer`, and the nodes `User`, `Organization`, `Membership`, `Invite`, `ApiKey`.

Each type keeps the raw UUIDs it needs (private) and resolves relations through the operation's
dataloaders (server/domains/accounts/loaders.py), which also enforce who may see what.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.node import Node, load_one, register_node, to_global_id
from server.db.base import utcnow
from server.db.paging import PageRequest, keyset_page
from server.domains.accounts import loaders, notifications
from server.domains.accounts import service as accounts
from server.domains.accounts.invites import InviteStatus as InviteStatusEnum
from server.domains.accounts.models import ApiKey as ApiKeyRow
from server.domains.accounts.models import Invite as InviteRow
from server.domains.accounts.models import KeyScope
from server.domains.accounts.models import Membership as MembershipRow
from server.domains.accounts.models import Organization as OrganizationRow
from server.domains.accounts.models import Role as RoleEnum
from server.domains.accounts.models import User as UserRow

Role = strawberry.enum(RoleEnum, name="Role", description="A member's role: viewers read, editors change, owners also manage members, invites and settings.")
ApiKeyScope = strawberry.enum(KeyScope, name="ApiKeyScope", description="`read` keys only query; `write` keys may also mutate, within the owner's role.")
InviteStatus = strawberry.enum(InviteStatusEnum, name="InviteStatus")
NotificationEvent = strawberry.enum(enum.Enum("NotificationEvent", {e: e for e in notifications.EVENTS}),
                                    name="NotificationEvent", description="Something a user can be notified about.")
NotificationChannel = strawberry.enum(enum.Enum("NotificationChannel", {c: c for c in notifications.CHANNELS}),
                                      name="NotificationChannel", description="Where a notification is delivered.")


def _page_request(first: int | None, after: str | None, last: int | None, before: str | None) -> PageRequest:
    return PageRequest(first, after, last, before)


@strawberry.type(description="A person with an account. Visible to themself and to members of organizations they share.")
class User(Node):
    email: str
    name: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: UserRow) -> "User":
        return cls(id=to_global_id("User", row.id), email=row.email, name=row.name, created_at=row.created_at)


@strawberry.type(description="The tenant: every project, incident and setting belongs to one organization.")
class Organization(Node):
    name: str
    created_at: datetime
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: OrganizationRow) -> "Organization":
        return cls(id=to_global_id("Organization", row.id), name=row.name, created_at=row.created_at, row_id=row.id)

    @strawberry.field(description="Your role in this organization (null for none).")
    def viewer_role(self, info: strawberry.Info) -> Role | None:
        return info.context.principal.role_in(self.row_id)

    @strawberry.field(description="Members and their roles, earliest to join first.")
    async def members(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None) -> Connection[Membership]:
        key = loaders.page_key(self.row_id, first, after, last, before)
        return connection_from_page(await info.context.loader(loaders.load_member_pages).load(key), Membership.from_row)

    @strawberry.field(description="Invites, newest first. Owners only: null for other members.")
    async def invites(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None) -> Connection[Invite] | None:
        if info.context.principal.role_in(self.row_id) != RoleEnum.owner:
            return None
        key = loaders.page_key(self.row_id, first, after, last, before)
        return connection_from_page(await info.context.loader(loaders.load_invite_pages).load(key), Invite.from_row)


@strawberry.type(description="A user's membership of an organization, with their role.")
class Membership(Node):
    role: Role
    created_at: datetime = strawberry.field(description="When the user joined.")
    user_id: strawberry.Private[uuid.UUID]
    organization_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: MembershipRow) -> "Membership":
        return cls(id=to_global_id("Membership", row.id), role=row.role, created_at=row.created_at,
                   user_id=row.user_id, organization_id=row.organization_id)

    @strawberry.field(description="The member (null only if they left in the meantime).")
    async def user(self, info: strawberry.Info) -> User | None:
        return await load_one(info, loaders.load_users, User, self.user_id)

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, loaders.load_organizations, Organization, self.organization_id)


@strawberry.type(description="An invitation to join an organization, accepted with the emailed token. Owners only.")
class Invite(Node):
    email: str
    role: Role
    status: InviteStatus
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    organization_id: strawberry.Private[uuid.UUID]
    invited_by_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: InviteRow) -> "Invite":
        return cls(id=to_global_id("Invite", row.id), email=row.email, role=row.role, status=accounts.invite_status(row),
                   created_at=row.created_at, expires_at=row.expires_at, accepted_at=row.accepted_at,
                   organization_id=row.organization_id, invited_by_id=row.invited_by_id)

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, loaders.load_organizations, Organization, self.organization_id)

    @strawberry.field(description="Who sent the invite (null when they are gone).")
    async def invited_by(self, info: strawberry.Info) -> User | None:
        return await load_one(info, loaders.load_users, User, self.invited_by_id)


@strawberry.type(description="A personal API key (`Authorization: Bearer insk_...` or `Token insk_...`). Only its prefix is shown after creation.")
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The first characters of the token, to tell keys apart.")
    scope: ApiKeyScope
    project_id: strawberry.ID | None = strawberry.field(description="The project the key is bound to, if any.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="Last request made with the key (to the minute).")
    organization_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> "ApiKey":
        return cls(id=to_global_id("ApiKey", row.id), name=row.name, prefix=row.prefix, scope=row.scope,
                   project_id=to_global_id("Project", row.project_id) if row.project_id else None,
                   created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
                   last_used_at=row.last_used_at, organization_id=row.organization_id)

    @strawberry.field(description="Neither revoked nor expired.")
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())

    @strawberry.field(description="The organization the key is bound to (null when unbound or no longer yours).")
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, loaders.load_organizations, Organization, self.organization_id)


@strawberry.type(description="The channels one kind of event is delivered on (an empty list mutes it).")
class NotificationPreference:
    event: NotificationEvent
    channels: list[NotificationChannel]

    @classmethod
    def from_map(cls, prefs: dict[str, list[str]]) -> list["NotificationPreference"]:
        return [cls(event=NotificationEvent[e], channels=[NotificationChannel[c] for c in chans])
                for e, chans in prefs.items()]


@strawberry.type(description="You: the signed-in user (or an API key's owner) and what belongs to you.")
class Viewer:
    id: strawberry.ID = strawberry.field(description="Your `User` ID.")
    email: str
    name: str | None
    created_at: datetime
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: UserRow) -> "Viewer":
        return cls(id=to_global_id("User", row.id), email=row.email, name=row.name, created_at=row.created_at,
                   row_id=row.id)

    @strawberry.field(description="You as a `User` node.")
    def user(self) -> User:
        return User(id=self.id, email=self.email, name=self.name, created_at=self.created_at)

    @strawberry.field(description="Organizations you belong to, by name (only the bound one for an organization-bound key).")
    async def organizations(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                            last: int | None = None, before: str | None = None) -> Connection[Organization]:
        ctx = info.context
        page = await keyset_page(ctx.rt.db, accounts.my_organizations_query(ctx.principal),
                                 [OrganizationRow.name, OrganizationRow.id], _page_request(first, after, last, before),
                                 descending=False, default=ctx.settings.page_size_default,
                                 maximum=ctx.settings.page_size_max)
        return connection_from_page(page, Organization.from_row)

    @strawberry.field(description="Your API keys, newest first, revoked and expired ones included.")
    async def api_keys(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                       last: int | None = None, before: str | None = None) -> Connection[ApiKey]:
        ctx = info.context
        page = await keyset_page(ctx.rt.db, accounts.api_keys_query(ctx.principal),
                                 [ApiKeyRow.created_at, ApiKeyRow.id], _page_request(first, after, last, before),
                                 default=ctx.settings.page_size_default, maximum=ctx.settings.page_size_max)
        return connection_from_page(page, ApiKey.from_row)

    @strawberry.field(description="Every notification event with the channels it reaches you on (defaults until you change them).")
    async def notification_preferences(self, info: strawberry.Info) -> list[NotificationPreference]:
        return NotificationPreference.from_map(await accounts.get_preferences(info.context.rt, info.context.principal))


register_node("User", User, loaders.load_users)
register_node("Organization", Organization, loaders.load_organizations)
register_node("Membership", Membership, loaders.load_memberships)
register_node("Invite", Invite, loaders.load_invites)
register_node("ApiKey", ApiKey, loaders.load_api_keys)
