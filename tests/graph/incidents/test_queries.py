"""`incidents`, `incident`, `alerts`, `changeEvents`, `node(id:)` and the incident's relations."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from server.db.statements import record_statements
from tests.graph.accounts.helpers import owner_with_org
from tests.graph.incidents.helpers import ALERTS, CHANGES, INCIDENT, INCIDENTS, Tenant


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


NOW = datetime.now(timezone.utc).replace(microsecond=0)


async def _three(tenant: Tenant) -> dict[str, str]:
    """Three separate incidents: checkout (critical, prod, 50 min ago), search (low, staging, 30 min
    ago), payments (medium, prod, 10 min ago)."""
    ids = {}
    for service, severity, env, ago, title in (
            ("checkout", "critical", "prod", 50, "Checkout latency p99 above 2s"),
            ("search", "low", "staging", 30, "Search index stale"),
            ("payments", "medium", "prod", 10, "Payments queue backlog growing")):
        ids[service] = await tenant.incident({"title": title, "service": service, "severity": severity,
                                              "environment": env, "startedAt": iso(NOW - timedelta(minutes=ago))})
    return ids


async def test_incidents_list_filters_orders_and_pages(tenant):
    ids = await _three(tenant)

    async def ids_of(filter_=None, order=None, first=None, after=None):  # noqa: ANN001, ANN202
        data = await tenant(INCIDENTS, {"org": tenant.org_id, "filter": filter_, "orderBy": order, "first": first,
                                        "after": after})
        return data["incidents"]

    listed = await ids_of()
    assert [n["id"] for n in listed["nodes"]] == [ids["payments"], ids["search"], ids["checkout"]]  # newest start first
    assert listed["totalCount"] == 3
    asc = await ids_of(order=["STARTED_AT_ASC"])
    assert [n["id"] for n in asc["nodes"]] == [ids["checkout"], ids["search"], ids["payments"]]
    created = await ids_of(order=["CREATED_AT_DESC"])
    assert [n["id"] for n in created["nodes"]] == [ids["payments"], ids["search"], ids["checkout"]]

    page1 = await ids_of(first=2)
    assert page1["pageInfo"]["hasNextPage"] is True and len(page1["nodes"]) == 2
    page2 = await ids_of(first=2, after=page1["pageInfo"]["endCursor"])
    assert [n["id"] for n in page2["nodes"]] == [ids["checkout"]] and page2["pageInfo"]["hasNextPage"] is False

    assert [n["id"] for n in (await ids_of({"severity": ["CRITICAL", "LOW"]}))["nodes"]] == [ids["search"], ids["checkout"]]
    assert [n["id"] for n in (await ids_of({"environment": "prod"}))["nodes"]] == [ids["payments"], ids["checkout"]]
    assert [n["id"] for n in (await ids_of({"service": "search"}))["nodes"]] == [ids["search"]]
    assert [n["id"] for n in (await ids_of({"source": "generic"}))["nodes"]] == [ids["payments"], ids["search"], ids["checkout"]]
    assert (await ids_of({"source": "grafana"}))["nodes"] == []
    assert [n["id"] for n in (await ids_of({"text": "queue BACK"}))["nodes"]] == [ids["payments"]]
    assert [n["id"] for n in (await ids_of({"text": "latency p99"}))["nodes"]] == [ids["checkout"]]
    window = {"startedAfter": iso(NOW - timedelta(minutes=40)), "startedBefore": iso(NOW - timedelta(minutes=20))}
    assert [n["id"] for n in (await ids_of(window))["nodes"]] == [ids["search"]]
    assert [n["id"] for n in (await ids_of({"status": ["RESOLVED"]}))["nodes"]] == []
    both = await ids_of({"status": ["INVESTIGATING"], "environment": "prod", "severity": ["MEDIUM"]})
    assert [n["id"] for n in both["nodes"]] == [ids["payments"]] and both["totalCount"] == 1


async def test_incident_fields_alerts_and_timeline(tenant):
    answer = await tenant.post(
        {"title": "Checkout latency high", "service": "checkout", "environment": "prod", "severity": "high",
         "description": "p99 over 2 s", "url": "https://grafana.example.com/d/1", "id": "rule-1",
         "labels": {"team": "shop", "category": "performance", "business_unit": "retail", "service_tier": "tier-1"}},
        {"title": "Checkout pods restarting", "service": "checkout", "environment": "prod", "severity": "critical"})
    [incident_id] = answer["incidents"]
    data = (await tenant(INCIDENT, {"id": incident_id}))["incident"]
    assert (data["title"], data["status"], data["severity"], data["priority"], data["aiStatus"]) == (
        "Checkout latency high", "INVESTIGATING", "CRITICAL", "P2", "IDLE")
    assert (data["service"], data["environment"], data["source"], data["sourceAlertId"]) == (
        "checkout", "prod", "generic", "rule-1")
    assert data["correlatedAlertCount"] == 2 and data["affectedServices"] == ["checkout"]
    assert data["mergedIntoIncident"] is None and data["mergedIncidents"] == {"totalCount": 0, "nodes": []}
    first, second = data["alerts"]["nodes"]
    assert [first["id"], second["id"]] == answer["alerts"] and data["alerts"]["totalCount"] == 2
    assert (first["provider"], first["status"], first["severity"], first["sourceUrl"]) == (
        "generic", "FIRING", "HIGH", "https://grafana.example.com/d/1")
    assert first["labels"]["team"] == "shop" and first["correlation"] is None
    assert first["incident"] == {"id": incident_id} and first["occurrenceCount"] == 1
    assert second["correlation"]["reason"] == "SERVICE_WINDOW" and second["correlation"]["score"] == 1.0
    timeline = data["timeline"]
    assert [e["kind"] for e in timeline["nodes"]] == ["CREATED", "ALERT_CORRELATED"] and timeline["totalCount"] == 2
    assert timeline["nodes"][1]["data"]["alertId"] and timeline["nodes"][0]["actor"] is None


async def test_node_resolves_every_incident_type(tenant):
    answer = await tenant.post({"title": "Disk full", "service": "db"})
    change_id = await tenant.deploy(3, "db", "prod", int(time.time() * 1000))
    timeline_id = (await tenant(INCIDENT, {"id": answer["incidents"][0]}))["incident"]["timeline"]["nodes"][0]["id"]
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
      ... on Incident { title } ... on Alert { title } ... on ChangeEvent { service result }
      ... on TimelineEntry { kind incident { title } } } }"""
    data = await tenant(query, {"ids": [answer["incidents"][0], answer["alerts"][0], change_id, timeline_id]})
    assert data["nodes"] == [
        {"__typename": "Incident", "id": answer["incidents"][0], "title": "Disk full"},
        {"__typename": "Alert", "id": answer["alerts"][0], "title": "Disk full"},
        {"__typename": "ChangeEvent", "id": change_id, "service": "db", "result": "SUCCESS"},
        {"__typename": "TimelineEntry", "id": timeline_id, "kind": "CREATED", "incident": {"title": "Disk full"}},
    ]


