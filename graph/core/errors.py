"""`UserError` and the helper that turns a service's `DomainError` into a mutation payload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from server.errors import DomainError, DomainErrors, ErrorCode

UserErrorCode = strawberry.enum(ErrorCode, name="UserErrorCode", description="What kind of expected failure this is.")

P = TypeVar("P")


@strawberry.type(description="An expected failure a client can fix: bad input, missing object, no permission, conflict.")
class UserError:
    code: UserErrorCode
    field: list[str] | None = strawberry.field(description="Path of the input field at fault, e.g. [\"input\", \"email\"].")
    message: str

    @classmethod
    def from_domain(cls, e: DomainError) -> "UserError":
        return cls(code=e.code, field=e.field, message=e.message)


def user_errors_of(e: DomainError) -> list[UserError]:
    if isinstance(e, DomainErrors):
        return [UserError.from_domain(x) for x in e.errors]
    return [UserError.from_domain(e)]


async def mutate(payload: type[P], work: Callable[[], Awaitable[P]]) -> P:
    """Run a mutation; expected failures become `userErrors` on an otherwise empty payload."""
    try:
        return await work()
    except DomainError as e:
        return payload(user_errors=user_errors_of(e))  # type: ignore[call-arg]
