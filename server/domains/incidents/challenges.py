"""Endpoint-ownership challenges of monitoring tools: Netdata Cloud's `?crc_token=`.

Netdata Cloud's webhook integration asks for a "challenge secret" and checks the endpoint when the
integration is created or changed: `GET <webhook url>?crc_token=<random string>`, answered 200
within 5 seconds with `{"response_token": "sha256=" + base64(HMAC-SHA256(key=challenge secret,
msg=crc_token))}` (Netdata's webhook integration docs, "Challenge secret"). The request carries the
integration's authentication (its Bearer token or Basic auth) and the URL's own query string.

Which secret: the challenge secret is whatever the user types into Netdata; Netdata never learns
anything from us. So the config must hold a value the user also has:
- the `ins_` key the challenge was sent with (the current key, or the previous one within its grace
  period): the user already has it, and pastes it as the challenge secret too. This is the usual
  case: Netdata Cloud does not sign its deliveries (only static extra headers), so a Netdata config
  normally has no HMAC secret (with one, its unsigned deliveries would be refused with 401);
- the config's HMAC secret, when it has one (a user who sets one expects it to be the shared secret).

The challenge is authenticated like a delivery (the key in `Authorization: Bearer`, `X-Insights-Key`,
HTTP Basic or `?token=`; the config enabled and of provider `netdata`) and counts against the
config's rate limit, but it is not a delivery: nothing is stored. Refusals are `DeliveryRejected`
(400 no `crc_token`, 401 missing/unknown key, 403 disabled config or another provider's key, 429).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, select

from server.db.base import utcnow
from server.domains.incidents.deliveries import DeliveryRejected
from server.domains.incidents.models import WebhookConfig
from server.domains.incidents.signatures import netdata_crc_response
from server.domains.incidents.webhook_configs import looks_like_key, route_path
from server.runtime import Runtime
from server.security.rate_limit import Window, hit
from server.security.secrets import decrypt_secret
from server.security.tokens import sha256_hex

log = logging.getLogger("insights.webhooks")

CRC_TOKEN_MAX = 1024  # Netdata sends a short random string; anything longer is not a challenge


async def _config_of(rt: Runtime, key: str, now: datetime) -> WebhookConfig | None:
    if not looks_like_key(key):
        return None
    digest = sha256_hex(key)
    async with rt.db.session() as s:
        return (await s.execute(select(WebhookConfig).where(or_(
            WebhookConfig.key_hash == digest,
            (WebhookConfig.previous_key_hash == digest) & (WebhookConfig.previous_key_expires_at > now),
        )).limit(1))).scalar_one_or_none()


async def netdata_challenge(rt: Runtime, key: str | None, crc_token: str | None) -> dict[str, str]:
    """The JSON body answering Netdata Cloud's challenge, or DeliveryRejected."""
    if not crc_token:
        raise DeliveryRejected(400, "MISSING_CRC_TOKEN", "GET on this route answers Netdata Cloud's challenge only: "
                               "send ?crc_token=<token>; alerts are POSTed", record=False)
    if len(crc_token) > CRC_TOKEN_MAX:
        raise DeliveryRejected(400, "INVALID_CRC_TOKEN", f"crc_token is longer than {CRC_TOKEN_MAX} characters",
                               record=False)
    if not key:
        raise DeliveryRejected(401, "UNAUTHENTICATED", "missing webhook key: set the config's ins_ key as the "
                               "integration's Bearer token, or add ?token=<key> to its URL", record=False)
    now = utcnow()
    config = await _config_of(rt, key, now)
    if config is None:
        raise DeliveryRejected(401, "UNAUTHENTICATED", "unknown webhook key (or a previous key past its grace period)",
                               record=False)
    verdict = await hit(rt.redis, f"webhook:{config.id}", [Window(60, config.rate_limit_per_minute)])
    if not verdict.allowed:
        raise DeliveryRejected(429, "RATE_LIMITED", f"over this webhook config's rate of "
                               f"{config.rate_limit_per_minute} requests a minute; retry in {verdict.retry_after} s",
                               {"limit": config.rate_limit_per_minute, "retryAfter": verdict.retry_after},
                               headers={"Retry-After": str(verdict.retry_after)}, record=False)
    if not config.enabled:
        raise DeliveryRejected(403, "CONFIG_DISABLED", f"webhook config {config.name!r} is disabled", record=False)
    if config.provider != "netdata":
        raise DeliveryRejected(403, "WRONG_ROUTE", f"this key belongs to a {config.provider} webhook config, and "
                               "only Netdata configs answer the crc_token challenge",
                               {"provider": config.provider, "routePath": route_path(config.provider)}, record=False)
    secret = key
    if config.secret_encrypted is not None:
        secret = decrypt_secret(rt.settings.signing_key(), config.secret_encrypted)
        if secret is None:
            raise DeliveryRejected(401, "INVALID_SIGNATURE", "the config's secret cannot be read since the server key "
                                   "changed; set the secret again (webhookConfigUpdate)", record=False)
    log.info("answered Netdata's crc_token challenge for webhook config %s", config.id)
    return netdata_crc_response(crc_token, secret)
