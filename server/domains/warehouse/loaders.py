"""Batch loaders of the warehouse domain: `async def load_x(rt, principal, keys) -> list`, one SQL
statement per batch, results in key order, None for whatever the principal may not see.

Project rows (scan configs, scan jobs, shadow events, schema drifts, contract violations) follow
the plan's visibility and are loaded by its `visible_by_id` (the organization's members, a
project-bound key its project only); data sources are loaded by data_sources.load_data_sources (organization-wide).
Add list loaders (children of many parents in one statement) next to these.
"""

from __future__ import annotations

import uuid

from server.domains.plan.loaders import visible_by_id
from server.domains.warehouse.data_sources import load_data_sources  # noqa: F401  re-exported
from server.domains.warehouse.models import ContractViolation, ScanConfig, ScanJob, SchemaDrift, ShadowEvent
from server.runtime import Runtime
from server.security.principal import Principal


async def load_scan_configs(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ScanConfig | None]:
    return await visible_by_id(rt, principal, ScanConfig, ids)


async def load_scan_jobs(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ScanJob | None]:
    return await visible_by_id(rt, principal, ScanJob, ids)


async def load_shadow_events(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ShadowEvent | None]:
    return await visible_by_id(rt, principal, ShadowEvent, ids)


async def load_schema_drifts(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[SchemaDrift | None]:
    return await visible_by_id(rt, principal, SchemaDrift, ids)


async def load_contract_violations(rt: Runtime, principal: Principal,
                                   ids: list[uuid.UUID]) -> list[ContractViolation | None]:
    return await visible_by_id(rt, principal, ContractViolation, ids)
