"""Correlation settings in GraphQL: `correlationSettings(organizationId:)` (any member) and
`correlationSettingsUpdate(input:)` (owners and editors). The rules live in
server/domains/incidents/correlation_settings.py; the signals are explained in correlation.py."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from graph.accounts.types import Organization
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, load_one, to_global_id
from server.domains.accounts import loaders as account_loaders
from server.domains.incidents import correlation_settings as service
from server.errors import DomainError, invalid


@strawberry.type(description="How alerts of an organization are grouped into incidents. A new firing alert joins "
                             "an open incident when a signal that is on relates them (tried in this order: "
                             "fingerprint group, same service, title similarity, co-occurrence), else it opens a new "
                             "incident. Until someone saves a setting these are the defaults (`updatedAt` null).")
class CorrelationSettings:
    window_minutes: int = strawberry.field(
        description="How recent an incident's evidence must be for the same-service and title signals: the service "
                    "or title alerted in the incident within this many minutes. Default 30.")
    title_similarity_threshold: float = strawberry.field(
        description="Title similarity (Jaccard of title words, 0 to 1) must be above this. In [0, 1); default 0.6.")
    use_fingerprint_group: bool = strawberry.field(
        description="Join an open incident that already holds the alert's fingerprint or group key.")
    use_service: bool = strawberry.field(
        description="Join an open incident in which the alert's service alerted within `windowMinutes`.")
    use_title_similarity: bool = strawberry.field(
        description="Join an open incident with a recent title similar to the alert's.")
    use_cooccurrence: bool = strawberry.field(
        description="Join an open incident of a service that, in this organization's past incidents, alerted "
                    "together with the alert's service (learned co-occurrence).")
    cooccurrence_threshold: float = strawberry.field(
        description="Co-occurrence strength (share of the partner service's past incidents in which the alert's "
                    "service alerted too) must be above this. In [0, 1); default 0.1.")
    cooccurrence_min_support: int = strawberry.field(
        description="Past incidents two services must share before co-occurrence counts. Default 3.")
    cooccurrence_window_minutes: int = strawberry.field(
        description="Co-occurrence joins only while the partner service started alerting in the incident within this "
                    "many minutes of the alert. Default 10.")
    fingerprint_horizon_minutes: int | None = strawberry.field(
        description="The fingerprint signal joins only an incident whose last alert is at most this many minutes old; "
                    "null: no limit. Default 1440 (24 h).")
    auto_resolve: bool = strawberry.field(
        description="An incident resolves itself when all its alerts are resolved.")
    updated_at: datetime | None = strawberry.field(description="When a setting was last saved; null: the defaults.")
    organization_id: strawberry.ID
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_settings(cls, s: service.OrgSettings) -> "CorrelationSettings":
        return cls(window_minutes=s.window_minutes, title_similarity_threshold=s.title_similarity_threshold,
                   use_fingerprint_group=s.use_fingerprint_group, use_service=s.use_service,
                   use_title_similarity=s.use_title, use_cooccurrence=s.use_cooccurrence,
                   cooccurrence_threshold=s.cooccurrence_threshold,
                   cooccurrence_min_support=s.cooccurrence_min_support,
                   cooccurrence_window_minutes=s.cooccurrence_window_minutes,
                   fingerprint_horizon_minutes=s.fingerprint_horizon_minutes, auto_resolve=s.auto_resolve,
                   updated_at=s.updated_at, organization_id=to_global_id("Organization", s.organization_id),
                   row_id=s.organization_id)

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, account_loaders.load_organizations, Organization, self.row_id)


@strawberry.type
class CorrelationSettingsQuery:
    @strawberry.field(description="An organization's correlation settings (the defaults until one is saved). Any "
                                  "member.")
    async def correlation_settings(self, info: strawberry.Info, organization_id: strawberry.ID) -> CorrelationSettings:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        return CorrelationSettings.from_settings(await service.get_settings(ctx.rt, ctx.principal, org))


@strawberry.input(description="A patch: absent fields stay as they are. Only `fingerprintHorizonMinutes` may be null "
                              "(no limit). What each setting does: `CorrelationSettings`.")
class CorrelationSettingsUpdateInput:
    organization_id: strawberry.ID
    # Nullable in the schema so that an explicit null is answered with a VALIDATION user error
    # naming the field.
    window_minutes: strawberry.Maybe[int | None] = strawberry.field(description="1 to 10080 (a week).")
    title_similarity_threshold: strawberry.Maybe[float | None] = strawberry.field(description="At least 0, below 1.")
    use_fingerprint_group: strawberry.Maybe[bool | None]
    use_service: strawberry.Maybe[bool | None]
    use_title_similarity: strawberry.Maybe[bool | None]
    use_cooccurrence: strawberry.Maybe[bool | None]
    cooccurrence_threshold: strawberry.Maybe[float | None] = strawberry.field(description="At least 0, below 1.")
    cooccurrence_min_support: strawberry.Maybe[int | None] = strawberry.field(description="1 to 10000.")
    cooccurrence_window_minutes: strawberry.Maybe[int | None] = strawberry.field(description="1 to 10080 (a week).")
    fingerprint_horizon_minutes: strawberry.Maybe[int | None] = strawberry.field(
        description="1 to 525600 (a year); null: no limit.")
    auto_resolve: strawberry.Maybe[bool | None]


# Input field -> the service's knob (column) name.
_COLUMNS = {"window_minutes": "window_minutes", "title_similarity_threshold": "title_similarity_threshold",
            "use_fingerprint_group": "use_fingerprint_group", "use_service": "use_service",
            "use_title_similarity": "use_title", "use_cooccurrence": "use_cooccurrence",
            "cooccurrence_threshold": "cooccurrence_threshold", "cooccurrence_min_support": "cooccurrence_min_support",
            "cooccurrence_window_minutes": "cooccurrence_window_minutes",
            "fingerprint_horizon_minutes": "fingerprint_horizon_minutes", "auto_resolve": "auto_resolve"}


@strawberry.type
class CorrelationSettingsUpdatePayload:
    correlation_settings: CorrelationSettings | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CorrelationSettingsMutation:
    @strawberry.mutation(description="Change an organization's correlation settings (owners, editors). Deliveries this "
                                     "server receives next use them at once; other server processes within 2 seconds.")
    async def correlation_settings_update(self, info: strawberry.Info,
                                          input: CorrelationSettingsUpdateInput) -> CorrelationSettingsUpdatePayload:
        ctx = info.context

        async def work() -> CorrelationSettingsUpdatePayload:
            try:
                org = decode_id(input.organization_id, "Organization")
            except DomainError as e:
                raise invalid(e.message, ["input", "organizationId"]) from None
            changes = {column: given.value for name, column in _COLUMNS.items()
                       if (given := getattr(input, name)) is not None}
            settings = await service.update_settings(ctx.rt, ctx.principal, org, changes, request_id=ctx.request_id)
            return CorrelationSettingsUpdatePayload(correlation_settings=CorrelationSettings.from_settings(settings))

        return await mutate(CorrelationSettingsUpdatePayload, work)
