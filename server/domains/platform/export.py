"""Organization export: a JSON file of the organization's data, written by a job and downloaded
by owners (`GET /api/v1/exports/{job_id}`).

The file holds the organization, its members, invites and API key metadata (the accounts
domain's part, without secrets) and the audit log.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import orjson
from sqlalchemy import select

from server.db.base import utcnow
from server.domains.accounts.export import export_organization
from server.domains.accounts.models import Role
from server.domains.platform import audit
from server.domains.platform.models import AuditEntry
from server.errors import not_found
from server.jobs import service as jobs
from server.jobs.models import Job, JobStatus
from server.runtime import Runtime
from server.security.principal import Principal

KIND = "organization_export"
FORMAT = "insights-organization-export"
AUDIT_BATCH = 1000


def _require_owner(principal: Principal, organization_id: uuid.UUID) -> None:
    principal.require_role(organization_id, Role.owner)
    if principal.key_project_id is not None:  # an organization's export is more than one project
        raise not_found("organization")


async def request_export(rt: Runtime, principal: Principal, organization_id: uuid.UUID,
                         request_id: str | None = None) -> Job:
    """Owners only. Returns the pending job at once; the worker writes the file."""
    _require_owner(principal, organization_id)
    async with rt.db.unit_of_work() as uow:
        job = jobs.create_job(uow, rt, kind=KIND, organization_id=organization_id,
                              requested_by_id=principal.user_id, subject_type="Organization",
                              subject_id=str(organization_id))
        audit.record(uow, principal, "organization.export", organization_id=organization_id,
                     target_type="Job", target_id=job.id, summary="requested an organization export",
                     request_id=request_id)
    return job


def export_path(rt: Runtime, organization_id: uuid.UUID, job_id: uuid.UUID) -> Path:
    return rt.settings.exports_dir / str(organization_id) / f"{job_id}.json"


async def run_export(rt: Runtime, job: Job) -> dict:
    """The job body: gather each part, write atomically, report progress on the way."""
    org_id = job.organization_id
    if org_id is None:
        raise ValueError("an organization export needs an organization")
    await jobs.report_progress(rt, job.id, 0.1, "exporting accounts")
    accounts = await export_organization(rt, org_id)
    data: dict = {"format": FORMAT, "version": 1, "exportedAt": utcnow().isoformat(), "jobId": str(job.id),
                  "organizationId": str(org_id), **accounts}
    await jobs.report_progress(rt, job.id, 0.5, "exporting the audit log")
    data["auditLog"] = await _audit_entries(rt, org_id)
    await jobs.report_progress(rt, job.id, 0.9, "writing the file")
    path = export_path(rt, org_id, job.id)
    size = await asyncio.to_thread(_write_atomically, path, data)
    return {"file": path.name, "bytes": size, "downloadUrl": f"/api/v1/exports/{job.id}",
            "counts": {k: len(v) for k, v in data.items() if isinstance(v, list)}}


def _write_atomically(path: Path, data: dict) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
    return path.stat().st_size


async def _audit_entries(rt: Runtime, org_id: uuid.UUID) -> list[dict]:
    out: list[dict] = []
    async with rt.db.session() as s:
        result = await s.stream_scalars(select(AuditEntry).where(AuditEntry.organization_id == org_id)
                                        .order_by(AuditEntry.created_at, AuditEntry.id)
                                        .execution_options(yield_per=AUDIT_BATCH))
        async for entry in result:
            out.append(audit.entry_dict(entry))
    return out


async def export_file_for(rt: Runtime, principal: Principal, job_id: uuid.UUID) -> Path:
    """The finished export's file, for owners of its organization; NOT_FOUND otherwise."""
    job = (await jobs.load_jobs(rt, principal, [job_id]))[0]
    if job is None or job.kind != KIND or job.organization_id is None:
        raise not_found("export")
    if principal.role_in(job.organization_id) != Role.owner or principal.key_project_id is not None:
        raise not_found("export")
    if job.status != JobStatus.succeeded:
        raise not_found("finished export")
    path = export_path(rt, job.organization_id, job.id)
    if not path.exists():
        raise not_found("export file")
    return path
