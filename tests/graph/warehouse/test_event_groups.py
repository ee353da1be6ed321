"""`eventGroupsApply` end to end on the live server's real Dramatiq worker: a scan config's event
group rules tag the plan's events, read back through GraphQL (tags, history, audit, planChanged
over a real websocket). Applying again changes nothing; a rule matching nothing changes nothing;
a config's event type limits the rules to its events; another organization's plan is untouched;
bad rules are user errors at create and update, with nothing changed."""

from __future__ import annotations

import uuid

from websockets.asyncio.client import connect

from tests.graph.plan.catalog import audit_actions, event_type, recv, subscribe_plan
from tests.graph.plan.event_ops import HISTORY
from tests.graph.plan.event_ops import UPDATE as EVENT_UPDATE
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import ERRORS, errors_of, wait_job
from tests.graph.warehouse.metric_rows import EV_CREATE
from tests.graph.warehouse.test_scan_configs import GROUPS, pg_source

SC = "scanConfig { id eventGroupRules }"
CREATE = f"mutation($input: ScanConfigCreateInput!) {{ scanConfigCreate(input: $input) {{ {SC} {ERRORS} }} }}"
UPDATE = f"mutation($input: ScanConfigUpdateInput!) {{ scanConfigUpdate(input: $input) {{ {SC} {ERRORS} }} }}"
CONFIGS = "query($p: ID!) { scanConfigs(projectId: $p) { totalCount nodes { id eventGroupRules } } }"
EVENTS = """query($p: ID!) { events(projectId: $p, first: 100, orderBy: [NAME_ASC]) {
  nodes { id name tags updatedAt } } }"""

# name -> (event type, tags before)
PLAN = {"checkout.started": ("checkout", ["web"]), "checkout.completed": ("checkout", ["funnel"]),
        "checkout.failed": ("checkout", []), "page.view": ("page", []), "page.checkout": ("page", ["web"]),
        "search.done": ("page", [])}
RULES = [{"name": "funnel", "pattern": r"^checkout\."}, {"name": "errors", "pattern": "failed$"},
         {"name": "pages", "pattern": r"^page\."}, {"name": "never", "pattern": "^nothing$"}]


class World:
    """A project with event types `checkout` and `page`, the PLAN's events, and a PostgreSQL data
    source, all made through the API."""

    def __init__(self, org: Org, project: str, types: dict[str, str], events: dict[str, str], ds: str):
        self.org, self.project, self.types, self.events, self.ds = org, project, types, events, ds

    @classmethod
    async def create(cls, org: Org, pg_warehouse) -> "World":  # noqa: ANN001
        project = (await org.project())["id"]
        types = {name: (await event_type(org, project, name))["id"] for name in ("checkout", "page")}
        events = {}
        for name, (type_name, tags) in PLAN.items():
            data = (await org(EV_CREATE, {"input": {"eventTypeId": types[type_name], "name": name, "tags": tags}}))
            assert data["eventCreate"]["userErrors"] == [], data
            events[name] = data["eventCreate"]["event"]["id"]
        return cls(org, project, types, events, await pg_source(org, pg_warehouse))

    async def config(self, rules: list[dict], **extra) -> str:  # noqa: ANN003
        data = (await self.org(CREATE, {"input": self.config_input(eventGroupRules=rules, **extra)}))["scanConfigCreate"]
        assert data["userErrors"] == [], data
        assert data["scanConfig"]["eventGroupRules"] == rules
        return data["scanConfig"]["id"]

    def config_input(self, **extra) -> dict:  # noqa: ANN003
        return {"projectId": self.project, "dataSourceId": self.ds, "name": f"groups {uuid.uuid4().hex[:6]}",
                "baseQuery": "SELECT * FROM events", "timeColumn": "ts", "enabled": False, **extra}

    async def apply(self, config: str) -> dict:
        """Run `eventGroupsApply` to completion on the worker; the job's result."""
        data = (await self.org(GROUPS, {"input": {"scanConfigId": config}}))["eventGroupsApply"]
        assert data["userErrors"] == [] and data["job"]["kind"] == "event_groups_apply", data
        job = await wait_job(self.org, data["job"]["id"], timeout=60)
        assert job["status"] == "succeeded", job
        return job["result"]

    async def plan(self) -> dict[str, dict]:
        nodes = (await self.org(EVENTS, {"p": self.project}))["events"]["nodes"]
        return {n["name"]: n for n in nodes}

    async def tags(self) -> dict[str, list[str]]:
        return {name: e["tags"] for name, e in (await self.plan()).items()}

    async def history(self, name: str) -> list[dict]:
        return (await self.org(HISTORY, {"id": self.events[name], "first": 20}))["event"]["history"]["nodes"]

    async def bulk_updates(self) -> list[dict]:
        return [a for a in await audit_actions(self.org, self.project) if a["action"] == "event.bulk_update"]


