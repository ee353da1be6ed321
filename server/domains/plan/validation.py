"""Input rules shared by the plan services (seed 003's lengths, patterns and ranges). Each check
returns the cleaned value or raises a VALIDATION `DomainError` naming the input field, so a
service can report every bad field at once with accounts.validation.collect."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError

from server.errors import DomainError, ErrorCode, invalid

UNSET: Any = object()  # a patch argument that was not given (GraphQL: absent from a Maybe input field)

COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
_COLOR = re.compile(COLOR_PATTERN)


def conflict(message: str, field: list[str] | None = None) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message, field)


def required_text(value: str | None, field: list[str], maximum: int, what: str, minimum: int = 1,
                  strip: bool = True) -> str:
    """A required string of `minimum`..`maximum` characters (after trimming, unless strip=False)."""
    text = (value or "").strip() if strip else (value or "")
    if not minimum <= len(text) <= maximum:
        raise invalid(f"{what} must be {minimum} to {maximum} characters", field)
    return text


def optional_text(value: str | None, field: list[str], maximum: int | None, what: str) -> str:
    """A free text that may be empty (descriptions): None becomes ""."""
    text = value or ""
    if maximum is not None and len(text) > maximum:
        raise invalid(f"{what} must be at most {maximum} characters", field)
    return text


def clean_color(value: str | None, field: list[str]) -> str:
    if value is None or not _COLOR.match(value):
        raise invalid("color must look like #6366f1", field)
    return value


def in_range(value: float | None, field: list[str], low: float, high: float, what: str) -> float | None:
    if value is not None and not low <= value <= high:
        raise invalid(f"{what} must be between {low:g} and {high:g}", field)
    return value


def violates(e: IntegrityError, constraint: str) -> bool:
    """Whether a flush failed on this unique constraint or index (a race the pre-check lost)."""
    return constraint in str(e.orig)
