"""Stopping warehouse queries for a job's cancel (tests/graph/warehouse/test_scan_cancel.py runs
the whole path through jobCancel and a real worker). Here the parts, against real engines:
`jobs.watch_cancel` learns of a cancel from the job's channel at once (and from the row when the
message is lost); `Connector.stop_when` cancels the query in flight: PostgreSQL stops it on the
server, DuckDB interrupts the statement, and the connection is usable again at once (also after
a timeout, which used to leave DuckDB's statement running and its connection locked)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import asyncpg
import pytest
from sqlalchemy import update
from sqlglot import exp

from server.domains.warehouse.connectors import Connector, ConnectorError, open_connector
from server.domains.warehouse.connectors.sql import Statement, parse_base_query, select_from_base
from server.jobs import service as jobs
from server.jobs.models import Job, JobStatus
from tests.server.jobs.support import insert_job, principal_of, owner, rt  # noqa: F401  fixtures

FOREVER = {"duckdb": "SELECT count(*) AS n FROM range(100000000000000) a",
           "postgres": "SELECT pg_sleep(600) AS s"}


def statement(dialect: str) -> Statement:
    return Statement(select_from_base(parse_base_query(FOREVER[dialect], dialect), exp.Star()))


async def until(check, what: str, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def stop_while_running(conn: Connector, running, work) -> tuple[ConnectorError, float]:  # noqa: ANN001
    """Start `work(conn)` with a stop event, set it once `running()` says the query runs; the
    error it ended with and how long that took after the stop."""
    stop = asyncio.Event()
    conn.stop_when(stop)
    task = asyncio.create_task(work(conn))
    await until(lambda: _either(task, running), "the query to run")
    assert not task.done(), task
    stopped = time.monotonic()
    stop.set()
    with pytest.raises(ConnectorError) as e:
        await asyncio.wait_for(task, 10)
    return e.value, time.monotonic() - stopped


async def _either(task: asyncio.Task, running) -> bool:  # noqa: ANN001
    return task.done() or await running()


async def fetch(conn: Connector):  # noqa: ANN201
    return await conn.fetch(statement(conn.dialect))


async def stream(conn: Connector) -> None:
    async with conn.stream(statement(conn.dialect)) as chunks:
        async for _ in chunks:
            pass


@pytest.mark.parametrize("work", [fetch, stream])
async def test_a_stop_interrupts_a_duckdb_statement(duckdb_warehouse, work):  # noqa: ANN001
    spec, _ = duckdb_warehouse
    async with open_connector(spec) as conn:
        async def running() -> bool:
            return conn._cursor is not None  # a statement was handed to DuckDB

        error, took = await stop_while_running(conn, running, work)
        assert error.kind == "cancelled" and "cancelled" in error.message and took < 5
        assert conn._cursor is None and not conn._lock.locked()
        # Later operations give up at once; a fresh connection to the file works.
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(Statement(exp.select(exp.Literal.number(1))))
        assert e.value.kind == "cancelled"
    async with open_connector(spec) as conn:
        rows = await conn.fetch(Statement(select_from_base(parse_base_query("SELECT 1 AS one", "duckdb"), exp.Star())))
        assert rows.rows == [(1,)]


async def test_a_duckdb_timeout_interrupts_the_statement_and_frees_the_connection(duckdb_warehouse):  # noqa: ANN001
    spec, _ = duckdb_warehouse
    async with open_connector(dataclasses.replace(spec, timeout_seconds=1)) as conn:
        started = time.monotonic()
        with pytest.raises(ConnectorError) as e:
            await conn.fetch(statement("duckdb"))
        assert e.value.kind == "timeout" and time.monotonic() - started < 5
        # The statement stopped: the connection answers the next query at once.
        started = time.monotonic()
        rows = await conn.fetch(Statement(select_from_base(parse_base_query("SELECT count(*) AS n FROM events",
                                                                            "duckdb"), exp.Star())))
        assert rows.rows[0][0] > 0 and time.monotonic() - started < 1


@pytest.mark.parametrize("work", [fetch, stream])
async def test_a_stop_cancels_the_postgres_query_on_the_server(services, pg_warehouse, work):  # noqa: ANN001
    spec, name = pg_warehouse
    admin_url, _ = services
    tag = f"stop-{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)

    async def active() -> int:
        return await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                                    "AND state = 'active' AND query ILIKE '%pg_sleep%'", tag)

    try:
        async with open_connector(dataclasses.replace(spec, extra={**spec.extra, "application_name": tag})) as conn:
            error, took = await stop_while_running(conn, active, work)
            assert error.kind == "cancelled" and took < 5
            assert await active() == 0  # stopped on the server, not abandoned
            conn.stop_when(asyncio.Event())  # a new job's event: the same connection still works
            assert (await conn.fetch(Statement(select_from_base(parse_base_query("SELECT 1 AS one", "postgres"),
                                                                exp.Star())))).rows == [(1,)]
    finally:
        await admin.close()


async def test_a_stop_set_before_an_operation_runs_nothing(pg_warehouse):  # noqa: ANN001
    spec, _ = pg_warehouse
    async with open_connector(spec) as conn:
        stop = asyncio.Event()
        stop.set()
        conn.stop_when(stop)
        started = time.monotonic()
        with pytest.raises(ConnectorError) as e:
            await fetch(conn)
        assert e.value.kind == "cancelled" and time.monotonic() - started < 1


# --- jobs.watch_cancel ------------------------------------------------------------------------

async def running_job(rt, org_id, requested_by) -> Job:  # noqa: ANN001
    return await insert_job(rt, status=JobStatus.running, attempts=1, organization_id=org_id,
                            requested_by_id=requested_by)


async def test_watch_cancel_hears_jobcancel_at_once(rt, owner):  # noqa: ANN001
    account, org_id = owner
    job = await running_job(rt, org_id, account.user_id)
    other = await running_job(rt, org_id, account.user_id)
    async with jobs.watch_cancel(rt, job.id, poll_seconds=600) as cancelled, \
            jobs.watch_cancel(rt, other.id, poll_seconds=600) as untouched:
        await jobs.report_progress(rt, job.id, 0.5, "busy")  # an event of the job that is no cancel
        started = time.monotonic()
        row = await jobs.cancel(rt, await principal_of(rt, account), job.id)
        assert row.cancel_requested and row.status == JobStatus.running
        await asyncio.wait_for(cancelled.wait(), 5)  # from the channel: the row is not re-read for 600 s
        assert time.monotonic() - started < 5 and not untouched.is_set()


async def test_watch_cancel_reads_the_row_when_the_event_is_lost(rt, owner):  # noqa: ANN001
    account, org_id = owner
    job = await running_job(rt, org_id, account.user_id)
    async with jobs.watch_cancel(rt, job.id, poll_seconds=0.1) as cancelled:
        async with rt.db.unit_of_work() as uow:  # requested without an event (as if Redis lost it)
            await uow.session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
        await asyncio.wait_for(cancelled.wait(), 5)
    # Already requested when the watch starts: set at once.
    async with jobs.watch_cancel(rt, job.id, poll_seconds=600) as cancelled:
        await asyncio.wait_for(cancelled.wait(), 5)
