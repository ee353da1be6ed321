"""The receive pipeline of inbound webhooks, and replay.

`receive(rt, incoming)` takes one request (as plain values: the route's provider, the key, the
headers, a body stream) and returns an `Answer` (202) or raises `DeliveryRejected` (4xx, 503),
which the REST shim (server/rest/webhooks.py) turns into `{error, details, code}`.

Checks, in order (the first failing one answers; the body is read, within its limit, before a
database connection is taken, but its refusals 413/415 are answered after the key checks):

| step | failure | status, code |
|---|---|---|
| key present (header, `?token=`, or the ingest URL path) | missing | 401 `UNAUTHENTICATED` |
| key belongs to a config (current key, or the previous one within its grace period) | unknown | 401 `UNAUTHENTICATED`; 404 `NOT_FOUND` on the ingest URL |
| per-config rate (`rate_limit_per_minute`, Redis, shared by replicas) | over | 429 `RATE_LIMITED` + `Retry-After` |
| config enabled | disabled | 403 `CONFIG_DISABLED` |
| provider route matches the config's provider (the ingest URL takes any) | other provider | 403 `WRONG_ROUTE` |
| `Content-Length`, then the bytes actually read | over `INSIGHTS_WEBHOOK_MAX_BODY_BYTES` | 413 `PAYLOAD_TOO_LARGE` |
| content type `application/json`, `application/*+json`, or `text/plain` (parsed as JSON: some tools cannot set a type) | other or missing | 415 `UNSUPPORTED_MEDIA_TYPE` |
| signature, when the config has a secret (signatures.signature_error; a signed timestamp within `INSIGHTS_WEBHOOK_SIGNATURE_MAX_AGE_SECONDS`) | missing / wrong / stale | 401 `MISSING_SIGNATURE` / `INVALID_SIGNATURE` |
| body is JSON (UTF-8) | not | 400 `MALFORMED_JSON` |
| the provider's normalizer accepts it | not | 422 `INVALID_PAYLOAD`, `details.path` |

Then, in ONE transaction on the connection of the key lookup: duplicate check (same provider
delivery id, or identical body, of the same config, accepted within
`INSIGHTS_WEBHOOK_DEDUP_WINDOW_HOURS`; identical deliveries racing each other wait on an advisory
lock, so exactly one is accepted), the delivery row (raw body, content type, headers without
credentials), the alerts/incidents/change events derived from it (ingest.apply_normalized), and
the config's counters (one of its `webhook_config_stats` shard rows, so concurrent deliveries of
a config do not queue on one row lock). 202 with `{deliveryId, duplicate, alerts, incidents,
changeEvents}` (global IDs). Deadlocks, serialization failures and unique-index races are retried
(3 attempts); a value the tables cannot hold is a 422; the database unreachable is a 503.

Rejections of a known config are counted (`deliveries_rejected`, `last_error`) and recorded as a
REJECTED delivery row, without derived rows. The raw body is kept only for rejections a fixed
normalizer could repair (400, 422, and our own 500s), i.e. once the sender proved it holds the
key and (when set) the secret; refusals before that (403, 413, 415, 401 signature) keep no body.
A 429 is counted once per minute window, not per refused request, so a flood does not write.

A duplicate is answered with the ORIGINAL delivery's id and ids, changes no alert, incident or
change event, and is recorded as a DUPLICATE row (no body of its own, `duplicate_of_id` set) for
the deliveries list; it counts as accepted in the stats (the sender got a 202).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import undefer

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.incidents.ids import global_id, global_ids
from server.domains.incidents.delivery_rows import STATS_SHARDS, Stored, rider
from server.domains.incidents.ingest import IngestResult, Rider, apply_normalized, run_rider
from server.domains.incidents.models import DeliveryStatus, WebhookDelivery
from server.domains.incidents.normalizers import PayloadRejected, normalize
from server.domains.incidents.signatures import GRAFANA_HEADERS, INSIGHTS_HEADER, PAGERDUTY_HEADER, signature_error
from server.db.engine import UnitOfWork
from server.domains.incidents.tuning import INDEX_PATHS
from server.domains.incidents.webhook_configs import looks_like_key, route_path
from server.domains.platform import audit
from server.errors import DomainError, not_found
from server.runtime import Runtime
from server.security.principal import Principal
from server.security.rate_limit import Window, hit_many
from server.security.secrets import decrypt_secret
from server.security.tokens import sha256_hex

log = logging.getLogger("insights.webhooks")

JSON_TYPES = ("application/json", "text/plain")
ERROR_MAX = 1000  # last_error column
TRANSIENT_SQLSTATES = {"40001", "40P01", "23505"}  # serialization failure, deadlock, unique race
ATTEMPTS = 3

# Headers never stored: credentials, cookies, and transport details of no use for a replay.
_DROP_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-insights-key", "host", "connection",
                 "content-length", "accept-encoding", "keep-alive", "te", "transfer-encoding", "upgrade",
                 "expect", "x-insights-csrf"}
_SECRET_WORDS = ("auth", "token", "secret", "password", "passwd", "api-key", "apikey", "credential", "session")
_HEADERS_MAX, _HEADER_VALUE_MAX = 50, 1000


@dataclass
class Incoming:
    """One request as plain values. `route_provider` is None on the generic ingest URL."""

    route_provider: str | None
    key: str | None
    key_in_path: bool
    headers: Mapping[str, str]  # case-insensitive (Starlette's Headers) or lower-case names
    body: AsyncIterator[bytes]


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


class DeliveryRejected(Exception):
    """A refused delivery: HTTP `status`, error `code`, `message`, `details`; `record` says whether
    it is counted on the config, `store_body` whether its raw body is kept."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None, *,
                 headers: dict[str, str] | None = None, record: bool = True, store_body: bool = False):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}
        self.record, self.store_body = record, store_body

    def body(self) -> dict:
        return {"error": self.message, "details": self.details, "code": self.code}


