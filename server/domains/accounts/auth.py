"""Registration, login (JWT + session row), logout and profile changes.

A session is a `sessions` row; the JWT only names it, so logging out (revoking the row) kills the
token at once. Failed logins are counted per address and per account in Redis and refused with
RATE_LIMITED once over `login_attempts_per_15min`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Session, User
from server.domains.accounts.validation import check_password, clean_email, clean_name, collect
from server.domains.platform import audit
from server.errors import DomainError, ErrorCode, not_found
from server.runtime import Runtime
from server.security.passwords import hash_password, verify_password
from server.security.principal import Principal
from server.security.rate_limit import Window, hit, peek_exceeded
from server.security.tokens import issue_session_jwt, sha256_hex

LOGIN_WINDOW_SECONDS = 15 * 60
BAD_CREDENTIALS = "wrong email or password"


@dataclass
class LoginResult:
    user: User
    session: Session
    token: str

    @property
    def expires_at(self) -> datetime:
        return self.session.expires_at


def user_snapshot(user: User) -> dict:
    """What the audit log keeps of a user: never the password hash."""
    return {"email": user.email, "name": user.name}


def acting_as(user: User, principal: Principal) -> Principal:
    """The principal to audit under when an anonymous caller just became `user` (register, login)."""
    return Principal(user_id=user.id, email=user.email, address=principal.address)


async def find_user_by_email(uow: UnitOfWork, email: str) -> User | None:
    return (await uow.session.execute(
        select(User).where(func.lower(User.email) == email.lower()))).scalar_one_or_none()


def email_taken(field: list[str]) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, "an account with this email already exists", field)


async def add_user(uow: UnitOfWork, email: str, password: str, name: str | None) -> User:
    """Insert a user whose input is already validated; CONFLICT when the email is taken (any case)."""
    if await find_user_by_email(uow, email) is not None:
        raise email_taken(["input", "email"])
    user = User(id=uuid.uuid4(), email=email, name=name, password_hash=await asyncio.to_thread(hash_password, password))
    uow.session.add(user)
    try:
        await uow.session.flush()
    except IntegrityError:  # a concurrent registration won the unique index
        raise email_taken(["input", "email"]) from None
    return user


def validate_registration(email: str, password: str, name: str | None) -> tuple[str, str, str | None]:
    email, password, name = collect(
        lambda: clean_email(email, ["input", "email"]),
        lambda: check_password(password, ["input", "password"]),
        lambda: clean_name(name, ["input", "name"]),
    )
    return email, password, name


async def register(rt: Runtime, principal: Principal, email: str, password: str, name: str | None = None, *,
                   request_id: str | None = None) -> User:
    email, password, name = validate_registration(email, password, name)
    async with rt.db.unit_of_work() as uow:
        user = await add_user(uow, email, password, name)
        audit.record(uow, acting_as(user, principal), "user.register", target_type="User", target_id=user.id,
                     summary=f"registered {user.email}", after=user_snapshot(user), request_id=request_id)
    return user


# --- login ----------------------------------------------------------------------------------

def _login_buckets(principal: Principal, email: str) -> list[str]:
    # The account bucket is keyed by a hash, so Redis never holds the address book.
    return [f"login:addr:{principal.address or 'unknown'}", f"login:acct:{sha256_hex(email.lower())[:32]}"]


async def _refuse_if_throttled(rt: Runtime, buckets: list[str]) -> None:
    window = Window(LOGIN_WINDOW_SECONDS, rt.settings.login_attempts_per_15min)
    waits = [await peek_exceeded(rt.redis, b, window) for b in buckets]
    if max(waits) > 0:
        raise DomainError(ErrorCode.RATE_LIMITED,
                          f"too many failed sign-in attempts; try again in {max(waits)} seconds")


async def _count_failure(rt: Runtime, buckets: list[str]) -> None:
    window = Window(LOGIN_WINDOW_SECONDS, rt.settings.login_attempts_per_15min)
    for bucket in buckets:
        await hit(rt.redis, bucket, [window])


async def login(rt: Runtime, principal: Principal, email: str, password: str, *, user_agent: str | None = None,
                request_id: str | None = None) -> LoginResult:
    """Check the password and open a session. Unknown email and wrong password fail identically
    (same message, same argon2 work), so the answer does not reveal which accounts exist."""
    email, password = collect(lambda: clean_email(email, ["input", "email"]),
                              lambda: check_password(password, ["input", "password"]))
    buckets = _login_buckets(principal, email)
    await _refuse_if_throttled(rt, buckets)
    result: LoginResult | None = None
    async with rt.db.unit_of_work() as uow:
        user = await find_user_by_email(uow, email)
        ok = await asyncio.to_thread(verify_password, password, user.password_hash if user else None)
        if user is not None and ok:
            result = _open_session(uow, rt, user, principal, user_agent)
            user.last_login_at = result.session.created_at
            audit.record(uow, acting_as(user, principal), "user.login", target_type="Session",
                         target_id=result.session.id, summary=f"{user.email} signed in", request_id=request_id)
    if result is None:
        await _count_failure(rt, buckets)
        raise DomainError(ErrorCode.UNAUTHENTICATED, BAD_CREDENTIALS)
    return result


def _open_session(uow: UnitOfWork, rt: Runtime, user: User, principal: Principal, user_agent: str | None) -> LoginResult:
    now = utcnow()
    session = Session(id=uuid.uuid4(), user_id=user.id, created_at=now,
                      expires_at=now + timedelta(hours=rt.settings.session_ttl_hours),
                      user_agent=(user_agent or "")[:500] or None, address=(principal.address or "")[:64] or None)
    uow.session.add(session)
    token = issue_session_jwt(rt.settings.signing_key(), session.id, user.id, session.expires_at)
    return LoginResult(user=user, session=session, token=token)


async def logout(rt: Runtime, principal: Principal, *, all_sessions: bool = False,
                 request_id: str | None = None) -> int:
    """Revoke the caller's session (or all of the user's sessions); returns how many were revoked.
    Signing out when not signed in is a no-op, so a browser with a stale cookie can always sign out."""
    if not principal.authenticated:
        return 0
    user_id = principal.require_interactive()
    where = [Session.user_id == user_id, Session.revoked_at.is_(None)]
    if not all_sessions:
        where.append(Session.id == principal.session_id)
    async with rt.db.unit_of_work() as uow:
        revoked = (await uow.session.execute(
            update(Session).where(*where).values(revoked_at=utcnow()).returning(Session.id))).scalars().all()
        if revoked:
            audit.record(uow, principal, "user.logout", target_type="User", target_id=user_id,
                         summary="signed out everywhere" if all_sessions else "signed out",
                         after={"sessionsRevoked": len(revoked)}, request_id=request_id)
    return len(revoked)


# --- profile --------------------------------------------------------------------------------

async def update_profile(rt: Runtime, principal: Principal, changes: dict[str, Any], *,
                         current_password: str | None = None, request_id: str | None = None) -> User:
    """Apply the present keys of `changes` (`name`, `email`, `password`). Changing the email or the
    password needs the current password, and a new password signs out every other session."""
    user_id = principal.require_interactive()
    cleaned = _clean_profile_changes(changes)
    async with rt.db.unit_of_work() as uow:
        user = (await uow.session.execute(select(User).where(User.id == user_id).with_for_update())).scalar_one_or_none()
        if user is None:
            raise not_found("user")
        if "email" in cleaned or "password" in cleaned:
            await _require_current_password(rt, principal, user, current_password)
        before = user_snapshot(user)
        await _apply_profile(uow, user, cleaned)
        if "password" in cleaned:
            await uow.session.execute(update(Session).where(
                Session.user_id == user.id, Session.revoked_at.is_(None), Session.id != principal.session_id,
            ).values(revoked_at=utcnow()))
        after = {**user_snapshot(user), **({"passwordChanged": True} if "password" in cleaned else {})}
        audit.record(uow, principal, "user.update", target_type="User", target_id=user.id,
                     summary="updated the profile", before=before, after=after, request_id=request_id)
    return user


async def _require_current_password(rt: Runtime, principal: Principal, user: User, password: str | None) -> None:
    """Guessing the current password from a hijacked session counts against the login limits."""
    buckets = _login_buckets(principal, user.email)
    await _refuse_if_throttled(rt, buckets)
    if not await asyncio.to_thread(verify_password, password or "", user.password_hash):
        await _count_failure(rt, buckets)
        raise DomainError(ErrorCode.FORBIDDEN, "the current password is needed to change email or password",
                          ["input", "currentPassword"])


def _clean_profile_changes(changes: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {
        "name": lambda: clean_name(changes["name"], ["input", "name"]),
        "email": lambda: clean_email(changes["email"] or "", ["input", "email"]),
        "password": lambda: check_password(changes["password"] or "", ["input", "password"]),
    }
    present = [k for k in checks if k in changes]
    return dict(zip(present, collect(*(checks[k] for k in present))))


async def _apply_profile(uow: UnitOfWork, user: User, cleaned: dict[str, Any]) -> None:
    if "name" in cleaned:
        user.name = cleaned["name"]
    if "email" in cleaned and cleaned["email"].lower() != user.email.lower():
        other = await find_user_by_email(uow, cleaned["email"])
        if other is not None:
            raise email_taken(["input", "email"])
    if "email" in cleaned:
        user.email = cleaned["email"]
    if "password" in cleaned:
        user.password_hash = await asyncio.to_thread(hash_password, cleaned["password"])
    try:
        await uow.session.flush()
    except IntegrityError:
        raise email_taken(["input", "email"]) from None