async def test_rules_tag_the_matching_events_once_and_announce_it(org, live, pg_warehouse):  # noqa: ANN001
    world = await World.create(org, pg_warehouse)
    config = await world.config(RULES)
    before = await world.plan()
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, world.project)
        result = await world.apply(config)
        assert (result["rules"], result["eventsChanged"]) == (4, 4)
        assert result["matched"] == {"funnel": 3, "errors": 1, "pages": 2, "never": 0}
        # Tags only added, in rule order, never twice; `page.checkout` does not start with `checkout.`.
        assert await world.tags() == {
            "checkout.started": ["web", "funnel"], "checkout.completed": ["funnel"],
            "checkout.failed": ["funnel", "errors"], "page.view": ["pages"], "page.checkout": ["web", "pages"],
            "search.done": []}
        changed = {"checkout.started", "checkout.failed", "page.view", "page.checkout"}
        messages = [(await recv(ws))["payload"]["data"]["planChanged"] for _ in changed]
        assert {(m["entityType"], m["entityId"], m["action"]) for m in messages} == {
            ("EVENT", world.events[name], "UPDATED") for name in changed}

        # A plan change like any other: history by the requester, one audit entry, a new updatedAt.
        history = await world.history("checkout.failed")
        assert history[0]["action"] == "UPDATED" and history[0]["actor"]["id"] == org.user["id"]
        assert history[0]["changes"] == {"tags": {"old": [], "new": ["funnel", "errors"]}}
        assert [h["action"] for h in await world.history("checkout.completed")] == ["CREATED"]
        audit = await world.bulk_updates()
        assert len(audit) == 1 and audit[0]["after"]["count"] == 4 and audit[0]["targetType"] == "Event"
        after = await world.plan()
        assert {n for n in PLAN if after[n]["updatedAt"] != before[n]["updatedAt"]} == changed

        # Again: nothing changes, nothing is written, nothing is announced (the next message is
        # the marker change made after it).
        result = await world.apply(config)
        assert result["eventsChanged"] == 0 and result["matched"] == {"funnel": 3, "errors": 1, "pages": 2, "never": 0}
        assert await world.plan() == after
        assert len(await world.bulk_updates()) == 1 and len(await world.history("checkout.failed")) == 2
        # A config whose only rule matches nothing changes nothing either.
        nothing = await world.config([{"name": "ghosts", "pattern": "^ghost"}])
        result = await world.apply(nothing)
        assert (result["eventsChanged"], result["matched"]) == (0, {"ghosts": 0})
        assert await world.plan() == after and len(await world.bulk_updates()) == 1
        marker = await org(EVENT_UPDATE, {"input": {"id": world.events["search.done"], "description": "marker"}})
        assert marker["eventUpdate"]["userErrors"] == []
        msg = (await recv(ws))["payload"]["data"]["planChanged"]
        assert (msg["entityId"], msg["action"]) == (world.events["search.done"], "UPDATED")