class Unavailable(Exception):
    """The database could not be reached: 503, the sender retries."""


# --- small helpers ---------------------------------------------------------------------------

def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    mt = media_type(content_type)
    return mt in JSON_TYPES or (mt.startswith("application/") and mt.endswith("+json"))


def headers_to_store(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers worth keeping with a delivery (and given to the normalizer, on receipt
    and on replay alike): everything but credentials, cookies and transport details."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname in _DROP_HEADERS or lname in out:
            continue
        if any(w in lname for w in _SECRET_WORDS) and "signature" not in lname:
            continue
        out[lname] = value[:_HEADER_VALUE_MAX]
        if len(out) >= _HEADERS_MAX:
            break
    return out


def parse_json(raw: bytes) -> Any:
    """The parsed body, or DeliveryRejected(400)."""
    data = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw  # a UTF-8 byte order mark
    if not data.strip():
        raise DeliveryRejected(400, "MALFORMED_JSON", "the body is empty; send a JSON document", store_body=True)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        first = str(e)
    try:  # orjson refuses integers wider than 64 bits, which JSON allows
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise DeliveryRejected(400, "MALFORMED_JSON", f"the body is not valid JSON: {first}"[:500],
                               store_body=True) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_limited(body: AsyncIterator[bytes], limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows over `limit` bytes."""
    chunks, size = [], 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _sqlstate(e: BaseException) -> str | None:
    orig = getattr(e, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return state
    return None


def is_unavailable(e: BaseException) -> bool:
    """A database or network outage (not a bug): the sender should retry later."""
    if isinstance(e, (OSError, asyncio.TimeoutError, PoolTimeout, ConnectionError)):
        return True
    if isinstance(e, DBAPIError):
        return e.connection_invalidated or (_sqlstate(e) or "").startswith(("08", "53", "57P"))
    return False


def _answer(delivery_id: uuid.UUID, duplicate: bool, alert_ids: list, incident_ids: list,
            change_event_ids: list) -> Answer:
    return Answer(202, {
        "deliveryId": global_id("WebhookDelivery", delivery_id),
        "duplicate": duplicate,
        "alerts": global_ids("Alert", alert_ids),
        "incidents": global_ids("Incident", incident_ids),
        "changeEvents": global_ids("ChangeEvent", change_event_ids),
    })


def _signature_header_present(provider: str, headers: Mapping[str, str]) -> bool:
    names = [INSIGHTS_HEADER]
    if provider == "pagerduty":
        names = [PAGERDUTY_HEADER]
    elif provider == "grafana":
        names = [*GRAFANA_HEADERS, INSIGHTS_HEADER]
    return any(headers.get(n) or headers.get(n.lower()) for n in names)


# --- the pipeline ----------------------------------------------------------------------------

@dataclass
class _Received:
    raw: bytes = b""
    size: int = 0
    sha: str | None = None
    early: DeliveryRejected | None = None  # a refusal of the body (413, 415), answered after the key checks


@dataclass(frozen=True)
class ConfigView:
    """What the pipeline needs of a config, read once (plain values: they outlive the transaction)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    provider: str
    enabled: bool
    secret_encrypted: str | None
    rate_limit_per_minute: int


_LOOKUP = """SELECT id, organization_id, name, provider, enabled, secret_encrypted, rate_limit_per_minute,
    """ + INDEX_PATHS + """{lock}
FROM webhook_configs
WHERE key_hash = :digest OR (previous_key_hash = :digest AND previous_key_expires_at > :now)
LIMIT 1"""
# The lock is taken in the same statement, for the row found: identical deliveries of one config
# (same body digest) wait for each other until the first one's transaction ends. The statement also
# turns the transaction to index paths (tuning.INDEX_PATHS).
_LOOKUP_AND_LOCK = text(_LOOKUP.format(lock=", pg_advisory_xact_lock(hashtextextended(id::text || :lock_suffix, 0))"))
_LOOKUP_ONLY = text(_LOOKUP.format(lock=""))


@dataclass
class Prepared:
    config: ConfigView
    raw: bytes
    sha: str
    content_type: str | None
    headers: dict
    normalized: Any
    provider_delivery_id: str | None
    now: datetime


@dataclass
class Pending:
    """A request whose body has been read, waiting to be stored (alone or in a batch)."""

    incoming: Incoming
    got: _Received
    now: datetime
    request_id: str | None


async def read_request(rt: Runtime, incoming: Incoming, *, request_id: str | None = None) -> Pending:
    """The first step of every delivery, before any database work: the key is there, and the body
    is read within its limit (a slow sender holds no connection)."""
    now = utcnow()
    if not incoming.key:
        raise DeliveryRejected(401, "UNAUTHENTICATED", "missing webhook key: send the config's ins_ key as "
                               "`Authorization: Bearer <key>`, `X-Insights-Key: <key>` or `?token=<key>`", record=False)
    got = _Received()
    await _read_body(rt, incoming, got)
    return Pending(incoming, got, now, request_id)


def unknown_key(incoming: Incoming) -> DeliveryRejected:
    if incoming.key_in_path:
        return DeliveryRejected(404, "NOT_FOUND", "no webhook config has this key", record=False)
    return DeliveryRejected(401, "UNAUTHENTICATED", "unknown webhook key (or a previous key past its grace period)",
                            record=False)


async def receive_one(rt: Runtime, pending: Pending) -> Answer:
    """One delivery in its own transaction: ONE connection serves the key lookup and the
    delivery's transaction (lookup and duplicate lock in one statement)."""
    incoming, got, now = pending.incoming, pending.got, pending.now
    config: ConfigView | None = None
    prepared: Prepared | None = None
    try:
        try:
            async with rt.db.sessions() as s:
                uow = UnitOfWork(s)
                async with s.begin():
                    config = await _find_config(s, incoming.key, now, got.sha)
                    if config is None:
                        raise unknown_key(incoming)
                    await check_config(rt, config, incoming, now)
                    if got.early is not None:
                        raise got.early
                    prepared = prepare(rt, config, incoming, got, now)
                    answer = await _store(uow, rt, prepared, lock_body=False)
                await uow.run_after_commit()
            return answer
        except DBAPIError as e:
            if prepared is None or _sqlstate(e) not in TRANSIENT_SQLSTATES:
                raise _as_rejection(e, config) or e
            log.info("webhook delivery retried after %s", _sqlstate(e))
        return await store_alone(rt, prepared, first_attempt=2)
    except Exception as e:
        raise await failure(rt, pending, config, e) from None


async def failure(rt: Runtime, pending: Pending, config: ConfigView | None, e: Exception) -> Exception:
    """What to answer a delivery that failed with `e`, after recording it on its config where due:
    a refusal as it is; an outage as Unavailable (503); our own bug as a 500 that keeps the body,
    so the delivery can be replayed once the bug is fixed."""
    if isinstance(e, DBAPIError) and not is_unavailable(e):
        e = _as_rejection(e, config) or e
    if not isinstance(e, DeliveryRejected):
        if is_unavailable(e):
            return Unavailable(str(e))
        if config is None:
            return e
        log.error("webhook delivery failed (request_id=%s, config=%s)", pending.request_id, config.id, exc_info=e)
        e = DeliveryRejected(500, "INTERNAL", f"internal error (request id {pending.request_id})",
                             {"requestId": pending.request_id}, store_body=True)
    if config is not None and e.record:
        await _record_rejection(rt, config, pending.incoming, e, pending.got, pending.now)
    return e


async def _read_body(rt: Runtime, incoming: Incoming, got: _Received) -> None:
    """Size and type checks and the body itself, into `got` (a refusal goes to `got.early`)."""
    limit = rt.settings.webhook_max_body_bytes
    declared = incoming.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        got.size = int(declared)
        got.early = DeliveryRejected(413, "PAYLOAD_TOO_LARGE", f"the body is over {limit} bytes",
                                     {"limit": limit, "size": int(declared)})
        return
    content_type = incoming.headers.get("content-type")
    if not is_json_type(content_type):
        got.early = DeliveryRejected(415, "UNSUPPORTED_MEDIA_TYPE", "send JSON with Content-Type: application/json "
                                     "(or application/*+json, text/plain)", {"contentType": content_type})
        return
    raw = await read_limited(incoming.body, limit)
    if raw is None:
        got.size = limit + 1
        got.early = DeliveryRejected(413, "PAYLOAD_TOO_LARGE", f"the body is over {limit} bytes", {"limit": limit})
        return
    got.raw, got.size, got.sha = raw, len(raw), hashlib.sha256(raw).hexdigest()


async def _find_config(s: Any, key: str, now: datetime, sha: str | None) -> ConfigView | None:
    """The config whose current key is `key`, or whose previous key it is within the grace period;
    with the body's digest, also the lock of identical deliveries (the key `_store` takes with
    `lock_body`)."""
    if not looks_like_key(key):
        return None
    params = {"digest": sha256_hex(key), "now": now}
    if sha is not None:
        params["lock_suffix"] = f":b:{sha}"
    row = (await s.execute(_LOOKUP_AND_LOCK if sha is not None else _LOOKUP_ONLY, params)).first()
    return ConfigView(*row[:7]) if row is not None else None


async def check_config(rt: Runtime, config: ConfigView, incoming: Incoming, now: datetime) -> None:
    """The rate, then the config's own state (`check_state`): refusals as DeliveryRejected."""
    admitted, retry_after = await rate_admitted(rt, config, 1)
    if not admitted:
        raise await rate_limited(rt, config, retry_after, now)
    check_state(config, incoming)


async def rate_admitted(rt: Runtime, config: ConfigView, n: int) -> tuple[int, int]:
    """Count `n` deliveries against the config's rate (Redis, shared by replicas): how many of
    them, first come first served, are within it, and seconds until its window resets."""
    return await hit_many(rt.redis, f"webhook:{config.id}", Window(60, config.rate_limit_per_minute), n)


async def rate_limited(rt: Runtime, config: ConfigView, retry_after: int, now: datetime) -> DeliveryRejected:
    """The 429 of a delivery over its config's rate (counted once per config and minute)."""
    return DeliveryRejected(429, "RATE_LIMITED",
                            f"over this webhook config's rate of {config.rate_limit_per_minute} deliveries a "
                            f"minute; retry in {retry_after} s",
                            {"limit": config.rate_limit_per_minute, "retryAfter": retry_after},
                            headers={"Retry-After": str(retry_after)},
                            record=await _first_refusal_of_window(rt, config.id, now))


def check_state(config: ConfigView, incoming: Incoming) -> None:
    """The config is enabled and the route is its provider's (or the generic ingest URL)."""
    if not config.enabled:
        raise DeliveryRejected(403, "CONFIG_DISABLED", f"webhook config {config.name!r} is disabled")
    if incoming.route_provider is not None and incoming.route_provider != config.provider:
        raise DeliveryRejected(403, "WRONG_ROUTE", f"this key belongs to a {config.provider} webhook config: post to "
                               f"{route_path(config.provider)}",
                               {"provider": config.provider, "routePath": route_path(config.provider)})


def prepare(rt: Runtime, config: ConfigView, incoming: Incoming, got: _Received, now: datetime) -> Prepared:
    """Signature, JSON, normalizer: pure work, refusals as DeliveryRejected."""
    raw = got.raw
    if config.secret_encrypted is not None:
        secret = decrypt_secret(rt.settings.signing_key(), config.secret_encrypted)
        if secret is None:
            raise DeliveryRejected(401, "INVALID_SIGNATURE", "the config's secret cannot be read since the server key "
                                   "changed; set the secret again (webhookConfigUpdate)")
        problem = signature_error(config.provider, raw, incoming.headers, secret,
                                  max_age_seconds=rt.settings.webhook_signature_max_age_seconds or None)
        if problem is not None:
            if not _signature_header_present(config.provider, incoming.headers):
                header = PAGERDUTY_HEADER if config.provider == "pagerduty" else INSIGHTS_HEADER
                raise DeliveryRejected(401, "MISSING_SIGNATURE", f"this config has a secret: sign the body ({header})",
                                       {"header": header})
            raise DeliveryRejected(401, "INVALID_SIGNATURE", problem)
    body = parse_json(raw)
    headers = headers_to_store(incoming.headers)
    try:
        normalized = normalize(config.provider, body, headers, now=now)
    except PayloadRejected as e:
        raise DeliveryRejected(422, "INVALID_PAYLOAD", e.message[:ERROR_MAX],
                               {"path": e.path or "$", "provider": config.provider}, store_body=True) from None
    delivery_id = str(normalized.delivery_id)[:255] if normalized.delivery_id else None
    return Prepared(config, raw, got.sha or hashlib.sha256(raw).hexdigest(), incoming.headers.get("content-type"),
                     headers, normalized, delivery_id, now)


async def _first_refusal_of_window(rt: Runtime, config_id: uuid.UUID, now: datetime) -> bool:
    """True once per config and minute: that refusal is counted, the rest of the flood is not."""
    try:
        return bool(await rt.redis.set(f"webhook-throttled:{config_id}:{int(now.timestamp()) // 60}", 1,
                                       nx=True, ex=61))
    except Exception:  # Redis down: the limit is not enforced either (rate_limit fails open)
        return False


def accepted_original(config_id: str, sha: str, pdid: str, since: str) -> str:
    """SQL: the accepted delivery of the config since `since` with the same body or the same
    provider delivery id (the arguments are SQL expressions; a key has at most one accepted
    delivery in the window, the others are stored as duplicates of it).

    One branch per key, each the newest accepted delivery of that key by its own index, the window
    tested outside: with an `OR` of the keys, or the window inside, the planner could walk every
    delivery of the config in the window by ix_deliveries_config_created instead (it did, while
    the table's statistics were young), a cost that grew with traffic."""
    def branch(condition: str) -> str:
        return (f"(SELECT id, alert_ids, incident_ids, change_event_ids, created_at FROM webhook_deliveries "
                f"WHERE config_id = {config_id} AND {condition} AND status = 'accepted' "
                "ORDER BY created_at DESC LIMIT 1)")
    return (f"SELECT id, alert_ids, incident_ids, change_event_ids FROM ({branch(f'body_sha256 = {sha}')} "
            f"UNION ALL {branch(f'provider_delivery_id = {pdid}')}) AS found "
            f"WHERE created_at >= {since} ORDER BY created_at LIMIT 1")


_DUPLICATE_OF = text(accepted_original(":config_id", ":sha", ":pdid", ":since"))


_STATS_UPSERT = """
INSERT INTO webhook_config_stats AS st (config_id, shard, organization_id, deliveries_accepted, deliveries_rejected,
    last_delivery_at, last_error, last_error_at)
VALUES (:config_id, :shard, :organization_id, :accepted, :rejected, :now, :error, :error_at)
ON CONFLICT (config_id, shard) DO UPDATE SET
    deliveries_accepted = st.deliveries_accepted + EXCLUDED.deliveries_accepted,
    deliveries_rejected = st.deliveries_rejected + EXCLUDED.deliveries_rejected,
    last_delivery_at = greatest(st.last_delivery_at, EXCLUDED.last_delivery_at),
    last_error = CASE WHEN EXCLUDED.last_error_at >= coalesce(st.last_error_at, '-infinity')
                      THEN EXCLUDED.last_error ELSE st.last_error END,
    last_error_at = greatest(st.last_error_at, EXCLUDED.last_error_at)
"""
_STATS = text(_STATS_UPSERT)


def _stats_params(config: ConfigView, now: datetime, *, accepted: bool, error: str | None = None) -> dict:
    return {"config_id": config.id, "shard": random.randrange(STATS_SHARDS), "organization_id": config.organization_id,
            "accepted": 1 if accepted else 0, "rejected": 0 if accepted else 1, "now": now,
            "error": (error or "")[:ERROR_MAX] if not accepted else None, "error_at": None if accepted else now}


async def _store(uow: UnitOfWork, rt: Runtime, p: Prepared, *, lock_body: bool) -> Answer:
    """In the caller's transaction: duplicate check, what the delivery brings in, then (in the same
    statement as the ingestion's write) its row and its config's counters."""
    s, config = uow.session, p.config
    locks = []
    if lock_body:
        locks.append(f"{config.id}:b:{p.sha}")
    if p.provider_delivery_id:
        locks.append(f"{config.id}:d:{p.provider_delivery_id}")
    if locks:  # always in this order (body first), so two deliveries never wait for each other in a cycle
        await s.execute(text("SELECT " + ", ".join(f"pg_advisory_xact_lock(hashtextextended(:k{i}, 0))"
                                                   for i in range(len(locks)))),
                        {f"k{i}": k for i, k in enumerate(locks)})
    stored = Stored(uuid.uuid4(), p)
    found = (await s.execute(_DUPLICATE_OF, {
        "config_id": config.id, "pdid": p.provider_delivery_id, "sha": p.sha,
        "since": p.now - timedelta(hours=rt.settings.webhook_dedup_window_hours)})).first()
    if found is not None:
        stored.repeats(found)
        await run_rider(uow, rider([stored]))
        return _answer(found.id, True, found.alert_ids, found.incident_ids, found.change_event_ids)

    def rows(results: list[IngestResult]) -> Rider:
        stored.brought(results[0])
        return rider([stored])

    try:
        await apply_normalized(uow, rt, organization_id=config.organization_id, config_id=config.id,
                               delivery_id=stored.id, normalized=p.normalized, now=p.now, rider=rows)
    except DomainError as e:  # the ingest service refused something the sender sent
        raise DeliveryRejected(422, "INVALID_PAYLOAD", e.message[:ERROR_MAX],
                               {"path": ".".join(e.field) if e.field else "$", "provider": config.provider},
                               store_body=True) from None
    return _answer(stored.id, False, stored.alert_ids, stored.incident_ids, stored.change_event_ids)


async def store_alone(rt: Runtime, p: Prepared, *, first_attempt: int = 1) -> Answer:
    """A prepared delivery in a transaction of its own (after a deadlock, serialization failure or
    unique-index race, or when its batch failed), retried up to ATTEMPTS in all."""
    for attempt in range(first_attempt, ATTEMPTS + 1):
        try:
            async with rt.db.unit_of_work() as uow:
                answer = await _store(uow, rt, p, lock_body=True)
            return answer
        except DBAPIError as e:
            if _sqlstate(e) in TRANSIENT_SQLSTATES and attempt < ATTEMPTS:
                log.info("webhook delivery retried after %s (attempt %d)", _sqlstate(e), attempt)
                continue
            raise _as_rejection(e, p.config) or e
    raise AssertionError("unreachable")


def _as_rejection(e: DBAPIError, config: ConfigView | None) -> DeliveryRejected | None:
    """A data exception (a value the tables cannot hold) is the payload's fault: 422, logged. The
    config deleted while its delivery was on the way: 401, like any unknown key."""
    state = _sqlstate(e)
    if config is not None and state == "23503" and "webhook_configs" in str(e.orig):
        return DeliveryRejected(401, "UNAUTHENTICATED", "unknown webhook key (its config was just deleted)",
                                record=False)
    if config is None or state is None or not state.startswith("22"):
        return None
    log.warning("webhook delivery of config %s not storable: %s", config.id, e.orig)
    return DeliveryRejected(422, "INVALID_PAYLOAD", f"a value in the payload cannot be stored ({type(e.orig).__name__})",
                            {"path": "$", "provider": config.provider}, store_body=True)


async def _record_rejection(rt: Runtime, config: ConfigView, incoming: Incoming, r: DeliveryRejected,
                            got: _Received, now: datetime) -> None:
    """A REJECTED row and the config's counters, in their own transaction (the delivery's own, if
    any, was rolled back). Best effort: failing to record must not change the answer."""
    raw = got.raw if r.store_body else b""
    message = r.message if not r.details or "path" not in r.details else f"{r.message} (at {r.details['path']})"
    try:
        async with rt.db.unit_of_work() as uow:
            uow.session.add(WebhookDelivery(
                id=uuid.uuid4(), organization_id=config.organization_id, config_id=config.id,
                provider=config.provider, status=DeliveryStatus.REJECTED, http_status=r.status,
                body_sha256=hashlib.sha256(raw).hexdigest(), raw_body=raw,
                content_type=(incoming.headers.get("content-type") or "")[:255] or None,
                headers=headers_to_store(incoming.headers), size=got.size, error=message, error_code=r.code,
                alert_ids=[], incident_ids=[], change_event_ids=[], created_at=now, updated_at=now,
            ))
            await uow.session.flush()
            await uow.session.execute(_STATS, _stats_params(config, now, accepted=False,
                                                            error=f"{r.status} {message}"))
    except Exception:
        log.warning("could not record the rejected delivery of config %s", config.id, exc_info=True)


# --- replay ----------------------------------------------------------------------------------

async def replay(rt: Runtime, principal: Principal, delivery_id: uuid.UUID, *,
                 request_id: str | None = None) -> Answer:
    """Run a stored delivery through the current normalizer again (owners): a fixed normalizer
    repairs history. Same organization and config; alerts dedup by fingerprint as usual, so
    replaying an accepted delivery updates its alerts rather than duplicating them. A duplicate
    replays its original. The delivery becomes ACCEPTED with the new ids and `replayed_at`."""
    principal.require_user()
    now = utcnow()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with rt.db.unit_of_work() as uow:
                d = await _replayable(uow, principal, delivery_id)
                if not d.raw_body:
                    raise DeliveryRejected(409, "NOTHING_TO_REPLAY", "this delivery was refused before its body was "
                                           "read, so nothing is stored to replay", record=False)
                body = parse_json(d.raw_body)
                try:
                    normalized = normalize(d.provider, body, d.headers or {}, now=now)
                except PayloadRejected as e:
                    raise DeliveryRejected(422, "INVALID_PAYLOAD", e.message[:ERROR_MAX],
                                           {"path": e.path or "$", "provider": d.provider}) from None
                result = await apply_normalized(uow, rt, organization_id=d.organization_id, config_id=d.config_id,
                                                delivery_id=d.id, normalized=normalized, now=now)
                before = {"status": d.status.value, "httpStatus": d.http_status, "error": d.error,
                          "alerts": len(d.alert_ids or []), "changeEvents": len(d.change_event_ids or [])}
                d.alert_ids = [str(i) for i in result.alert_ids]
                d.incident_ids = [str(i) for i in result.incident_ids]
                d.change_event_ids = [str(i) for i in result.change_event_ids]
                d.status, d.http_status, d.error, d.error_code = DeliveryStatus.ACCEPTED, 202, None, None
                d.replayed_at = now
                if normalized.delivery_id and not d.provider_delivery_id:
                    d.provider_delivery_id = str(normalized.delivery_id)[:255]
                audit.record(uow, principal, "webhook_delivery.replay", organization_id=d.organization_id,
                             target_type="WebhookDelivery", target_id=d.id,
                             summary=f"replayed a {d.provider} webhook delivery", before=before,
                             after={"status": "accepted", "alerts": len(d.alert_ids),
                                    "changeEvents": len(d.change_event_ids)}, request_id=request_id)
                answer = _answer(d.id, False, d.alert_ids, d.incident_ids, d.change_event_ids)
            return answer
        except DBAPIError as e:
            if _sqlstate(e) in TRANSIENT_SQLSTATES and attempt < ATTEMPTS:
                continue
            if is_unavailable(e):
                raise Unavailable(str(e)) from e
            if (_sqlstate(e) or "").startswith("22"):
                raise DeliveryRejected(422, "INVALID_PAYLOAD", "a value in the payload cannot be stored",
                                       {"path": "$"}, record=False) from None
            raise
    raise AssertionError("unreachable")


async def _replayable(uow: Any, principal: Principal, delivery_id: uuid.UUID) -> WebhookDelivery:
    q = select(WebhookDelivery).options(undefer(WebhookDelivery.raw_body)).with_for_update()
    d = (await uow.session.execute(q.where(WebhookDelivery.id == delivery_id))).scalar_one_or_none()
    if d is None or principal.role_in(d.organization_id) is None:
        raise not_found("webhook delivery")
    principal.require_role(d.organization_id, Role.owner, "webhook delivery")
    if d.status == DeliveryStatus.DUPLICATE and d.duplicate_of_id is not None:
        original = (await uow.session.execute(q.where(WebhookDelivery.id == d.duplicate_of_id))).scalar_one_or_none()
        if original is not None:
            return original
    return d


# --- queries ---------------------------------------------------------------------------------

@dataclass
class DeliveryFilter:
    config_id: uuid.UUID | None = None
    status: DeliveryStatus | None = None
    provider: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def deliveries_query(principal: Principal, organization_id: uuid.UUID, f: DeliveryFilter | None = None) -> Select:
    """An organization's deliveries (NOT_FOUND for non-members), filtered; never loads raw bodies."""
    principal.require_member(organization_id)
    f = f or DeliveryFilter()
    q = select(WebhookDelivery).where(WebhookDelivery.organization_id == organization_id)
    if f.config_id is not None:
        q = q.where(WebhookDelivery.config_id == f.config_id)
    if f.status is not None:
        q = q.where(WebhookDelivery.status == f.status)
    if f.provider is not None:
        q = q.where(WebhookDelivery.provider == f.provider)
    if f.since is not None:
        q = q.where(WebhookDelivery.created_at >= f.since)
    if f.until is not None:
        q = q.where(WebhookDelivery.created_at < f.until)
    return q


async def load_webhook_deliveries(rt: Runtime, principal: Principal,
                                  ids: list[uuid.UUID]) -> list[WebhookDelivery | None]:
    """Batch loader: deliveries of the principal's organizations, in key order, None for the rest."""
    orgs = principal.organization_ids
    if not orgs or not ids:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(WebhookDelivery).where(
            WebhookDelivery.id.in_(ids), WebhookDelivery.organization_id.in_(orgs)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]


async def load_delivery_bodies(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[bytes | None]:
    """Batch loader of raw bodies (tenant-checked), for the `rawBody` field only."""
    orgs = principal.organization_ids
    if not orgs or not ids:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(WebhookDelivery.id, WebhookDelivery.raw_body).where(
            WebhookDelivery.id.in_(ids), WebhookDelivery.organization_id.in_(orgs)))).all()
    found = {r.id: r.raw_body for r in rows}
    return [found.get(i) for i in ids]


__all__ = ["Answer", "DeliveryFilter", "DeliveryRejected", "Incoming", "Unavailable", "deliveries_query", "is_unavailable",
           "load_delivery_bodies", "load_webhook_deliveries", "replay"]
