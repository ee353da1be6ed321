"""`jobCancel` stops a scan mid-way, end to end: a `metricsReplay` of eight daily chunks over a real
PostgreSQL warehouse, run by the live server's real Dramatiq worker, is cancelled while the
warehouse query of its fourth chunk runs. The base query's view takes a shared advisory lock per
day of rows and the test holds every day's lock exclusively: it lets the chunks through one by
one (whichever day the scan waits for), three of them, then cancels while the fourth waits. That
query cannot finish on its own, so the job can only end CANCELLED in time if the cancel
interrupts it in PostgreSQL.
Then: the scan job history says cancelled, the three chunks written before stay exact, nothing
after them was written, no query is left running, and a replay afterwards gives exactly the
known counts (re-running chunks is idempotent)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest

from server.domains.warehouse.models import ScanInterval
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import ERRORS, JOB, created, wait_job
from tests.support.warehouse import DAYS, END, START, count_by, create_pg_warehouse, drop_pg_warehouse, pg_spec

GATE_KEY = 4242
OPEN_CHUNKS = 3  # chunks (days) let through before the cancel
GATE_DDL = f"""
CREATE FUNCTION gate(at timestamptz) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 100000 AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared({GATE_KEY}, (extract(epoch FROM at)::bigint / 86400)::int);
  RETURN true;
END $$;
CREATE VIEW gated_events AS SELECT * FROM events WHERE gate(ts);"""
SC_CREATE = f"""mutation($input: ScanConfigCreateInput!) {{ scanConfigCreate(input: $input) {{
  scanConfig {{ id }} {ERRORS} }} }}"""
REPLAY = f"""mutation($input: MetricsReplayInput!) {{ metricsReplay(input: $input) {{
  job {{ id status }} scanJob {{ id }} {ERRORS} }} }}"""
CANCEL = f"mutation($id: ID!) {{ jobCancel(input: {{id: $id}}) {{ job {{ id status }} {ERRORS} }} }}"
JOBS = """query($c: ID!) { scanJobs(scanConfigId: $c, first: 10) { totalCount nodes {
  id kind error stats finishedAt job { id status } } } }"""
SERIES = """query($p: ID!, $cfg: ID, $from: DateTime, $to: DateTime) {
  metricSeries(projectId: $p, scope: {kind: PROJECT}, from: $from, to: $to, scanConfigId: $cfg) {
    total points { bucket count } } }"""


def day_key(day: int) -> int:
    return int((START + timedelta(days=day)).timestamp()) // 86400


@pytest.fixture
async def gated_warehouse(services, warehouse_rows):  # noqa: ANN001, ANN201
    """A warehouse database of its own with `gated_events`, and a connection to it holding the
    lock of every day: (spec, admin connection)."""
    admin_url, _ = services
    name, url = await create_pg_warehouse(admin_url, warehouse_rows)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(GATE_DDL)
        for day in range(DAYS):
            await conn.execute("SELECT pg_advisory_lock($1, $2)", GATE_KEY, day_key(day))
        yield pg_spec(admin_url, name), conn
    finally:
        await conn.close()
        await drop_pg_warehouse(admin_url, name)


async def waiting_day(conn: asyncpg.Connection) -> int | None:
    """The day whose lock a query of the scan waits for (the chunk it reached), if any."""
    key = await conn.fetchval(
        """SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""", GATE_KEY)
    return None if key is None else [day_key(d) for d in range(DAYS)].index(key)


async def scan_queries(conn: asyncpg.Connection) -> int:
    """Queries running in the warehouse other than ours."""
    return await conn.fetchval("""SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                                  AND pid <> pg_backend_pid() AND state <> 'idle'""")


async def until(check, what: str, state=None, timeout: float = 30.0):  # noqa: ANN001, ANN201
    """Poll `check` until it holds; on timeout, fail showing `state()` (e.g. the job)."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {state and await state()}")
        await asyncio.sleep(0.05)
    return value


async def _not(waiting, day: int) -> bool:  # noqa: ANN001
    return await waiting != day


def points_of(series: dict) -> dict[int, int]:
    return {int(datetime.fromisoformat(p["bucket"]).timestamp()): int(p["count"])
            for p in series["points"] if int(p["count"])}


def hourly(rows: list[dict], days: list[int]) -> dict[int, int]:
    out = {}
    for day in days:
        a = START + timedelta(days=day)
        out.update({b: n for (b,), n in count_by(rows, ScanInterval.ONE_HOUR, start=a, end=a + timedelta(days=1)).items()})
    return out