async def test_alerts_list_and_filters(tenant):
    await tenant.post({"title": "Checkout latency high", "service": "checkout", "severity": "high"},
                      {"title": "Search index stale", "service": "search", "severity": "low"})
    await tenant.post({"title": "Search index stale", "service": "search", "status": "resolved"})

    async def alerts(filter_=None):  # noqa: ANN001, ANN202
        return (await tenant(ALERTS, {"org": tenant.org_id, "filter": filter_}))["alerts"]

    listed = await alerts()
    assert listed["totalCount"] == 2
    assert [a["title"] for a in listed["nodes"]] == ["Search index stale", "Checkout latency high"]  # newest first
    assert [a["service"] for a in (await alerts({"status": ["FIRING"]}))["nodes"]] == ["checkout"]
    resolved = (await alerts({"status": ["RESOLVED"]}))["nodes"]
    assert [a["service"] for a in resolved] == ["search"] and resolved[0]["endedAt"]
    assert [a["service"] for a in (await alerts({"severity": ["LOW"], "service": "search"}))["nodes"]] == ["search"]
    incident_id = resolved[0]["incident"]["id"]
    assert [a["service"] for a in (await alerts({"incidentId": incident_id}))["nodes"]] == ["search"]
    assert (await alerts({"provider": "grafana"}))["nodes"] == []
    fp = resolved[0]["fingerprint"]
    assert [a["fingerprint"] for a in (await alerts({"fingerprint": fp}))["nodes"]] == [fp]


