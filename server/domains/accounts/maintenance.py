"""Periodic clean-up of expired sessions and invites (the `accounts_cleanup` job)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from server.db.base import utcnow
from server.domains.accounts.models import Invite, Session
from server.jobs.models import Job
from server.runtime import Runtime

GRACE = timedelta(days=7)  # keep dead rows a week for forensics


async def run_cleanup(rt: Runtime, job: Job) -> dict:
    cutoff = utcnow() - GRACE
    async with rt.db.unit_of_work() as uow:
        sessions = (await uow.session.execute(delete(Session).where(Session.expires_at < cutoff))).rowcount
        invites = (await uow.session.execute(
            delete(Invite).where(Invite.expires_at < cutoff, Invite.accepted_at.is_(None)))).rowcount
    return {"sessionsDeleted": sessions, "invitesDeleted": invites}
