"""Helpers every normalizer uses: reading loosely typed JSON, labels, service/environment, times.

Provider payloads are written by other people's code and often by users' templates, so every
helper here accepts wrong types and returns None rather than raising; the normalizers raise
`PayloadRejected` only for structure the provider's format requires.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from .types import PayloadRejected

UTC = timezone.utc

# Label keys that name the service / environment, in order of preference.
SERVICE_KEYS = ("service", "app", "job")
ENVIRONMENT_KEYS = ("env", "environment")
CATEGORY_KEYS = ("category",)
BUSINESS_UNIT_KEYS = ("business_unit", "businessunit", "business-unit", "bu")
SERVICE_TIER_KEYS = ("service_tier", "tier", "servicetier", "service-tier")


# ---------------------------------------------------------------- reading values


def text(value: object) -> str | None:
    """A non-empty, stripped string from a JSON scalar; None for null, "", objects and lists."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def to_str(value: object) -> str:
    """Any JSON value as a label string (lists joined with ',', objects as key=value pairs)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(to_str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={to_str(v)}" for k, v in value.items())
    return str(value)


def str_labels(value: object) -> dict[str, str]:
    """A label/tag mapping flattened to `dict[str, str]`; {} when it is not a mapping."""
    if not isinstance(value, dict):
        return {}
    return {str(k): (v if type(v) is str else to_str(v)) for k, v in value.items()}


def first_label(labels: Mapping[str, str], keys: Iterable[str]) -> str | None:
    """The first non-empty value among `keys`."""
    for key in keys:
        value = labels.get(key)
        if value:
            value = value.strip()
            if value:
                return value
    return None


def classification(labels: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(category, business_unit, service_tier) from labels, when present."""
    if not labels:
        return None, None, None
    return (
        first_label(labels, CATEGORY_KEYS),
        first_label(labels, BUSINESS_UNIT_KEYS),
        first_label(labels, SERVICE_TIER_KEYS),
    )


def parse_tags(value: object, separator: str = ",") -> dict[str, str]:
    """`key:value` tags (Datadog `$TAGS`, Dynatrace `Tags`) to labels.

    A bare tag becomes `{tag: ""}`. A leading `[Context]` (Dynatrace `[Kubernetes]app:x`) is
    dropped. Accepts a list of tags too.
    """
    if isinstance(value, str):
        items: Iterable[object] = value.split(separator)
    elif isinstance(value, list):
        items = value
    else:
        return {}
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            continue
        tag = item.strip()
        if tag.startswith("[") and "]" in tag:
            tag = tag[tag.index("]") + 1 :].strip()
        if not tag:
            continue
        key, sep, val = tag.partition(":")
        key = key.strip()
        if key and key not in out:
            out[key] = val.strip() if sep else ""
    return out


# ---------------------------------------------------------------- structure checks


def require_object(value: object, path: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadRejected(f"expected a JSON object, got {json_type(value)}", path)
    return value


def require_list(value: object, path: str) -> list:
    if not isinstance(value, list):
        raise PayloadRejected(f"expected a JSON array, got {json_type(value)}", path)
    return value


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header value, case-insensitively, from a plain dict or a case-insensitive mapping."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        value = headers.get(lname)
        if value is None:
            for key, val in headers.items():
                if key.lower() == lname:
                    return val
    return value


class KeyIndex:
    """Case- and punctuation-insensitive key lookup for user-templated payloads.

    Datadog and Dynatrace send whatever JSON template the user saved, so the same variable
    arrives as `alert_id`, `alertId`, `ALERT_ID` or nested as `alert: {id: ...}`. Keys are
    folded to lowercase letters and digits; nested objects are indexed under `parent+child`
    and, unless that would shadow a top-level key, under the child key alone.
    """

    __slots__ = ("_index",)

    _AMBIGUOUS_CHILD_KEYS = frozenset({"id", "name", "type", "value", "url"})

    def __init__(self, body: Mapping[str, object]):
        index: dict[str, object] = {}
        nested: list[tuple[str, str, object]] = []
        fold = _FOLDED.get
        for key, value in body.items():
            folded = fold(key) or fold_key(key)
            if folded not in index:
                index[folded] = value
            if isinstance(value, dict):
                for ckey, cvalue in value.items():
                    nested.append((folded, fold(ckey) or fold_key(ckey), cvalue))
        for parent, child, value in nested:
            index.setdefault(parent + child, value)
            if child not in self._AMBIGUOUS_CHILD_KEYS:
                index.setdefault(child, value)
        self._index = index

    def has(self, *keys: str) -> bool:
        return any(k in self._index for k in keys)

    def raw(self, *keys: str) -> object:
        """The first present value among folded `keys` (may be "" or null)."""
        for key in keys:
            if key in self._index:
                return self._index[key]
        return None

    def text(self, *keys: str) -> str | None:
        """The first non-empty text value among folded `keys`."""
        for key in keys:
            value = text(self._index.get(key))
            if value is not None:
                return value
        return None


_FOLD_RE = re.compile(r"[^a-z0-9]")
_FOLDED: dict[object, str] = {}  # template keys repeat on every delivery: fold each once


def fold_key(key: object) -> str:
    folded = _FOLDED.get(key)
    if folded is None:
        folded = _FOLD_RE.sub("", str(key).lower())
        if len(_FOLDED) >= 4096:  # bounded: senders choose the keys
            _FOLDED.clear()
        _FOLDED[key] = folded
    return folded


# ---------------------------------------------------------------- times


def parse_time(value: object) -> datetime | None:
    """A tz-aware UTC datetime from ISO 8601 text or epoch seconds/milliseconds.

    Go's zero time (`0001-01-01T00:00:00Z`, what Alertmanager and Grafana send for a firing
    alert's endsAt) and non-positive epochs (Dynatrace `endTime: -1`) mean "no time": None.
    Naive ISO times are taken as UTC. Unparseable values are None, never an error.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s or s.startswith("0001-01-01"):
        return None
    if s[0].isdigit() and s.replace(".", "", 1).isdigit():
        return _from_epoch(float(s))
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _from_epoch(number: float) -> datetime | None:
    if number <= 0:
        return None
    if number > 1e11:  # milliseconds (1e11 s is the year 5138)
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- fingerprints


def join_parts(*parts: object) -> str:
    """Fingerprint parts joined with `|`, None as "" (the fixtures' fingerprint_value format)."""
    return "|".join("" if p is None else (p if isinstance(p, str) else to_str(p)) for p in parts)


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable key from a label set, for alerts that carry no fingerprint of their own.

    Like Alertmanager's own fingerprint it depends only on the label set, so the firing and the
    resolved delivery agree; hashed to keep it short.
    """
    canonical = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return "labels:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
