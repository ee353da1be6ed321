"""A project with event types, events, scan configs and KNOWN metric buckets written straight into
the live server's database, so metric and reconciliation queries are tested without the scan
engine. Plan rows (project, event types, events) and the data source go through the API; scan
configs and warehouse rows are inserted with SQLAlchemy Core on the models' tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from server.domains.plan.models import Event
from server.domains.warehouse import models as w
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import created
from tests.support.live import LiveServer
from tests.support.plan_rows import gid, raw

ET_CREATE = """mutation($input: EventTypeCreateInput!) { eventTypeCreate(input: $input) {
  eventType { id } userErrors { code field message } } }"""
EV_CREATE = """mutation($input: EventCreateInput!) { eventCreate(input: $input) {
  event { id } userErrors { code field message } } }"""

# A fixed past hour: tests with explicit ranges do not depend on the clock.
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # a Monday
H = timedelta(hours=1)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def db_execute(org: Org, *statements: Any) -> None:
    engine = create_async_engine(LiveServer.at(org.gql.base_url).database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for st in statements:
                await conn.execute(st)
    finally:
        await engine.dispose()


@dataclass
class MetricWorld:
    org: Org
    project: str                       # global IDs
    event_types: dict[str, str]        # name -> gid
    events: dict[str, str]             # name -> gid
    data_source: str
    configs: list[uuid.UUID] = field(default_factory=list)

    @property
    def project_id(self) -> uuid.UUID:
        return raw(self.project)

    def event_id(self, name: str) -> uuid.UUID:
        return raw(self.events[name])

    def type_id(self, name: str) -> uuid.UUID:
        return raw(self.event_types[name])

    @property
    def config(self) -> uuid.UUID:
        return self.configs[0]

    def config_gid(self, i: int = 0) -> str:
        return gid("ScanConfig", self.configs[i])

    async def add_config(self, name: str, interval: w.ScanInterval = w.ScanInterval.ONE_HOUR,
                         scanned_until: datetime | None = None, **extra: Any) -> uuid.UUID:
        config = uuid.uuid4()
        await db_execute(self.org, insert(w.ScanConfig.__table__).values(
            id=config, organization_id=raw(self.org.org_id), project_id=self.project_id,
            data_source_id=raw(self.data_source), name=name, base_query="SELECT * FROM events", time_column="ts",
            interval=interval, scanned_until=scanned_until, **extra))
        self.configs.append(config)
        return config

    def scope_rows(self, kind: w.MetricScope, scope_id: uuid.UUID, counts: dict[datetime, int],
                   config: uuid.UUID | None = None, interval: w.ScanInterval = w.ScanInterval.ONE_HOUR) -> list[dict]:
        return [{"organization_id": raw(self.org.org_id), "project_id": self.project_id,
                 "scan_config_id": config or self.config, "scope_kind": kind, "scope_id": scope_id,
                 "interval": interval, "bucket_start": at, "count": n} for at, n in counts.items()]

    async def buckets(self, kind: w.MetricScope, scope_id: uuid.UUID, counts: dict[datetime, int],
                      config: uuid.UUID | None = None, interval: w.ScanInterval = w.ScanInterval.ONE_HOUR) -> None:
        """Write known buckets of one scope."""
        await db_execute(self.org, insert(w.MetricBucket.__table__).values(
            self.scope_rows(kind, scope_id, counts, config, interval)))

    async def event_buckets(self, name: str, counts: dict[datetime, int], **kw: Any) -> None:
        await self.buckets(w.MetricScope.EVENT, self.event_id(name), counts, **kw)

    async def breakdown(self, kind: w.MetricScope, scope_id: uuid.UUID, column: str,
                        rows: list[tuple[str, bool, datetime, int]], config: uuid.UUID | None = None) -> None:
        base = {"organization_id": raw(self.org.org_id), "project_id": self.project_id,
                "scan_config_id": config or self.config, "scope_kind": kind, "scope_id": scope_id,
                "interval": w.ScanInterval.ONE_HOUR, "column": column}
        await db_execute(self.org, insert(w.BreakdownBucket.__table__).values(
            [{**base, "value": v, "is_other": o, "bucket_start": at, "count": n} for v, o, at, n in rows]))

    async def versions(self, rows: list[tuple[str, datetime, int]], config: uuid.UUID | None = None) -> None:
        base = {"organization_id": raw(self.org.org_id), "project_id": self.project_id,
                "scan_config_id": config or self.config, "scope_kind": w.MetricScope.PROJECT,
                "scope_id": self.project_id, "interval": w.ScanInterval.ONE_HOUR}
        await db_execute(self.org, insert(w.AppVersionBucket.__table__).values(
            [{**base, "version": v, "bucket_start": at, "count": n} for v, at, n in rows]))

    async def shadow(self, name: str, status: w.ShadowEventStatus = w.ShadowEventStatus.NEW,
                     event_type_name: str = "", last_seen_at: datetime | None = None, **extra: Any) -> uuid.UUID:
        sid = uuid.uuid4()
        await db_execute(self.org, insert(w.ShadowEvent.__table__).values(
            id=sid, organization_id=raw(self.org.org_id), project_id=self.project_id, scan_config_id=self.config,
            name=name, event_type_name=event_type_name, status=status, total_count=10,
            last_seen_at=last_seen_at or T0, first_seen_at=T0, samples=[{"name": name}], **extra))
        return sid

    async def drift(self, type_name: str, field_name: str, drift_type: w.DriftType = w.DriftType.NEW_FIELD,
                    **extra: Any) -> uuid.UUID:
        did = uuid.uuid4()
        await db_execute(self.org, insert(w.SchemaDrift.__table__).values(
            id=did, organization_id=raw(self.org.org_id), project_id=self.project_id,
            event_type_id=self.type_id(type_name), scan_config_id=self.config, field_name=field_name,
            drift_type=drift_type, **extra))
        return did

    async def seen(self, name: str, at: datetime | None) -> None:
        await db_execute(self.org, update(Event.__table__).where(Event.id == self.event_id(name)).values(last_seen_at=at))


async def metric_world(org: Org, events: dict[str, tuple[str, str, list[str]]] | None = None,
                       interval: w.ScanInterval = w.ScanInterval.ONE_HOUR) -> MetricWorld:
    """A project with event types `page` and `track`, events {name: (type, status, tags)} (default:
    page.view LIVE [web], page.leave IMPLEMENTED [web], track.click DRAFT [app]), a data source and
    one scan config (`main`) at `interval`."""
    project = (await org.project())["id"]
    types = {}
    for name in ("page", "track"):
        data = await org(ET_CREATE, {"input": {"projectId": project, "name": name, "displayName": name.title()}})
        assert data["eventTypeCreate"]["userErrors"] == [], data
        types[name] = data["eventTypeCreate"]["eventType"]["id"]
    spec = events or {"page.view": ("page", "LIVE", ["web"]), "page.leave": ("page", "IMPLEMENTED", ["web"]),
                      "track.click": ("track", "DRAFT", ["app"])}
    made = {}
    for name, (type_name, status, tags) in spec.items():
        data = await org(EV_CREATE, {"input": {"eventTypeId": types[type_name], "name": name, "status": status,
                                               "tags": tags}})
        assert data["eventCreate"]["userErrors"] == [], data
        made[name] = data["eventCreate"]["event"]["id"]
    ds = await created(org)
    world = MetricWorld(org, project, types, made, ds["id"])
    await world.add_config("main", interval)
    return world


def errors(response: dict) -> list[tuple[str | None, Any]]:
    """(code, field) of each GraphQL error of a raw response."""
    return [((e.get("extensions") or {}).get("code"), (e.get("extensions") or {}).get("field"))
            for e in response.get("errors") or []]


async def query_raw(org: Org, query: str, variables: dict, token: str | None = None) -> dict:
    r = await org.gql.raw(query, variables, token=token or org.token)
    assert r.status_code == 200, r.text
    return r.json()
