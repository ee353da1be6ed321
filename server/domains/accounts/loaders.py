"""Batch loaders for the accounts domain: `async def load_x(rt, principal, keys) -> list`, one SQL
statement per batch, results in key order, `None` for whatever the principal may not see.

Visibility: a user is visible to itself and to members of an organization it shares with the
principal; an organization and its memberships to its members; an API key to its owner only;
an invite to the owners of its organization. Anything else is indistinguishable from missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import Any

from sqlalchemy import func, or_, select

from server.db.paging import Page, PageRequest
from server.domains.accounts.grouped_pages import keyset_pages_by, shared_counts
from server.domains.accounts.models import ApiKey, Invite, Membership, Organization, Role, User
from server.runtime import Runtime
from server.security.principal import Principal

# A nested connection's dataloader key: (parent id, first, after, last, before).
PageKey = tuple[uuid.UUID, int | None, str | None, int | None, str | None]


def page_key(parent_id: uuid.UUID, first: int | None = None, after: str | None = None, last: int | None = None,
             before: str | None = None) -> PageKey:
    return (parent_id, first, after, last, before)


async def _by_id(rt: Runtime, stmt: Any, ids: list[uuid.UUID]) -> list[Any]:
    async with rt.db.session() as s:
        found = {row.id: row for row in (await s.execute(stmt)).scalars().all()}
    return [found.get(i) for i in ids]


def owned_organization_ids(principal: Principal) -> list[uuid.UUID]:
    return [o for o in principal.organization_ids if principal.roles.get(o) == Role.owner]


async def load_users(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[User | None]:
    if not principal.authenticated:
        return [None] * len(ids)
    colleagues = select(Membership.user_id).where(Membership.organization_id.in_(principal.organization_ids))
    return await _by_id(rt, select(User).where(
        User.id.in_(ids), or_(User.id == principal.user_id, User.id.in_(colleagues))), ids)


async def load_organizations(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Organization | None]:
    visible = [i for i in ids if i in set(principal.organization_ids)]
    if not visible:
        return [None] * len(ids)
    return await _by_id(rt, select(Organization).where(Organization.id.in_(visible)), ids)


async def load_memberships(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Membership | None]:
    if not principal.organization_ids:
        return [None] * len(ids)
    return await _by_id(rt, select(Membership).where(
        Membership.id.in_(ids), Membership.organization_id.in_(principal.organization_ids)), ids)


async def load_api_keys(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ApiKey | None]:
    if not principal.authenticated:
        return [None] * len(ids)
    return await _by_id(rt, select(ApiKey).where(ApiKey.id.in_(ids), ApiKey.user_id == principal.user_id), ids)


async def load_invites(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Invite | None]:
    owned = owned_organization_ids(principal)
    if not owned:
        return [None] * len(ids)
    return await _by_id(rt, select(Invite).where(Invite.id.in_(ids), Invite.organization_id.in_(owned)), ids)


# --- nested connections ----------------------------------------------------------------------

async def _pages(rt: Runtime, keys: list[PageKey], visible: set[uuid.UUID], model: type, column: Any,
                 order: list, descending: bool) -> list[Page]:
    """One query per distinct page request (usually one), covering every parent in the batch.
    A parent the principal may not see gets an empty page."""
    by_request: dict[tuple, list[uuid.UUID]] = {}
    for parent, *request in keys:
        by_request.setdefault(tuple(request), []).append(parent)
    results: dict[PageKey, Page] = {}
    for request, parents in by_request.items():
        ids = [p for p in dict.fromkeys(parents) if p in visible]
        pages = await _pages_of(rt, ids, PageRequest(*request), model, column, order, descending) if ids else {}
        for parent in parents:
            results[(parent, *request)] = pages.get(parent) or _empty()
    return [results[k] for k in keys]


async def _pages_of(rt: Runtime, ids: list[uuid.UUID], request: PageRequest, model: type, column: Any,
                    order: list, descending: bool) -> dict[Hashable, Page]:
    async def fetch_counts() -> dict[Hashable, int]:
        async with rt.db.session() as s:
            rows = await s.execute(select(column, func.count()).where(column.in_(ids)).group_by(column))
        return dict(rows.all())

    s = rt.settings
    return await keyset_pages_by(rt.db, model, select(model), column, ids, order, request,
                                 shared_counts(fetch_counts), descending=descending,
                                 default=s.page_size_default, maximum=s.page_size_max)


def _empty() -> Page:
    async def zero() -> int:
        return 0

    return Page(items=[], cursors=[], has_next_page=False, has_previous_page=False, count=zero)


async def load_member_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """Members of organizations (oldest membership first), for members of those organizations."""
    return await _pages(rt, keys, set(principal.organization_ids), Membership, Membership.organization_id,
                        [Membership.created_at, Membership.id], descending=False)


async def load_invite_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """Invites of organizations (newest first), for owners only."""
    return await _pages(rt, keys, set(owned_organization_ids(principal)), Invite, Invite.organization_id,
                        [Invite.created_at, Invite.id], descending=True)
