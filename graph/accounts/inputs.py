"""Inputs of the accounts mutations. Patch inputs use `strawberry.Maybe`: an absent field is left
alone, an explicit null clears it (where clearing makes sense)."""

from __future__ import annotations

import strawberry

from graph.accounts.types import ApiKeyScope, NotificationChannel, NotificationEvent, Role


@strawberry.input
class UserRegisterInput:
    email: str = strawberry.field(description="3 to 320 characters; unique, ignoring case.")
    password: str = strawberry.field(description="8 to 255 characters.")
    name: str | None = None


@strawberry.input
class UserLoginInput:
    email: str
    password: str


@strawberry.input
class UserLogoutInput:
    all_sessions: bool = strawberry.field(default=False, description="Sign out every session of the account, not just this one.")


@strawberry.input
class UserUpdateInput:
    name: strawberry.Maybe[str | None] = strawberry.field(description="Absent: unchanged; null or blank: removed.")
    email: strawberry.Maybe[str] = strawberry.field(description="Needs `currentPassword`.")
    password: strawberry.Maybe[str] = strawberry.field(description="Needs `currentPassword`; signs out your other sessions.")
    current_password: str | None = None


@strawberry.input
class OrganizationCreateInput:
    name: str = strawberry.field(description="1 to 255 characters.")


@strawberry.input
class OrganizationInviteInput:
    organization_id: strawberry.ID
    email: str
    role: Role = Role.viewer


@strawberry.input
class OrganizationInviteAcceptInput:
    token: str = strawberry.field(description="The token from the invite email.")


@strawberry.input
class MembershipUpdateInput:
    id: strawberry.ID = strawberry.field(description="The `Membership` to change.")
    role: strawberry.Maybe[Role] = strawberry.field(description="Absent: unchanged.")


@strawberry.input
class MembershipRemoveInput:
    id: strawberry.ID = strawberry.field(description="The `Membership` to remove; your own to leave the organization.")


@strawberry.input
class ApiKeyCreateInput:
    name: str = strawberry.field(description="1 to 100 characters.")
    scope: ApiKeyScope = ApiKeyScope.read
    expires_in_days: int | None = strawberry.field(default=None, description="1 to 3650; absent: never expires.")
    organization_id: strawberry.ID | None = strawberry.field(default=None, description="Bind the key to one organization.")
    project_id: strawberry.ID | None = strawberry.field(default=None, description="Bind the key to one project (needs `organizationId`).")


@strawberry.input
class ApiKeyRevokeInput:
    id: strawberry.ID


@strawberry.input
class NotificationPreferenceInput:
    event: NotificationEvent
    channels: list[NotificationChannel] = strawberry.field(description="Empty mutes the event.")


@strawberry.input
class NotificationPreferencesUpdateInput:
    preferences: list[NotificationPreferenceInput] = strawberry.field(description="Events to change; others keep their channels.")