async def test_job_cancel_interrupts_a_replay_mid_chunk(org: Org, gated_warehouse, warehouse_rows):  # noqa: ANN001
    spec, locks = gated_warehouse
    # A statement timeout far beyond the wait below: only the cancel can end the blocked query in time.
    ds = (await created(org, host=spec.host, port=spec.port, databaseName=spec.database, username=spec.username,
                        extraParams={"sslmode": "disable"}, timeoutSeconds=300))["id"]
    project = (await org.project())["id"]
    data = (await org(SC_CREATE, {"input": {
        "projectId": project, "dataSourceId": ds, "name": f"gated {uuid.uuid4().hex[:6]}",
        "baseQuery": "SELECT * FROM gated_events", "timeColumn": "ts", "eventTypeColumn": "event_type",
        "eventNameFormat": "{category}.{action}", "metricBreakdownColumns": ["country"], "interval": "ONE_HOUR",
        "replayChunkInterval": "ONE_DAY", "enabled": False}}))["scanConfigCreate"]
    assert data["userErrors"] == [], data
    config = data["scanConfig"]["id"]
    replay_range = {"scanConfigId": config, "from": START.isoformat(), "to": END.isoformat()}

    rep = (await org(REPLAY, {"input": replay_range}))["metricsReplay"]
    assert rep["userErrors"] == [], rep
    job_id = rep["job"]["id"]
    # Let three chunks through, one at a time; the fourth then waits in the warehouse.
    state = lambda: org(JOB, {"id": job_id})  # noqa: E731
    opened: list[int] = []
    while True:
        day = await until(lambda: waiting_day(locks), f"the replay to wait for chunk {len(opened) + 1}", state)
        assert day not in opened
        if len(opened) == OPEN_CHUNKS:
            break
        await locks.execute("SELECT pg_advisory_unlock($1, $2)", GATE_KEY, day_key(day))
        opened.append(day)
        await until(lambda: _not(waiting_day(locks), day), f"chunk {len(opened)} to go on", state)
    job = (await org(JOB, {"id": job_id}))["job"]
    assert job["status"] == "running" and job["message"].startswith(f"chunk {OPEN_CHUNKS + 1} of {DAYS}:"), job

    cancel = (await org(CANCEL, {"id": job_id}))["jobCancel"]
    assert cancel["userErrors"] == [] and cancel["job"]["status"] == "running", cancel
    job = await wait_job(org, job_id, timeout=20)  # the locks are still held: only an interrupt gets here
    assert job["status"] == "cancelled", job
    # The query was stopped in PostgreSQL, not left behind: nothing of the scan runs or waits there.
    assert await waiting_day(locks) is None and await scan_queries(locks) == 0
    again = (await org(CANCEL, {"id": job_id}))["jobCancel"]
    assert [e["code"] for e in again["userErrors"]] == ["CONFLICT"]

    # History: the replay is recorded as cancelled.
    (node,) = (await org(JOBS, {"c": config}))["scanJobs"]["nodes"]
    assert node["kind"] == "REPLAY" and node["error"] == "cancelled" and node["finishedAt"] is not None
    assert node["job"]["status"] == "cancelled"

    # The chunks written before the cancel hold exactly their counts; nothing after them was written.
    variables = {"p": project, "cfg": config, "from": START.isoformat(), "to": END.isoformat()}
    written = (await org(SERIES, variables))["metricSeries"]
    assert points_of(written) == hourly(warehouse_rows, opened) and len(opened) == OPEN_CHUNKS
    # Even with the warehouse free again, no abandoned query of the job writes a later chunk.
    await locks.execute("SELECT pg_advisory_unlock_all()")
    assert await scan_queries(locks) == 0
    assert points_of((await org(SERIES, variables))["metricSeries"]) == points_of(written)

    # A replay afterwards: exactly the known counts (the re-run chunks are replaced, not added to).
    rep = (await org(REPLAY, {"input": replay_range}))["metricsReplay"]
    job = await wait_job(org, rep["job"]["id"], timeout=120)
    assert job["status"] == "succeeded" and job["result"]["chunks"] == DAYS, job
    assert job["result"]["rows"] == len(warehouse_rows)
    full = (await org(SERIES, variables))["metricSeries"]
    assert int(full["total"]) == len(warehouse_rows) and points_of(full) == hourly(warehouse_rows, list(range(DAYS)))
