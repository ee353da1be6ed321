"""Scalars shared by every domain."""

from strawberry.scalars import JSON  # noqa: F401  re-exported: arbitrary JSON values

__all__ = ["JSON"]
