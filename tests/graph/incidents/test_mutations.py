"""Incident mutations through the real server: transitions, patches, merge, move, unlink; each with
its timeline and audit entries, permissions and tenant checks."""

from __future__ import annotations

import pytest

from tests.graph.accounts.helpers import owner_with_org
from tests.graph.incidents.helpers import (
    ACK,
    ALERTS,
    INCIDENT,
    MERGE,
    MOVE,
    REOPEN,
    RESOLVE,
    UNLINK,
    UPDATE,
    Tenant,
    errors_of,
)

AUDIT = """query($org: ID!) { auditLog(organizationId: $org, first: 50) { nodes { action targetType targetId before after } } }"""


async def _audit(tenant: Tenant) -> list[dict]:
    return (await tenant(AUDIT, {"org": tenant.org_id}))["auditLog"]["nodes"]


async def _timeline(tenant: Tenant, incident_id: str) -> list[dict]:
    return (await tenant(INCIDENT, {"id": incident_id}))["incident"]["timeline"]["nodes"]


def _raw(gid: str) -> str:
    from tests.graph.accounts.helpers import raw_id

    return raw_id(gid)


async def test_acknowledge_resolve_reopen(tenant):
    incident_id = await tenant.incident({"title": "Checkout down", "service": "checkout", "severity": "critical"})
    me = tenant.user["id"]
    data = (await tenant(ACK, {"input": {"id": incident_id}}))["incidentAcknowledge"]
    assert data["userErrors"] == [] and data["incident"]["status"] == "ACKNOWLEDGED"
    assert data["incident"]["acknowledgedAt"] and data["incident"]["acknowledgedBy"] == {"id": me}
    again = (await tenant(ACK, {"input": {"id": incident_id}}))["incidentAcknowledge"]
    assert again["userErrors"] == [] and again["incident"]["acknowledgedAt"] == data["incident"]["acknowledgedAt"]

    data = (await tenant(RESOLVE, {"input": {"id": incident_id}}))["incidentResolve"]
    assert data["incident"]["status"] == "RESOLVED" and data["incident"]["resolvedBy"] == {"id": me}
    assert data["incident"]["resolvedAt"]
    bad = (await tenant(ACK, {"input": {"id": incident_id}}))["incidentAcknowledge"]
    assert errors_of(bad) == [("CONFLICT", None)] and bad["incident"] is None

    data = (await tenant(REOPEN, {"input": {"id": incident_id}}))["incidentReopen"]
    assert data["incident"]["status"] == "INVESTIGATING" and data["incident"]["resolvedAt"] is None
    bad = (await tenant(REOPEN, {"input": {"id": incident_id}}))["incidentReopen"]
    assert errors_of(bad) == [("CONFLICT", None)]

    timeline = await _timeline(tenant, incident_id)
    assert [e["kind"] for e in timeline] == ["CREATED", "ACKNOWLEDGED", "RESOLVED", "REOPENED"]
    assert [e["actor"] for e in timeline] == [None, {"id": me}, {"id": me}, {"id": me}]
    actions = [(e["action"], e["targetId"]) for e in await _audit(tenant) if e["action"].startswith("incident.")]
    assert actions == [("incident.reopen", _raw(incident_id)), ("incident.resolve", _raw(incident_id)),
                       ("incident.acknowledge", _raw(incident_id))]  # newest first; the no-op left none


