"""Shared helpers and fixtures of the jobs, pub/sub, worker and jobs-GraphQL tests.

Users, organizations and memberships are inserted through the models (the accounts GraphQL
mutations are not there yet); a user gets a real session row and a real session JWT, so the API
authenticates it exactly as it would after `userLogin`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import delete

from server.db.base import utcnow
from server.domains.accounts.models import Membership, Organization, Role, Session, User
from server.jobs.models import Job, JobStatus
from server.runtime import Runtime
from server.security.authn import authenticate
from server.security.principal import Principal
from server.security.tokens import issue_session_jwt
from workers.broker import setup_broker


@dataclass
class Account:
    user_id: uuid.UUID
    email: str
    token: str
    session_id: uuid.UUID


async def make_user(rt: Runtime, name: str = "Test User") -> Account:
    uid, sid = uuid.uuid4(), uuid.uuid4()
    email = f"jobs-{uid.hex[:10]}@example.com"
    expires = utcnow() + timedelta(hours=1)
    async with rt.db.unit_of_work() as uow:
        uow.session.add(User(id=uid, email=email, name=name, password_hash="!unusable"))
        await uow.session.flush()
        uow.session.add(Session(id=sid, user_id=uid, expires_at=expires))
    return Account(uid, email, issue_session_jwt(rt.settings.signing_key(), sid, uid, expires), sid)


async def make_org(rt: Runtime, owner: Account, name: str = "Acme") -> uuid.UUID:
    org_id = uuid.uuid4()
    async with rt.db.unit_of_work() as uow:
        uow.session.add(Organization(id=org_id, name=name))
        await uow.session.flush()
        uow.session.add(Membership(organization_id=org_id, user_id=owner.user_id, role=Role.owner))
    return org_id


async def add_member(rt: Runtime, org_id: uuid.UUID, account: Account, role: Role) -> None:
    async with rt.db.unit_of_work() as uow:
        uow.session.add(Membership(organization_id=org_id, user_id=account.user_id, role=role))


async def principal_of(rt: Runtime, account: Account) -> Principal:
    return await authenticate(rt.db, rt.settings.signing_key(), f"Bearer {account.token}", None)


async def revoke_session(rt: Runtime, account: Account) -> None:
    async with rt.db.unit_of_work() as uow:
        s = await uow.session.get(Session, account.session_id)
        s.revoked_at = utcnow()


async def insert_job(rt: Runtime, **fields) -> Job:  # noqa: ANN003
    """A job row written directly, with no message sent (as if the message was lost)."""
    now = utcnow()
    values = dict(id=uuid.uuid4(), kind="organization_export", queue="default", status=JobStatus.pending,
                  progress=0.0, payload={}, attempts=0, max_attempts=3, enqueued_at=now, created_at=now,
                  updated_at=now, cancel_requested=False)
    values.update(fields)
    job = Job(**values)
    async with rt.db.unit_of_work() as uow:
        uow.session.add(job)
    return job


async def get_job(rt: Runtime, job_id: uuid.UUID) -> Job:
    async with rt.db.session() as s:
        job = await s.get(Job, job_id)
    assert job is not None, f"job {job_id} missing"
    return job


async def wait_for(check: Callable[[], Awaitable[object]], timeout: float = 10.0, interval: float = 0.02,
                   what: str = "condition") -> object:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_for_status(rt: Runtime, job_id: uuid.UUID, *statuses: JobStatus, timeout: float = 10.0) -> Job:
    async def check() -> Job | None:
        job = await get_job(rt, job_id)
        return job if job.status in statuses else None

    try:
        return await wait_for(check, timeout, what=f"job {job_id} to become {'/'.join(s.value for s in statuses)}")
    except AssertionError:
        job = await get_job(rt, job_id)
        raise AssertionError(f"job {job_id} is {job.status.value} (attempts {job.attempts}, error {job.error!r}), "
                             f"not {'/'.join(s.value for s in statuses)}") from None


async def delete_jobs(rt: Runtime, ids: list[uuid.UUID]) -> None:
    if ids:
        async with rt.db.unit_of_work() as uow:
            await uow.session.execute(delete(Job).where(Job.id.in_(ids)))


# --- fixtures (imported by the conftest of each test package that uses them) -------------------

@pytest.fixture(scope="session")
async def rt(settings, database_url, redis_url):  # noqa: ANN001, ANN201
    """A runtime on the tests' own event loop (the live server's runtime lives on its own loop)."""
    setup_broker(redis_url)  # the same process-wide broker the live server and its worker use
    runtime = Runtime.create(settings, database_url, redis_url)
    yield runtime
    await runtime.close()


@pytest.fixture
async def owner(rt):  # noqa: ANN001, ANN201
    """A user owning a fresh organization: (account, organization id)."""
    account = await make_user(rt, "Olivia Owner")
    return account, await make_org(rt, account, f"Org {account.user_id.hex[:6]}")
