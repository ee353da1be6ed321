"""The front of the webhook pipeline: each request's body is read, then deliveries that arrive
while others are being stored are stored together (server/batching.py).

Why batch: correlation serializes an organization's deliveries on its incident lock, held from
the load of its open incidents to the commit. One delivery per transaction holds that lock for
five round trips per delivery; a burst of Grafana deliveries then queues on it, however many
cores there are. A batch holds it once for all its deliveries (`apply_many`: one load, one write).

An item arriving at an idle batcher is stored alone, at once, through the per-delivery path
(deliveries.receive_one), so a lone delivery is as fast as before and behaves exactly as before.

A batch is ONE transaction:
1. the configs of all the keys (one SELECT);
2. the rate of each config, counted once for all its deliveries (the first ones within it are
   admitted); then per delivery, in Python: enabled, route, body refusals, signature, JSON,
   normalizer — a refusal answers that delivery only;
3. the duplicate locks of all the deliveries, in one global order (their keys sorted; the
   per-delivery path takes the same keys in the same order), so batches never deadlock;
4. the duplicate check of all of them (one statement, which also takes the organizations'
   incident locks in key order);
5. per organization, `apply_many` (one load and one write for all its deliveries); the write
   statement also inserts the organization's delivery rows, complete with the ids they brought in,
   and the configs' counters (delivery_rows.rider); commit.

A second delivery of the same body or provider delivery id in one batch is stored after the
batch commits, on its own, so it is recognized as the duplicate it is. If anything fails in the
batch, nothing of it committed: each delivery is then stored on its own (store_alone), so one
bad delivery cannot take others down, and each gets exactly the answer it would have had alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text

from server import metrics
from server.batching import MicroBatcher
from server.db.engine import UnitOfWork
from server.domains.incidents import tuning
from server.domains.incidents.deliveries import (
    Answer,
    ConfigView,
    DeliveryRejected,
    Incoming,
    Pending,
    Prepared,
    _answer,
    accepted_original,
    check_state,
    failure,
    prepare,
    rate_admitted,
    rate_limited,
    read_request,
    receive_one,
    store_alone,
    unknown_key,
)
from server.domains.incidents.delivery_rows import Stored, rider
from server.domains.incidents.ingest import DeliveryPart, IngestResult, Rider, apply_many, run_rider
from server.domains.incidents.webhook_configs import looks_like_key
from server.runtime import Runtime
from server.security.tokens import sha256_hex

log = logging.getLogger("insights.webhooks")


async def receive(rt: Runtime, incoming: Incoming, *, request_id: str | None = None) -> Answer:
    """One request, start to end: an `Answer` (202), or `DeliveryRejected` (4xx) / `Unavailable`."""
    pending = await read_request(rt, incoming, request_id=request_id)
    batcher = rt.extras.get("incidents.inbound")
    if batcher is None:
        batcher = rt.extras["incidents.inbound"] = MicroBatcher(
            lambda items: _receive_batch(rt, items), concurrency=rt.settings.webhook_batch_concurrency,
            max_batch=rt.settings.webhook_batch_max)
    return await batcher.submit(pending)


async def _receive_batch(rt: Runtime, items: Sequence[Pending]) -> list[Answer | BaseException]:
    metrics.webhook_batch_size.observe(len(items))
    if len(items) == 1:
        try:
            return [await receive_one(rt, items[0])]
        except Exception as e:  # noqa: BLE001 - handed to its caller
            return [e]
    return await _Batch(rt, list(items)).run()


class _Batch:
    def __init__(self, rt: Runtime, items: list[Pending]):
        self.rt, self.items = rt, items
        self.outcomes: list[Answer | BaseException | None] = [None] * len(items)
        self.configs: list[ConfigView | None] = [None] * len(items)
        self.prepared: dict[int, Prepared] = {}
        self.after: list[int] = []  # stored on their own once the batch committed

    async def run(self) -> list[Answer | BaseException]:
        try:
            async with self.rt.db.sessions() as s:
                uow = UnitOfWork(s)
                async with s.begin():
                    await self._check(s)
                    answers = await _store_many(uow, self.rt, self._first_of_each())
                await uow.run_after_commit()
            for i, answer in answers.items():
                self.outcomes[i] = answer
        except Exception as e:  # nothing of the batch committed: each on its own
            log.info("webhook batch of %d failed (%s); storing its deliveries one by one", len(self.items),
                     type(e).__name__)
            self.after = [i for i in range(len(self.items)) if not isinstance(self.outcomes[i], DeliveryRejected)]
        final: set[int] = set()  # outcomes already answered (and recorded) by the per-delivery path
        for i in self.after:
            self.outcomes[i], done = await self._alone(i)
            if done:
                final.add(i)
        for i, outcome in enumerate(self.outcomes):
            if isinstance(outcome, Exception) and i not in final:
                self.outcomes[i] = await failure(self.rt, self.items[i], self.configs[i], outcome)
        return self.outcomes  # type: ignore[return-value]

    async def _check(self, s: Any) -> None:
        """Step 1 and 2: configs, then every per-delivery check (refusals become outcomes). The
        rate of each config is counted once for all its deliveries (one Redis round trip)."""
        configs = await _find_configs(s, [p.incoming.key or "" for p in self.items], self.items[0].now)
        self.configs = [configs.get(p.incoming.key or "") for p in self.items]
        arrived: dict[uuid.UUID, list[int]] = {}
        for i, config in enumerate(self.configs):
            if config is not None:
                arrived.setdefault(config.id, []).append(i)
        by_id = {c.id: c for c in self.configs if c is not None}
        counted = await asyncio.gather(*(rate_admitted(self.rt, by_id[cid], len(idx)) for cid, idx in arrived.items()))
        over: dict[int, int] = {}  # delivery -> retry after, for those over their config's rate
        for (cid, idx), (admitted, retry_after) in zip(arrived.items(), counted, strict=True):
            over.update({i: retry_after for i in idx[admitted:]})
        for i, p in enumerate(self.items):
            try:
                config = self.configs[i]
                if config is None:
                    raise unknown_key(p.incoming)
                if i in over:
                    raise await rate_limited(self.rt, config, over[i], p.now)
                check_state(config, p.incoming)
                if p.got.early is not None:
                    raise p.got.early
                self.prepared[i] = prepare(self.rt, config, p.incoming, p.got, p.now)
            except DeliveryRejected as r:
                self.outcomes[i] = r

    def _first_of_each(self) -> dict[int, Prepared]:
        """The prepared deliveries, but a repeat of another one of this batch goes to `after`."""
        seen: set[str] = set()
        first: dict[int, Prepared] = {}
        for i, p in sorted(self.prepared.items()):  # in arrival order
            keys = duplicate_keys(p)
            if seen.intersection(keys):
                self.after.append(i)
            else:
                seen.update(keys)
                first[i] = p
        return first

    async def _alone(self, i: int) -> tuple[Answer | BaseException, bool]:
        """Delivery `i` in a transaction of its own: (outcome, whether it is final). A failure of
        store_alone still needs `failure` (recording, 503/500 mapping); receive_one's is final."""
        if i not in self.prepared:  # the batch failed before its checks
            try:
                return await receive_one(self.rt, self.items[i]), True
            except Exception as e:  # noqa: BLE001 - handed to its caller
                return e, True
        try:
            return await store_alone(self.rt, self.prepared[i]), True
        except Exception as e:  # noqa: BLE001 - handed to `failure`
            return e, False


