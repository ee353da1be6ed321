"""Inbound monitoring webhooks -> plain alerts and change events.

    from server.domains.incidents.normalizers import normalize, PayloadRejected
    result = normalize("grafana", body, headers)   # Normalized(alerts=[...], change_events=[...])

Pure code: a parsed JSON body (and the request headers) in, dataclasses out; no database, no HTTP
framework. One module per provider reads that provider's documented format; each module's
docstring says how status, severity and fingerprint are chosen. Payloads the format does not allow
raise `PayloadRejected` (the REST shim answers 422 with its `path`); valid deliveries with nothing
to act on return empty lists. Signatures are checked separately (`..signatures`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from . import (
    alertmanager,
    bigpanda,
    cloudbees,
    datadog,
    dynatrace,
    generic,
    grafana,
    jenkins,
    netdata,
    pagerduty,
    splunk,
)
from .types import Normalized, NormalizedAlert, NormalizedChange, PayloadRejected

Normalizer = Callable[[object, Mapping[str, str] | None, datetime | None], Normalized]

_REGISTRY: dict[str, Normalizer] = {
    "grafana": grafana.normalize,
    "alertmanager": alertmanager.normalize,
    "datadog": datadog.normalize,
    "netdata": netdata.normalize,
    "pagerduty": pagerduty.normalize,
    "splunk": splunk.normalize,
    "jenkins": jenkins.normalize,
    "cloudbees": cloudbees.normalize,
    "dynatrace": dynatrace.normalize,
    "bigpanda": bigpanda.normalize,
    "generic": generic.normalize,
}

PROVIDERS: tuple[str, ...] = tuple(_REGISTRY)

__all__ = [
    "PROVIDERS",
    "Normalized",
    "NormalizedAlert",
    "NormalizedChange",
    "PayloadRejected",
    "normalize",
]


def normalize(
    provider: str,
    body: object,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> Normalized:
    """Normalize one delivery of `provider` (one of PROVIDERS).

    `now` is only used where a payload leaves the state to the clock (an Alertmanager alert
    without a status but with an endsAt). Raises ValueError for an unknown provider (a routing
    bug, not the sender's fault) and PayloadRejected for a body the provider's format does not
    allow. A normalizer bug on odd input is also reported as PayloadRejected rather than an
    exception the shim would turn into a 500: the raw body is stored, so it can be replayed once
    fixed.
    """
    try:
        fn = _REGISTRY[provider]
    except KeyError:
        raise ValueError(f"unknown webhook provider {provider!r}; expected one of {', '.join(PROVIDERS)}") from None
    try:
        return fn(body, headers, now)
    except PayloadRejected:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        raise PayloadRejected(f"could not read the {provider} payload ({type(exc).__name__}: {exc})") from exc
