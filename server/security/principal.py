"""Who is asking, and what their role and key scope allow. Built once per request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from server.domains.accounts.models import KeyScope, Role
from server.errors import DomainError, ErrorCode, forbidden, not_found


@dataclass
class Principal:
    user_id: uuid.UUID | None = None
    email: str | None = None
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    scope: KeyScope | None = None  # None: a session, which may do all the user's role allows
    key_organization_id: uuid.UUID | None = None
    key_project_id: uuid.UUID | None = None
    roles: dict[uuid.UUID, Role] = field(default_factory=dict)
    address: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def rate_key(self) -> str:
        if self.api_key_id:
            return f"key:{self.api_key_id}"
        if self.user_id:
            return f"user:{self.user_id}"
        return f"addr:{self.address or 'unknown'}"

    @property
    def organization_ids(self) -> list[uuid.UUID]:
        """Organizations this principal can see (a key bound to one sees only that one)."""
        if self.key_organization_id:
            return [o for o in self.roles if o == self.key_organization_id]
        return list(self.roles)

    def require_user(self) -> uuid.UUID:
        if self.user_id is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "sign in or send an API key")
        return self.user_id

    def require_session(self) -> uuid.UUID:
        """A user with write access (a session or a write-scope key). Changes to the account itself
        need `require_interactive`, which refuses every key."""
        user_id = self.require_user()
        self.require_write()
        return user_id

    def require_interactive(self) -> uuid.UUID:
        """Changes to the account itself (profile, password, sessions, API keys, joining or creating
        organizations) need a signed-in person. No API key qualifies, whatever its scope, so a leaked
        key can neither mint more keys nor take the account over."""
        user_id = self.require_user()
        if self.api_key_id is not None:
            raise forbidden("API keys cannot change the account; sign in to do this")
        return user_id

    def require_write(self) -> None:
        if self.scope == KeyScope.read:
            raise forbidden("this API key is read-only")

    def role_in(self, organization_id: uuid.UUID) -> Role | None:
        if organization_id not in self.organization_ids:
            return None
        return self.roles.get(organization_id)

    def require_member(self, organization_id: uuid.UUID, what: str = "organization") -> Role:
        """The caller's role, or NOT_FOUND: another tenant's object looks exactly like a missing one."""
        self.require_user()
        role = self.role_in(organization_id)
        if role is None:
            raise not_found(what)
        return role

    def require_role(self, organization_id: uuid.UUID, minimum: Role, what: str = "organization") -> Role:
        role = self.require_member(organization_id, what)
        self.require_write()
        if role.rank < minimum.rank:
            raise forbidden(f"this needs the {minimum.value} role")
        return role

    def can_see_project(self, project_id: uuid.UUID | None) -> bool:
        return self.key_project_id is None or project_id == self.key_project_id


ANONYMOUS = Principal()
