"""Operations and helpers shared by the incidents GraphQL tests. Alerts come in through the public
path: a webhook config created with `webhookConfigCreate`, deliveries POSTed to its ingest URL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.graph.accounts.helpers import add_member, owner_with_org
from tests.support.client import GQL
from tests.support.factories import JENKINS_DEPLOYMENT, WEBHOOK_CONFIG_CREATE

ERRORS = "userErrors { code field message }"
INCIDENT_FIELDS = """id title description status severity priority service environment source sourceAlertId category
  businessUnit serviceTier aiStatus startedAt lastAlertAt acknowledgedAt resolvedAt mergedAt correlatedAlertCount
  affectedServices createdAt assignee { id } acknowledgedBy { id } resolvedBy { id } mergedIntoIncident { id }"""
ALERT_FIELDS = """id provider status severity title description fingerprint service environment startedAt endedAt
  labels sourceUrl occurrenceCount lastSeenAt acknowledged correlation { reason score detail } incident { id }"""

INCIDENTS = f"""query($org: ID!, $filter: IncidentFilter, $orderBy: [IncidentOrder!], $first: Int, $after: String) {{
  incidents(organizationId: $org, filter: $filter, orderBy: $orderBy, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {INCIDENT_FIELDS} }} }} }}"""
INCIDENT = f"""query($id: ID!) {{ incident(id: $id) {{ {INCIDENT_FIELDS}
  alerts {{ totalCount nodes {{ {ALERT_FIELDS} }} }}
  timeline {{ totalCount nodes {{ id kind summary data actor {{ id }} createdAt }} }}
  mergedIncidents {{ totalCount nodes {{ id status }} }} }} }}"""
ALERTS = f"""query($org: ID!, $filter: AlertFilter, $first: Int, $after: String) {{
  alerts(organizationId: $org, filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {ALERT_FIELDS} }} }} }}"""
CHANGES = """query($org: ID!, $first: Int, $after: String) { changeEvents(organizationId: $org, first: $first, after: $after) {
  totalCount nodes { id provider title service environment version commit branch result phase occurredAt url } } }"""

ACK = f"mutation($input: IncidentAcknowledgeInput!) {{ incidentAcknowledge(input: $input) {{ incident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"
RESOLVE = f"mutation($input: IncidentResolveInput!) {{ incidentResolve(input: $input) {{ incident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"
REOPEN = f"mutation($input: IncidentReopenInput!) {{ incidentReopen(input: $input) {{ incident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"
UPDATE = f"mutation($input: IncidentUpdateInput!) {{ incidentUpdate(input: $input) {{ incident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"
MERGE = f"""mutation($input: IncidentMergeInput!) {{ incidentMerge(input: $input) {{
  incident {{ {INCIDENT_FIELDS} }} sourceIncident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"""
MOVE = f"""mutation($input: AlertMoveInput!) {{ alertMove(input: $input) {{
  alert {{ {ALERT_FIELDS} }} incident {{ {INCIDENT_FIELDS} }} sourceIncident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"""
UNLINK = f"""mutation($input: AlertUnlinkInput!) {{ alertUnlink(input: $input) {{
  alert {{ {ALERT_FIELDS} }} incident {{ {INCIDENT_FIELDS} }} sourceIncident {{ {INCIDENT_FIELDS} }} {ERRORS} }} }}"""


def errors_of(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


@dataclass
class Tenant:
    """An organization with its owner and a generic webhook config to post alerts to."""

    gql: GQL
    token: str
    user: dict
    org_id: str
    key: str

    @classmethod
    async def create(cls, gql: GQL, name: str = "Acme") -> "Tenant":
        token, user, org = await owner_with_org(gql, name)
        key = await cls._config(gql, token, org["id"], "GENERIC")
        return cls(gql, token, user, org["id"], key)

    @staticmethod
    async def _config(gql: GQL, token: str, org_id: str, provider: str) -> str:
        data = await gql(WEBHOOK_CONFIG_CREATE, {"input": {"organizationId": org_id, "name": f"{provider} hook",
                                                           "provider": provider}}, token=token)
        assert data["webhookConfigCreate"]["userErrors"] == [], data
        return data["webhookConfigCreate"]["key"]

    async def __call__(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        return await self.gql(query, variables, token=token or self.token)

    async def post(self, *alerts: dict, key: str | None = None, body: object = None) -> dict:
        """Deliver generic alerts (each gets a unique label, so no two deliveries are duplicates)."""
        payload = body if body is not None else {"alerts": [
            {**a, "labels": {**a.get("labels", {}), "delivery": uuid.uuid4().hex}} for a in alerts]}
        r = await self.gql.http.post(f"/api/v1/webhooks/ingest/{key or self.key}", json=payload)
        assert r.status_code == 202, r.text
        return r.json()

    async def incident(self, *alerts: dict) -> str:
        """Post alerts that open one incident; its global ID."""
        answer = await self.post(*alerts)
        assert len(answer["incidents"]) == 1, answer
        return answer["incidents"][0]

    async def deploy(self, number: int, service: str, environment: str, timestamp_ms: int,
                     status: str = "SUCCESS") -> str:
        key = await self._config(self.gql, self.token, self.org_id, "JENKINS")
        build = {**JENKINS_DEPLOYMENT["build"], "number": number, "status": status, "timestamp": timestamp_ms,
                 "full_url": f"https://ci.example.com/job/{service}-deploy/{number}/",
                 "url": f"job/{service}-deploy/{number}/",
                 "parameters": {"SERVICE": service, "ENVIRONMENT": environment, "VERSION": f"1.{number}.0"}}
        body = {**JENKINS_DEPLOYMENT, "name": f"{service}-deploy", "url": f"job/{service}-deploy/", "build": build}
        return (await self.post(key=key, body=body))["changeEvents"][0]

    async def member(self, role: str) -> tuple[str, dict]:
        token, user, _ = await add_member(self.gql, self.token, self.org_id, role)
        return token, user
