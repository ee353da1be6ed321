"""Helpers every plan mutation module uses: decoding an input's global ID with the error on the
right field, and turning a `strawberry.Maybe` into the services' patch value."""

from __future__ import annotations

import uuid
from typing import Any

from graph.core.node import decode_id
from server.domains.plan.validation import UNSET
from server.errors import DomainError, invalid


def decode_input_id(gid: str, type_name: str, field: str) -> uuid.UUID:
    """The UUID of a global ID given as `input.<field>`, with the error pointing at that field."""
    try:
        return decode_id(gid, type_name)
    except DomainError as e:
        raise invalid(e.message, ["input", *field.split(".")]) from None


def maybe(value: Any) -> Any:
    """strawberry.Maybe -> the service's patch value: UNSET when absent, else the value (None for null)."""
    return UNSET if value is None else value.value