async def test_change_events_and_related_changes(tenant):
    start = NOW - timedelta(minutes=5)
    ms = lambda dt: int(dt.timestamp() * 1000)  # noqa: E731
    recent = await tenant.deploy(11, "checkout", "prod", ms(start - timedelta(minutes=30)))
    await tenant.deploy(12, "checkout", "prod", ms(start - timedelta(hours=3)))   # too early
    await tenant.deploy(13, "checkout", "staging", ms(start - timedelta(minutes=20)))  # other environment
    await tenant.deploy(14, "search", "prod", ms(start - timedelta(minutes=10)))  # other service
    await tenant.deploy(15, "checkout", "prod", ms(start + timedelta(minutes=2)))  # after it started
    listed = (await tenant(CHANGES, {"org": tenant.org_id}))["changeEvents"]
    assert listed["totalCount"] == 5 and listed["nodes"][0]["version"] == "1.15.0"  # most recent first
    incident_id = await tenant.incident({"title": "Checkout errors", "service": "checkout", "environment": "prod",
                                         "startedAt": iso(start)})
    query = """query($id: ID!, $h: Float!) { incident(id: $id) { relatedChanges(hoursBefore: $h) { id version } } }"""
    data = await tenant(query, {"id": incident_id, "h": 2})
    assert data["incident"]["relatedChanges"] == [{"id": recent, "version": "1.11.0"}]
    data = await tenant(query, {"id": incident_id, "h": 4})
    assert [c["version"] for c in data["incident"]["relatedChanges"]] == ["1.11.0", "1.12.0"]


async def test_other_organizations_see_nothing(tenant, gql):
    incident_id = await tenant.incident({"title": "Secret outage", "service": "vault"})
    token, _, other = await owner_with_org(gql, "Other")
    r = await gql.raw(INCIDENTS, {"org": tenant.org_id}, token=token)
    body = r.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await gql(INCIDENT, {"id": incident_id}, token=token))["incident"] is None
    r = await gql.raw(ALERTS, {"org": tenant.org_id}, token=token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await gql(INCIDENTS, {"org": other["id"]}, token=token))["incidents"]["totalCount"] == 0


async def test_bad_arguments_are_validation_errors(tenant):
    r = await tenant.gql.raw(INCIDENTS, {"org": tenant.org_id, "orderBy": ["STARTED_AT_ASC", "CREATED_AT_ASC"]},
                             token=tenant.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "VALIDATION"
    r = await tenant.gql.raw(INCIDENTS, {"org": tenant.org_id, "after": "garbage"}, token=tenant.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "VALIDATION"


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango").split()
NESTED = """query($org: ID!, $first: Int!) { incidents(organizationId: $org, first: $first) { edges { node {
  id alerts { totalCount nodes { id title correlation { reason } incident { id } } }
  timeline { nodes { kind actor { id } } } mergedIntoIncident { id } assignee { id } } } } }"""


async def test_statement_count_does_not_grow_with_incidents(tenant):
    for i, word in enumerate(WORDS):
        await tenant.incident({"title": f"{word} broken", "service": f"svc-{word}"},
                              {"title": f"{word} broken", "service": f"svc-{word}", "fingerprint": f"x{i}"})

    async def count(n: int) -> tuple[int, dict]:
        with record_statements() as seen:
            data = await tenant(NESTED, {"org": tenant.org_id, "first": n})
        return len(seen), data

    small, data = await count(2)
    assert len(data["incidents"]["edges"]) == 2
    large, data = await count(20)
    nodes = [e["node"] for e in data["incidents"]["edges"]]
    assert len(nodes) == 20 and all(n["alerts"]["totalCount"] == 2 and len(n["timeline"]["nodes"]) == 2 for n in nodes)
    assert small == large, (small, large)
    # auth, incidents page, alert pages, alert counts, alerts' incidents, timeline pages
    assert small <= 8, small
