"""One factory per `Node` type: it creates an object of that type in the world's organization
through the public GraphQL API (as the organization's owner) and returns its global ID.

`tests/graph/test_tenant_isolation.py` runs every factory and fails for a `Node` type that has
none, so a domain that adds a node type adds its factory here:

    @factory("Incident")
    async def incident(world: World) -> str:
        data = await world.owner(INCIDENT_CREATE, {"input": {"organizationId": world.org_id, ...}})
        return data["incidentCreate"]["incident"]["id"]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.support.client import GQL, create_org, register_and_login, unique_email

Factory = Callable[["World"], Awaitable[str]]
FACTORIES: dict[str, Factory] = {}


def factory(type_name: str) -> Callable[[Factory], Factory]:
    def register(fn: Factory) -> Factory:
        assert type_name not in FACTORIES, f"two factories for {type_name}"
        FACTORIES[type_name] = fn
        return fn

    return register


@dataclass
class World:
    """An organization with its owner, on a live server."""

    gql: GQL
    owner_token: str
    owner_user: dict
    org_id: str  # global ID

    async def owner(self, query: str, variables: dict | None = None) -> dict:
        """`data` of an operation run as the owner (raises on GraphQL errors)."""
        return await self.gql(query, variables, token=self.owner_token)

    @classmethod
    async def create(cls, gql: GQL, name: str = "Tenant") -> "World":
        token, user = await register_and_login(gql)
        org = await create_org(gql, token, name)
        return cls(gql, token, user, org["id"])


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


@factory("Organization")
async def organization(world: World) -> str:
    return world.org_id


@factory("Membership")
async def membership(world: World) -> str:
    data = await world.owner("query($id: ID!) { organization(id: $id) { members(first: 1) { nodes { id } } } }",
                             {"id": world.org_id})
    return data["organization"]["members"]["nodes"][0]["id"]


INVITE = """mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) {
  invite { id } token userErrors { code field message } } }"""


@factory("Invite")
async def invite(world: World) -> str:
    data = await world.owner(INVITE, {"input": {"organizationId": world.org_id, "email": unique_email("invitee")}})
    return ok(data["organizationInvite"])["invite"]["id"]


@factory("User")
async def user(world: World) -> str:
    """Another person who joined the organization (users are visible to the members they share it with)."""
    email = unique_email("member")
    invited = ok((await world.owner(INVITE, {"input": {"organizationId": world.org_id, "email": email}}))["organizationInvite"])
    token, member = await register_and_login(world.gql, email)
    data = await world.gql("""mutation($input: OrganizationInviteAcceptInput!) { organizationInviteAccept(input: $input) {
      membership { id } userErrors { code field message } } }""", {"input": {"token": invited["token"]}}, token=token)
    ok(data["organizationInviteAccept"])
    return member["id"]


@factory("ApiKey")
async def api_key(world: World) -> str:
    data = await world.owner("""mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
      apiKey { id } token userErrors { code field message } } }""",
                             {"input": {"name": "factory key", "organizationId": world.org_id}})
    return ok(data["apiKeyCreate"])["apiKey"]["id"]


@factory("Job")
async def job(world: World) -> str:
    data = await world.owner("""mutation($input: OrganizationExportInput!) { organizationExport(input: $input) {
      job { id } userErrors { code field message } } }""", {"input": {"organizationId": world.org_id}})
    return ok(data["organizationExport"])["job"]["id"]


@factory("AuditEntry")
async def audit_entry(world: World) -> str:
    data = await world.owner("query($id: ID!) { auditLog(organizationId: $id, first: 1) { nodes { id } } }",
                             {"id": world.org_id})
    return data["auditLog"]["nodes"][0]["id"]


WEBHOOK_CONFIG_CREATE = """mutation($input: WebhookConfigCreateInput!) { webhookConfigCreate(input: $input) {
  webhookConfig { id } key userErrors { code field message } } }"""


async def _webhook_config(world: World, provider: str = "GENERIC") -> tuple[str, str]:
    data = await world.owner(WEBHOOK_CONFIG_CREATE, {"input": {"organizationId": world.org_id, "name": "factory hook",
                                                               "provider": provider}})
    payload = ok(data["webhookConfigCreate"])
    return payload["webhookConfig"]["id"], payload["key"]


@factory("WebhookConfig")
async def webhook_config(world: World) -> str:
    return (await _webhook_config(world))[0]


@factory("WebhookDelivery")
async def webhook_delivery(world: World) -> str:
    """A generic alert posted to the config's ingest URL (the REST shim answers the delivery's ID)."""
    _, key = await _webhook_config(world)
    r = await world.gql.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "factory alert", "service": "api"})
    assert r.status_code == 202, r.text
    return r.json()["deliveryId"]


# --- incidents: created through the public path, a generic alert posted to a webhook config's ingest URL

async def ingest_alert(world: World, alert: dict | None = None, provider: str = "GENERIC", body: object = None) -> dict:
    """POST one delivery to a fresh config's ingest URL; the shim's 202 answer
    (`{deliveryId, alerts, incidents, changeEvents}`, global IDs)."""
    _, key = await _webhook_config(world, provider)
    payload = body if body is not None else (alert or {"title": "factory alert", "service": "api", "severity": "high"})
    r = await world.gql.http.post(f"/api/v1/webhooks/ingest/{key}", json=payload)
    assert r.status_code == 202, r.text
    return r.json()


@factory("Incident")
async def incident(world: World) -> str:
    return (await ingest_alert(world))["incidents"][0]


@factory("Alert")
async def alert(world: World) -> str:
    return (await ingest_alert(world))["alerts"][0]


@factory("TimelineEntry")
async def timeline_entry(world: World) -> str:
    incident_id = (await ingest_alert(world))["incidents"][0]
    data = await world.owner("query($id: ID!) { incident(id: $id) { timeline(first: 1) { nodes { id } } } }",
                             {"id": incident_id})
    return data["incident"]["timeline"]["nodes"][0]["id"]


JENKINS_DEPLOYMENT = {
    "name": "checkout-api-deploy", "url": "job/checkout-api-deploy/",
    "build": {"full_url": "https://ci.example.com/job/checkout-api-deploy/7/", "number": 7, "phase": "COMPLETED",
              "status": "SUCCESS", "url": "job/checkout-api-deploy/7/", "timestamp": 1795510716377,
              "scm": {"branch": "origin/main", "commit": "3f9c2d1e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"},
              "parameters": {"SERVICE": "checkout-api", "ENVIRONMENT": "production", "VERSION": "2.14.0"}},
}


@factory("ChangeEvent")
async def change_event(world: World) -> str:
    """A Jenkins deployment (Notification plugin format) posted to a Jenkins config's ingest URL."""
    return (await ingest_alert(world, provider="JENKINS", body=JENKINS_DEPLOYMENT))["changeEvents"][0]


