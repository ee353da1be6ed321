"""`projectCreateDemo` through the API also returns its demo warehouse: the DUCKDB data source (the
organization's, listed by `dataSources`), the scan config `demo` and the first scan's job (null
here: the tests' settings queue no first scan, see tests/conftest.py)."""

from __future__ import annotations

from tests.graph.plan.helpers import ERRORS

DEMO = f"""mutation($input: ProjectCreateDemoInput!) {{ projectCreateDemo(input: $input) {{
  project {{ id slug }} dataSource {{ id name dbType databaseName host port }}
  scanConfig {{ id name baseQuery timeColumn eventTypeColumn eventNameFormat metricBreakdownColumns appVersionColumn
                interval enabled }}
  job {{ id kind status }} {ERRORS} }} }}"""


async def test_the_demo_payload_names_its_warehouse(org):
    payload = (await org(DEMO, {"input": {"organizationId": org.org_id}}))["projectCreateDemo"]
    assert payload["userErrors"] == [], payload
    ds, config = payload["dataSource"], payload["scanConfig"]
    assert (ds["name"], ds["dbType"], ds["host"], ds["port"]) == ("Demo warehouse (demo-tracking-plan)", "DUCKDB", "", None)
    assert ds["databaseName"].startswith("demo-") and ds["databaseName"].endswith(".duckdb")
    assert config == {"id": config["id"], "name": "demo", "baseQuery": "SELECT * FROM events", "timeColumn": "event_time",
                      "eventTypeColumn": "event_type", "eventNameFormat": "{event_name}",
                      "metricBreakdownColumns": ["platform"], "appVersionColumn": "app_version", "interval": "ONE_HOUR",
                      "enabled": True}
    assert payload["job"] is None
    listed = await org("query($org: ID!) { dataSources(organizationId: $org) { nodes { id } } }", {"org": org.org_id})
    assert [n["id"] for n in listed["dataSources"]["nodes"]] == [ds["id"]]
    configs = await org("query($p: ID!) { scanConfigs(projectId: $p) { nodes { id dataSource { id } } } }",
                        {"p": payload["project"]["id"]})
    assert configs["scanConfigs"]["nodes"] == [{"id": config["id"], "dataSource": {"id": ds["id"]}}]
