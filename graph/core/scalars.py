"""Scalars shared by every domain. Custom ones are `NewType`s mapped in `SCALAR_MAP`, which
graph/schema.py passes to the schema config (Strawberry's recommended way)."""

from typing import NewType

import strawberry
from strawberry.scalars import JSON  # noqa: F401  re-exported: arbitrary JSON values

BigInt = NewType("BigInt", int)
"""A whole number that may exceed GraphQL's 32-bit `Int` (counts of warehouse rows)."""


def _big_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("BigInt must be an integer")
    number = int(value)
    if abs(number) > 2**63 - 1:
        raise ValueError("BigInt must fit in 64 bits")
    return number


SCALAR_MAP = {
    BigInt: strawberry.scalar(
        name="BigInt", serialize=int, parse_value=_big_int,
        description="A whole number that may exceed GraphQL's 32-bit `Int` (counts of warehouse rows), sent as a JSON "
                    "number (exact up to 2^53); input also accepts a string of digits."),
}

__all__ = ["BigInt", "JSON", "SCALAR_MAP"]
