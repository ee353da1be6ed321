"""The accounts domain's entry points, for callers outside it (GraphQL, CLI, jobs).

The logic lives in small modules named for what they do; this module gathers them and adds the
command-line helper `create_user`.
"""

from __future__ import annotations

from server.domains.accounts.api_keys import api_keys_query, create_api_key, revoke_api_key
from server.domains.accounts.auth import (
    LoginResult,
    acting_as,
    add_user,
    login,
    logout,
    register,
    update_profile,
    user_snapshot,
    validate_registration,
)
from server.domains.accounts.invites import InviteStatus, accept_invite, create_invite, invite_status
from server.domains.accounts.models import User
from server.domains.accounts.notifications import get_preferences, update_preferences
from server.domains.accounts.organizations import (
    add_organization,
    create_organization,
    my_organizations_query,
    remove_membership,
    update_membership,
)
from server.domains.accounts.validation import ORGANIZATION_NAME_MAX, clean_required_name
from server.domains.platform import audit
from server.runtime import Runtime
from server.security.principal import Principal

__all__ = [
    "InviteStatus", "LoginResult", "accept_invite", "api_keys_query", "create_api_key", "create_invite",
    "create_organization", "create_user", "get_preferences", "invite_status", "login", "logout",
    "my_organizations_query", "register", "remove_membership", "revoke_api_key", "update_membership",
    "update_preferences", "update_profile",
]


async def create_user(rt: Runtime, email: str, password: str, name: str | None = None,
                      organization_name: str | None = None) -> User:
    """`insights user create`: a user (validated like registration) and, when `organization_name`
    is given, an organization they own, in one transaction. Raises `DomainError` on bad input."""
    email, password, name = validate_registration(email, password, name)
    org_name = clean_required_name(organization_name, ["organizationName"], ORGANIZATION_NAME_MAX) \
        if organization_name is not None else None
    async with rt.db.unit_of_work() as uow:
        user = await add_user(uow, email, password, name)
        actor = acting_as(user, Principal())
        audit.record(uow, actor, "user.register", target_type="User", target_id=user.id,
                     summary=f"created {user.email} from the command line", after=user_snapshot(user))
        if org_name is not None:
            org, _ = await add_organization(uow, org_name, user.id)
            audit.record(uow, actor, "organization.create", organization_id=org.id, target_type="Organization",
                         target_id=org.id, summary=f"created organization {org_name} from the command line",
                         after={"name": org_name})
    return user
