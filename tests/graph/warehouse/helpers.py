"""Operations and helpers shared by the warehouse GraphQL tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.graph.plan.helpers import Org

ERRORS = "userErrors { code field message }"
DS_FIELDS = """id name dbType host port databaseName username passwordSet timeoutSeconds extraParams
  lastTestAt lastTestStatus lastTestMessage createdAt updatedAt organization { id } createdBy { id }"""
CREATE = f"""mutation($input: DataSourceCreateInput!) {{ dataSourceCreate(input: $input) {{
  dataSource {{ {DS_FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: DataSourceUpdateInput!) {{ dataSourceUpdate(input: $input) {{
  dataSource {{ {DS_FIELDS} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: DataSourceDeleteInput!) {{ dataSourceDelete(input: $input) {{
  deletedDataSourceId deletedScanConfigCount {ERRORS} }} }}"""
TEST = f"""mutation($input: DataSourceTestInput!) {{ dataSourceTest(input: $input) {{
  job {{ id kind status }} dataSource {{ id }} {ERRORS} }} }}"""
LIST = f"""query($org: ID!, $first: Int, $after: String) {{ dataSources(organizationId: $org, first: $first, after: $after) {{
  totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {DS_FIELDS} }} }} }}"""
ONE = f"query($id: ID!) {{ dataSource(id: $id) {{ {DS_FIELDS} }} }}"
JOB = "query($id: ID!) { job(id: $id) { id kind status progress message result error attempts maxAttempts } }"
SCHEMA = """query($id: ID!) { dataSource(id: $id) { schema { truncated error tables { schema name columns { name type } } } } }"""
STATS = """query($id: ID!, $hours: Int!) { dataSource(id: $id) { stats(windowHours: $hours) {
  eventsTracked volumeWindow windowHours throughput { bucket count } } } }"""


def errors_of(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def unique_name(prefix: str = "warehouse") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def create(org: Org, token: str | None = None, **input_: Any) -> dict:
    """`dataSourceCreate`'s payload (not asserted)."""
    values = {"organizationId": org.org_id, "name": unique_name(), "dbType": "POSTGRES", "host": "db.internal",
              "databaseName": "analytics", **input_}
    return (await org(CREATE, {"input": values}, token))["dataSourceCreate"]


async def created(org: Org, **input_: Any) -> dict:
    payload = await create(org, **input_)
    assert payload["userErrors"] == [], payload
    return payload["dataSource"]


async def wait_job(org: Org, job_id: str, timeout: float = 30.0) -> dict:
    """Poll `job(id:)` until it finished."""
    deadline = time.monotonic() + timeout
    while True:
        job = (await org(JOB, {"id": job_id}))["job"]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job['status']} after {timeout} s: {job}")
        await asyncio.sleep(0.05)