# --- plan (issue 5). Projects, event types (with fields), event-type owners, meta fields and events go
# through their mutations; the other plan types are inserted with tests/support/plan_rows.py until their
# create mutations land (then switch them to the mutation).

PROJECT_CREATE = """mutation($input: ProjectCreateInput!) { projectCreate(input: $input) {
  project { id name slug } userErrors { code field message } } }"""


async def create_project(world: World, name: str = "Factory plan", slug: str | None = None) -> str:
    import uuid as _uuid

    data = await world.owner(PROJECT_CREATE, {"input": {"organizationId": world.org_id, "name": name,
                                                        "slug": slug or f"plan-{_uuid.uuid4().hex[:10]}"}})
    return ok(data["projectCreate"])["project"]["id"]


EVENT_TYPE_CREATE = """mutation($input: EventTypeCreateInput!) { eventTypeCreate(input: $input) {
  eventType { id fields { id } } userErrors { code field message } } }"""
EVENT_TYPE_OWNER_ADD = """mutation($input: EventTypeOwnerAddInput!) { eventTypeOwnerAdd(input: $input) {
  owner { id } userErrors { code field message } } }"""
META_FIELD_CREATE = """mutation($input: MetaFieldCreateInput!) { metaFieldCreate(input: $input) {
  metaField { id } userErrors { code field message } } }"""