async def test_update_patches_only_what_is_given(tenant):
    incident_id = await tenant.incident({"title": "Checkout slow", "service": "checkout", "environment": "prod",
                                         "severity": "low", "labels": {"category": "latency"}})
    before = (await tenant(INCIDENT, {"id": incident_id}))["incident"]
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "title": "Checkout very slow", "severity": "HIGH",
                                            "priority": "P1", "businessUnit": "retail", "serviceTier": "tier-0",
                                            "environment": None, "assigneeId": tenant.user["id"]}}))["incidentUpdate"]
    assert data["userErrors"] == []
    after = data["incident"]
    assert (after["title"], after["severity"], after["priority"]) == ("Checkout very slow", "HIGH", "P1")
    assert (after["businessUnit"], after["serviceTier"], after["environment"]) == ("retail", "tier-0", None)
    assert after["assignee"] == {"id": tenant.user["id"]}
    assert (after["service"], after["category"], after["status"]) == (before["service"], before["category"], "INVESTIGATING")

    data = (await tenant(UPDATE, {"input": {"id": incident_id, "assigneeId": None, "status": "ACKNOWLEDGED"}}))["incidentUpdate"]
    assert data["incident"]["assignee"] is None and data["incident"]["status"] == "ACKNOWLEDGED"
    assert data["incident"]["acknowledgedBy"] == {"id": tenant.user["id"]}
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "status": "RESOLVED"}}))["incidentUpdate"]
    assert data["incident"]["status"] == "RESOLVED" and data["incident"]["resolvedAt"]
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "status": "INVESTIGATING"}}))["incidentUpdate"]
    assert data["incident"]["status"] == "INVESTIGATING" and data["incident"]["resolvedAt"] is None

    timeline = await _timeline(tenant, incident_id)
    assert [e["kind"] for e in timeline] == ["CREATED", "UPDATED", "UPDATED", "ACKNOWLEDGED", "RESOLVED", "REOPENED"]
    changes = timeline[1]["data"]["changes"]
    assert changes["title"] == {"from": "Checkout slow", "to": "Checkout very slow"}
    assert changes["severity"] == {"from": "low", "to": "high"} and changes["environment"] == {"from": "prod", "to": None}
    audit = [e for e in await _audit(tenant) if e["action"] == "incident.update"]
    assert len(audit) == 4 and audit[-1]["after"]["title"] == "Checkout very slow"
    assert audit[-1]["before"]["priority"] == "P4"


async def test_update_rejects_bad_values_and_changes_nothing(tenant, gql):
    incident_id = await tenant.incident({"title": "Checkout slow", "service": "checkout"})
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "title": "  ", "status": "MERGED"}}))["incidentUpdate"]
    assert sorted(errors_of(data)) == [("VALIDATION", ["input", "status"]), ("VALIDATION", ["input", "title"])]
    token, user, _ = await owner_with_org(gql, "Elsewhere")
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "assigneeId": user["id"]}}))["incidentUpdate"]
    assert errors_of(data) == [("VALIDATION", ["input", "assigneeId"])]
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "assigneeId": "nonsense"}}))["incidentUpdate"]
    assert errors_of(data) == [("VALIDATION", ["input", "assigneeId"])]
    data = (await tenant(UPDATE, {"input": {"id": incident_id, "title": "x" * 1001}}))["incidentUpdate"]
    assert errors_of(data) == [("VALIDATION", ["input", "title"])]
    unchanged = (await tenant(INCIDENT, {"id": incident_id}))["incident"]
    assert unchanged["title"] == "Checkout slow" and unchanged["assignee"] is None
    assert [e["kind"] for e in unchanged["timeline"]["nodes"]] == ["CREATED"]


@pytest.mark.parametrize("operation", ["ack", "resolve", "update", "merge", "move", "unlink"])
async def test_viewers_cannot_change_incidents_and_strangers_do_not_see_them(tenant, gql, operation):
    first = await tenant.post({"title": "Checkout down", "service": "checkout"})
    second = await tenant.incident({"title": "Search down", "service": "search"})
    incident_id, alert_id = first["incidents"][0], first["alerts"][0]
    query, input_, name = {
        "ack": (ACK, {"id": incident_id}, "incidentAcknowledge"),
        "resolve": (RESOLVE, {"id": incident_id}, "incidentResolve"),
        "update": (UPDATE, {"id": incident_id, "title": "mine now"}, "incidentUpdate"),
        "merge": (MERGE, {"sourceIncidentId": incident_id, "targetIncidentId": second}, "incidentMerge"),
        "move": (MOVE, {"alertId": alert_id, "incidentId": second}, "alertMove"),
        "unlink": (UNLINK, {"alertId": alert_id}, "alertUnlink"),
    }[operation]
    viewer_token, _ = await tenant.member("viewer")
    payload = (await gql(query, {"input": input_}, token=viewer_token))[name]
    assert [code for code, _ in errors_of(payload)] == ["FORBIDDEN"]
    stranger, _, _ = await owner_with_org(gql, "Strangers")
    payload = (await gql(query, {"input": input_}, token=stranger))[name]
    assert [code for code, _ in errors_of(payload)] == ["NOT_FOUND"]
    editor_token, _ = await tenant.member("editor")
    payload = (await gql(query, {"input": input_}, token=editor_token))[name]
    assert payload["userErrors"] == []
    assert len(await _timeline(tenant, incident_id)) == 2  # created + the editor's change


