"""Relay global IDs for answers the REST shim gives (`{deliveryId, alerts: [...], ...}`).

`server/` must not import `graph/`, so this repeats the one-line encoding of
`graph.core.node.to_global_id`: base64url("TypeName:uuid") without padding. A test
(tests/server/incidents/webhooks/test_ids.py) checks both agree.
"""

from __future__ import annotations

import base64
import binascii
import uuid


def global_id(type_name: str, raw: uuid.UUID | str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{raw}".encode()).decode().rstrip("=")


def global_ids(type_name: str, raws: list) -> list[str]:
    return [global_id(type_name, r) for r in raws]


def parse_global_id(gid: str, expected: str) -> uuid.UUID | None:
    """The UUID inside `gid` when it names an `expected` object; also accepts a bare UUID. None otherwise."""
    try:
        return uuid.UUID(gid)
    except ValueError:
        pass
    try:
        text = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()
        type_name, _, raw = text.partition(":")
        return uuid.UUID(raw) if type_name == expected else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
