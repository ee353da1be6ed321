import httpx


async def test_health_reports_database_and_redis(live):
    async with httpx.AsyncClient(base_url=live.url) as http:
        r = await http.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["database"]["status"] == "ok"
    assert body["redis"]["status"] == "ok"
    assert body["status"] == "ok"


async def test_metrics_is_prometheus_text(live):
    async with httpx.AsyncClient(base_url=live.url) as http:
        await http.post("/graphql", json={"query": "query Probe { __typename }"})
        r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'insights_graphql_requests_total{operation="Probe",type="query"}' in r.text
    assert "insights_websocket_connections" in r.text