async def test_the_config_event_type_limits_the_rules_and_other_tenants_are_untouched(org, gql, pg_warehouse):  # noqa: ANN001
    world = await World.create(org, pg_warehouse)
    other = await World.create(await Org.create(gql, "Other Co"), pg_warehouse)
    other_config = await other.config(RULES)
    other_before = await other.plan()
    config = await world.config([{"name": "tracked", "pattern": "."}], eventTypeId=world.types["page"])
    result = await world.apply(config)
    assert result["eventsChanged"] == 3 and result["matched"] == {"tracked": 3}
    assert await world.tags() == {
        "checkout.started": ["web"], "checkout.completed": ["funnel"], "checkout.failed": [],
        "page.view": ["tracked"], "page.checkout": ["web", "tracked"], "search.done": ["tracked"]}
    assert await other.plan() == other_before
    # Neither organization can apply the other's config.
    for who, cfg in ((other.org, config), (org, other_config)):
        data = (await who(GROUPS, {"input": {"scanConfigId": cfg}}))["eventGroupsApply"]
        assert errors_of(data) == [("NOT_FOUND", ["input", "scanConfigId"])] and data["job"] is None
    viewer = await org.member("viewer")
    data = (await org(GROUPS, {"input": {"scanConfigId": config}}, viewer))["eventGroupsApply"]
    assert errors_of(data)[0][0] == "FORBIDDEN" and data["job"] is None
    assert await other.plan() == other_before


BAD_RULES = [
    ({"name": "x", "pattern": "x"}, ["input", "eventGroupRules"]),                     # not a list
    (["x"], ["input", "eventGroupRules", "0"]),                                        # not an object
    ([{"name": "x", "pattern": "x", "flags": "i"}], ["input", "eventGroupRules", "0"]),  # unknown key
    ([{"pattern": "x"}], ["input", "eventGroupRules", "0", "name"]),
    ([{"name": "   ", "pattern": "x"}], ["input", "eventGroupRules", "0", "name"]),
    ([{"name": "n" * 101, "pattern": "x"}], ["input", "eventGroupRules", "0", "name"]),
    ([{"name": "ok", "pattern": "x"}, {"name": "x", "pattern": ""}], ["input", "eventGroupRules", "1", "pattern"]),
    ([{"name": "x", "pattern": "p" * 501}], ["input", "eventGroupRules", "0", "pattern"]),
    ([{"name": "x", "pattern": "(unclosed"}], ["input", "eventGroupRules", "0", "pattern"]),
    ([{"name": "x", "pattern": 7}], ["input", "eventGroupRules", "0", "pattern"]),
    ([{"name": f"r{i}", "pattern": "x"} for i in range(101)], ["input", "eventGroupRules"]),
]


async def test_bad_rules_are_user_errors_at_create_and_update_and_change_nothing(org, pg_warehouse):  # noqa: ANN001
    world = await World.create(org, pg_warehouse)
    for rules, field in BAD_RULES:
        data = (await org(CREATE, {"input": world.config_input(eventGroupRules=rules)}))["scanConfigCreate"]
        assert errors_of(data) == [("VALIDATION", field)] and data["scanConfig"] is None, (rules, data)
    assert (await org(CONFIGS, {"p": world.project}))["scanConfigs"]["totalCount"] == 0

    config = await world.config(RULES[:1])
    for rules, field in BAD_RULES:
        data = (await org(UPDATE, {"input": {"id": config, "eventGroupRules": rules}}))["scanConfigUpdate"]
        assert errors_of(data) == [("VALIDATION", field)] and data["scanConfig"] is None, (rules, data)
    listed = (await org(CONFIGS, {"p": world.project}))["scanConfigs"]["nodes"]
    assert [n["eventGroupRules"] for n in listed] == [RULES[:1]]
    # A good update: names are trimmed, and the job applies the new rules.
    data = (await org(UPDATE, {"input": {"id": config, "eventGroupRules": [{"name": " pages ", "pattern": "^page"}]}}))
    assert data["scanConfigUpdate"]["scanConfig"]["eventGroupRules"] == [{"name": "pages", "pattern": "^page"}]
    result = await world.apply(config)
    assert result["eventsChanged"] == 2 and (await world.tags())["page.view"] == ["pages"]
    # Null clears the rules: applying then changes nothing.
    data = (await org(UPDATE, {"input": {"id": config, "eventGroupRules": None}}))["scanConfigUpdate"]
    assert data["userErrors"] == [] and data["scanConfig"]["eventGroupRules"] == []
    tags = await world.tags()
    assert (await world.apply(config))["eventsChanged"] == 0 and await world.tags() == tags
