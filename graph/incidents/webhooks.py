"""Webhook configs and deliveries in GraphQL: the `WebhookConfig` and `WebhookDelivery` nodes,
`webhookConfigs` / `webhookDeliveries`, and the `webhookConfig*` mutations.

The key is returned once, in the `key` of `webhookConfigCreate` and `webhookConfigRegenerateKey`;
nothing shows it again (`keyPrefix` tells keys apart). Alert, incident and change event ids of a
delivery are global IDs (`alertIds`, ...), resolvable with `node(id:)`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from graph.accounts.types import Organization
from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import Node, decode_id, load_one, register_node, to_global_id
from graph.core.scalars import JSON
from server.db.paging import PageRequest, keyset_page
from server.domains.accounts import loaders as account_loaders
from server.domains.incidents import deliveries as delivery_service
from server.domains.incidents import webhook_configs as service
from server.domains.incidents.models import DeliveryStatus
from server.domains.incidents.models import WebhookConfig as ConfigRow
from server.domains.incidents.models import WebhookDelivery as DeliveryRow
from server.domains.incidents.normalizers import PROVIDERS
from server.errors import DomainError, invalid

WebhookProvider = strawberry.enum(
    enum.Enum("WebhookProvider", {p.upper(): p for p in PROVIDERS}), name="WebhookProvider",
    description="The tool a webhook config expects; `GENERIC` is our own format (JSON Schema at "
                "`/api/v1/webhooks/schema/generic`).")
WebhookDeliveryStatus = strawberry.enum(
    DeliveryStatus, name="WebhookDeliveryStatus",
    description="ACCEPTED: stored with what it brought in; DUPLICATE: a repeat of an accepted delivery, changed "
                "nothing; REJECTED: refused (see `httpStatus`, `error`).")


def _gids(type_name: str, raws: list | None) -> list[strawberry.ID]:
    return [to_global_id(type_name, r) for r in (raws or [])]


def _decode(gid: str, type_name: str, field: str) -> uuid.UUID:
    """The UUID of a global ID given as `input.<field>`, the error pointing at that field."""
    try:
        return decode_id(gid, type_name)
    except DomainError as e:
        raise invalid(e.message, ["input", field]) from None


# --- types -----------------------------------------------------------------------------------

@strawberry.type(description="What a webhook config received.")
class WebhookConfigStats:
    deliveries_accepted: int = strawberry.field(description="Deliveries answered 202 (duplicates included).")
    deliveries_rejected: int = strawberry.field(description="Deliveries refused (4xx/5xx) with this config's key.")
    last_delivery_at: datetime | None = strawberry.field(description="The last delivery, accepted or not.")
    last_error: str | None = strawberry.field(description="Why the last refused delivery was refused (status and message).")
    last_error_at: datetime | None


@strawberry.type(description="Where a monitoring tool posts: its provider, an `ins_` key (shown once), an optional "
                             "HMAC secret, a rate limit, and what it received.")
class WebhookConfig(Node):
    name: str
    provider: WebhookProvider
    enabled: bool
    key_prefix: str = strawberry.field(description="The first characters of the key, to tell keys apart.")
    secret_set: bool = strawberry.field(description="Deliveries must be signed with the config's secret.")
    rate_limit_per_minute: int = strawberry.field(description="Deliveries a minute; more get 429.")
    previous_key_expires_at: datetime | None = strawberry.field(
        description="After a key regeneration: until when the previous key still works.")
    route_path: str = strawberry.field(
        description="Where this config's tool posts (`/api/grafana/alerts`, ...); for GENERIC the ingest URL template "
                    "`/api/v1/webhooks/ingest/{apiKey}`. The key is never filled in: it is shown only once.")
    created_at: datetime
    updated_at: datetime
    organization_id: strawberry.Private[uuid.UUID]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: ConfigRow) -> "WebhookConfig":
        return cls(
            id=to_global_id("WebhookConfig", row.id), name=row.name, provider=WebhookProvider(row.provider),
            enabled=row.enabled, key_prefix=row.key_prefix, secret_set=row.secret_encrypted is not None,
            rate_limit_per_minute=row.rate_limit_per_minute, previous_key_expires_at=row.previous_key_expires_at,
            route_path=service.route_path(row.provider), created_at=row.created_at, updated_at=row.updated_at,
            organization_id=row.organization_id, row_id=row.id,
        )

    @strawberry.field(description="Deliveries received with this config's key.")
    async def stats(self, info: strawberry.Info) -> WebhookConfigStats:
        s = await info.context.loader(service.load_webhook_config_stats).load(self.row_id)
        s = s or service.Stats()
        return WebhookConfigStats(deliveries_accepted=s.deliveries_accepted, deliveries_rejected=s.deliveries_rejected,
                                  last_delivery_at=s.last_delivery_at, last_error=s.last_error,
                                  last_error_at=s.last_error_at)

    @strawberry.field(description="`routePath` as an absolute URL (INSIGHTS_PUBLIC_URL); without the key.")
    def ingest_url(self, info: strawberry.Info) -> str:
        return info.context.settings.base_url.rstrip("/") + self.route_path

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, account_loaders.load_organizations, Organization, self.organization_id)


@strawberry.type(description="One inbound webhook request and its outcome. Accepted deliveries keep their raw body, "
                             "so they can be replayed (`POST /api/v1/webhooks/replay/{deliveryId}`).")
class WebhookDelivery(Node):
    provider: WebhookProvider
    status: WebhookDeliveryStatus
    http_status: int = strawberry.field(description="What the sender was answered.")
    error: str | None = strawberry.field(description="Why it was refused.")
    error_code: str | None = strawberry.field(description="The `code` of the refusal (`INVALID_SIGNATURE`, ...).")
    received_at: datetime
    replayed_at: datetime | None
    provider_delivery_id: str | None = strawberry.field(description="The sender's own delivery id (duplicate detection).")
    alert_ids: list[strawberry.ID] = strawberry.field(description="`Alert`s it created or changed.")
    incident_ids: list[strawberry.ID] = strawberry.field(description="`Incident`s it opened or changed.")
    change_event_ids: list[strawberry.ID] = strawberry.field(description="`ChangeEvent`s (deployments) it recorded.")
    duplicate_of_id: strawberry.ID | None = strawberry.field(description="For a DUPLICATE: the delivery it repeats.")
    headers: JSON = strawberry.field(description="Request headers, without credentials (Authorization, keys, cookies).")
    content_type: str | None
    size: int = strawberry.field(description="Body size in bytes.")
    config_id: strawberry.Private[uuid.UUID | None]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: DeliveryRow) -> "WebhookDelivery":
        return cls(
            id=to_global_id("WebhookDelivery", row.id), provider=WebhookProvider(row.provider), status=row.status,
            http_status=row.http_status, error=row.error, error_code=row.error_code, received_at=row.created_at,
            replayed_at=row.replayed_at, provider_delivery_id=row.provider_delivery_id,
            alert_ids=_gids("Alert", row.alert_ids), incident_ids=_gids("Incident", row.incident_ids),
            change_event_ids=_gids("ChangeEvent", row.change_event_ids),
            duplicate_of_id=to_global_id("WebhookDelivery", row.duplicate_of_id) if row.duplicate_of_id else None,
            headers=row.headers or {}, content_type=row.content_type, size=row.size or 0,
            config_id=row.config_id, row_id=row.id,
        )

    @strawberry.field(description="The config whose key it came with (null once that config is deleted).")
    async def config(self, info: strawberry.Info) -> WebhookConfig | None:
        return await load_one(info, service.load_webhook_configs, WebhookConfig, self.config_id)

    @strawberry.field(description="The body as received (UTF-8; invalid bytes replaced). Null when none was kept: "
                                  "duplicates, and refusals before the sender proved its key and signature.")
    async def raw_body(self, info: strawberry.Info) -> str | None:
        raw = await info.context.loader(delivery_service.load_delivery_bodies).load(self.row_id)
        return raw.decode("utf-8", "replace") if raw else None


register_node("WebhookConfig", WebhookConfig, service.load_webhook_configs)
register_node("WebhookDelivery", WebhookDelivery, delivery_service.load_webhook_deliveries)


# --- queries ---------------------------------------------------------------------------------

@strawberry.input(description="Narrow `webhookDeliveries`; every field is optional.")
class WebhookDeliveryFilter:
    config_id: strawberry.ID | None = None
    status: WebhookDeliveryStatus | None = None
    provider: WebhookProvider | None = None
    since: datetime | None = strawberry.field(default=None, description="Received at or after.")
    until: datetime | None = strawberry.field(default=None, description="Received before.")


@strawberry.type
class WebhooksQuery:
    @strawberry.field(description="An organization's webhook configs, newest first. Any member.")
    async def webhook_configs(self, info: strawberry.Info, organization_id: strawberry.ID,
                              first: int | None = None, after: str | None = None, last: int | None = None,
                              before: str | None = None) -> Connection[WebhookConfig]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        page = await keyset_page(ctx.rt.db, service.configs_query(ctx.principal, org),
                                 [ConfigRow.created_at, ConfigRow.id], PageRequest(first, after, last, before),
                                 default=ctx.settings.page_size_default, maximum=ctx.settings.page_size_max)
        return connection_from_page(page, WebhookConfig.from_row)

    @strawberry.field(description="Inbound webhook deliveries of an organization with their outcome, newest first. "
                                  "Any member.")
    async def webhook_deliveries(self, info: strawberry.Info, organization_id: strawberry.ID,
                                 filter: WebhookDeliveryFilter | None = None, first: int | None = None,
                                 after: str | None = None, last: int | None = None,
                                 before: str | None = None) -> Connection[WebhookDelivery]:
        ctx = info.context
        org = decode_id(organization_id, "Organization", "organizationId")
        f = filter or WebhookDeliveryFilter()
        q = delivery_service.deliveries_query(ctx.principal, org, delivery_service.DeliveryFilter(
            config_id=decode_id(f.config_id, "WebhookConfig", "filter.configId") if f.config_id else None,
            status=DeliveryStatus(f.status.value) if f.status is not None else None,
            provider=f.provider.value if f.provider is not None else None,
            since=f.since, until=f.until))
        page = await keyset_page(ctx.rt.db, q, [DeliveryRow.created_at, DeliveryRow.id],
                                 PageRequest(first, after, last, before),
                                 default=ctx.settings.page_size_default, maximum=ctx.settings.page_size_max)
        return connection_from_page(page, WebhookDelivery.from_row)


# --- mutations -------------------------------------------------------------------------------

@strawberry.input
class WebhookConfigCreateInput:
    organization_id: strawberry.ID
    name: str = strawberry.field(description="1 to 255 characters.")
    provider: WebhookProvider
    enabled: bool = True
    secret: str | None = strawberry.field(default=None, description="HMAC-SHA256 secret (8 to 1024 characters): "
                                          "deliveries must then be signed (PagerDuty: its own scheme; others: "
                                          "`x-webhook-signature: sha256=<hex>`).")
    rate_limit_per_minute: int | None = strawberry.field(default=None, description="Default 1200.")


@strawberry.input(description="A patch: absent fields stay as they are.")
class WebhookConfigUpdateInput:
    id: strawberry.ID
    # Nullable in the schema so that an explicit null is answered with a VALIDATION user error
    # naming the field (only `secret` may be null: it removes the secret).
    name: strawberry.Maybe[str | None]
    provider: strawberry.Maybe[WebhookProvider | None]
    enabled: strawberry.Maybe[bool | None]
    secret: strawberry.Maybe[str | None] = strawberry.field(description="A new secret; null removes it.")
    rate_limit_per_minute: strawberry.Maybe[int | None]


@strawberry.input
class WebhookConfigDeleteInput:
    id: strawberry.ID


@strawberry.input
class WebhookConfigRegenerateKeyInput:
    id: strawberry.ID


@strawberry.type
class WebhookConfigCreatePayload:
    webhook_config: WebhookConfig | None = None
    key: str | None = strawberry.field(default=None, description="The `ins_` key, shown only this once.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookConfigUpdatePayload:
    webhook_config: WebhookConfig | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookConfigDeletePayload:
    deleted_webhook_config_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookConfigRegenerateKeyPayload:
    webhook_config: WebhookConfig | None = None
    key: str | None = strawberry.field(default=None, description="The new key, shown only this once. The previous "
                                       "one keeps working until `webhookConfig.previousKeyExpiresAt`.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(description="Create a webhook config (owners, editors). The payload's `key` is shown once.")
    async def webhook_config_create(self, info: strawberry.Info,
                                    input: WebhookConfigCreateInput) -> WebhookConfigCreatePayload:
        ctx = info.context

        async def work() -> WebhookConfigCreatePayload:
            org = _decode(input.organization_id, "Organization", "organizationId")
            config, key = await service.create_config(
                ctx.rt, ctx.principal, org, name=input.name, provider=input.provider.value, enabled=input.enabled,
                secret=input.secret, rate_limit_per_minute=input.rate_limit_per_minute, request_id=ctx.request_id)
            return WebhookConfigCreatePayload(webhook_config=WebhookConfig.from_row(config), key=key)

        return await mutate(WebhookConfigCreatePayload, work)

    @strawberry.mutation(description="Change a webhook config (owners, editors): name, provider, enabled, secret "
                                     "(null removes it), rate limit.")
    async def webhook_config_update(self, info: strawberry.Info,
                                    input: WebhookConfigUpdateInput) -> WebhookConfigUpdatePayload:
        ctx = info.context

        async def work() -> WebhookConfigUpdatePayload:
            config_id = _decode(input.id, "WebhookConfig", "id")
            changes = {}
            if input.name is not None:
                changes["name"] = input.name.value
            if input.provider is not None:
                changes["provider"] = input.provider.value.value if input.provider.value is not None else None
            if input.enabled is not None:
                changes["enabled"] = input.enabled.value
            if input.secret is not None:
                changes["secret"] = input.secret.value
            if input.rate_limit_per_minute is not None:
                changes["rate_limit_per_minute"] = input.rate_limit_per_minute.value
            config = await service.update_config(ctx.rt, ctx.principal, config_id, request_id=ctx.request_id,
                                                 **changes)
            return WebhookConfigUpdatePayload(webhook_config=WebhookConfig.from_row(config))

        return await mutate(WebhookConfigUpdatePayload, work)

    @strawberry.mutation(description="Delete a webhook config (owners, editors); its key stops working at once. Its "
                                     "deliveries and what they brought in stay.")
    async def webhook_config_delete(self, info: strawberry.Info,
                                    input: WebhookConfigDeleteInput) -> WebhookConfigDeletePayload:
        ctx = info.context

        async def work() -> WebhookConfigDeletePayload:
            config = await service.delete_config(ctx.rt, ctx.principal, _decode(input.id, "WebhookConfig", "id"),
                                                 request_id=ctx.request_id)
            return WebhookConfigDeletePayload(deleted_webhook_config_id=to_global_id("WebhookConfig", config.id))

        return await mutate(WebhookConfigDeletePayload, work)

    @strawberry.mutation(description="A new key for a webhook config (owners, editors), shown once in `key`. The "
                                     "previous key keeps working for INSIGHTS_WEBHOOK_KEY_GRACE_HOURS (24 h).")
    async def webhook_config_regenerate_key(self, info: strawberry.Info,
                                            input: WebhookConfigRegenerateKeyInput) -> WebhookConfigRegenerateKeyPayload:
        ctx = info.context

        async def work() -> WebhookConfigRegenerateKeyPayload:
            config, key = await service.regenerate_key(ctx.rt, ctx.principal, _decode(input.id, "WebhookConfig", "id"),
                                                       request_id=ctx.request_id)
            return WebhookConfigRegenerateKeyPayload(webhook_config=WebhookConfig.from_row(config), key=key)

        return await mutate(WebhookConfigRegenerateKeyPayload, work)
