"""Data sources through the API: CRUD with validation, owners only, secrets write-only, audit,
connection tests as jobs on the live server's real worker (against a real PostgreSQL warehouse,
a real DuckDB file, and real client libraries failing against closed ports), schema
introspection and stats over the metric series."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from server.db.base import utcnow
from server.domains.plan.models import Event, EventType
from server.domains.warehouse import models as w
from tests.graph.accounts.helpers import api_key
from tests.graph.warehouse.helpers import (
    DELETE,
    LIST,
    ONE,
    SCHEMA,
    STATS,
    TEST,
    UPDATE,
    create,
    created,
    errors_of,
    wait_job,
)
from tests.support.live import LiveServer
from tests.support.plan_rows import raw
from tests.support.warehouse import create_duckdb_warehouse

AUDIT = """query($org: ID!) { auditLog(organizationId: $org, first: 50, filter: {action: "data_source."}) {
  nodes { action targetType targetId before after } } }"""


async def db_rows(org, query):  # noqa: ANN001, ANN201
    engine = create_async_engine(LiveServer.at(org.gql.base_url).database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(query)).all()
    finally:
        await engine.dispose()


async def db_insert(org, model, rows: list[dict]) -> None:  # noqa: ANN001
    engine = create_async_engine(LiveServer.at(org.gql.base_url).database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(model.__table__), rows)
    finally:
        await engine.dispose()


# --- create, read, update, delete -------------------------------------------------------------

async def test_create_defaults_write_only_password_and_audit(org):
    ds = await created(org, name="Main warehouse", password="s3cret-pass", extraParams={"sslmode": "require"})
    assert ds["dbType"] == "POSTGRES" and ds["port"] == 5432 and ds["host"] == "db.internal"
    assert ds["passwordSet"] is True and ds["username"] == "" and ds["timeoutSeconds"] is None
    assert ds["extraParams"] == {"sslmode": "require"} and ds["lastTestStatus"] is None
    assert ds["organization"]["id"] == org.org_id and ds["createdBy"]["id"] == org.user["id"]
    ch = await created(org, dbType="CLICKHOUSE", host="ch.internal", databaseName="default")
    assert ch["port"] == 8123
    # The password is stored encrypted and never returned, not even in the audit log.
    rows = await db_rows(org, select(w.DataSource.password_encrypted).where(w.DataSource.id == raw(ds["id"])))
    assert rows[0][0] and "s3cret-pass" not in rows[0][0]
    audit = (await org(AUDIT, {"org": org.org_id}))["auditLog"]["nodes"]
    mine = [e for e in audit if e["targetId"] == str(raw(ds["id"]))]
    assert [e["action"] for e in mine] == ["data_source.create"] and mine[0]["targetType"] == "DataSource"
    assert mine[0]["after"]["passwordSet"] is True and "s3cret-pass" not in json.dumps(audit)

    listed = (await org(LIST, {"org": org.org_id}))["dataSources"]
    assert listed["totalCount"] == 2
    assert [n["name"] for n in listed["nodes"]] == sorted([ds["name"], ch["name"]])
    assert (await org(ONE, {"id": ds["id"]}))["dataSource"]["name"] == "Main warehouse"


async def test_list_pages_by_name(org):
    names = [f"src {i:02d}" for i in range(5)]
    for name in reversed(names):
        await created(org, name=name)
    first = (await org(LIST, {"org": org.org_id, "first": 2}))["dataSources"]
    assert [n["name"] for n in first["nodes"]] == names[:2] and first["pageInfo"]["hasNextPage"]
    rest = (await org(LIST, {"org": org.org_id, "first": 10, "after": first["pageInfo"]["endCursor"]}))["dataSources"]
    assert [n["name"] for n in rest["nodes"]] == names[2:]


async def test_update_is_a_patch_and_forgets_the_last_test(org):
    ds = await created(org, password="first", username="reader", timeoutSeconds=10)
    await db_rows_update_last_test(org, ds["id"])
    assert (await org(ONE, {"id": ds["id"]}))["dataSource"]["lastTestStatus"] == "SUCCESS"
    # A rename keeps the test result; the other fields stay.
    data = (await org(UPDATE, {"input": {"id": ds["id"], "name": "Renamed"}}))["dataSourceUpdate"]
    assert data["userErrors"] == [] and data["dataSource"]["lastTestStatus"] == "SUCCESS"
    assert data["dataSource"]["username"] == "reader" and data["dataSource"]["timeoutSeconds"] == 10
    # A new host forgets it; null clears what may be empty.
    data = (await org(UPDATE, {"input": {"id": ds["id"], "host": "other.internal", "password": None,
                                         "timeoutSeconds": None, "username": None}}))["dataSourceUpdate"]
    d = data["dataSource"]
    assert data["userErrors"] == [] and d["host"] == "other.internal" and d["lastTestStatus"] is None
    assert d["passwordSet"] is False and d["timeoutSeconds"] is None and d["username"] == ""
    # Changing the type re-checks against it: the port falls back to the new type's default.
    data = (await org(UPDATE, {"input": {"id": ds["id"], "dbType": "CLICKHOUSE"}}))["dataSourceUpdate"]
    assert data["userErrors"] == [] and data["dataSource"]["port"] == 8123
    data = (await org(UPDATE, {"input": {"id": ds["id"], "dbType": "DUCKDB", "extraParams": {"sslmode": "require"}}}))
    assert errors_of(data["dataSourceUpdate"]) == [("VALIDATION", ["input", "extraParams", "sslmode"])]
    data = (await org(UPDATE, {"input": {"id": ds["id"], "dbType": "DUCKDB"}}))["dataSourceUpdate"]
    assert data["userErrors"] == [] and data["dataSource"]["host"] == "" and data["dataSource"]["port"] is None
    audit = (await org(AUDIT, {"org": org.org_id}))["auditLog"]["nodes"]
    updates = [e for e in audit if e["action"] == "data_source.update" and e["targetId"] == str(raw(ds["id"]))]
    assert len(updates) >= 3
    assert any(e["after"].get("passwordChanged") for e in updates)


async def db_rows_update_last_test(org, gid: str) -> None:  # noqa: ANN001
    engine = create_async_engine(LiveServer.at(org.gql.base_url).database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(w.DataSource.__table__.update().where(w.DataSource.id == raw(gid)).values(
                last_test_at=utcnow(), last_test_status=w.ConnectionTestStatus.SUCCESS, last_test_message="ok"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("input_, field", [
    ({"name": ""}, "name"), ({"name": "x" * 256}, "name"),
    ({"host": ""}, "host"), ({"host": "h" * 501}, "host"), ({"host": "db internal"}, "host"),
    ({"host": "https://db.internal"}, "host"),
    ({"port": 0}, "port"), ({"port": 65536}, "port"),
    ({"databaseName": ""}, "databaseName"), ({"databaseName": "d" * 256}, "databaseName"),
    ({"username": "u" * 256}, "username"),
    ({"timeoutSeconds": 0}, "timeoutSeconds"), ({"timeoutSeconds": 3601}, "timeoutSeconds"),
    ({"extraParams": {"sslmode": "sometimes"}}, "extraParams"),
    ({"extraParams": {"options": "-c statement_timeout=0"}}, "extraParams"),
    ({"extraParams": [1, 2]}, "extraParams"),
    ({"dbType": "DUCKDB", "host": "", "databaseName": "../other-org/file.duckdb"}, "databaseName"),
    ({"dbType": "DUCKDB", "host": "", "databaseName": "/etc/passwd"}, "databaseName"),
    ({"dbType": "DUCKDB", "host": "db.internal", "databaseName": "events.duckdb"}, "host"),
    ({"dbType": "DUCKDB", "host": "", "databaseName": "events.duckdb", "port": 5432}, "port"),
    ({"dbType": "BIGQUERY", "host": "", "databaseName": "my-project", "password": "not a key"}, "password"),
    ({"dbType": "BIGQUERY", "host": "", "databaseName": "my project"}, "databaseName"),
    ({"dbType": "CLICKHOUSE", "extraParams": {"secure": "yes"}}, "extraParams"),
])
async def test_bad_input_is_a_validation_error_and_changes_nothing(org, input_, field):
    payload = await create(org, **input_)
    assert payload["dataSource"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["VALIDATION"], payload
    assert payload["userErrors"][0]["field"][:2] == ["input", field]
    assert (await org(LIST, {"org": org.org_id}))["dataSources"]["totalCount"] == 0


async def test_every_bad_field_is_reported_at_once(org):
    payload = await create(org, name="", host="", port=0, timeoutSeconds=0)
    assert sorted(e["field"][1] for e in payload["userErrors"]) == ["host", "name", "port", "timeoutSeconds"]


async def test_names_are_unique_ignoring_case(org):
    await created(org, name="Events DB")
    payload = await create(org, name="events db")
    assert errors_of(payload) == [("CONFLICT", ["input", "name"])]
    other = await created(org, name="Other")
    data = (await org(UPDATE, {"input": {"id": other["id"], "name": "EVENTS DB"}}))["dataSourceUpdate"]
    assert errors_of(data) == [("CONFLICT", ["input", "name"])]
    data = (await org(UPDATE, {"input": {"id": other["id"], "name": None}}))["dataSourceUpdate"]
    assert errors_of(data) == [("VALIDATION", ["input", "name"])]


async def test_delete_refuses_a_data_source_in_use_unless_cascade(org):
    ds = await created(org)
    project = await org.project()
    config_id = uuid.uuid4()
    await db_insert(org, w.ScanConfig, [{"id": config_id, "organization_id": raw(org.org_id),
                                         "project_id": raw(project["id"]), "data_source_id": raw(ds["id"]),
                                         "name": "nightly", "base_query": "SELECT * FROM events"}])
    data = (await org(DELETE, {"input": {"id": ds["id"]}}))["dataSourceDelete"]
    assert errors_of(data) == [("CONFLICT", ["input", "id"])] and "`nightly`" in data["userErrors"][0]["message"]
    data = (await org(DELETE, {"input": {"id": ds["id"], "cascade": True}}))["dataSourceDelete"]
    assert data["userErrors"] == [] and data["deletedDataSourceId"] == ds["id"] and data["deletedScanConfigCount"] == 1
    assert (await org(ONE, {"id": ds["id"]}))["dataSource"] is None
    assert await db_rows(org, select(w.ScanConfig.id).where(w.ScanConfig.id == config_id)) == []
    data = (await org(DELETE, {"input": {"id": ds["id"]}}))["dataSourceDelete"]
    assert errors_of(data) == [("NOT_FOUND", ["input", "id"])]
    audit = (await org(AUDIT, {"org": org.org_id}))["auditLog"]["nodes"]
    deleted = [e for e in audit if e["action"] == "data_source.delete"]
    assert deleted and deleted[0]["before"]["scanConfigs"] == ["nightly"]


# --- who may do what ----------------------------------------------------------------------------

async def test_owners_manage_members_read_strangers_see_nothing(org, gql):
    from tests.graph.plan.helpers import Org

    ds = await created(org)
    editor, viewer = await org.member("editor"), await org.member("viewer")
    for token in (editor, viewer):
        assert errors_of(await create(org, token)) == [("FORBIDDEN", None)]
        data = (await org(UPDATE, {"input": {"id": ds["id"], "name": "x"}}, token))["dataSourceUpdate"]
        assert errors_of(data) == [("FORBIDDEN", None)]
        assert errors_of((await org(DELETE, {"input": {"id": ds["id"]}}, token))["dataSourceDelete"]) == [("FORBIDDEN", None)]
        assert errors_of((await org(TEST, {"input": {"id": ds["id"]}}, token))["dataSourceTest"]) == [("FORBIDDEN", None)]
        listed = (await org(LIST, {"org": org.org_id}, token))["dataSources"]
        assert [n["id"] for n in listed["nodes"]] == [ds["id"]] and listed["nodes"][0]["passwordSet"] is False

    stranger = await Org.create(gql, "Stranger Co")
    assert (await stranger(ONE, {"id": ds["id"]}))["dataSource"] is None
    payload = await create(org, stranger.token)
    assert errors_of(payload) == [("NOT_FOUND", ["input", "organizationId"])]
    for mutation, name in ((UPDATE, "dataSourceUpdate"), (DELETE, "dataSourceDelete"), (TEST, "dataSourceTest")):
        extra = {"name": "x"} if mutation is UPDATE else {}
        data = (await stranger(mutation, {"input": {"id": ds["id"], **extra}}))[name]
        assert errors_of(data) == [("NOT_FOUND", ["input", "id"])]
    r = await gql.raw(LIST, {"org": org.org_id}, token=stranger.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # An API key bound to a project sees no data source (organization-wide); a read key changes nothing.
    project = await org.project()
    bound, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=project["id"], scope="write")
    assert (await org(ONE, {"id": ds["id"]}, bound))["dataSource"] is None
    assert (await org(LIST, {"org": org.org_id}, bound))["dataSources"]["totalCount"] == 0
    read_key, _ = await api_key(gql, org.token, organizationId=org.org_id, scope="read")
    assert (await org(ONE, {"id": ds["id"]}, read_key))["dataSource"]["id"] == ds["id"]
    data = (await org(UPDATE, {"input": {"id": ds["id"], "name": "y"}}, read_key))["dataSourceUpdate"]
    assert errors_of(data) == [("FORBIDDEN", None)]


async def test_ids_of_another_type_are_validation_errors(org):
    data = (await org(UPDATE, {"input": {"id": org.org_id, "name": "x"}}))["dataSourceUpdate"]
    assert errors_of(data) == [("VALIDATION", ["input", "id"])]
    payload = await create(org, organizationId="not-an-id")
    assert errors_of(payload) == [("VALIDATION", ["input", "organizationId"])]


# --- connection tests: jobs on the real worker ----------------------------------------------------

async def _test(org, ds_id: str) -> dict:  # noqa: ANN001
    data = (await org(TEST, {"input": {"id": ds_id}}))["dataSourceTest"]
    assert data["userErrors"] == [] and data["job"]["kind"] == "data_source_test" and data["dataSource"]["id"] == ds_id
    return await wait_job(org, data["job"]["id"])


async def test_connection_test_against_a_real_postgres_warehouse(org, pg_warehouse):
    spec, name = pg_warehouse
    ds = await created(org, host=spec.host, port=spec.port, databaseName=name, username=spec.username,
                       extraParams={"sslmode": "disable"}, timeoutSeconds=10)
    job = await _test(org, ds["id"])
    assert job["status"] == "succeeded" and job["result"]["success"] is True, job
    assert job["result"]["message"].startswith("connected to PostgreSQL ")
    after = (await org(ONE, {"id": ds["id"]}))["dataSource"]
    assert after["lastTestStatus"] == "SUCCESS" and after["lastTestMessage"] == job["result"]["message"]
    assert after["lastTestAt"] is not None

    # A database that does not exist: the job fails with the reason, recorded on the data source.
    data = (await org(UPDATE, {"input": {"id": ds["id"], "databaseName": "no_such_db_here"}}))["dataSourceUpdate"]
    assert data["dataSource"]["lastTestStatus"] is None
    job = await _test(org, ds["id"])
    assert job["status"] == "failed" and job["attempts"] == 1 and job["maxAttempts"] == 1
    assert "no_such_db_here" in job["error"] and "Traceback" not in job["error"]
    after = (await org(ONE, {"id": ds["id"]}))["dataSource"]
    assert after["lastTestStatus"] == "FAILURE" and after["lastTestMessage"] == job["error"]


async def test_connection_test_of_a_duckdb_file(org, live, warehouse_rows):
    org_uuid = raw(org.org_id)
    create_duckdb_warehouse(live.app.state.runtime.settings.duckdb_dir / str(org_uuid) / "events.duckdb",
                            warehouse_rows[:50])
    ds = await created(org, dbType="DUCKDB", host=None, databaseName="events.duckdb")
    assert ds["host"] == "" and ds["port"] is None
    job = await _test(org, ds["id"])
    assert job["status"] == "succeeded" and job["result"]["message"].startswith("connected to DuckDB v"), job
    schema = (await org(SCHEMA, {"id": ds["id"]}))["dataSource"]["schema"]
    assert schema["error"] is None and [t["name"] for t in schema["tables"]] == ["events"]
    missing = await created(org, dbType="DUCKDB", host=None, databaseName="nowhere/missing.duckdb")
    job = await _test(org, missing["id"])
    assert job["status"] == "failed" and "no database file" in job["error"]


@pytest.mark.parametrize("db_type, extra", [("CLICKHOUSE", {}), ("POSTGRES", {"port": 1})])
async def test_connection_test_failures_with_the_real_clients(org, db_type, extra):
    """Nothing listens on these ports: the real client library fails to connect, and the job says so."""
    ds = await created(org, dbType=db_type, host="127.0.0.1", databaseName="default", timeoutSeconds=5,
                       **({"port": 1} if db_type == "CLICKHOUSE" else extra))
    job = await _test(org, ds["id"])
    assert job["status"] == "failed" and job["error"], job
    label = {"CLICKHOUSE": "ClickHouse", "POSTGRES": "PostgreSQL"}[db_type]
    assert job["error"].startswith(f"{label}: ") and "Traceback" not in job["error"]
    assert (await org(ONE, {"id": ds["id"]}))["dataSource"]["lastTestStatus"] == "FAILURE"


async def test_bigquery_service_account_key_is_used_and_its_failure_reported(org):
    """A syntactically valid key whose token endpoint is a closed local port: google-auth tries to
    sign a token request with it and fails; nothing reaches Google."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key = {"type": "service_account", "project_id": "my-project", "private_key_id": "abc", "private_key": pem,
           "client_email": "scanner@my-project.iam.gserviceaccount.com", "client_id": "1",
           "token_uri": "http://127.0.0.1:1/token"}
    ds = await created(org, dbType="BIGQUERY", host="http://127.0.0.1:1", databaseName="my-project",
                       password=json.dumps(key), timeoutSeconds=5, extraParams={"location": "EU"})
    assert ds["passwordSet"] is True and ds["port"] is None
    job = await _test(org, ds["id"])
    assert job["status"] == "failed" and job["error"].startswith("BigQuery: "), job


