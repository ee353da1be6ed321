"""What an accepted webhook delivery leaves behind besides its alerts: its `webhook_deliveries` row
(with the ids of what it brought in, or the original it repeats) and its config's counters.

Both are written as a `Rider` on ingestion's one write statement (server/domains/incidents/ingest.py),
once the ids are known: the delivery costs no statement of its own and its row is written once,
complete (inserting it first and filling its ids in at the end wrote every row twice, and held the
organization's incident lock for one more round trip). Foreign keys to the delivery are checked at
the end of that statement (alerts) or at commit (change events, a deferred constraint).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from server.domains.incidents.ingest import Rider

STATS_SHARDS = 32  # rows per config in webhook_config_stats (see models.WebhookConfigStats)

_ROW_COLUMNS = """n int, id uuid, organization_id uuid, config_id uuid, provider text, status text, pdid text,
    sha text, content_type text, headers jsonb, size int, duplicate_of_id uuid, alert_ids varchar[],
    incident_ids varchar[], change_event_ids varchar[], now timestamptz"""

_DELIVERIES = f"""delivery_rows AS (
    INSERT INTO webhook_deliveries (id, organization_id, config_id, provider, status, http_status,
        provider_delivery_id, body_sha256, raw_body, content_type, headers, size, duplicate_of_id,
        alert_ids, incident_ids, change_event_ids, created_at, updated_at)
    SELECT r.id, r.organization_id, r.config_id, r.provider, CAST(r.status AS delivery_status), 202, r.pdid, r.sha,
        (CAST(:delivery_raws AS bytea[]))[r.n], r.content_type, r.headers, r.size, r.duplicate_of_id,
        r.alert_ids, r.incident_ids, r.change_event_ids, r.now, r.now
    FROM jsonb_to_recordset(CAST(:delivery_rows AS jsonb)) AS r({_ROW_COLUMNS}))"""

_STATS = """delivery_stats AS (
    INSERT INTO webhook_config_stats AS st (config_id, shard, organization_id, deliveries_accepted,
        deliveries_rejected, last_delivery_at)
    SELECT c.config_id, c.shard, c.organization_id, c.accepted, 0, c.now
    FROM jsonb_to_recordset(CAST(:delivery_stats AS jsonb)) AS c(config_id uuid, shard int, organization_id uuid,
                                                                 accepted int, now timestamptz)
    ON CONFLICT (config_id, shard) DO UPDATE SET
        deliveries_accepted = st.deliveries_accepted + EXCLUDED.deliveries_accepted,
        last_delivery_at = greatest(st.last_delivery_at, EXCLUDED.last_delivery_at))"""


@dataclass
class Stored:
    """One accepted delivery as it will be stored: new (`duplicate_of` None, ids of what it brought
    in) or a repeat (`duplicate_of` the original's id, and the original's ids)."""

    id: uuid.UUID
    prepared: Any  # deliveries.Prepared
    duplicate_of: uuid.UUID | None = None
    alert_ids: list[str] | None = None
    incident_ids: list[str] | None = None
    change_event_ids: list[str] | None = None

    def brought(self, result: Any) -> None:
        """Record what this delivery brought in (an ingest.IngestResult)."""
        self.alert_ids = [str(i) for i in result.alert_ids]
        self.incident_ids = [str(i) for i in result.incident_ids]
        self.change_event_ids = [str(i) for i in result.change_event_ids]

    def repeats(self, original: Any) -> None:
        """Mark this delivery a duplicate of `original` (a row with id and the three id lists)."""
        self.duplicate_of = original.id
        self.alert_ids, self.incident_ids = list(original.alert_ids), list(original.incident_ids)
        self.change_event_ids = list(original.change_event_ids)


def rider(stored: list[Stored]) -> Rider:
    """The rows and counters of `stored`, as a Rider (a duplicate keeps no body: its original has it)."""
    rows, raws = [], []
    stats: dict[uuid.UUID, dict[str, Any]] = {}
    for n, d in enumerate(stored, start=1):
        p = d.prepared
        rows.append({
            "n": n, "id": d.id, "organization_id": p.config.organization_id, "config_id": p.config.id,
            "provider": p.config.provider, "status": "duplicate" if d.duplicate_of else "accepted",
            "pdid": p.provider_delivery_id, "sha": p.sha, "content_type": (p.content_type or "")[:255] or None,
            "headers": p.headers, "size": len(p.raw), "duplicate_of_id": d.duplicate_of,
            "alert_ids": d.alert_ids or [], "incident_ids": d.incident_ids or [],
            "change_event_ids": d.change_event_ids or [], "now": p.now,
        })
        raws.append(b"" if d.duplicate_of else p.raw)
        entry = stats.setdefault(p.config.id, {"config_id": p.config.id, "shard": random.randrange(STATS_SHARDS),
                                               "organization_id": p.config.organization_id, "accepted": 0,
                                               "now": p.now})
        entry["accepted"] += 1
        entry["now"] = max(entry["now"], p.now)
    return Rider((_DELIVERIES, _STATS), {
        "delivery_rows": _json(rows), "delivery_raws": raws, "delivery_stats": _json(list(stats.values()))})


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