VARIABLE_CREATE = """mutation($input: VariableCreateInput!) { variableCreate(input: $input) {
  variable { id } userErrors { code field message } } }"""
VARIABLE_VALUE_ADD = """mutation($input: VariableValueAddInput!) { variableValueAdd(input: $input) {
  variableValue { id } userErrors { code field message } } }"""
RELATION_CREATE = """mutation($input: RelationCreateInput!) { relationCreate(input: $input) {
  relation { id } userErrors { code field message } } }"""
EVENT_CREATE = """mutation($input: EventCreateInput!) { eventCreate(input: $input) {
  event { id } userErrors { code field message } } }"""


@dataclass
class PlanRows:
    """A project (created through the API) and a plan row of each kind under it (global IDs)."""

    project: str
    event_type: str
    event_type_owner: str
    field: str
    meta_field: str
    event: str
    variable: str
    relation: str
    event_photo: str
    photo_comment: str


async def plan_rows(world: World) -> PlanRows:
    from server.domains.plan import models as m
    from tests.support.plan_rows import gid, insert_row, raw

    project = await create_project(world)
    url, org, pid, owner = world.gql.base_url, raw(world.org_id), raw(project), raw(world.owner_user["id"])
    scope = {"organization_id": org, "project_id": pid}
    data = await world.owner(EVENT_TYPE_CREATE, {"input": {"projectId": project, "name": "order", "displayName": "Order",
                                                           "fields": [{"name": "order_id", "displayName": "Order ID",
                                                                       "fieldType": "STRING"},
                                                                      {"name": "user_id", "displayName": "User ID",
                                                                       "fieldType": "STRING"}]}})
    created = ok(data["eventTypeCreate"])["eventType"]
    event_type, (field, _second_field) = raw(created["id"]), [raw(f["id"]) for f in created["fields"]]
    data = await world.owner(EVENT_TYPE_OWNER_ADD, {"input": {"eventTypeId": created["id"],
                                                              "userId": world.owner_user["id"]}})
    type_owner = raw(ok(data["eventTypeOwnerAdd"])["owner"]["id"])
    data = await world.owner(META_FIELD_CREATE, {"input": {"projectId": project, "name": "team", "displayName": "Team",
                                                           "fieldType": "STRING"}})
    meta_field = raw(ok(data["metaFieldCreate"])["metaField"]["id"])
    data = await world.owner(EVENT_CREATE, {"input": {"eventTypeId": created["id"], "name": "Order Completed",
                                                      "tags": ["checkout"]}})
    event = raw(ok(data["eventCreate"])["event"]["id"])
    data = await world.owner(VARIABLE_CREATE, {"input": {"projectId": project, "name": "page_name"}})
    variable = raw(ok(data["variableCreate"])["variable"]["id"])
    data = await world.owner(RELATION_CREATE, {"input": {
        "sourceEventTypeId": created["id"], "sourceFieldId": created["fields"][1]["id"],
        "targetEventTypeId": created["id"], "targetFieldId": created["fields"][0]["id"]}})
    relation = raw(ok(data["relationCreate"])["relation"]["id"])
    photo = await insert_row(url, m.EventPhoto, **scope, event_id=event, kind=m.PhotoKind.FIGMA,
                             external_url="https://www.figma.com/file/abc/checkout", title="Checkout")
    comment = await insert_row(url, m.PhotoComment, **scope, photo_id=photo, author_id=owner, body="Looks right")
    return PlanRows(project, gid("EventType", event_type), gid("EventTypeOwner", type_owner), gid("Field", field),
                    gid("MetaField", meta_field), gid("Event", event), gid("Variable", variable),
                    gid("Relation", relation), gid("EventPhoto", photo), gid("PhotoComment", comment))


@factory("Project")
async def project(world: World) -> str:
    return await create_project(world)


@factory("VariableValue")
async def variable_value(world: World) -> str:
    variable = (await plan_rows(world)).variable
    data = await world.owner(VARIABLE_VALUE_ADD, {"input": {"variableId": variable, "value": "home"}})
    return ok(data["variableValueAdd"])["variableValue"]["id"]


