"""Webhook signature checks: HMAC-SHA256 over the raw body, compared in constant time.

Always verify the bytes as received, never re-serialised JSON (key order, spacing and escapes
change the digest). Each function returns False for a missing header or secret rather than
raising, so the REST shim answers 401 for every kind of bad signature alike.

- PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]` (several during secret
  rotation; any match wins). https://developer.pagerduty.com/docs/webhooks/webhook-signatures/
- Grafana (12+, contact point `hmacConfig`): hex digest, no prefix, of the body or of
  `<timestamp>:<body>` when a timestamp header is configured; header `X-Grafana-Alerting-Signature`
  (grafana/alerting's default is `X-Grafana-Alert-Signature`; both are read).
  grafana/alerting http/hmac.go. The timestamp (Unix seconds) goes in a header the contact point
  names (`timestampHeader`, no default); `GRAFANA_TIMESTAMP_HEADERS` are the names read. A signed
  timestamp older or further ahead than `max_age_seconds` is refused (`signature_error`), so a
  captured delivery cannot be replayed later; a signature without a timestamp has no age.
- Ours (every other provider, seed 000): `x-webhook-signature: sha256=<hex>`.

`netdata_crc_response` answers Netdata Cloud's older endpoint-ownership challenge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from .normalizers.common import header as _header

PAGERDUTY_HEADER = "X-PagerDuty-Signature"
INSIGHTS_HEADER = "x-webhook-signature"
GRAFANA_HEADERS = ("X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature")
GRAFANA_TIMESTAMP_HEADERS = ("X-Grafana-Alerting-Timestamp", "X-Grafana-Alerting-Signature-Timestamp",
                             "X-Grafana-Alert-Timestamp")
MISMATCH = "the signature does not match the body"
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,12}")


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _equal(given: str, expected: str) -> bool:
    """Constant-time comparison of hex digests (case-insensitive: hex is sent either way)."""
    return hmac.compare_digest(given.strip().lower().encode("ascii", "replace"), expected.encode("ascii"))


def verify_pagerduty(raw: bytes, header: str | None, secret: str) -> bool:
    """`v1=<hex HMAC-SHA256(secret, raw)>`, possibly several comma-separated; any match wins."""
    if not header or not secret:
        return False
    expected = hmac_sha256_hex(secret, raw)
    ok = False
    for part in header.split(","):
        scheme, sep, digest = part.strip().partition("=")
        if sep and scheme == "v1":
            ok |= _equal(digest, expected)  # no early exit: same work whichever entry matches
    return ok


def verify_insights(raw: bytes, header: str | None, secret: str) -> bool:
    """`sha256=<hex HMAC-SHA256(secret, raw)>` (a bare hex digest is accepted too)."""
    if not header or not secret:
        return False
    value = header.strip()
    if value[:7].lower() == "sha256=":
        value = value[7:]
    return _equal(value, hmac_sha256_hex(secret, raw))


def verify_grafana(
    raw: bytes,
    signature: str | None,
    secret: str,
    timestamp: str | None = None,
    *,
    max_age_seconds: float | None = None,
    now: float | None = None,
) -> bool:
    """Grafana's HMAC: hex of HMAC(secret, `[timestamp ":"] body`).

    With `max_age_seconds`, a signed timestamp older (or further in the future) than that is
    refused, which stops replays of a captured delivery.
    """
    if not signature or not secret:
        return False
    message = raw if timestamp is None else timestamp.strip().encode("ascii", "replace") + b":" + raw
    if not _equal(signature, hmac_sha256_hex(secret, message)):
        return False
    if max_age_seconds is not None:
        return timestamp is not None and timestamp_error(timestamp, max_age_seconds, now) is None
    return True


def timestamp_error(timestamp: str, max_age_seconds: float, now: float | None = None) -> str | None:
    """Why a signed Unix timestamp (seconds) is refused: too old, too far ahead, not a number."""
    value = timestamp.strip()
    if not _UNIX_SECONDS.fullmatch(value):
        return "the signature timestamp is not a Unix time in seconds"
    signed_at = int(value)
    age = (time.time() if now is None else now) - signed_at
    if age > max_age_seconds:
        return (f"the signature timestamp is {int(age)} s old; signatures older than {max_age_seconds:g} s are "
                "refused (a replayed delivery?)")
    if -age > max_age_seconds:
        return (f"the signature timestamp is {int(-age)} s ahead of the server's clock; more than "
                f"{max_age_seconds:g} s is refused (check the sender's clock)")
    return None


def signature_error(
    provider: str,
    raw: bytes,
    headers: Mapping[str, str] | None,
    secret: str,
    *,
    max_age_seconds: float | None = None,
    now: float | None = None,
) -> str | None:
    """None when the delivery is signed with `secret`, else why not (the message of the 401).

    The provider's own scheme where it has one, else ours. Grafana deliveries are checked with
    Grafana's HMAC when they carry its signature header, and with ours otherwise (a contact point
    can send our header as a custom header instead). With `max_age_seconds`, a Grafana signature
    covering a timestamp is refused when that timestamp is too old or too far ahead; one without a
    timestamp is accepted (it has no age to check).
    """
    if provider == "pagerduty":
        return None if verify_pagerduty(raw, _header(headers, PAGERDUTY_HEADER), secret) else MISMATCH
    if provider == "grafana":
        for name in GRAFANA_HEADERS:
            signature = _header(headers, name)
            if signature is not None:
                timestamp = next(
                    (t for t in (_header(headers, h) for h in GRAFANA_TIMESTAMP_HEADERS) if t is not None), None
                )
                if not verify_grafana(raw, signature, secret, timestamp):
                    return MISMATCH
                if timestamp is not None and max_age_seconds is not None:
                    return timestamp_error(timestamp, max_age_seconds, now)
                return None
    return None if verify_insights(raw, _header(headers, INSIGHTS_HEADER), secret) else MISMATCH


def verify_delivery(
    provider: str,
    raw: bytes,
    headers: Mapping[str, str] | None,
    secret: str,
    *,
    max_age_seconds: float | None = None,
    now: float | None = None,
) -> bool:
    """True when `signature_error` finds nothing wrong."""
    return signature_error(provider, raw, headers, secret, max_age_seconds=max_age_seconds, now=now) is None


def sign_insights(raw: bytes, secret: str) -> str:
    """The `x-webhook-signature` value a sender puts on `raw` (for tests and our own senders)."""
    return "sha256=" + hmac_sha256_hex(secret, raw)


def netdata_crc_response(crc_token: str, secret: str) -> dict[str, str]:
    """Netdata Cloud's ownership challenge: GET ?crc_token=... is answered with this JSON body."""
    digest = hmac.new(secret.encode("utf-8"), crc_token.encode("utf-8"), hashlib.sha256).digest()
    return {"response_token": "sha256=" + base64.b64encode(digest).decode("ascii")}