async def test_merge_moves_alerts_and_points_at_the_target(tenant):
    source = await tenant.post({"title": "Checkout latency high", "service": "checkout", "severity": "critical"},
                               {"title": "Checkout pods restarting", "service": "checkout"})
    target_answer = await tenant.post({"title": "Payments queue backlog", "service": "payments", "severity": "low"})
    target = target_answer["incidents"][0]
    source_id = source["incidents"][0]
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": source_id, "targetIncidentId": target}}))["incidentMerge"]
    assert data["userErrors"] == []
    merged, kept = data["sourceIncident"], data["incident"]
    assert merged["status"] == "MERGED" and merged["mergedIntoIncident"] == {"id": target} and merged["mergedAt"]
    assert kept["id"] == target and kept["correlatedAlertCount"] == 3 and kept["severity"] == "CRITICAL"
    assert kept["affectedServices"] == ["payments", "checkout"]
    full = (await tenant(INCIDENT, {"id": target}))["incident"]
    assert full["mergedIncidents"] == {"totalCount": 1, "nodes": [{"id": source_id, "status": "MERGED"}]}
    assert [a["id"] for a in full["alerts"]["nodes"]] == [*source["alerts"], *target_answer["alerts"]]  # arrival order
    moved = [a for a in full["alerts"]["nodes"] if a["id"] in source["alerts"]]
    assert len(moved) == 2 and all(a["correlation"]["reason"] == "MERGED" and a["incident"] == {"id": target}
                                   for a in moved)
    assert (await tenant(INCIDENT, {"id": source_id}))["incident"]["alerts"]["totalCount"] == 0
    assert [e["kind"] for e in full["timeline"]["nodes"]] == ["CREATED", "MERGED"]
    assert [e["kind"] for e in await _timeline(tenant, source_id)] == ["CREATED", "ALERT_CORRELATED", "MERGED_INTO"]
    assert any(e["action"] == "incident.merge" and e["targetId"] == _raw(source_id) for e in await _audit(tenant))

    # a new alert of the merged incident's fingerprint goes to the target
    again = await tenant.post({"title": "Checkout latency high", "service": "checkout", "severity": "critical"})
    assert again["incidents"] == [target]
    # merged incidents are read-only and cannot be merged or merged into again
    third = await tenant.incident({"title": "Search index stale", "service": "search"})
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": source_id, "targetIncidentId": third}}))["incidentMerge"]
    assert errors_of(data) == [("CONFLICT", ["input", "sourceIncidentId"])]
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": third, "targetIncidentId": source_id}}))["incidentMerge"]
    assert errors_of(data) == [("CONFLICT", ["input", "targetIncidentId"])]
    data = (await tenant(ACK, {"input": {"id": source_id}}))["incidentAcknowledge"]
    assert errors_of(data) == [("CONFLICT", ["input", "id"])]