# --- schema ----------------------------------------------------------------------------------------

async def test_schema_lists_tables_for_editors_and_says_why_it_cannot(org, gql, pg_warehouse):
    spec, name = pg_warehouse
    ds = await created(org, host=spec.host, port=spec.port, databaseName=name, username=spec.username,
                       extraParams={"sslmode": "disable"})
    editor, viewer = await org.member("editor"), await org.member("viewer")
    schema = (await org(SCHEMA, {"id": ds["id"]}, editor))["dataSource"]["schema"]
    assert schema["error"] is None and schema["truncated"] is False
    events = next(t for t in schema["tables"] if t["name"] == "events")
    assert events["schema"] == "public"
    types = {c["name"]: c["type"] for c in events["columns"]}
    assert types["ts"] == "timestamp with time zone" and types["props"] == "jsonb" and types["id"] == "bigint"
    r = await gql.raw(SCHEMA, {"id": ds["id"]}, token=viewer)
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    broken = await created(org, host="127.0.0.1", port=1, databaseName="x", timeoutSeconds=3)
    schema = (await org(SCHEMA, {"id": broken["id"]}))["dataSource"]["schema"]
    assert schema["tables"] == [] and schema["error"].startswith("PostgreSQL: ")


# --- stats over the metric series ----------------------------------------------------------------

