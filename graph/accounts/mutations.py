"""Accounts mutations: thin wrappers that decode IDs, call the service and shape the payload.
Expected failures come back as `userErrors` (graph.core.errors.mutate)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from graph.accounts.cookies import clear_session_cookie, set_session_cookie
from graph.accounts.inputs import (
    ApiKeyCreateInput,
    ApiKeyRevokeInput,
    MembershipRemoveInput,
    MembershipUpdateInput,
    NotificationPreferencesUpdateInput,
    OrganizationCreateInput,
    OrganizationInviteAcceptInput,
    OrganizationInviteInput,
    UserLoginInput,
    UserLogoutInput,
    UserRegisterInput,
    UserUpdateInput,
)
from graph.accounts.types import ApiKey, Invite, Membership, NotificationPreference, Organization, User
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, load_one, to_global_id
from server.domains.accounts import loaders
from server.domains.accounts import service as accounts
from server.errors import DomainError, invalid


def _decode(gid: str, type_name: str, field: str) -> uuid.UUID:
    """The UUID of a global ID given as `input.<field>`, with the error pointing at that field."""
    try:
        return decode_id(gid, type_name)
    except DomainError as e:
        raise invalid(e.message, ["input", field]) from None


def _user_agent(info: strawberry.Info) -> str | None:
    request = info.context.request
    return request.headers.get("user-agent") if request is not None else None


@strawberry.type
class UserRegisterPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserLoginPayload:
    token: str | None = strawberry.field(default=None, description="Session JWT for API clients (`Authorization: Bearer ...`); browsers also get the HTTP-only cookie.")
    expires_at: datetime | None = strawberry.field(default=None, description="When the session (token and cookie) ends.")
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserLogoutPayload:
    revoked_sessions: int = strawberry.field(default=0, description="How many sessions were signed out.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserUpdatePayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrganizationCreatePayload:
    organization: Organization | None = None
    membership: Membership | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrganizationInvitePayload:
    invite: Invite | None = None
    token: str | None = strawberry.field(default=None, description="The accept token, shown once (it is also emailed).")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrganizationInviteAcceptPayload:
    membership: Membership | None = None
    organization: Organization | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MembershipUpdatePayload:
    membership: Membership | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MembershipRemovePayload:
    removed_membership_id: strawberry.ID | None = None
    organization: Organization | None = strawberry.field(default=None, description="Null when you left it.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyCreatePayload:
    api_key: ApiKey | None = None
    token: str | None = strawberry.field(default=None, description="The key itself, shown only this once.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyRevokePayload:
    api_key: ApiKey | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class NotificationPreferencesUpdatePayload:
    notification_preferences: list[NotificationPreference] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Create an account. Sign in with `userLogin` afterwards.")
    async def user_register(self, info: strawberry.Info, input: UserRegisterInput) -> UserRegisterPayload:
        ctx = info.context

        async def work() -> UserRegisterPayload:
            user = await accounts.register(ctx.rt, ctx.principal, input.email, input.password, input.name,
                                           request_id=ctx.request_id)
            return UserRegisterPayload(user=User.from_row(user))

        return await mutate(UserRegisterPayload, work)

    @strawberry.mutation(description="Sign in: returns a session JWT and sets the HTTP-only session cookie. Failed attempts are rate-limited.")
    async def user_login(self, info: strawberry.Info, input: UserLoginInput) -> UserLoginPayload:
        ctx = info.context

        async def work() -> UserLoginPayload:
            result = await accounts.login(ctx.rt, ctx.principal, input.email, input.password,
                                          user_agent=_user_agent(info), request_id=ctx.request_id)
            set_session_cookie(ctx, result.token)
            return UserLoginPayload(token=result.token, expires_at=result.expires_at, user=User.from_row(result.user))

        return await mutate(UserLoginPayload, work)

    @strawberry.mutation(description="Sign out: revokes this session (or all of them) and clears the cookie.")
    async def user_logout(self, info: strawberry.Info, input: UserLogoutInput | None = None) -> UserLogoutPayload:
        ctx = info.context

        async def work() -> UserLogoutPayload:
            revoked = await accounts.logout(ctx.rt, ctx.principal, all_sessions=bool(input and input.all_sessions),
                                            request_id=ctx.request_id)
            clear_session_cookie(ctx)
            return UserLogoutPayload(revoked_sessions=revoked)

        return await mutate(UserLogoutPayload, work)

    @strawberry.mutation(description="Change your name, email or password.")
    async def user_update(self, info: strawberry.Info, input: UserUpdateInput) -> UserUpdatePayload:
        ctx = info.context

        async def work() -> UserUpdatePayload:
            changes = {k: v.value for k, v in (("name", input.name), ("email", input.email),
                                               ("password", input.password)) if v is not None}
            user = await accounts.update_profile(ctx.rt, ctx.principal, changes, current_password=input.current_password,
                                                 request_id=ctx.request_id)
            return UserUpdatePayload(user=User.from_row(user))

        return await mutate(UserUpdatePayload, work)

    @strawberry.mutation(description="Create an organization; you become its owner.")
    async def organization_create(self, info: strawberry.Info, input: OrganizationCreateInput) -> OrganizationCreatePayload:
        ctx = info.context

        async def work() -> OrganizationCreatePayload:
            org, membership = await accounts.create_organization(ctx.rt, ctx.principal, input.name,
                                                                 request_id=ctx.request_id)
            return OrganizationCreatePayload(organization=Organization.from_row(org),
                                             membership=Membership.from_row(membership))

        return await mutate(OrganizationCreatePayload, work)

    @strawberry.mutation(description="Invite an email address to an organization (owners). Re-inviting replaces the pending invite.")
    async def organization_invite(self, info: strawberry.Info, input: OrganizationInviteInput) -> OrganizationInvitePayload:
        ctx = info.context

        async def work() -> OrganizationInvitePayload:
            org_id = _decode(input.organization_id, "Organization", "organizationId")
            invite, token = await accounts.create_invite(ctx.rt, ctx.principal, org_id, input.email, input.role,
                                                         request_id=ctx.request_id)
            return OrganizationInvitePayload(invite=Invite.from_row(invite), token=token)

        return await mutate(OrganizationInvitePayload, work)

    @strawberry.mutation(description="Join an organization with an invite token sent to your account's email address.")
    async def organization_invite_accept(self, info: strawberry.Info,
                                         input: OrganizationInviteAcceptInput) -> OrganizationInviteAcceptPayload:
        ctx = info.context

        async def work() -> OrganizationInviteAcceptPayload:
            membership = await accounts.accept_invite(ctx.rt, ctx.principal, input.token, request_id=ctx.request_id)
            org = await load_one(info, loaders.load_organizations, Organization, membership.organization_id)
            return OrganizationInviteAcceptPayload(membership=Membership.from_row(membership), organization=org)

        return await mutate(OrganizationInviteAcceptPayload, work)

    @strawberry.mutation(description="Change a member's role (owners). The last owner cannot be demoted.")
    async def membership_update(self, info: strawberry.Info, input: MembershipUpdateInput) -> MembershipUpdatePayload:
        ctx = info.context

        async def work() -> MembershipUpdatePayload:
            membership_id = _decode(input.id, "Membership", "id")
            role = input.role.value if input.role is not None else None
            m = await accounts.update_membership(ctx.rt, ctx.principal, membership_id, role, request_id=ctx.request_id)
            return MembershipUpdatePayload(membership=Membership.from_row(m))

        return await mutate(MembershipUpdatePayload, work)

    @strawberry.mutation(description="Remove a member (owners), or leave with your own membership. The last owner stays.")
    async def membership_remove(self, info: strawberry.Info, input: MembershipRemoveInput) -> MembershipRemovePayload:
        ctx = info.context

        async def work() -> MembershipRemovePayload:
            m = await accounts.remove_membership(ctx.rt, ctx.principal, _decode(input.id, "Membership", "id"),
                                                 request_id=ctx.request_id)
            org = await load_one(info, loaders.load_organizations, Organization, m.organization_id)
            return MembershipRemovePayload(removed_membership_id=to_global_id("Membership", m.id), organization=org)

        return await mutate(MembershipRemovePayload, work)

    @strawberry.mutation(description="Create a personal API key. Needs a signed-in session (keys cannot make keys).")
    async def api_key_create(self, info: strawberry.Info, input: ApiKeyCreateInput) -> ApiKeyCreatePayload:
        ctx = info.context

        async def work() -> ApiKeyCreatePayload:
            org_id = _decode(input.organization_id, "Organization", "organizationId") if input.organization_id else None
            project_id = _decode(input.project_id, "Project", "projectId") if input.project_id else None
            key, token = await accounts.create_api_key(ctx.rt, ctx.principal, input.name, input.scope,
                                                       input.expires_in_days, org_id, project_id,
                                                       request_id=ctx.request_id)
            return ApiKeyCreatePayload(api_key=ApiKey.from_row(key), token=token)

        return await mutate(ApiKeyCreatePayload, work)

    @strawberry.mutation(description="Revoke one of your API keys; requests with it get HTTP 401 from now on.")
    async def api_key_revoke(self, info: strawberry.Info, input: ApiKeyRevokeInput) -> ApiKeyRevokePayload:
        ctx = info.context

        async def work() -> ApiKeyRevokePayload:
            key = await accounts.revoke_api_key(ctx.rt, ctx.principal, _decode(input.id, "ApiKey", "id"),
                                                request_id=ctx.request_id)
            return ApiKeyRevokePayload(api_key=ApiKey.from_row(key))

        return await mutate(ApiKeyRevokePayload, work)

    @strawberry.mutation(description="Choose the channels of some notification events; the others keep theirs.")
    async def notification_preferences_update(self, info: strawberry.Info, input: NotificationPreferencesUpdateInput
                                              ) -> NotificationPreferencesUpdatePayload:
        ctx = info.context

        async def work() -> NotificationPreferencesUpdatePayload:
            changes = [(p.event.value, [c.value for c in p.channels]) for p in input.preferences]
            prefs = await accounts.update_preferences(ctx.rt, ctx.principal, changes, request_id=ctx.request_id)
            return NotificationPreferencesUpdatePayload(notification_preferences=NotificationPreference.from_map(prefs))

        return await mutate(NotificationPreferencesUpdatePayload, work)
