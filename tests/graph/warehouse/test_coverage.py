"""`coverage` counts only events still in the plan: the metric buckets of an event deleted from
the plan stay (a scan wrote them), but its rows no longer match the plan, so they leave the
planned volume and events (as in `overview` and `topEvents`) of its scan config and the summary.
(Ranges, defaults and shadow volume per config: test_reconciliation.py.)"""

from __future__ import annotations

from server.db.base import utcnow
from server.domains.warehouse.models import MetricScope
from tests.graph.warehouse.metric_rows import H, metric_world
from tests.graph.warehouse.test_audit_metrics import delete_event
from tests.graph.warehouse.test_reconciliation import COVERAGE


def planned(item: dict) -> tuple[int, int, int, int]:
    return item["plannedVolume"], item["plannedEvents"], item["shadowVolume"], item["totalVolume"]


async def test_coverage_leaves_out_events_deleted_from_the_plan(org):
    world = await metric_world(org)
    second = await world.add_config("second")
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    shadow = await world.shadow("page.unplanned")
    await world.event_buckets("page.view", {hour: 60, hour - H: 20})
    await world.event_buckets("page.leave", {hour: 10})
    await world.event_buckets("track.click", {hour: 5}, config=second)
    await world.buckets(MetricScope.SHADOW_EVENT, shadow, {hour: 10})
    c = (await org(COVERAGE, {"p": world.project}))["coverage"]
    assert [planned(i) for i in c["items"]] == [(90, 2, 10, 100), (5, 1, 0, 5)]

    await delete_event(org, world.events["page.leave"])
    await delete_event(org, world.events["track.click"])
    c = (await org(COVERAGE, {"p": world.project}))["coverage"]
    assert [(i["scanConfig"]["name"], *planned(i), i["coverage"]) for i in c["items"]] == [
        ("main", 80, 1, 10, 90, 80 / 90), ("second", 0, 0, 0, 0, None)]
    s = c["summary"]
    assert (s["plannedVolume"], s["shadowVolume"], s["totalVolume"]) == (80, 10, 90)
    assert abs(s["coverage"] - 80 / 90) < 1e-9
    # Only one config asked: the same.
    c = (await org(COVERAGE, {"p": world.project, "cfg": world.config_gid(1)}))["coverage"]
    assert [planned(i) for i in c["items"]] == [(0, 0, 0, 0)] and c["summary"]["coverage"] is None
