"""Scan configs run at their interval, end to end: a config created through GraphQL on a DuckDB
file of generated events with known counts is made due, the real scheduler tick turns it into a
scan job, the live server's real Dramatiq worker runs it, and GraphQL shows the finished job in
`scanJobs` and the exact counts in `metricSeries`. The next tick does not run it again before
its interval; once the interval has passed it runs again, from its watermark (same counts); a
disabled config is never run, even with a due `next_run_at`."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from server.db.base import utcnow
from server.domains.warehouse.models import ScanConfig, ScanInterval
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import ERRORS, created
from tests.support.plan_rows import raw
from tests.support.warehouse import START, count_by, create_duckdb_warehouse, warehouse_rows  # noqa: F401  fixture
from workers import scheduler

SC_FIELDS = "id enabled interval nextRunAt scannedUntil"
CREATE = f"""mutation($input: ScanConfigCreateInput!) {{ scanConfigCreate(input: $input) {{
  scanConfig {{ {SC_FIELDS} }} {ERRORS} }} }}"""
CONFIG = f"query($p: ID!) {{ scanConfigs(projectId: $p) {{ nodes {{ {SC_FIELDS} name }} }} }}"
JOBS = """query($c: ID!) { scanJobs(scanConfigId: $c, first: 10) { totalCount nodes {
  id kind error stats rangeFrom rangeTo finishedAt job { status error result } } } }"""
ET_CREATE = f"""mutation($input: EventTypeCreateInput!) {{ eventTypeCreate(input: $input) {{
  eventType {{ id }} {ERRORS} }} }}"""
SERIES = """query($p: ID!, $scope: MetricScopeInput!, $from: DateTime, $to: DateTime, $cfg: ID) {
  metricSeries(projectId: $p, scope: $scope, from: $from, to: $to, scanConfigId: $cfg) {
    interval total points { bucket count } scanConfig { id } } }"""


@pytest.fixture
async def org(gql):  # noqa: ANN001, ANN201
    return await Org.create(gql, "Scheduled scans")


async def scan_jobs(org: Org, config_id: str) -> dict:
    return (await org(JOBS, {"c": config_id}))["scanJobs"]


async def wait_finished(org: Org, config_id: str, count: int, timeout: float = 120) -> list[dict]:
    """The config's scan jobs once `count` of them exist and all have finished (newest first)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = await scan_jobs(org, config_id)
        nodes = jobs["nodes"]
        if jobs["totalCount"] == count and all(n["job"]["status"] in ("succeeded", "failed", "cancelled")
                                                for n in nodes):
            return sorted(nodes, key=lambda n: n["finishedAt"], reverse=True)
        assert time.monotonic() < deadline, f"scan jobs of {config_id} not finished: {jobs}"
        await asyncio.sleep(0.05)


async def set_next_run(rt, config_id: str, at: datetime) -> None:  # noqa: ANN001
    """What the passing of time would do: the config's next run falls due."""
    async with rt.db.unit_of_work() as uow:
        await uow.session.execute(update(ScanConfig).where(ScanConfig.id == raw(config_id)).values(next_run_at=at))


async def series(org: Org, project: str, scope: dict, config_id: str, frm: datetime, to: datetime) -> dict:
    return (await org(SERIES, {"p": project, "scope": scope, "from": frm.isoformat(), "to": to.isoformat(),
                               "cfg": config_id}))["metricSeries"]


def points_of(s: dict) -> dict[int, int]:
    return {int(datetime.fromisoformat(p["bucket"]).timestamp()): int(p["count"]) for p in s["points"] if p["count"]}


