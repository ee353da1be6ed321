"""Webhook configs: where a monitoring tool posts, and with which credentials.

Owners and editors create, change, delete configs and regenerate their keys; viewers read them.

- The key (`ins_` + 43 URL-safe characters) is returned once, by `create_config` and
  `regenerate_key`; only its SHA-256 (`key_hash`) and its first characters (`key_prefix`) are
  stored.
- `regenerate_key` keeps the previous key valid for `INSIGHTS_WEBHOOK_KEY_GRACE_HOURS` (24 h)
  (`previous_key_hash`, `previous_key_expires_at`), so a sender can be switched to the new key
  without losing deliveries. Only one previous key is kept: regenerating again within the grace
  period ends the older key at once.
- The optional HMAC secret is stored encrypted (server.security.secrets), because verifying a
  signature needs it back; the API only says whether one is set.
- A config of provider X is accepted on provider X's route only (`route_path`), and on the
  generic ingest URL `/api/v1/webhooks/ingest/{apiKey}`, which normalizes with the config's own
  provider (so a tool that can only set a URL can use it too). A `generic` config has no provider
  route: it posts to the ingest URL.
- Every change writes an audit entry (never the key, its hash or the secret).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, array_agg

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Role
from server.domains.accounts.validation import clean_required_name, collect
from server.domains.incidents.models import WebhookConfig, WebhookConfigStats
from server.domains.incidents.normalizers import PROVIDERS
from server.domains.platform import audit
from server.errors import invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal
from server.security.secrets import encrypt_secret
from server.security.tokens import sha256_hex

KEY_PREFIX = "ins_"
KEY_PREFIX_LENGTH = 12  # "ins_" + 8 characters: enough to tell keys apart, far too few to guess one
KEY_MAX_LENGTH = 200  # anything longer is not one of ours (and is not worth hashing)
NAME_MAX = 255
SECRET_MIN, SECRET_MAX = 8, 1024
RATE_MIN, RATE_MAX = 1, 1_000_000
WHAT = "webhook config"
DEFAULT_RATE_PER_MINUTE: int = WebhookConfig.__table__.c.rate_limit_per_minute.default.arg  # the model's (1200)

# The provider routes of the REST shim (server/rest/webhooks.py registers exactly these).
PROVIDER_ROUTES: dict[str, str] = {
    "grafana": "/api/grafana/alerts",
    "datadog": "/api/datadog/webhook",
    "netdata": "/api/netdata/alerts",
    "pagerduty": "/api/pagerduty/webhook",
    "splunk": "/api/splunk/alerts",
    "jenkins": "/api/jenkins/deployment",
    "cloudbees": "/api/cloudbees/deployment",
    "dynatrace": "/api/dynatrace/problems",
    "bigpanda": "/api/bigpanda/webhook",
    "alertmanager": "/api/alertmanager/alerts",
}
INGEST_PATH_TEMPLATE = "/api/v1/webhooks/ingest/{apiKey}"


def route_path(provider: str) -> str:
    """Where a config of `provider` posts. The generic ingest path is a template: the key goes in
    place of `{apiKey}` (the API never shows the key again, so it never shows that URL filled in)."""
    return PROVIDER_ROUTES.get(provider, INGEST_PATH_TEMPLATE)


def new_webhook_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(value: str | None) -> bool:
    return bool(value) and value.startswith(KEY_PREFIX) and len(value) <= KEY_MAX_LENGTH


def config_snapshot(c: WebhookConfig) -> dict:
    """What the audit log keeps of a config: never the key, its hash or the secret."""
    return {"name": c.name, "provider": c.provider, "enabled": c.enabled, "keyPrefix": c.key_prefix,
            "secretSet": c.secret_encrypted is not None, "rateLimitPerMinute": c.rate_limit_per_minute}


# --- validation ------------------------------------------------------------------------------

def _provider(value: str | None) -> str:
    provider = (value or "").strip().lower()
    if provider not in PROVIDERS:
        raise invalid(f"provider must be one of {', '.join(PROVIDERS)}", ["input", "provider"])
    return provider


def _secret(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or not SECRET_MIN <= len(value) <= SECRET_MAX:
        raise invalid(f"secret must be {SECRET_MIN} to {SECRET_MAX} characters (null for none)", ["input", "secret"])
    return value


def _rate(value: int | None) -> int | None:
    if value is not None and not RATE_MIN <= value <= RATE_MAX:
        raise invalid(f"rateLimitPerMinute must be between {RATE_MIN} and {RATE_MAX}", ["input", "rateLimitPerMinute"])
    return value


def _name(value: str | None) -> str:
    return clean_required_name(value, ["input", "name"], NAME_MAX)


# --- commands --------------------------------------------------------------------------------

async def create_config(rt: Runtime, principal: Principal, organization_id: uuid.UUID, *, name: str,
                        provider: str, enabled: bool = True, secret: str | None = None,
                        rate_limit_per_minute: int | None = None,
                        request_id: str | None = None) -> tuple[WebhookConfig, str]:
    """Returns the config and its key; the key is never readable again."""
    principal.require_role(organization_id, Role.editor, "organization")
    name, provider, secret, rate = collect(lambda: _name(name), lambda: _provider(provider),
                                           lambda: _secret(secret), lambda: _rate(rate_limit_per_minute))
    key = new_webhook_key()
    now = utcnow()
    config = WebhookConfig(
        id=uuid.uuid4(), organization_id=organization_id, name=name, provider=provider, enabled=enabled,
        key_hash=sha256_hex(key), key_prefix=key[:KEY_PREFIX_LENGTH],
        secret_encrypted=encrypt_secret(rt.settings.signing_key(), secret) if secret is not None else None,
        created_by_id=principal.user_id, created_at=now, updated_at=now,
    )
    config.rate_limit_per_minute = rate if rate is not None else DEFAULT_RATE_PER_MINUTE
    async with rt.db.unit_of_work() as uow:
        uow.session.add(config)
        audit.record(uow, principal, "webhook_config.create", organization_id=organization_id,
                     target_type="WebhookConfig", target_id=config.id,
                     summary=f"created {provider} webhook config {name}", after=config_snapshot(config),
                     request_id=request_id)
    return config, key


async def _locked_for_change(uow: UnitOfWork, principal: Principal, config_id: uuid.UUID) -> WebhookConfig:
    """The config, locked; NOT_FOUND when missing or of another organization, FORBIDDEN for viewers."""
    config = (await uow.session.execute(select(WebhookConfig).where(WebhookConfig.id == config_id)
                                        .with_for_update())).scalar_one_or_none()
    if config is None or principal.role_in(config.organization_id) is None:
        raise not_found(WHAT, ["input", "id"])
    principal.require_role(config.organization_id, Role.editor, WHAT)
    return config


_UNSET = object()


async def update_config(rt: Runtime, principal: Principal, config_id: uuid.UUID, *, name=_UNSET,  # noqa: ANN001
                        provider=_UNSET, enabled=_UNSET, secret=_UNSET, rate_limit_per_minute=_UNSET,
                        request_id: str | None = None) -> WebhookConfig:
    """A patch: only the arguments given change. `secret=None` removes the secret; `enabled` and
    `rate_limit_per_minute` cannot be null."""
    checks = []
    if name is not _UNSET:
        checks.append(lambda: ("name", _name(name)))
    if provider is not _UNSET:
        checks.append(lambda: ("provider", _provider(provider)))
    if enabled is not _UNSET:
        def _enabled() -> tuple[str, bool]:
            if not isinstance(enabled, bool):
                raise invalid("enabled must be true or false", ["input", "enabled"])
            return "enabled", enabled
        checks.append(_enabled)
    if secret is not _UNSET:
        checks.append(lambda: ("secret", _secret(secret)))
    if rate_limit_per_minute is not _UNSET:
        def _rate_given() -> tuple[str, int]:
            if rate_limit_per_minute is None:
                raise invalid("rateLimitPerMinute cannot be null", ["input", "rateLimitPerMinute"])
            return "rate", _rate(rate_limit_per_minute)
        checks.append(_rate_given)
    changes = dict(collect(*checks))
    async with rt.db.unit_of_work() as uow:
        config = await _locked_for_change(uow, principal, config_id)
        before = config_snapshot(config)
        if "name" in changes:
            config.name = changes["name"]
        if "provider" in changes:
            config.provider = changes["provider"]
        if "enabled" in changes:
            config.enabled = changes["enabled"]
        if "secret" in changes:
            secret_value = changes["secret"]
            config.secret_encrypted = (encrypt_secret(rt.settings.signing_key(), secret_value)
                                       if secret_value is not None else None)
        if "rate" in changes:
            config.rate_limit_per_minute = changes["rate"]
        after = config_snapshot(config)
        secret_changed = changes.get("secret") is not None and before["secretSet"]  # a new secret replaced one
        if after != before or secret_changed:
            config.updated_at = utcnow()
            if secret_changed:
                after = {**after, "secretChanged": True}
            audit.record(uow, principal, "webhook_config.update", organization_id=config.organization_id,
                         target_type="WebhookConfig", target_id=config.id,
                         summary=f"changed webhook config {config.name}",
                         before={k: v for k, v in before.items() if after.get(k) != v},
                         after={k: v for k, v in after.items() if before.get(k) != v}, request_id=request_id)
    return config


async def delete_config(rt: Runtime, principal: Principal, config_id: uuid.UUID, *,
                        request_id: str | None = None) -> WebhookConfig:
    """Its key stops working at once. Deliveries, alerts and change events it brought in stay
    (their `config` becomes null)."""
    async with rt.db.unit_of_work() as uow:
        config = await _locked_for_change(uow, principal, config_id)
        await uow.session.delete(config)
        audit.record(uow, principal, "webhook_config.delete", organization_id=config.organization_id,
                     target_type="WebhookConfig", target_id=config.id,
                     summary=f"deleted webhook config {config.name}", before=config_snapshot(config),
                     request_id=request_id)
    return config


async def regenerate_key(rt: Runtime, principal: Principal, config_id: uuid.UUID, *,
                         request_id: str | None = None) -> tuple[WebhookConfig, str]:
    """A new key, returned once; the current one stays valid for the grace period."""
    key = new_webhook_key()
    now = utcnow()
    grace = timedelta(hours=rt.settings.webhook_key_grace_hours)
    async with rt.db.unit_of_work() as uow:
        config = await _locked_for_change(uow, principal, config_id)
        before = config_snapshot(config)
        if grace > timedelta(0):
            config.previous_key_hash, config.previous_key_expires_at = config.key_hash, now + grace
        else:
            config.previous_key_hash, config.previous_key_expires_at = None, None
        config.key_hash, config.key_prefix = sha256_hex(key), key[:KEY_PREFIX_LENGTH]
        config.updated_at = now
        expires = config.previous_key_expires_at
        audit.record(uow, principal, "webhook_config.regenerate_key", organization_id=config.organization_id,
                     target_type="WebhookConfig", target_id=config.id,
                     summary=f"regenerated the key of webhook config {config.name}",
                     before={"keyPrefix": before["keyPrefix"]},
                     after={"keyPrefix": config.key_prefix,
                            "previousKeyExpiresAt": expires.isoformat() if expires else None},
                     request_id=request_id)
    return config, key


async def expire_previous_key(rt: Runtime, config_id: uuid.UUID, at: datetime | None = None) -> None:
    """End the grace period of the previous key now (or at `at`): for operators who know the old
    key leaked, and for tests."""
    async with rt.db.unit_of_work() as uow:
        config = await uow.session.get(WebhookConfig, config_id, with_for_update=True)
        if config is not None and config.previous_key_hash is not None:
            config.previous_key_expires_at = at or utcnow()


# --- queries ---------------------------------------------------------------------------------

def configs_query(principal: Principal, organization_id: uuid.UUID) -> Select:
    """An organization's configs (NOT_FOUND for non-members, like a missing organization)."""
    principal.require_member(organization_id)
    return select(WebhookConfig).where(WebhookConfig.organization_id == organization_id)


