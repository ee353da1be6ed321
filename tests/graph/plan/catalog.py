"""Operations and helpers shared by the event type, field and meta field tests."""

from __future__ import annotations

import asyncio
import json
import time

from graph.core.node import from_global_id
from server.domains.plan.changes import plan_channel
from tests.graph.plan.helpers import ERRORS, Org

FIELD = """id name displayName fieldType isRequired enumOptions description order sensitivity
  contractRequiredMaxNullRate contractRegex contractMinValue contractMaxValue contractMaxBadRate
  eventType { id }"""
OWNER = "id createdAt user { id email name } grantedBy { id email } eventType { id }"
EVENT_TYPE = f"""id name displayName description color order createdAt updatedAt project {{ id }}
  fields {{ {FIELD} }} owners {{ {OWNER} }}"""
META_FIELD = """id name displayName fieldType isRequired enumOptions defaultValue linkTemplate order sensitivity
  project { id }"""

ET_CREATE = f"""mutation($input: EventTypeCreateInput!) {{ eventTypeCreate(input: $input) {{
  eventType {{ {EVENT_TYPE} }} {ERRORS} }} }}"""
ET_UPDATE = f"""mutation($input: EventTypeUpdateInput!) {{ eventTypeUpdate(input: $input) {{
  eventType {{ {EVENT_TYPE} }} {ERRORS} }} }}"""
ET_DELETE = f"""mutation($input: EventTypeDeleteInput!) {{ eventTypeDelete(input: $input) {{
  deletedEventTypeId {ERRORS} }} }}"""
OWNER_ADD = f"""mutation($input: EventTypeOwnerAddInput!) {{ eventTypeOwnerAdd(input: $input) {{
  owner {{ {OWNER} }} {ERRORS} }} }}"""
OWNER_REMOVE = f"""mutation($input: EventTypeOwnerRemoveInput!) {{ eventTypeOwnerRemove(input: $input) {{
  deletedOwnerId eventType {{ id owners {{ id }} }} {ERRORS} }} }}"""
EVENT_TYPES = f"""query($project: ID!, $first: Int = 20, $after: String) {{
  eventTypes(projectId: $project, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {EVENT_TYPE} }} }} }}"""

FIELD_CREATE = f"""mutation($input: FieldCreateInput!) {{ fieldCreate(input: $input) {{ field {{ {FIELD} }} {ERRORS} }} }}"""
FIELDS_BULK = f"""mutation($input: FieldsBulkCreateInput!) {{ fieldsBulkCreate(input: $input) {{
  fields {{ {FIELD} }} eventType {{ id fields {{ name }} }} {ERRORS} }} }}"""
FIELD_UPDATE = f"""mutation($input: FieldUpdateInput!) {{ fieldUpdate(input: $input) {{ field {{ {FIELD} }} {ERRORS} }} }}"""
FIELDS_REORDER = f"""mutation($input: FieldsReorderInput!) {{ fieldsReorder(input: $input) {{
  eventType {{ id fields {{ id name order }} }} {ERRORS} }} }}"""
FIELD_DELETE = f"""mutation($input: FieldDeleteInput!) {{ fieldDelete(input: $input) {{
  deletedFieldId eventType {{ id fields {{ id }} }} {ERRORS} }} }}"""

MF_CREATE = f"""mutation($input: MetaFieldCreateInput!) {{ metaFieldCreate(input: $input) {{
  metaField {{ {META_FIELD} }} {ERRORS} }} }}"""
MF_UPDATE = f"""mutation($input: MetaFieldUpdateInput!) {{ metaFieldUpdate(input: $input) {{
  metaField {{ {META_FIELD} }} {ERRORS} }} }}"""
MF_DELETE = f"""mutation($input: MetaFieldDeleteInput!) {{ metaFieldDelete(input: $input) {{
  deletedMetaFieldId {ERRORS} }} }}"""
META_FIELDS = f"""query($project: ID!, $first: Int, $after: String) {{
  metaFields(projectId: $project, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {META_FIELD} }} }} }}"""

AUDIT = """query($org: ID!, $project: ID) { auditLog(organizationId: $org, filter: {projectId: $project}, first: 50) {
  nodes { action targetType targetId before after } } }"""


async def event_type(org: Org, project_id: str, name: str = "order", token: str | None = None, **extra) -> dict:
    data = await org(ET_CREATE, {"input": {"projectId": project_id, "name": name,
                                           "displayName": extra.pop("displayName", name.title()), **extra}}, token)
    assert data["eventTypeCreate"]["userErrors"] == [], data
    return data["eventTypeCreate"]["eventType"]


async def field(org: Org, event_type_id: str, name: str, field_type: str = "STRING", **extra) -> dict:
    data = await org(FIELD_CREATE, {"input": {"eventTypeId": event_type_id, "name": name,
                                              "displayName": extra.pop("displayName", name), "fieldType": field_type,
                                              **extra}})
    assert data["fieldCreate"]["userErrors"] == [], data
    return data["fieldCreate"]["field"]


async def meta_field(org: Org, project_id: str, name: str, field_type: str = "STRING", **extra) -> dict:
    data = await org(MF_CREATE, {"input": {"projectId": project_id, "name": name,
                                           "displayName": extra.pop("displayName", name), "fieldType": field_type,
                                           **extra}})
    assert data["metaFieldCreate"]["userErrors"] == [], data
    return data["metaFieldCreate"]["metaField"]


async def audit_actions(org: Org, project_id: str) -> list[dict]:
    return (await org(AUDIT, {"org": org.org_id, "project": project_id}))["auditLog"]["nodes"]


# --- planChanged over a real websocket ---------------------------------------------------------

PLAN_CHANGED = """subscription($project: ID!) { planChanged(projectId: $project) { entityType entityId action projectId } }"""


async def recv(ws, timeout: float = 5.0) -> dict:  # noqa: ANN001
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get("type") not in ("ping", "pong", "ka"):
            return msg


async def subscribe_plan(live, ws, token: str, project_id: str) -> None:  # noqa: ANN001
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert (await recv(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe",
                              "payload": {"query": PLAN_CHANGED, "variables": {"project": project_id}}}))
    channel = plan_channel(from_global_id(project_id)[1])
    deadline = time.monotonic() + 5
    while live.runtime.hub.subscriber_count(channel) < 1:
        assert time.monotonic() < deadline, "the subscription never reached the hub"
        await asyncio.sleep(0.01)
