"""Scan configs and scan jobs through the API, on the live server's real Dramatiq worker: CRUD with
validation against a real PostgreSQL warehouse (zero-row checks), scanRun end to end on a DuckDB
file with recent events (exact counts), preview, replay over a range, event groups, cancel,
history, roles and tenant isolation."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from server.db.base import utcnow
from server.domains.warehouse.models import ScanInterval
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import ERRORS, created, errors_of, wait_job
from tests.support.plan_rows import raw
from tests.support.warehouse import START, count_by, create_duckdb_warehouse

SC_FIELDS = """id name baseQuery timeColumn eventTypeColumn eventNameFormat jsonValuePaths metricBreakdownColumns
  metricBreakdownValuesLimit cardinalityThreshold interval replayChunkInterval enabled nextRunAt scannedUntil
  dataSource { id } project { id }"""
CREATE = f"mutation($input: ScanConfigCreateInput!) {{ scanConfigCreate(input: $input) {{ scanConfig {{ {SC_FIELDS} }} {ERRORS} }} }}"
UPDATE = f"mutation($input: ScanConfigUpdateInput!) {{ scanConfigUpdate(input: $input) {{ scanConfig {{ {SC_FIELDS} }} {ERRORS} }} }}"
DELETE = f"mutation($input: ScanConfigDeleteInput!) {{ scanConfigDelete(input: $input) {{ deletedScanConfigId {ERRORS} }} }}"
JOBP = f"job {{ id kind status }} scanJob {{ id kind }} {ERRORS}"
RUN = f"mutation($input: ScanRunInput!) {{ scanRun(input: $input) {{ {JOBP} }} }}"
REPLAY = f"mutation($input: MetricsReplayInput!) {{ metricsReplay(input: $input) {{ {JOBP} }} }}"
PREVIEW = f"mutation($input: ScanPreviewInput!) {{ scanPreview(input: $input) {{ {JOBP} }} }}"
GROUPS = f"mutation($input: EventGroupsApplyInput!) {{ eventGroupsApply(input: $input) {{ {JOBP} }} }}"
CANCEL = f"mutation($id: ID!) {{ jobCancel(input: {{id: $id}}) {{ job {{ id status }} {ERRORS} }} }}"
LIST = "query($p: ID!) { scanConfigs(projectId: $p) { totalCount nodes { id name } } }"
JOBS = """query($c: ID!, $first: Int) { scanJobs(scanConfigId: $c, first: $first) { totalCount nodes { id kind error stats
  rangeFrom rangeTo finishedAt } } }"""
BASE = "SELECT * FROM events"


async def pg_source(org: Org, pg_warehouse) -> str:  # noqa: ANN001
    spec, name = pg_warehouse
    ds = await created(org, host=spec.host, port=spec.port, databaseName=name, username=spec.username,
                       extraParams={"sslmode": "disable"}, timeoutSeconds=10)
    return ds["id"]


def config_input(project: str, ds: str, **extra) -> dict:  # noqa: ANN003
    return {"projectId": project, "dataSourceId": ds, "name": f"scan {uuid.uuid4().hex[:6]}", "baseQuery": BASE,
            "timeColumn": "ts", "eventTypeColumn": "event_type", "eventNameFormat": "{category}.{action}",
            "metricBreakdownColumns": ["country"], **extra}


async def test_create_validates_against_the_warehouse(org, pg_warehouse):  # noqa: ANN001
    project = (await org.project())["id"]
    ds = await pg_source(org, pg_warehouse)
    data = (await org(CREATE, {"input": config_input(project, ds)}))["scanConfigCreate"]
    assert data["userErrors"] == [], data
    sc = data["scanConfig"]
    assert sc["interval"] == "ONE_HOUR" and sc["cardinalityThreshold"] == 100 and sc["enabled"]
    assert sc["nextRunAt"] is not None and sc["dataSource"]["id"] == ds
    # Shape errors, all at once.
    bad = config_input(project, ds, name="", cardinalityThreshold=0, metricBreakdownValuesLimit=0,
                       scanLookbackHours=0, eventNameFormat="no placeholders", jsonValuePaths=["nodots"],
                       interval="ONE_DAY", replayChunkInterval="ONE_HOUR",
                       eventGroupRules=[{"name": "x", "pattern": "("}])
    got = set(tuple(f) for _, f in errors_of((await org(CREATE, {"input": bad}))["scanConfigCreate"]))
    assert {("input", "name"), ("input", "cardinalityThreshold"), ("input", "metricBreakdownValuesLimit"),
            ("input", "scanLookbackHours"), ("input", "eventNameFormat"), ("input", "jsonValuePaths", "0"),
            ("input", "replayChunkInterval"), ("input", "eventGroupRules", "0", "pattern")} <= got
    # A base query the warehouse refuses: its message.
    data = (await org(CREATE, {"input": config_input(project, ds, baseQuery="SELECT * FROM no_such_table")}))["scanConfigCreate"]
    assert errors_of(data) == [("VALIDATION", ["input", "baseQuery"])] and "no_such_table" in data["userErrors"][0]["message"]
    # Unknown columns (time column, placeholder, breakdown).
    data = (await org(CREATE, {"input": config_input(project, ds, timeColumn="when", eventNameFormat="{cat}.{action}",
                                                     metricBreakdownColumns=["nation"])}))["scanConfigCreate"]
    assert sorted(f for _, f in errors_of(data)) == [["input", "eventNameFormat"], ["input", "metricBreakdownColumns", "0"],
                                                       ["input", "timeColumn"]]
    # A time column the warehouse cannot bucket (text).
    data = (await org(CREATE, {"input": config_input(project, ds, timeColumn="country")}))["scanConfigCreate"]
    assert errors_of(data) == [("VALIDATION", ["input", "interval"])]
    # Not SQL / writes.
    data = (await org(CREATE, {"input": config_input(project, ds, baseQuery="DELETE FROM events")}))["scanConfigCreate"]
    assert errors_of(data) == [("VALIDATION", ["input", "baseQuery"])]
    # Duplicate name.
    data = (await org(CREATE, {"input": config_input(project, ds, name=sc["name"].upper())}))["scanConfigCreate"]
    assert errors_of(data) == [("CONFLICT", ["input", "name"])]
    # Update (patch) and its validation; delete.
    data = (await org(UPDATE, {"input": {"id": sc["id"], "interval": "ONE_DAY", "enabled": False}}))["scanConfigUpdate"]
    assert data["userErrors"] == [] and data["scanConfig"]["interval"] == "ONE_DAY" and data["scanConfig"]["nextRunAt"] is None
    data = (await org(UPDATE, {"input": {"id": sc["id"], "timeColumn": "nope"}}))["scanConfigUpdate"]
    assert errors_of(data) == [("VALIDATION", ["input", "timeColumn"])]
    listed = (await org(LIST, {"p": project}))["scanConfigs"]
    assert listed["totalCount"] == 1
    # Viewers cannot change; strangers see nothing.
    viewer = await org.member("viewer")
    data = (await org(DELETE, {"input": {"id": sc["id"]}}, viewer))["scanConfigDelete"]
    assert errors_of(data) == [("FORBIDDEN", None)] or errors_of(data)[0][0] == "FORBIDDEN"
    other = await Org.create(org.gql, "Other tenant")
    data = (await other(RUN, {"input": {"scanConfigId": sc["id"]}}))["scanRun"]
    assert errors_of(data)[0][0] == "NOT_FOUND"
    r = (await other.gql.raw(JOBS, {"c": sc["id"]}, token=other.token)).json()
    assert r["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    data = (await org(DELETE, {"input": {"id": sc["id"]}}))["scanConfigDelete"]
    assert data["userErrors"] == [] and data["deletedScanConfigId"] == sc["id"]


async def test_scan_run_end_to_end_on_the_worker(org, live, warehouse_rows):  # noqa: ANN001
    """A DuckDB file with the generated events moved to the last 8 days: scanRun counts them all."""
    now = utcnow()
    shift = (now.replace(minute=0, second=0, microsecond=0) - timedelta(days=8, hours=1)) - START
    rows = [{**r, "ts": r["ts"] + shift, "ts_naive": r["ts_naive"] + shift} for r in warehouse_rows]
    create_duckdb_warehouse(live.app.state.runtime.settings.duckdb_dir / str(raw(org.org_id)) / "recent.duckdb", rows)
    ds = (await created(org, dbType="DUCKDB", host=None, databaseName="recent.duckdb"))["id"]
    project = (await org.project())["id"]
    data = (await org(CREATE, {"input": config_input(project, ds, scanLookbackHours=24 * 10, enabled=False,
                                                     jsonValuePaths=["props.page.title"],
                                                     eventGroupRules=[{"name": "funnel", "pattern": "^checkout"}])}))
    sc = data["scanConfigCreate"]["scanConfig"]
    assert sc is not None, data

    run = (await org(RUN, {"input": {"scanConfigId": sc["id"]}}))["scanRun"]
    assert run["userErrors"] == [] and run["job"]["kind"] == "scan_run" and run["job"]["status"] == "pending"
    job = await wait_job(org, run["job"]["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["result"]["rows"] == len(rows) and job["progress"] == 1.0
    assert job["result"]["shadowEvents"] >= 2
    history = (await org(JOBS, {"c": sc["id"], "first": 10}))["scanJobs"]
    assert history["totalCount"] == 1 and history["nodes"][0]["stats"]["rows"] == len(rows)
    assert history["nodes"][0]["finishedAt"] is not None and history["nodes"][0]["error"] is None

    # Replay a range (required, from < to).
    bad = (await org(REPLAY, {"input": {"scanConfigId": sc["id"], "from": now.isoformat(),
                                        "to": (now - timedelta(hours=1)).isoformat()}}))["metricsReplay"]
    assert errors_of(bad) == [("VALIDATION", ["input", "to"])]
    a, b = START + shift + timedelta(days=1), START + shift + timedelta(days=2)
    rep = (await org(REPLAY, {"input": {"scanConfigId": sc["id"], "from": a.isoformat(), "to": b.isoformat()}}))["metricsReplay"]
    job = await wait_job(org, rep["job"]["id"], timeout=60)
    assert job["status"] == "succeeded", job
    expected = sum(count_by(rows, ScanInterval.ONE_HOUR, start=a, end=b).values())
    assert job["result"]["rows"] == expected and job["result"]["chunks"] in (1, 2)

    # Preview: sample rows and discovered JSON paths; bad limit is a user error.
    prev = (await org(PREVIEW, {"input": {"projectId": project, "dataSourceId": ds, "baseQuery": BASE, "limit": 3,
                                          "timeColumn": "ts", "discoverJsonPaths": True,
                                          "jsonPaths": ["props.page.title"]}}))["scanPreview"]
    job = await wait_job(org, prev["job"]["id"], timeout=60)
    assert job["status"] == "succeeded", job
    assert job["result"]["rowCount"] == 3 and "props.page.title" in job["result"]["jsonPaths"]
    assert all("props.page.title" in r for r in job["result"]["rows"])
    bad = (await org(PREVIEW, {"input": {"projectId": project, "dataSourceId": ds, "baseQuery": BASE, "limit": 51}}))
    assert errors_of(bad["scanPreview"]) == [("VALIDATION", ["input", "limit"])]
    # A preview whose query fails: the job fails with the warehouse's message.
    prev = (await org(PREVIEW, {"input": {"projectId": project, "dataSourceId": ds,
                                          "baseQuery": "SELECT * FROM missing_table"}}))["scanPreview"]
    job = await wait_job(org, prev["job"]["id"], timeout=60)
    assert job["status"] == "failed" and "missing_table" in job["error"] and "Traceback" not in job["error"]

    # Event groups (no plan events yet: nothing changes, the job succeeds).
    grp = (await org(GROUPS, {"input": {"scanConfigId": sc["id"]}}))["eventGroupsApply"]
    job = await wait_job(org, grp["job"]["id"], timeout=60)
    assert job["status"] == "succeeded" and job["result"]["rules"] == 1

    # Cancel: a pending/running scan ends cancelled.
    run = (await org(RUN, {"input": {"scanConfigId": sc["id"]}}))["scanRun"]
    cancel = (await org(CANCEL, {"id": run["job"]["id"]}))["jobCancel"]
    job = await wait_job(org, run["job"]["id"], timeout=60)
    assert cancel["userErrors"] == [] or job["status"] == "succeeded"
    assert job["status"] in ("cancelled", "succeeded")
    counts = Counter(n["kind"] for n in (await org(JOBS, {"c": sc["id"], "first": 20}))["scanJobs"]["nodes"])
    assert counts == {"SCAN": 2, "REPLAY": 1, "EVENT_GROUPS": 1}
