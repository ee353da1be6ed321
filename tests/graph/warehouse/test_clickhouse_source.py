"""A ClickHouse data source through the API, on the live server's real worker, against ClickHouse's
HTTP interface on loopback (tests/support/clickhouse_http.py) holding the generated events moved
to the last 8 days: connection test, schema, a scan config validated by the warehouse, a scan
whose hourly series has the known counts, and a wrong password that fails the test job."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from server.db.base import utcnow
from server.domains.warehouse.models import ScanInterval
from tests.graph.warehouse.helpers import ONE, SCHEMA, TEST, UPDATE, created, wait_job
from tests.graph.warehouse.test_scan_configs import CREATE as SCAN_CONFIG_CREATE
from tests.graph.warehouse.test_scan_configs import RUN, config_input
from tests.support.clickhouse_http import ClickHouseHttp, User
from tests.support.warehouse import START, count_by

READER = User("reader-s3cret", readonly=1)
SERIES = """query($p: ID!, $from: DateTime, $to: DateTime) {
  metricSeries(projectId: $p, scope: {kind: PROJECT}, from: $from, to: $to) {
    interval total points { bucket count } scanConfig { id } } }"""


@pytest.fixture(scope="module")
def recent_rows(warehouse_rows):  # noqa: ANN001, ANN201
    now = utcnow()
    shift = (now.replace(minute=0, second=0, microsecond=0) - timedelta(days=8, hours=1)) - START
    return [{**r, "ts": r["ts"] + shift, "ts_naive": r["ts_naive"] + shift} for r in warehouse_rows]


@pytest.fixture(scope="module")
def clickhouse(recent_rows):  # noqa: ANN001, ANN201
    with ClickHouseHttp.start({"reader": READER}) as ch:
        ch.load_events("recent", recent_rows)
        yield ch


async def _test_job(org, ds_id: str) -> dict:  # noqa: ANN001
    data = (await org(TEST, {"input": {"id": ds_id}}))["dataSourceTest"]
    assert data["userErrors"] == [], data
    return await wait_job(org, data["job"]["id"])


async def test_a_clickhouse_source_tests_lists_and_scans(org, clickhouse, recent_rows):
    ds = await created(org, dbType="CLICKHOUSE", host=clickhouse.host, port=clickhouse.port, databaseName="recent",
                       username="reader", password=READER.password, timeoutSeconds=20)
    job = await _test_job(org, ds["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["message"].startswith("connected to ClickHouse 26.")

    schema = (await org(SCHEMA, {"id": ds["id"]}))["dataSource"]["schema"]
    assert schema["error"] is None and [(t["schema"], t["name"]) for t in schema["tables"]] == [("recent", "events")]
    types = {c["name"]: c["type"] for c in schema["tables"][0]["columns"]}
    assert types == {"id": "Int64", "ts": "DateTime64(6, 'UTC')", "ts_naive": "DateTime64(6)", "event_type": "String",
                     "category": "String", "action": "String", "name": "String", "country": "Nullable(String)",
                     "app_version": "String", "props": "String"}

    project = (await org.project())["id"]
    data = await org(SCAN_CONFIG_CREATE, {"input": config_input(project, ds["id"], scanLookbackHours=24 * 10,
                                                                enabled=False)})
    sc = data["scanConfigCreate"]["scanConfig"]
    assert sc is not None, data
    bad = await org(SCAN_CONFIG_CREATE, {"input": config_input(project, ds["id"], timeColumn="when")})
    assert [e["field"] for e in bad["scanConfigCreate"]["userErrors"]] == [["input", "timeColumn"]]

    run = (await org(RUN, {"input": {"scanConfigId": sc["id"]}}))["scanRun"]
    job = await wait_job(org, run["job"]["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["result"]["rows"] == len(recent_rows)

    first, last = min(r["ts"] for r in recent_rows), max(r["ts"] for r in recent_rows)
    hour = timedelta(hours=1)
    series = (await org(SERIES, {"p": project, "from": (first - hour).isoformat(),
                                 "to": (last + hour).isoformat()}))["metricSeries"]
    assert series["interval"] == "ONE_HOUR" and series["scanConfig"]["id"] == sc["id"]
    got = {int(datetime.fromisoformat(p["bucket"]).timestamp()): p["count"] for p in series["points"] if p["count"]}
    assert got == {bucket: n for (bucket,), n in count_by(recent_rows, ScanInterval.ONE_HOUR, start=first,
                                                          end=last + timedelta(seconds=1)).items()}
    assert series["total"] == len(recent_rows)


async def test_a_wrong_password_fails_the_test_job_and_says_why(org, clickhouse):
    ds = await created(org, dbType="CLICKHOUSE", host=clickhouse.host, port=clickhouse.port, databaseName="recent",
                       username="reader", password=READER.password, timeoutSeconds=10)
    assert (await _test_job(org, ds["id"]))["status"] == "succeeded"
    changed = (await org(UPDATE, {"input": {"id": ds["id"], "password": "not-the-password"}}))["dataSourceUpdate"]
    assert changed["userErrors"] == []
    ran = clickhouse.requests
    job = await _test_job(org, ds["id"])
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["error"] == ("ClickHouse: authentication failed: reader: Authentication failed: password is incorrect, "
                            "or there is no user with such name. (AUTHENTICATION_FAILED)")
    assert "not-the-password" not in job["error"] and clickhouse.requests == ran
    after = (await org(ONE, {"id": ds["id"]}))["dataSource"]
    assert after["lastTestStatus"] == "FAILURE" and after["lastTestMessage"] == job["error"]
