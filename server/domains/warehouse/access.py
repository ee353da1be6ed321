"""Who may read and change which warehouse rows. Every warehouse service and loader goes through
these, so the rules live in one place:

- Data sources belong to the organization. Members read them (no secret is ever shown: the API
  says `passwordSet`); owners create, change, delete and test them; editors and owners (who
  write scan configs) may read a data source's schema, which queries the warehouse.
- An API key bound to a project sees no data source (they are organization-wide, like the
  organization's settings): a data source is NOT_FOUND for it, as for a stranger.
- Scan configs, scan jobs, metric series, shadow events and drifts are project rows: they follow
  the plan's rules (server/domains/plan/access.py: members read, editors change, a project-bound
  key sees its project only). Use `plan_access.visible(Model, principal)` as the WHERE of any of
  them and `plan_access.changeable_project(...)` before changing one.
- Another tenant's row is NOT_FOUND, exactly like a missing one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, false

from server.domains.accounts.models import Role
from server.domains.plan import access as plan_access
from server.domains.warehouse.models import DataSource
from server.errors import not_found
from server.security.principal import Principal

visible = plan_access.visible  # project rows (scan configs, jobs, metrics, reconciliation): the plan's rule


def data_sources_visible(principal: Principal) -> list[ColumnElement]:
    """WHERE conditions limiting `data_sources` to the rows the principal may read."""
    orgs = principal.organization_ids if principal.authenticated else []
    if not orgs or principal.key_project_id is not None:
        return [false()]
    return [DataSource.organization_id.in_(orgs)]


def can_read_data_source(principal: Principal, organization_id: uuid.UUID) -> bool:
    return (principal.authenticated and principal.key_project_id is None
            and principal.role_in(organization_id) is not None)


def require_data_source_role(principal: Principal, organization_id: uuid.UUID, minimum: Role = Role.owner,
                             field: list[str] | None = None) -> Role:
    """The caller's role if it reaches `minimum` in the data source's organization: NOT_FOUND
    for strangers and project-bound keys, FORBIDDEN for members below it and read-only keys."""
    principal.require_user()
    if not can_read_data_source(principal, organization_id):
        raise not_found("data source", field)
    return principal.require_role(organization_id, minimum, "data source")


__all__ = ["can_read_data_source", "data_sources_visible", "require_data_source_role", "visible"]