def duplicate_keys(p: Prepared) -> list[str]:
    """The advisory lock keys that make identical deliveries of a config wait for each other
    (the per-delivery path takes the same ones: body first, then provider delivery id)."""
    keys = [f"{p.config.id}:b:{p.sha}"]
    if p.provider_delivery_id:
        keys.append(f"{p.config.id}:d:{p.provider_delivery_id}")
    return keys


_FIND_CONFIGS = text("""
SELECT id, organization_id, name, provider, enabled, secret_encrypted, rate_limit_per_minute,
    key_hash, previous_key_hash, previous_key_expires_at > :now AS previous_valid
FROM webhook_configs
WHERE key_hash = ANY(CAST(:digests AS varchar[]))
   OR (previous_key_hash = ANY(CAST(:digests AS varchar[])) AND previous_key_expires_at > :now)""")


async def _find_configs(s: Any, keys: list[str], now: Any) -> dict[str, ConfigView]:
    """Config by key, for every key of the batch that names one (current key, or previous key
    within its grace period), in one SELECT."""
    digests = {sha256_hex(k): k for k in set(keys) if looks_like_key(k)}
    if not digests:
        return {}
    found: dict[str, ConfigView] = {}
    for row in (await s.execute(_FIND_CONFIGS, {"digests": list(digests), "now": now})).all():
        view = ConfigView(*row[:7])
        if row.key_hash in digests:
            found[digests[row.key_hash]] = view
        if row.previous_valid and row.previous_key_hash in digests:
            found.setdefault(digests[row.previous_key_hash], view)
    return found