async def get_config(rt: Runtime, principal: Principal, config_id: uuid.UUID) -> WebhookConfig:
    config = (await load_webhook_configs(rt, principal, [config_id]))[0]
    if config is None:
        raise not_found(WHAT)
    return config


async def load_webhook_configs(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[WebhookConfig | None]:
    """Batch loader: configs of the principal's organizations, in key order, None for the rest."""
    orgs = principal.organization_ids
    if not orgs or not ids:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(WebhookConfig).where(WebhookConfig.id.in_(ids),
                                                            WebhookConfig.organization_id.in_(orgs)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]


@dataclass(frozen=True)
class Stats:
    deliveries_accepted: int = 0
    deliveries_rejected: int = 0
    last_delivery_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


async def load_webhook_config_stats(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Stats | None]:
    """Batch loader: each config's counters, summed over its shard rows (one GROUP BY for the batch).
    None for configs the principal may not see; zeros for a config that received nothing yet."""
    orgs = principal.organization_ids
    if not orgs or not ids:
        return [None] * len(ids)
    st = WebhookConfigStats
    last_error = array_agg(aggregate_order_by(st.last_error, st.last_error_at.desc().nulls_last()))[1]
    async with rt.db.session() as s:
        visible = set((await s.execute(select(WebhookConfig.id).where(
            WebhookConfig.id.in_(ids), WebhookConfig.organization_id.in_(orgs)))).scalars())
        rows = (await s.execute(
            select(st.config_id, func.sum(st.deliveries_accepted), func.sum(st.deliveries_rejected),
                   func.max(st.last_delivery_at), last_error, func.max(st.last_error_at))
            .where(st.config_id.in_(list(visible))).group_by(st.config_id))).all() if visible else []
    found = {r[0]: Stats(int(r[1] or 0), int(r[2] or 0), r[3], r[4], r[5]) for r in rows}
    return [found.get(i, Stats()) if i in visible else None for i in ids]
