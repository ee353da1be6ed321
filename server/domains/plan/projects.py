"""Projects (tracking plans): create, update (including the slug), delete with everything under it,
list and look up by ID or slug.

- Editors create and update; owners delete (the whole plan goes with the project: every plan
  table references it ON DELETE CASCADE, so one DELETE removes it all in the database).
- Name 1..255 characters (trimmed); slug 1..255 characters matching SLUG_PATTERN, unique within
  the organization (CONFLICT otherwise, also when two requests race: the unique constraint decides).
- Every change goes through changes.plan_changed (audit entry + `planChanged` after commit).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.accounts.validation import collect
from server.domains.plan.access import changeable_project, require_org_plan_role, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed, update_recorded
from server.domains.plan.models import Project
from server.domains.plan.photos import forget_files
from server.domains.plan.validation import UNSET, conflict, optional_text, required_text, violates
from server.errors import DomainError, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_SLUG = re.compile(SLUG_PATTERN)
NAME_MAX = 255
SLUG_MAX = 255


def snapshot(p: Project) -> dict:
    """What the audit log keeps of a project."""
    return {"name": p.name, "slug": p.slug, "description": p.description}


# --- validation ------------------------------------------------------------------------------

def clean_name(value: str | None, field: list[str]) -> str:
    return required_text(value, field, NAME_MAX, "name")


def clean_slug(value: str | None, field: list[str]) -> str:
    slug = required_text(value, field, SLUG_MAX, "slug", strip=False)
    if not _SLUG.match(slug):
        raise invalid("slug must be lower-case letters and digits in groups joined by single hyphens "
                      "(e.g. `web-app-2`)", field)
    return slug


def clean_description(value: str | None) -> str:
    return optional_text(value, ["input", "description"], None, "description")


def _slug_taken(slug: str) -> DomainError:
    return conflict(f"another project of this organization already has the slug `{slug}`", ["input", "slug"])


def _is_slug_conflict(e: IntegrityError) -> bool:
    return violates(e, "uq_projects_org_slug")


# --- commands --------------------------------------------------------------------------------

async def create_project(rt: Runtime, principal: Principal, organization_id: uuid.UUID, *, name: str, slug: str,
                         description: str | None = "", request_id: str | None = None) -> Project:
    require_org_plan_role(principal, organization_id, Role.editor)
    name, slug, description = collect(lambda: clean_name(name, ["input", "name"]),
                                      lambda: clean_slug(slug, ["input", "slug"]),
                                      lambda: clean_description(description))
    now = utcnow()
    project = Project(id=uuid.uuid4(), organization_id=organization_id, name=name, slug=slug, description=description,
                      created_by_id=principal.user_id, created_at=now, updated_at=now)
    try:
        async with rt.db.unit_of_work() as uow:
            taken = (await uow.session.execute(select(Project.id).where(
                Project.organization_id == organization_id, Project.slug == slug))).first()
            if taken:
                raise _slug_taken(slug)
            uow.session.add(project)
            await uow.session.flush()
            plan_changed(uow, rt, principal, organization_id=organization_id, project_id=project.id,
                         entity=PlanEntity.PROJECT, action=PlanAction.CREATED, entity_ids=project.id,
                         summary=f"created project {name}", after=snapshot(project), request_id=request_id)
    except IntegrityError as e:
        if _is_slug_conflict(e):
            raise _slug_taken(slug) from None
        raise
    return project


async def update_project(rt: Runtime, principal: Principal, project_id: uuid.UUID, *, name: Any = UNSET,
                         slug: Any = UNSET, description: Any = UNSET, request_id: str | None = None) -> Project:
    """A patch: only the arguments given change. Name and slug cannot be null; a null description
    clears it."""
    checks = []
    if name is not UNSET:
        checks.append(lambda: ("name", clean_name(name, ["input", "name"])))
    if slug is not UNSET:
        checks.append(lambda: ("slug", clean_slug(slug, ["input", "slug"])))
    if description is not UNSET:
        checks.append(lambda: ("description", clean_description(description)))
    changes = dict(collect(*checks))
    try:
        async with rt.db.unit_of_work() as uow:
            project = await changeable_project(uow.session, principal, project_id, ["input", "id"], lock=True)
            if changes.get("slug", project.slug) != project.slug:
                taken = (await uow.session.execute(select(Project.id).where(
                    Project.organization_id == project.organization_id, Project.slug == changes["slug"],
                    Project.id != project.id))).first()
                if taken:
                    raise _slug_taken(changes["slug"])
            await update_recorded(uow, rt, principal, project, changes, snapshot, entity=PlanEntity.PROJECT,
                                  summary=lambda p: f"changed project {p.name}", project_id=project.id,
                                  request_id=request_id)
    except IntegrityError as e:
        if _is_slug_conflict(e):
            raise _slug_taken(changes["slug"]) from None
        raise
    return project


async def delete_project(rt: Runtime, principal: Principal, project_id: uuid.UUID, *,
                         request_id: str | None = None) -> Project:
    """Owners only. Everything under the project goes with it (ON DELETE CASCADE); its audit
    entries stay (the audit log outlives what it describes)."""
    async with rt.db.unit_of_work() as uow:
        project = await changeable_project(uow.session, principal, project_id, ["input", "id"], Role.owner, lock=True)
        await forget_files(uow, rt, project_id=project.id)  # its stored photo files go after commit
        await uow.session.delete(project)
        plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                     entity=PlanEntity.PROJECT, action=PlanAction.DELETED, entity_ids=project.id,
                     summary=f"deleted project {project.name}", before=snapshot(project), request_id=request_id)
    return project


# --- queries ---------------------------------------------------------------------------------

def projects_query(principal: Principal, organization_id: uuid.UUID) -> Select:
    """The organization's projects the caller may see (NOT_FOUND for non-members, like a missing
    organization; a project-bound key sees its project only)."""
    principal.require_member(organization_id)
    return select(Project).where(Project.organization_id == organization_id, *visible(Project, principal))


async def project_by_slug(rt: Runtime, principal: Principal, organization_id: uuid.UUID, slug: str) -> Project | None:
    """None when missing or not visible (the GraphQL field is nullable, like `project(id:)`)."""
    if not principal.authenticated or principal.role_in(organization_id) is None:
        return None
    async with rt.db.session() as s:
        return (await s.execute(select(Project).where(
            Project.organization_id == organization_id, Project.slug == slug, *visible(Project, principal)))
        ).scalar_one_or_none()


async def get_project(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> Project:
    from server.domains.plan.loaders import load_projects

    project = (await load_projects(rt, principal, [project_id]))[0]
    if project is None:
        raise not_found("project")
    return project
