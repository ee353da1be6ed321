"""Input rules shared by registration, login, profile changes, invites and the CLI.

Each check returns the cleaned value or raises a VALIDATION `DomainError` naming the input field,
so several checks can be collected into one `DomainErrors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from email_validator import EmailNotValidError, validate_email

from server.errors import DomainError, DomainErrors, invalid

EMAIL_MIN, EMAIL_MAX = 3, 320
PASSWORD_MIN, PASSWORD_MAX = 8, 255
NAME_MAX = 255
ORGANIZATION_NAME_MAX = 255


def clean_email(value: str, field: list[str]) -> str:
    """The address as given (trimmed). Case is kept for display; lookups compare lower-case."""
    value = (value or "").strip()
    if not EMAIL_MIN <= len(value) <= EMAIL_MAX:
        raise invalid(f"email must be {EMAIL_MIN} to {EMAIL_MAX} characters", field)
    try:
        # Syntax only: self-hosted installs use intranet domains that have no public MX record.
        validate_email(value, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as e:
        raise invalid(f"not a valid email address: {e}", field) from None
    return value


def check_password(value: str, field: list[str]) -> str:
    if not PASSWORD_MIN <= len(value or "") <= PASSWORD_MAX:
        raise invalid(f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters", field)
    return value


def clean_name(value: str | None, field: list[str], maximum: int = NAME_MAX) -> str | None:
    """An optional display name: blank means none."""
    value = (value or "").strip()
    if len(value) > maximum:
        raise invalid(f"name must be at most {maximum} characters", field)
    return value or None


def clean_required_name(value: str | None, field: list[str], maximum: int) -> str:
    name = clean_name(value, field, maximum)
    if name is None:
        raise invalid("name must not be empty", field)
    return name


def collect(*checks: Callable[[], Any]) -> list[Any]:
    """Run every check and report all failures at once, so a form shows every bad field."""
    results, errors = [], []
    for check in checks:
        try:
            results.append(check())
        except DomainError as e:
            errors.append(e)
    if errors:
        raise DomainErrors(errors)
    return results
