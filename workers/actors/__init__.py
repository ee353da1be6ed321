"""Importing this package declares every actor on the current broker (call setup_broker first)."""

from workers.actors import platform  # noqa: F401
from workers.actors import warehouse  # noqa: F401
