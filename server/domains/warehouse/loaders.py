"""Batch loaders of the warehouse domain: `async def load_x(rt, principal, keys) -> list`, one SQL
statement per batch, results in key order, None for whatever the principal may not see.

Project rows (scan configs, scan jobs, shadow events, schema drifts, contract violations) follow
the plan's visibility (access.visible: the organization's members, a project-bound key its
project only); data sources are loaded by data_sources.load_data_sources (organization-wide).
Add list loaders (children of many parents in one statement) next to these.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from server.domains.warehouse.access import visible
from server.domains.warehouse.data_sources import load_data_sources  # noqa: F401  re-exported
from server.domains.warehouse.models import ContractViolation, ScanConfig, ScanJob, SchemaDrift, ShadowEvent
from server.runtime import Runtime
from server.security.principal import Principal


async def _by_id(rt: Runtime, principal: Principal, model: Any, ids: list[uuid.UUID]) -> list[Any]:
    if not ids or not principal.authenticated or not principal.organization_ids:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(model).where(model.id.in_(ids), *visible(model, principal)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]


async def load_scan_configs(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ScanConfig | None]:
    return await _by_id(rt, principal, ScanConfig, ids)


async def load_scan_jobs(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ScanJob | None]:
    return await _by_id(rt, principal, ScanJob, ids)


async def load_shadow_events(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ShadowEvent | None]:
    return await _by_id(rt, principal, ShadowEvent, ids)


async def load_schema_drifts(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[SchemaDrift | None]:
    return await _by_id(rt, principal, SchemaDrift, ids)


async def load_contract_violations(rt: Runtime, principal: Principal,
                                   ids: list[uuid.UUID]) -> list[ContractViolation | None]:
    return await _by_id(rt, principal, ContractViolation, ids)
