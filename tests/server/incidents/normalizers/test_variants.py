"""Documented variants that the fixture files cannot express, provider by provider.

(check_fixtures.py counts alerts the way the current formats do, so retired or unusual shapes,
e.g. Grafana's legacy alerting or a BigPanda body wrapped in `incident`, are tested here.)
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from server.domains.incidents import normalizers
from server.domains.incidents.normalizers import PROVIDERS, PayloadRejected, normalize
from server.domains.incidents.normalizers import severity as sev
from server.domains.incidents.normalizers.cloudbees import parse_build_vars
from server.domains.incidents.normalizers.common import labels_fingerprint, parse_tags, parse_time

from ._fixtures import load, shared_fixture_dir

UTC = timezone.utc


def shared(name: str) -> dict:
    directory = shared_fixture_dir()
    assert directory is not None, "shared fixtures not found"
    return load(directory / f"{name}.json")


# ---------------------------------------------------------------- registry


def test_providers_and_registry():
    assert set(PROVIDERS) == {
        "grafana", "alertmanager", "datadog", "netdata", "pagerduty", "splunk",
        "jenkins", "cloudbees", "dynatrace", "bigpanda", "generic",
    }
    with pytest.raises(ValueError, match="unknown webhook provider"):
        normalize("nagios", {})


def test_an_unexpected_normalizer_error_becomes_a_rejection(monkeypatch):
    def broken(body, headers, now):
        raise TypeError("boom")

    monkeypatch.setitem(normalizers._REGISTRY, "splunk", broken)
    with pytest.raises(PayloadRejected, match="could not read the splunk payload") as info:
        normalize("splunk", {})
    assert isinstance(info.value.__cause__, TypeError)


@pytest.mark.parametrize("provider", [p for p in PROVIDERS])
@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_non_object_bodies_are_rejected_at_the_root(provider, body):
    with pytest.raises(PayloadRejected) as info:
        normalize(provider, body)
    assert info.value.path == "$"


# ---------------------------------------------------------------- shared helpers


def test_parse_time_variants():
    assert parse_time("2026-11-24T09:13:40Z") == datetime(2026, 11, 24, 9, 13, 40, tzinfo=UTC)
    assert parse_time("2026-11-24T10:13:40+01:00") == datetime(2026, 11, 24, 9, 13, 40, tzinfo=UTC)
    assert parse_time("2026-11-24T09:13:40.123456789Z") == datetime(2026, 11, 24, 9, 13, 40, 123456, tzinfo=UTC)
    assert parse_time("2026-11-24 09:13:40") == datetime(2026, 11, 24, 9, 13, 40, tzinfo=UTC)  # naive = UTC
    assert parse_time(1795511580000) == parse_time("1795511580000") == parse_time(1795511580) == parse_time("1795511580.0")
    assert parse_time(1795511580) == datetime(2026, 11, 24, 9, 13, tzinfo=UTC)
    for nothing in (None, "", "0001-01-01T00:00:00Z", -1, 0, "soon", True, {}, [], 10**30):
        assert parse_time(nothing) is None


def test_labels_fingerprint_ignores_label_order():
    a = labels_fingerprint({"alertname": "X", "pod": "p-1"})
    assert a == labels_fingerprint({"pod": "p-1", "alertname": "X"})
    assert a != labels_fingerprint({"alertname": "X", "pod": "p-2"})
    assert a.startswith("labels:") and len(a) == len("labels:") + 16


def test_parse_tags():
    assert parse_tags("env:prod, team:a,bare, [Kubernetes]app.kubernetes.io/name:web, url:http://x:1") == {
        "env": "prod", "team": "a", "bare": "", "app.kubernetes.io/name": "web", "url": "http://x:1",
    }
    assert parse_tags(["env:prod", 3]) == {"env": "prod"}
    assert parse_tags(None) == {}


def test_severity_tables():
    assert sev.from_label(" Critical ") == "critical"
    assert sev.from_label("WARNING") == "medium"
    assert sev.from_label("whatever") == "medium"
    assert sev.from_label(None, None) is None
    assert sev.priority(" p2 ") == "P2" and sev.priority("P6") is None and sev.priority(2) is None
    assert [sev.from_priority(f"P{i}") for i in range(1, 6)] == ["critical", "high", "medium", "low", "info"]


# ---------------------------------------------------------------- Grafana / Alertmanager


LEGACY = {
    "dashboardId": 12,
    "evalMatches": [{"value": 97.2, "metric": "cpu", "tags": {"host": "web-1"}}],
    "imageUrl": "https://grafana.northwind.io/public/img/attachments/abc.png",
    "message": "CPU above 95% for 5m",
    "orgId": 1,
    "panelId": 4,
    "ruleId": 77,
    "ruleName": "Web CPU",
    "ruleUrl": "https://grafana.northwind.io/d/web?panelId=4&fullscreen&orgId=1",
    "state": "alerting",
    "tags": {"severity": "critical", "service": "web", "env": "production"},
    "title": "[Alerting] Web CPU",
}


def test_grafana_legacy_alerting_and_ok():
    (firing,) = normalize("grafana", LEGACY).alerts
    assert (firing.title, firing.status, firing.severity) == ("Web CPU", "firing", "critical")
    assert (firing.service, firing.environment, firing.fingerprint) == ("web", "production", "1|77")
    assert firing.source_url == LEGACY["ruleUrl"] and firing.description == "CPU above 95% for 5m"

    ok = {**LEGACY, "state": "ok", "tags": {}, "title": "[OK] Web CPU", "evalMatches": []}
    (resolved,) = normalize("grafana", ok).alerts
    assert (resolved.status, resolved.severity, resolved.fingerprint) == ("resolved", "info", "1|77")

    no_data = {**LEGACY, "state": "no_data", "tags": None}
    assert normalize("grafana", no_data).alerts[0].severity == "medium"


@pytest.mark.parametrize("state", ["paused", "pending", None])
def test_grafana_legacy_states_without_action(state):
    assert normalize("grafana", {**LEGACY, "state": state}).alerts == []


def test_grafana_legacy_test_notification_without_org():
    body = {"evalMatches": [], "message": "Someone is testing", "ruleId": 0, "ruleName": "Test notification",
            "ruleUrl": "https://localhost:3000/", "state": "alerting", "title": "[Alerting] Test notification"}
    (alert,) = normalize("grafana", body).alerts
    assert (alert.title, alert.fingerprint) == ("Test notification", "0")


def test_grafana_without_alerts_or_legacy_fields_is_rejected():
    with pytest.raises(PayloadRejected) as info:
        normalize("grafana", {"receiver": "x", "status": "firing", "title": "[FIRING:1]"})
    assert info.value.path == "alerts"


def test_grafana_datasource_error_is_titled_by_rule():
    body = copy.deepcopy(shared("grafana/missing-optional-fields")["body"])
    body["alerts"][0]["labels"].update(alertname="DatasourceError", rulename="Orders backlog")
    assert normalize("grafana", body).alerts[0].title == "Orders backlog"
    del body["alerts"][0]["labels"]["rulename"]
    assert normalize("grafana", body).alerts[0].title == "DatasourceError"


def test_alertmanager_status_from_ends_at_when_missing():
    body = copy.deepcopy(shared("alertmanager/resolved")["body"])
    for alert in body["alerts"]:
        del alert["status"]
    before = datetime(2026, 11, 24, 9, 50, tzinfo=UTC)  # before both endsAt
    after = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert [a.status for a in normalize("alertmanager", body, now=before).alerts] == ["firing", "firing"]
    resolved = normalize("alertmanager", body, now=after).alerts
    assert [a.status for a in resolved] == ["resolved", "resolved"]
    assert resolved[0].ended_at == datetime(2026, 11, 24, 9, 58, 7, 512000, tzinfo=UTC)


def test_alertmanager_firing_alert_has_no_end_and_keeps_group_key():
    fx = shared("alertmanager/firing-group-2-alerts")
    alerts = normalize("alertmanager", fx["body"], fx["headers"]).alerts
    assert all(a.ended_at is None for a in alerts)
    assert alerts[0].started_at == datetime(2026, 11, 24, 9, 20, 37, 512000, tzinfo=UTC)
    assert {a.group_key for a in alerts} == {fx["body"]["groupKey"]}
    assert alerts[0].description.startswith("p99 latency on orders-api-84d7c9b6f-2lq9x is 1.93s")
    assert alerts[0].source_url.startswith("http://prometheus-k8s-0:9090/graph")


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["alerts"].__setitem__(1, "oops"), "alerts[1]"),
        (lambda b: b["alerts"][0].__setitem__("labels", ["a"]), "alerts[0].labels"),
        (lambda b: b.__setitem__("alerts", None), "alerts"),
    ],
)
def test_alertmanager_malformed_alerts(mutate, path):
    body = copy.deepcopy(shared("alertmanager/firing-group-2-alerts")["body"])
    mutate(body)
    with pytest.raises(PayloadRejected) as info:
        normalize("alertmanager", body)
    assert info.value.path == path


def test_non_string_label_values_are_flattened():
    body = copy.deepcopy(shared("alertmanager/firing-group-2-alerts")["body"])
    body["alerts"][0]["labels"].update(replicas=3, canary=True, zone=None)
    labels = normalize("alertmanager", body).alerts[0].labels
    assert (labels["replicas"], labels["canary"], labels["zone"]) == ("3", "true", "")


# ---------------------------------------------------------------- Datadog


def dd(**fields) -> dict:
    return normalize("datadog", fields).alerts[0]


def test_datadog_title_prefixes():
    a = dd(title="[Triggered] Host down", alert_id="1")
    assert (a.title, a.status, a.severity, a.fingerprint) == ("Host down", "firing", "high", "1|")
    b = dd(title="[P4] [Warn on {host:db-1}] [prod] Disk", alert_id="2")
    assert (b.title, b.priority, b.severity, b.status) == ("[prod] Disk", "P4", "low", "firing")
    assert b.fingerprint == "2|host:db-1" and b.labels == {"host": "db-1"}
    c = dd(title="[Re-No Data on {service:x}] Heartbeat", alert_id="3")
    assert (c.severity, c.service) == ("medium", "x")
    d = dd(title="[Recovered] Host down", alert_id="1")
    assert (d.status, d.severity, d.fingerprint) == ("resolved", "info", "1|")


def test_datadog_alert_type_and_numeric_values():
    a = dd(title="Job done", alert_id=123, alert_type="success", date=1795511523)
    assert (a.status, a.severity, a.provider_alert_id) == ("resolved", "info", "123")
    assert a.ended_at == datetime(2026, 11, 24, 9, 12, 3, tzinfo=UTC)
    b = dd(title="Job failing", ALERT_ID="124", ALERT_TYPE="error", ALERT_PRIORITY="p1")
    assert (b.status, b.severity, b.priority) == ("firing", "critical", "P1")


def test_datadog_service_from_tags_when_scope_lacks_it():
    a = dd(title="[Triggered on {host:h1}] CPU", alert_id="9", alert_scope="host:h1", tags="service:api,env:qa,team:t")
    assert (a.service, a.environment, a.fingerprint) == ("api", "qa", "9|host:h1")


def test_datadog_without_title_or_id_is_rejected():
    with pytest.raises(PayloadRejected) as info:
        normalize("datadog", {"org": {"id": "1"}, "body": "hello"})
    assert info.value.path == "title"


def test_datadog_delivery_id_and_group_key():
    fx = shared("datadog/triggered")
    result = normalize("datadog", fx["body"])
    assert result.delivery_id == "8062937823429874123"
    assert result.alerts[0].group_key == "4d1a7f0c2b9e83a56c0f1e2d3b4a5968"
    assert result.alerts[0].source_url == fx["body"]["link"]
    assert not result.alerts[0].description.startswith("%%%")


# ---------------------------------------------------------------- PagerDuty


def pd_body(event_type: str, **data) -> dict:
    body = copy.deepcopy(shared("pagerduty/incident-triggered")["body"])
    body["event"]["event_type"] = event_type
    body["event"]["data"].update(data)
    return body


def test_pagerduty_event_types():
    unack = normalize("pagerduty", pd_body("incident.unacknowledged", status="triggered")).alerts[0]
    assert (unack.status, unack.acknowledged) == ("firing", False)
    reopened = normalize("pagerduty", pd_body("incident.reopened", status="triggered")).alerts[0]
    assert reopened.status == "firing"
    escalated = normalize("pagerduty", pd_body("incident.escalated", status="acknowledged")).alerts[0]
    assert (escalated.status, escalated.acknowledged) == ("firing", True)
    resolved = normalize("pagerduty", pd_body("incident.resolved", status="resolved")).alerts[0]
    assert (resolved.status, resolved.acknowledged) == ("resolved", False)
    assert resolved.ended_at == datetime(2026, 11, 24, 9, 12, 41, 532000, tzinfo=UTC)


def test_pagerduty_priority_and_urgency():
    custom = normalize("pagerduty", pd_body("incident.priority_updated", priority={"summary": "SEV-1"}, urgency="high")).alerts[0]
    assert (custom.priority, custom.severity) == (None, "high")
    none = normalize("pagerduty", pd_body("incident.triggered", priority=None, urgency=None)).alerts[0]
    assert none.severity == "medium"
    p5 = normalize("pagerduty", pd_body("incident.triggered", priority={"summary": "P5"})).alerts[0]
    assert (p5.priority, p5.severity) == ("P5", "info")


def test_pagerduty_non_incident_events_yield_nothing():
    ping = {"event": {"id": "01ABC", "event_type": "pagey.ping", "resource_type": "pagey", "occurred_at": "2026-11-24T09:00:00Z",
                      "agent": None, "client": None, "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}
    result = normalize("pagerduty", ping)
    assert result.alerts == [] and result.delivery_id == "01ABC"
    service = {"event": {"id": "02", "event_type": "service.updated", "data": {"id": "PSV", "type": "service"}}}
    assert normalize("pagerduty", service).alerts == []


def test_pagerduty_delivery_id_falls_back_to_header():
    body = pd_body("incident.triggered")
    del body["event"]["id"]
    assert normalize("pagerduty", body, {"x-webhook-id": "hdr-1"}).delivery_id == "hdr-1"


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"messages": [{"event": "incident.trigger"}]}, "event", "v2"),
        ({"incident": {}}, "event", "event"),
        ({"event": "incident.triggered"}, "event", "object"),
        ({"event": {"id": "x", "data": {"type": "incident", "id": "Q1"}}}, "event.event_type", "event_type"),
        ({"event": {"event_type": "incident.triggered", "data": None}}, "event.data", "object"),
        ({"event": {"event_type": "incident.triggered", "data": {"type": "incident", "title": "x"}}}, "event.data.id", "id"),
    ],
)
def test_pagerduty_rejections(body, path, words):
    with pytest.raises(PayloadRejected) as info:
        normalize("pagerduty", body)
    assert info.value.path == path and words in info.value.message


# ---------------------------------------------------------------- Netdata, Splunk, Dynatrace, BigPanda


def test_netdata_setup_token_message_yields_nothing():
    body = {"message": "Test notification", "title": "Netdata webhook verification", "token": "e1f2a3"}
    assert normalize("netdata", body).alerts == []


def test_netdata_reachability_from_status_text_and_empty_alert_name():
    body = {"host": "h1", "status": {"text": "reachable"}, "url": "https://app.netdata.cloud/x"}
    (alert,) = normalize("netdata", body).alerts
    assert (alert.status, alert.severity) == ("resolved", "info")
    with pytest.raises(PayloadRejected) as info:
        normalize("netdata", {"alert": "", "severity": "critical"})
    assert info.value.path == "alert"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"log_level": "ERROR"}, "high"),
        ({"severity": "informational"}, "info"),
        ({"urgency": "critical", "severity": "2"}, "critical"),
        ({"severity": "3"}, "medium"),
        ({"severity": "1"}, "info"),
        ({"severity": "weird"}, "medium"),
        ({}, "medium"),
    ],
)
def test_splunk_severity_sources(row, expected):
    body = {"result": row, "sid": "s1", "search_name": "n", "app": "a", "owner": "o"}
    assert normalize("splunk", body).alerts[0].severity == expected


def test_splunk_time_and_missing_result():
    body = {"result": {"_time": "2026-11-24T09:15:00.000+00:00"}, "sid": "s1", "search_name": "n"}
    assert normalize("splunk", body).alerts[0].started_at == datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
    (alert,) = normalize("splunk", {"sid": "s2", "search_name": "n", "result": None}).alerts
    assert alert.labels == {} and alert.fingerprint == "n||"
    with pytest.raises(PayloadRejected) as info:
        normalize("splunk", {"result": {}})
    assert info.value.path == "search_name"


def test_dynatrace_details_as_text_and_tags_from_details():
    fx = shared("dynatrace/problem-resolved")
    body = copy.deepcopy(fx["body"])
    body["ProblemDetailsJSON"] = __import__("json").dumps(body["ProblemDetailsJSON"])
    del body["Tags"]
    body["State"] = "CLOSED"
    (alert,) = normalize("dynatrace", body).alerts
    assert (alert.status, alert.environment) == ("resolved", "production")
    assert alert.started_at == datetime(2026, 11, 24, 9, 13, tzinfo=UTC)
    assert alert.ended_at == datetime(2026, 11, 24, 9, 47, tzinfo=UTC)
    assert alert.group_key == alert.fingerprint == body["PID"]


def test_dynatrace_unknown_severity_and_state_default():
    (alert,) = normalize("dynatrace", {"PID": "1", "ProblemSeverity": "SOMETHING_NEW"}).alerts
    assert (alert.severity, alert.status, alert.title) == ("medium", "firing", "Dynatrace problem 1")


def test_bigpanda_incident_wrapper_and_tag_object():
    body = {"incident": {"id": "inc-1", "alerts": [
        {"id": "a1", "status": "critical", "incident_key": "k1", "description": "d",
         "tags": {"service": "svc", "environment": "prod"}}]}}
    (alert,) = normalize("bigpanda", body).alerts
    assert (alert.service, alert.environment, alert.group_key, alert.fingerprint) == ("svc", "prod", "inc-1", "k1")
    with pytest.raises(PayloadRejected) as info:
        normalize("bigpanda", {"incident": {"id": "inc-1", "alerts": [1]}})
    assert info.value.path == "incident.alerts[0]"


# ---------------------------------------------------------------- CI: change events and deploy alerts


def test_deploy_alert_lifecycle():
    """A failed deploy raises deploy|service|env; the next successful deploy resolves it."""
    failed = normalize("jenkins", shared("jenkins/completed-failure")["body"])
    (raised,) = failed.alerts
    assert (raised.status, raised.severity, raised.fingerprint) == ("firing", "high", "deploy|checkout-api|production")
    assert raised.title == "Deployment failed: checkout-api to production"
    assert raised.group_key == failed.change_events[0].fingerprint
    assert raised.labels["version"] == "2.15.0"

    ok = copy.deepcopy(shared("jenkins/completed-success")["body"])
    ok["build"]["number"] = 130
    ok["build"]["full_url"] = "https://ci.northwind.io/job/checkout-api-deploy/130/"
    (cleared,) = normalize("jenkins", ok).alerts
    assert (cleared.status, cleared.severity, cleared.fingerprint) == ("resolved", "info", raised.fingerprint)
    assert cleared.ended_at is not None and cleared.started_at is None


def test_running_or_unstable_builds_raise_no_deploy_alert():
    assert normalize("jenkins", shared("jenkins/started")["body"]).alerts == []
    body = copy.deepcopy(shared("jenkins/completed-failure")["body"])
    body["build"]["status"] = "UNSTABLE"
    assert normalize("jenkins", body).alerts == []
    body["build"]["status"] = "ABORTED"
    assert normalize("jenkins", body).alerts[0].title == "Deployment aborted: checkout-api to production"


def test_jenkins_parameters_must_be_an_object():
    body = copy.deepcopy(shared("jenkins/started")["body"])
    body["build"]["parameters"] = ["SERVICE=x"]
    with pytest.raises(PayloadRejected) as info:
        normalize("jenkins", body)
    assert info.value.path == "build.parameters"


def test_jenkins_minimal_body():
    (change,) = normalize("jenkins", {"name": "deploy", "build": {"phase": "STARTED"}}).change_events
    assert (change.title, change.service, change.fingerprint, change.result) == ("deploy", "deploy", "deploy", "started")


def test_cloudbees_build_vars_parsing():
    assert parse_build_vars("{A=1, B=x, y, C=}") == {"A": "1", "B": "x, y", "C": ""}
    assert parse_build_vars("{}") == {}
    assert parse_build_vars({"A": 1, "B": None}) == {"A": "1"}
    assert parse_build_vars(None) == {}
    assert parse_build_vars("{URL=http://x/?a=b, c=d, GIT_COMMIT=abc}")["URL"] == "http://x/?a=b"


def test_cloudbees_outbound_event_variants():
    base = {"buildName": "#3", "buildNumber": 3, "buildUrl": "https://cb/job/x/3/", "projectName": "x",
            "buildVars": "{SERVICE=svc, ENVIRONMENT=qa, GIT_COMMIT=abc123, GIT_BRANCH=origin/main}"}
    ok = normalize("cloudbees", {**base, "event": "SUCCESS"})
    change = ok.change_events[0]
    assert (change.result, change.commit, change.branch) == ("success", "abc123", "origin/main")
    assert [(a.status, a.fingerprint) for a in ok.alerts] == [("resolved", "deploy|svc|qa")]
    pipeline = normalize("cloudbees", {**base, "event": "pipeline"})
    assert pipeline.change_events[0].result == "started" and pipeline.alerts == []
    with pytest.raises(PayloadRejected) as info:
        normalize("cloudbees", {**base, "event": "exploded"})
    assert info.value.path == "event"
    with pytest.raises(PayloadRejected) as info:
        normalize("cloudbees", {**base, "event": "start", "buildUrl": None})
    assert info.value.path == "buildUrl"


def test_secret_looking_parameters_are_not_labels():
    body = copy.deepcopy(shared("jenkins/started")["body"])
    body["build"]["parameters"].update(DB_PASSWORD="hunter2", GITHUB_TOKEN="ghp_x", API_KEY="k", TICKET="CHG1")
    labels = normalize("jenkins", body).change_events[0].labels
    assert labels["TICKET"] == "CHG1" and labels["SERVICE"] == "checkout-api"
    assert not {"DB_PASSWORD", "GITHUB_TOKEN", "API_KEY"} & set(labels)

    env = "{HOME=/var/jenkins, PATH=/usr/bin, SERVICE=svc, ENVIRONMENT=qa, AWS_SECRET_ACCESS_KEY=abc}"
    body = {"buildUrl": "https://cb/job/x/4/", "projectName": "folder/x", "event": "pipeline", "buildVars": env}
    change = normalize("cloudbees", body).change_events[0]
    assert change.labels == {"SERVICE": "svc", "ENVIRONMENT": "qa", "job": "folder/x", "event": "pipeline"}
    assert (change.service, change.environment, change.title) == ("svc", "qa", "folder/x #4")
