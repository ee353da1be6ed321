"""Status changes people make keep the co-occurrence model in step: resolving counts an
incident's services, reopening takes them out again, merging a resolved incident away too."""

from __future__ import annotations

from server.domains.incidents import service
from server.domains.incidents.correlation import CooccurrenceModel
from tests.server.incidents.pipeline.support import alert, incidents_of, ingest, settings_of
from tests.server.jobs.support import principal_of


async def _model(rt, org) -> CooccurrenceModel:  # noqa: ANN001
    row = await settings_of(rt, org)
    return CooccurrenceModel.from_dict(row.cooccurrence_model) if row else CooccurrenceModel()


async def test_resolve_reopen_and_merge_update_the_model(rt, owner):
    account, org = owner
    principal = await principal_of(rt, account)
    await ingest(rt, org, alert("a-1", title="Primary replication lag", service="db"),
                 alert("b-1", title="primary replication lag", service="api"))
    [incident] = await incidents_of(rt, org)
    await service.resolve(rt, principal, incident.id)
    model = await _model(rt, org)
    assert model.incidents == 1 and model.support("api", "db") == 1
    await service.reopen(rt, principal, incident.id)
    model = await _model(rt, org)
    assert model.incidents == 0 and model.support("api", "db") == 0

    await ingest(rt, org, alert("c-1", title="Search index stale", service="search"))
    other = next(i for i in await incidents_of(rt, org) if i.id != incident.id)
    await service.resolve(rt, principal, other.id)
    assert (await _model(rt, org)).incidents == 1
    source, target = await service.merge(rt, principal, other.id, incident.id)
    model = await _model(rt, org)
    assert model.incidents == 0  # the resolved source no longer counts on its own
    assert target.affected_services == ["db", "api", "search"] and target.correlated_alert_count == 3