async def test_the_scheduler_runs_a_due_config_on_the_worker_once_per_interval(org, rt, live, warehouse_rows):  # noqa: ANN001
    # The generated events, moved to end an hour before the current hour (all inside the lookback).
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    shift = hour - timedelta(days=8, hours=1) - START
    rows = [{**r, "ts": r["ts"] + shift, "ts_naive": r["ts_naive"] + shift} for r in warehouse_rows]
    first, last = rows[0]["ts"], rows[-1]["ts"] + timedelta(microseconds=1)
    create_duckdb_warehouse(live.runtime.settings.duckdb_dir / str(raw(org.org_id)) / "scheduled.duckdb", rows)
    ds = (await created(org, dbType="DUCKDB", host=None, databaseName="scheduled.duckdb"))["id"]
    project = (await org.project())["id"]
    types = {}
    for name in ("page", "checkout"):
        data = (await org(ET_CREATE, {"input": {"projectId": project, "name": name, "displayName": name}}))
        assert data["eventTypeCreate"]["userErrors"] == [], data
        types[name] = data["eventTypeCreate"]["eventType"]["id"]

    def config_input(**extra) -> dict:  # noqa: ANN003
        return {"projectId": project, "dataSourceId": ds, "name": f"scan {uuid.uuid4().hex[:6]}",
                "baseQuery": "SELECT * FROM events", "timeColumn": "ts", "eventTypeColumn": "event_type",
                "eventNameFormat": "{category}.{action}", "interval": "ONE_HOUR", "scanLookbackHours": 24 * 10,
                **extra}

    before = utcnow()
    data = (await org(CREATE, {"input": config_input()}))["scanConfigCreate"]
    assert data["userErrors"] == [], data
    config = data["scanConfig"]
    # Created enabled: due at once.
    assert config["enabled"] and before <= datetime.fromisoformat(config["nextRunAt"]) <= utcnow()
    data = (await org(CREATE, {"input": config_input(enabled=False)}))["scanConfigCreate"]
    disabled = data["scanConfig"]
    assert disabled["nextRunAt"] is None
    await set_next_run(rt, disabled["id"], utcnow() - timedelta(hours=2))  # due, were it enabled

    await scheduler.tick(rt)
    (job,) = await wait_finished(org, config["id"], 1)
    assert job["kind"] == "SCAN" and job["error"] is None and job["job"]["status"] == "succeeded", job
    assert job["stats"]["rows"] == len(rows) and job["job"]["result"]["rows"] == len(rows)
    assert datetime.fromisoformat(job["rangeFrom"]) <= first and datetime.fromisoformat(job["rangeTo"]) >= last

    # The series hold the known counts: per hour for the project and for each event type.
    frm, to = hour - timedelta(days=10), hour + timedelta(hours=1)
    total = await series(org, project, {"kind": "PROJECT"}, config["id"], frm, to)
    assert total["scanConfig"]["id"] == config["id"] and total["interval"] == "ONE_HOUR"
    expected = {bucket: n for (bucket,), n in count_by(rows, ScanInterval.ONE_HOUR, start=first, end=last).items()}
    assert int(total["total"]) == len(rows) and points_of(total) == expected
    per_type = count_by(rows, ScanInterval.ONE_HOUR, "event_type", start=first, end=last)
    for name, type_id in types.items():
        s = await series(org, project, {"kind": "EVENT_TYPE", "id": type_id}, config["id"], frm, to)
        assert points_of(s) == {b: n for (b, et), n in per_type.items() if et == name}

    # Advanced by one interval from when it fell due: the next ticks do not run it again.
    (listed,) = [c for c in (await org(CONFIG, {"p": project}))["scanConfigs"]["nodes"] if c["id"] == config["id"]]
    assert datetime.fromisoformat(listed["nextRunAt"]) == datetime.fromisoformat(config["nextRunAt"]) + timedelta(hours=1)
    watermark = datetime.fromisoformat(listed["scannedUntil"])
    assert watermark in (hour, hour + timedelta(hours=1))
    for _ in range(3):
        await scheduler.tick(rt)  # a job it created would be listed at once (same transaction)
    assert (await scan_jobs(org, config["id"]))["totalCount"] == 1
    assert (await scan_jobs(org, disabled["id"]))["totalCount"] == 0

    # Its interval has passed: the next tick runs it again, from the watermark; the counts stay.
    await set_next_run(rt, config["id"], utcnow() - timedelta(seconds=1))
    await scheduler.tick(rt)
    second, _ = await wait_finished(org, config["id"], 2)
    assert second["job"]["status"] == "succeeded" and second["error"] is None, second
    assert datetime.fromisoformat(second["rangeFrom"]) == watermark and second["stats"]["rows"] == 0
    again = await series(org, project, {"kind": "PROJECT"}, config["id"], frm, to)
    assert int(again["total"]) == len(rows) and points_of(again) == expected
    # The disabled config never ran.
    assert (await scan_jobs(org, disabled["id"]))["totalCount"] == 0