def _plan_factory(type_name: str, attribute: str) -> None:
    async def make(world: World) -> str:
        return getattr(await plan_rows(world), attribute)

    factory(type_name)(make)


for _type, _attr in (("EventType", "event_type"), ("EventTypeOwner", "event_type_owner"), ("Field", "field"),
                     ("MetaField", "meta_field"), ("Event", "event"), ("Variable", "variable"),
                     ("Relation", "relation"), ("EventPhoto", "event_photo"), ("PhotoComment", "photo_comment")):
    _plan_factory(_type, _attr)


# --- warehouse (issue 6). Data sources go through `dataSourceCreate`; scan configs, scan jobs,
# shadow events and schema drifts are inserted with tests/support/plan_rows.py until their
# mutations and scans land (whoever lands `scanConfigCreate`, `scanRun`, ... switches these).

DATA_SOURCE_CREATE = """mutation($input: DataSourceCreateInput!) { dataSourceCreate(input: $input) {
  dataSource { id } userErrors { code field message } } }"""


async def create_data_source(world: World, name: str | None = None, **input_: Any) -> str:
    import uuid as _uuid

    values = {"organizationId": world.org_id, "name": name or f"warehouse {_uuid.uuid4().hex[:6]}",
              "dbType": "POSTGRES", "host": "warehouse.internal", "databaseName": "analytics", **input_}
    data = await world.owner(DATA_SOURCE_CREATE, {"input": values})
    return ok(data["dataSourceCreate"])["dataSource"]["id"]


@dataclass
class WarehouseRows:
    """A data source (API), a project (API), an event type (API) and warehouse rows under them (global IDs)."""

    data_source: str
    project: str
    event_type: str
    scan_config: str
    scan_job: str
    shadow_event: str
    schema_drift: str


async def warehouse_rows(world: World) -> WarehouseRows:
    from server.domains.warehouse import models as w
    from server.jobs.models import Job, JobStatus
    from tests.support.plan_rows import gid, insert_row, raw

    data_source = await create_data_source(world)
    project = await create_project(world)
    data = await world.owner(EVENT_TYPE_CREATE, {"input": {"projectId": project, "name": "page", "displayName": "Page"}})
    event_type = ok(data["eventTypeCreate"])["eventType"]["id"]
    url, org, pid = world.gql.base_url, raw(world.org_id), raw(project)
    scope = {"organization_id": org, "project_id": pid}
    config = await insert_row(url, w.ScanConfig, **scope, data_source_id=raw(data_source), name="factory scan",
                              base_query="SELECT * FROM events", time_column="ts")
    job = await insert_row(url, Job, organization_id=org, kind="scan", queue="scans", status=JobStatus.succeeded,
                           progress=1.0, payload={}, attempts=1, max_attempts=1, cancel_requested=False)
    scan_job = await insert_row(url, w.ScanJob, **scope, scan_config_id=config, data_source_id=raw(data_source),
                                job_id=job, kind=w.ScanJobKind.SCAN)
    shadow = await insert_row(url, w.ShadowEvent, **scope, scan_config_id=config, name="page.unplanned",
                              total_count=3, samples=[{"name": "page.unplanned"}])
    drift = await insert_row(url, w.SchemaDrift, **scope, event_type_id=raw(event_type), scan_config_id=config,
                             field_name="utm_source", drift_type=w.DriftType.NEW_FIELD, observed_type="string")
    return WarehouseRows(data_source, project, event_type, gid("ScanConfig", config), gid("ScanJob", scan_job),
                         gid("ShadowEvent", shadow), gid("SchemaDrift", drift))


@factory("DataSource")
async def data_source(world: World) -> str:
    return await create_data_source(world)


def _warehouse_factory(type_name: str, attribute: str) -> None:
    async def make(world: World) -> str:
        return getattr(await warehouse_rows(world), attribute)

    factory(type_name)(make)


for _type, _attr in (("ScanConfig", "scan_config"), ("ScanJob", "scan_job"), ("ShadowEvent", "shadow_event"),
                     ("SchemaDrift", "schema_drift")):
    _warehouse_factory(_type, _attr)