async def test_merge_refuses_itself_and_other_organizations(tenant, gql):
    incident_id = await tenant.incident({"title": "Checkout down", "service": "checkout"})
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": incident_id, "targetIncidentId": incident_id}}))["incidentMerge"]
    assert errors_of(data) == [("VALIDATION", ["input", "targetIncidentId"])]
    # the same owner in a second organization: both visible, still refused
    from tests.graph.accounts.helpers import ORG_CREATE

    org2 = (await tenant(ORG_CREATE, {"input": {"name": "Second"}}))["organizationCreate"]["organization"]["id"]
    key2 = await Tenant._config(gql, tenant.token, org2, "GENERIC")
    other_incident = (await tenant.post({"title": "Other org thing", "service": "x"}, key=key2))["incidents"][0]
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": incident_id, "targetIncidentId": other_incident}}))["incidentMerge"]
    assert errors_of(data) == [("VALIDATION", ["input", "targetIncidentId"])]
    stranger = await Tenant.create(gql, "Stranger")
    theirs = await stranger.incident({"title": "Theirs", "service": "y"})
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": incident_id, "targetIncidentId": theirs}}))["incidentMerge"]
    assert errors_of(data) == [("NOT_FOUND", ["input", "targetIncidentId"])]
    data = (await tenant(MERGE, {"input": {"sourceIncidentId": "bad", "targetIncidentId": theirs}}))["incidentMerge"]
    assert errors_of(data) == [("VALIDATION", ["input", "sourceIncidentId"])]
    assert [e["kind"] for e in await _timeline(tenant, incident_id)] == ["CREATED"]


async def test_move_an_alert_to_another_incident(tenant):
    source = await tenant.post({"title": "Checkout latency high", "service": "checkout"},
                               {"title": "Payments retries rising", "service": "checkout"})
    target = await tenant.incident({"title": "Payments queue backlog", "service": "payments"})
    alert_id = source["alerts"][1]
    data = (await tenant(MOVE, {"input": {"alertId": alert_id, "incidentId": target}}))["alertMove"]
    assert data["userErrors"] == []
    assert data["alert"]["incident"] == {"id": target}
    assert data["alert"]["correlation"] == {"reason": "MANUAL", "score": None, "detail": "moved by a user"}
    assert data["incident"]["correlatedAlertCount"] == 2 and data["sourceIncident"]["correlatedAlertCount"] == 1
    assert data["sourceIncident"]["id"] == source["incidents"][0]
    assert [e["kind"] for e in await _timeline(tenant, target)] == ["CREATED", "ALERT_MOVED_IN"]
    assert [e["kind"] for e in await _timeline(tenant, source["incidents"][0])][-1] == "ALERT_MOVED_OUT"
    data = (await tenant(MOVE, {"input": {"alertId": alert_id, "incidentId": target}}))["alertMove"]
    assert errors_of(data) == [("VALIDATION", ["input", "incidentId"])]
    assert any(e["action"] == "alert.move" for e in await _audit(tenant))


async def test_unlink_an_alert_into_a_new_incident(tenant):
    source = await tenant.post({"title": "Checkout latency high", "service": "checkout", "severity": "low"},
                               {"title": "Checkout disk full", "service": "checkout", "severity": "high"})
    source_id, alert_id = source["incidents"][0], source["alerts"][1]
    data = (await tenant(UNLINK, {"input": {"alertId": alert_id}}))["alertUnlink"]
    assert data["userErrors"] == []
    new = data["incident"]
    assert new["id"] != source_id and new["title"] == "Checkout disk full" and new["status"] == "INVESTIGATING"
    assert (new["severity"], new["priority"], new["correlatedAlertCount"]) == ("HIGH", "P2", 1)
    assert data["alert"]["incident"] == {"id": new["id"]} and data["alert"]["correlation"] is None
    assert data["sourceIncident"]["correlatedAlertCount"] == 1
    assert [e["kind"] for e in await _timeline(tenant, new["id"])] == ["CREATED"]
    # the split-off alert's next repeat stays where the user put it, and a new alert of that
    # fingerprint never goes back to the old incident
    await tenant.post({"title": "Checkout disk full", "service": "checkout", "severity": "high"})
    listed = (await tenant(ALERTS, {"org": tenant.org_id}))["alerts"]["nodes"]
    mine = next(a for a in listed if a["id"] == alert_id)
    assert mine["occurrenceCount"] == 2 and mine["incident"] == {"id": new["id"]}
    assert any(e["action"] == "alert.unlink" for e in await _audit(tenant))
