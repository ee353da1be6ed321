"""Operations and a small plan (event types with fields, meta fields) shared by the event tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.graph.plan.catalog import event_type, field, meta_field
from tests.graph.plan.helpers import ERRORS, Org
from tests.support.live import LiveServer
from tests.support.plan_rows import raw

EVENT = """id name description status sunsetAt reviewed metricBreakdownColumns tags order lastSeenAt driftCount
  createdAt updatedAt project { id } eventType { id name } owner { id email }
  fields { value field { id name } } metaValues { value metaField { id name } } photos { id }"""

CREATE = f"""mutation($input: EventCreateInput!) {{ eventCreate(input: $input) {{ event {{ {EVENT} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: EventUpdateInput!) {{ eventUpdate(input: $input) {{ event {{ {EVENT} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: EventDeleteInput!) {{ eventDelete(input: $input) {{ deletedEventId {ERRORS} }} }}"""
BULK_CREATE = f"""mutation($input: EventsBulkCreateInput!) {{ eventsBulkCreate(input: $input) {{
  events {{ id name order eventType {{ id }} }} {ERRORS} }} }}"""
BULK_UPDATE = f"""mutation($input: EventsBulkUpdateInput!) {{ eventsBulkUpdate(input: $input) {{
  events {{ id status sunsetAt reviewed owner {{ id }} }} {ERRORS} }} }}"""
BULK_DELETE = f"""mutation($input: EventsBulkDeleteInput!) {{ eventsBulkDelete(input: $input) {{
  deletedEventIds {ERRORS} }} }}"""
REORDER = f"""mutation($input: EventsReorderInput!) {{ eventsReorder(input: $input) {{
  project {{ id }} movedCount {ERRORS} }} }}"""
MOVE = f"""mutation($input: EventMoveInput!) {{ eventMove(input: $input) {{ event {{ id order }} {ERRORS} }} }}"""
EVENTS = """query($project: ID!, $filter: EventFilter, $orderBy: [EventOrder!], $first: Int, $after: String,
                  $last: Int, $before: String) {
  events(projectId: $project, filter: $filter, orderBy: $orderBy, first: $first, after: $after, last: $last,
         before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id name order } } }"""
EVENT_QUERY = f"query($id: ID!) {{ event(id: $id) {{ {EVENT} }} }}"
HISTORY = """query($id: ID!, $first: Int, $after: String) { event(id: $id) { history(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  nodes { action changedAt actorEmail actor { id } changes } } } }"""
TAGS = "query($project: ID!) { tags(projectId: $project) { tag count } }"


@dataclass
class Plan:
    """A project with two event types (`order`: order_id STRING, channel ENUM web/app; `page`: url
    URL) and two meta fields (team STRING, tier ENUM gold/silver), all made through the API."""

    org: Org
    project: str
    order: str
    page: str
    order_id: str
    channel: str
    url: str
    team: str
    tier: str

    @classmethod
    async def create(cls, org: Org, name: str = "Events plan") -> "Plan":
        project = (await org.project(name))["id"]
        order = (await event_type(org, project, "order"))["id"]
        page = (await event_type(org, project, "page"))["id"]
        order_id = (await field(org, order, "order_id"))["id"]
        channel = (await field(org, order, "channel", "ENUM", enumOptions=["web", "app"]))["id"]
        url = (await field(org, page, "url", "URL"))["id"]
        team = (await meta_field(org, project, "team"))["id"]
        tier = (await meta_field(org, project, "tier", "ENUM", enumOptions=["gold", "silver"]))["id"]
        return cls(org, project, order, page, order_id, channel, url, team, tier)

    async def event(self, name: str, event_type: str | None = None, token: str | None = None, **extra: Any) -> dict:
        data = await self.org(CREATE, {"input": {"eventTypeId": event_type or self.order, "name": name, **extra}}, token)
        assert data["eventCreate"]["userErrors"] == [], data
        return data["eventCreate"]["event"]

    async def bulk(self, items: list[dict], token: str | None = None) -> dict:
        return (await self.org(BULK_CREATE, {"input": {"projectId": self.project, "events": items}}, token))[
            "eventsBulkCreate"]

    async def names(self, filter: dict | None = None, order_by: list[str] | None = None, **page: Any) -> list[str]:
        data = await self.org(EVENTS, {"project": self.project, "filter": filter, "orderBy": order_by, **page})
        return [n["name"] for n in data["events"]["nodes"]]


async def set_columns(org: Org, model: Any, gid: str, **values: Any) -> None:
    """Write columns no mutation writes (e.g. `last_seen_at`, set by scans) straight into the live
    server's database."""
    table = model.__table__
    if "updated_at" in table.c and "updated_at" not in values:
        values["updated_at"] = table.c.updated_at  # keep it (the column's onupdate would bump it)
    engine = create_async_engine(LiveServer.at(org.gql.base_url).database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(model.__table__).where(model.__table__.c.id == raw(gid)).values(**values))
    finally:
        await engine.dispose()


def codes(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]
