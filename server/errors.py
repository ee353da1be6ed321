"""Expected failures. Services raise `DomainError`; GraphQL turns it into `userErrors`, REST into JSON."""

from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    EXPIRED = "EXPIRED"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"


class DomainError(Exception):
    """An expected failure a client can act on. `field` is the input path, e.g. ["input", "email"]."""

    def __init__(self, code: ErrorCode, message: str, field: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class DomainErrors(DomainError):
    """Several validation failures reported at once."""

    def __init__(self, errors: list[DomainError]):
        super().__init__(errors[0].code, errors[0].message, errors[0].field)
        self.errors = errors


def not_found(what: str = "object", field: list[str] | None = None) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"{what} not found", field)


def forbidden(message: str = "you are not allowed to do this") -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, message)


def invalid(message: str, field: list[str] | None = None) -> DomainError:
    return DomainError(ErrorCode.VALIDATION, message, field)