async def test_stats_count_the_series_of_its_scan_configs(org, gql):
    ds = await created(org)
    other = await created(org)
    project = await org.project()
    org_id, project_id = raw(org.org_id), raw(project["id"])
    hourly, daily, foreign = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await db_insert(org, w.ScanConfig, [
        {"id": hourly, "organization_id": org_id, "project_id": project_id, "data_source_id": raw(ds["id"]),
         "name": "hourly", "base_query": "SELECT 1", "interval": w.ScanInterval.ONE_HOUR},
        {"id": daily, "organization_id": org_id, "project_id": project_id, "data_source_id": raw(ds["id"]),
         "name": "daily", "base_query": "SELECT 1", "interval": w.ScanInterval.ONE_DAY},
        {"id": foreign, "organization_id": org_id, "project_id": project_id, "data_source_id": raw(other["id"]),
         "name": "other", "base_query": "SELECT 1", "interval": w.ScanInterval.ONE_HOUR}])
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    e1, e2, e3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    base = {"organization_id": org_id, "project_id": project_id}
    et = uuid.uuid4()  # eventsTracked counts plan events: make e1..e3 events of the plan
    await db_insert(org, EventType, [{**base, "id": et, "name": "page", "display_name": "Page"}])
    await db_insert(org, Event, [{**base, "id": e, "event_type_id": et, "name": f"e{i}"}
                                 for i, e in enumerate((e1, e2, e3))])

    def bucket(config, kind, scope, hours_ago, count, interval=w.ScanInterval.ONE_HOUR):  # noqa: ANN001, ANN202
        return {**base, "scan_config_id": config, "scope_kind": kind, "scope_id": scope, "interval": interval,
                "bucket_start": now - timedelta(hours=hours_ago), "count": count}

    P, E = w.MetricScope.PROJECT, w.MetricScope.EVENT
    await db_insert(org, w.MetricBucket, [
        bucket(hourly, P, project_id, 0, 10), bucket(hourly, P, project_id, 5, 20), bucket(hourly, P, project_id, 47, 30),
        bucket(hourly, P, project_id, 48, 1000),                 # just outside a 48 h window
        bucket(hourly, P, project_id, 3, 500, w.ScanInterval.FIFTEEN_MINUTES),  # an old interval of the config
        bucket(hourly, E, e1, 0, 6), bucket(hourly, E, e2, 5, 4), bucket(hourly, E, e3, 100, 9),
        bucket(daily, P, project_id, 2, 7, w.ScanInterval.ONE_DAY),
        bucket(foreign, P, project_id, 1, 99999), bucket(foreign, E, uuid.uuid4(), 1, 5)])
    stats = (await org(STATS, {"id": ds["id"], "hours": 48}))["dataSource"]["stats"]
    assert stats["windowHours"] == 48 and stats["volumeWindow"] == 10 + 20 + 30 + 7
    assert stats["eventsTracked"] == 2
    points = stats["throughput"]
    assert len(points) == 48 and sum(p["count"] for p in points) == stats["volumeWindow"]
    assert points[-1]["count"] == 10 and points[0]["count"] == 30
    assert [p["bucket"] for p in points] == sorted(p["bucket"] for p in points)
    small = (await org(STATS, {"id": ds["id"], "hours": 1}))["dataSource"]["stats"]
    assert small["volumeWindow"] == 10 and small["eventsTracked"] == 1 and len(small["throughput"]) == 1
    for hours in (0, 721):
        r = await gql.raw(STATS, {"id": ds["id"], "hours": hours}, token=org.token)
        assert r.json()["errors"][0]["extensions"]["code"] == "VALIDATION"
    # Many data sources' stats in one query: one batch per window, not one query per data source.
    many = """query($org: ID!) { dataSources(organizationId: $org) { nodes { name stats { volumeWindow } } } }"""
    nodes = (await org(many, {"org": org.org_id}))["dataSources"]["nodes"]
    assert {n["name"]: n["stats"]["volumeWindow"] for n in nodes} == {ds["name"]: 67, other["name"]: 99999}


async def test_a_live_server_setting_refuses_absolute_duckdb_paths_unless_allowed(start_server, tmp_path,
                                                                                 warehouse_rows):
    from tests.graph.plan.helpers import Org
    from tests.support.client import GQL

    path = create_duckdb_warehouse(tmp_path / "anywhere" / "events.duckdb", warehouse_rows[:10])
    server = start_server(worker_threads=0, warehouse_duckdb_absolute_paths=True)
    gql = GQL(server.url)
    try:
        org = await Org.create(gql, "Single tenant")
        ds = await created(org, dbType="DUCKDB", host=None, databaseName=str(path))
        assert ds["databaseName"] == str(path)
        schema = (await org(SCHEMA, {"id": ds["id"]}))["dataSource"]["schema"]
        assert schema["error"] is None and [t["name"] for t in schema["tables"]] == ["events"]
    finally:
        await gql.aclose()


def test_spec_keeps_the_password_out_of_its_repr():
    from server.domains.warehouse.connectors import ConnectionSpec

    spec = ConnectionSpec(db_type=w.DataSourceType.POSTGRES, database="d", password="hunter2")
    assert "hunter2" not in repr(spec) and "hunter2" not in repr(dataclasses.replace(spec))