_LOCK_KEYS = text(f"""SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))), {tuning.INDEX_PATHS}
FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS sorted""")

# The duplicate check of every delivery of the batch (as deliveries._DUPLICATE_OF, for many rows);
# at the end, the incident locks of the batch's organizations, in key order.
_DUPLICATES_MANY = text("""
WITH dup AS (
    SELECT r.n, d.id, d.alert_ids, d.incident_ids, d.change_event_ids
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(n int, config_id uuid, pdid text, sha text, since timestamptz)
    JOIN LATERAL (""" + accepted_original("r.config_id", "r.sha", "r.pdid", "r.since") + """) AS d ON true
)
SELECT dup.n, dup.id, dup.alert_ids, dup.incident_ids, dup.change_event_ids,
    (SELECT count(pg_advisory_xact_lock(k))
     FROM (SELECT k FROM unnest(CAST(:org_keys AS bigint[])) AS k ORDER BY k) AS sorted) AS locked
FROM (SELECT 1) AS one LEFT JOIN dup ON true""")


async def _store_many(uow: UnitOfWork, rt: Runtime, batch: dict[int, Prepared]) -> dict[int, Answer]:
    """Steps 3 to 5 for deliveries that are not repeats of each other."""
    if not batch:
        return {}
    s = uow.session
    items = list(batch.items())
    await s.execute(_LOCK_KEYS, {"keys": sorted({k for _, p in items for k in duplicate_keys(p)})})
    window = timedelta(hours=rt.settings.webhook_dedup_window_hours)
    rows = [{"n": n, "config_id": p.config.id, "pdid": p.provider_delivery_id, "sha": p.sha, "since": p.now - window}
            for n, (_, p) in enumerate(items, start=1)]
    orgs = {p.config.organization_id for _, p in items if p.normalized.alerts}
    found = (await s.execute(_DUPLICATES_MANY, {
        "rows": orjson.dumps(rows, default=str).decode(), "org_keys": [tuning.lock_key(o) for o in orgs]})).all()
    stored = {i: Stored(uuid.uuid4(), p) for i, p in items}
    answers: dict[int, Answer] = {}
    duplicates: list[Stored] = []
    for r in found:
        if r.n is not None:
            i = items[r.n - 1][0]
            stored[i].repeats(r)
            duplicates.append(stored[i])
            answers[i] = _answer(r.id, True, r.alert_ids, r.incident_ids, r.change_event_ids)
    by_org: dict[uuid.UUID, list[tuple[int, Prepared]]] = {}
    for i, p in items:
        if i not in answers:
            by_org.setdefault(p.config.organization_id, []).append((i, p))
    order = sorted(by_org, key=tuning.lock_key)
    for org in order:
        members = by_org[org]
        # An org's delivery rows go with its own write (its alerts point at them); the duplicates'
        # go with the last one.
        extra = duplicates if org == order[-1] else []

        def rows_of(results: list[IngestResult], members: list = members, extra: list = extra) -> Rider:
            for (i, _), result in zip(members, results, strict=True):
                stored[i].brought(result)
            return rider([stored[i] for i, _ in members] + extra)

        parts = [DeliveryPart(p.config.id, stored[i].id, p.normalized) for i, p in members]
        await apply_many(uow, rt, organization_id=org, parts=parts, now=max(p.now for _, p in members),
                         locked=org in orgs, rider=rows_of)
        for i, _ in members:
            d = stored[i]
            answers[i] = _answer(d.id, False, d.alert_ids, d.incident_ids, d.change_event_ids)
    if not by_org:  # every delivery a duplicate
        await run_rider(uow, rider(duplicates))
    return answers
