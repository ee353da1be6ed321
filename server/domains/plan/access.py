"""Who may read and change which part of a tracking plan. Every plan service and loader goes
through these, so the rules live in one place:

- Members of the project's organization read (viewers included); editors change the plan; owners
  delete projects and manage event-type owners (`require_plan_role(..., Role.owner)`).
- An API key bound to a project sees and touches that project only; anything else of its
  organization is NOT_FOUND for it, as for a stranger. A bound key cannot create projects.
- Another tenant's row is NOT_FOUND, exactly like a missing one (never FORBIDDEN, which would
  confirm it exists).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.domains.accounts.models import Role
from server.domains.plan.models import Project
from server.errors import forbidden, not_found
from server.security.principal import Principal


def visible(model: Any, principal: Principal) -> list[ColumnElement]:
    """WHERE conditions limiting any plan table to the rows the principal may read."""
    orgs = principal.organization_ids if principal.authenticated else []
    if not orgs:
        return [false()]
    conditions: list[ColumnElement] = [model.organization_id.in_(orgs)]
    if principal.key_project_id is not None:
        project_column = model.id if model is Project else model.project_id
        conditions.append(project_column == principal.key_project_id)
    return conditions


def can_read(principal: Principal, organization_id: uuid.UUID, project_id: uuid.UUID | None) -> bool:
    """Whether the principal may read a row of this organization and project (project None: an
    organization-wide question, which a project-bound key may not ask)."""
    if not principal.authenticated or principal.role_in(organization_id) is None:
        return False
    return principal.key_project_id is None or project_id == principal.key_project_id


def require_plan_role(principal: Principal, organization_id: uuid.UUID, project_id: uuid.UUID | None,
                      minimum: Role = Role.editor, what: str = "project", field: list[str] | None = None) -> Role:
    """The caller's role if it reaches `minimum` for this project: NOT_FOUND for strangers (and
    for keys bound to another project), FORBIDDEN for members below `minimum` and read-only keys."""
    principal.require_user()
    if not can_read(principal, organization_id, project_id):
        raise not_found(what, field)
    return principal.require_role(organization_id, minimum, what)


def require_org_plan_role(principal: Principal, organization_id: uuid.UUID, minimum: Role = Role.editor) -> Role:
    """For organization-level plan changes (creating a project): a project-bound key may not."""
    role = principal.require_role(organization_id, minimum, "organization")
    if principal.key_project_id is not None:
        raise forbidden("this API key is bound to one project; it cannot create projects")
    return role


async def readable_project(session: AsyncSession, principal: Principal, project_id: uuid.UUID,
                           field: list[str] | None = None) -> Project:
    """The project if the principal may read it, else NOT_FOUND."""
    principal.require_user()
    project = await session.get(Project, project_id)
    if project is None or not can_read(principal, project.organization_id, project.id):
        raise not_found("project", field)
    return project


async def changeable_project(session: AsyncSession, principal: Principal, project_id: uuid.UUID,
                             field: list[str] | None = None, minimum: Role = Role.editor,
                             lock: bool = False) -> Project:
    """The project if the principal may change its plan (`minimum` role), else NOT_FOUND or
    FORBIDDEN. `lock=True` takes the row FOR NO KEY UPDATE: changes that renumber or check
    project-wide uniqueness (reorders, slugs) serialize on it; plain child inserts need no lock
    (their foreign key already keeps the project from being deleted under them)."""
    principal.require_user()
    q = select(Project).where(Project.id == project_id, *visible(Project, principal))  # never lock a stranger's row
    if lock:
        q = q.with_for_update(key_share=True)
    project = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if project is None:
        raise not_found("project", field)
    require_plan_role(principal, project.organization_id, project.id, minimum, "project", field)
    return project


async def still_allowed(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> bool:
    """Whether the principal may still read the project, from the committed state (the project
    exists and the user is still a member of its organization): long-lived subscriptions ask this
    again while they run, because the principal's roles were read when the connection began."""
    from server.domains.accounts.models import Membership

    if not principal.authenticated:
        return False
    row = (await session.execute(
        select(Project.organization_id)
        .join(Membership, Membership.organization_id == Project.organization_id)
        .where(Project.id == project_id, Membership.user_id == principal.user_id))).first()
    return row is not None and can_read(principal, row[0], project_id)
