"""CloudBees CI: the Notification plugin (same body as Jenkins) or the Outbound WebHook plugin.

A body with a `build` object is the Notification plugin's and is read by jenkins.py. The Outbound
WebHook plugin posts `{projectName, buildName, buildNumber, buildUrl, buildVars, event}`:

- result: `event` start -> started, success, failure, unstable (any case: older releases
  serialised the enum name); `pipeline` (sent by the `webhook` pipeline step at an arbitrary
  point) -> started.
- `buildVars` is Java's `Map.toString()` (`{SERVICE=api, ENVIRONMENT=prod}`), not JSON: it is
  parsed as `KEY=value` pairs split before each `, KEY=`. SERVICE/ENVIRONMENT/VERSION (and the
  other names jenkins.py accepts) come from it; service falls back to the project name.
- labels: the build variables, except names that suggest a secret (and, for `pipeline`, only
  the names above, since the step sends the whole environment).
- title: `<projectName> #<n>` (n from buildNumber, else the build URL, else buildName);
  fingerprint: `buildUrl`.

A failed deployment also raises a deploy alert, exactly as for Jenkins.

Sources: https://docs.cloudbees.com/plugins/ci/notification ; https://docs.cloudbees.com/plugins/ci/outbound-webhook ;
jenkinsci/outbound-webhook-plugin src/main/java/org/jenkins/plugins/JobListener.java, NotificationEvent.java.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from .common import require_object, text
from .jenkins import (
    BRANCH_PARAMS,
    COMMIT_PARAMS,
    ENVIRONMENT_PARAMS,
    SERVICE_PARAMS,
    VERSION_PARAMS,
    deploy_alerts,
    normalize_notification,
    param,
    public_params,
)
from .types import Normalized, NormalizedChange, PayloadRejected

_EVENTS = {
    "start": "started",
    "started": "started",
    "success": "success",
    "failure": "failure",
    "unstable": "unstable",
    "aborted": "aborted",
    "pipeline": "started",
}
# A pipeline step's buildVars is the whole environment: keep only the names we read.
_PIPELINE_LABELS = (*SERVICE_PARAMS, *ENVIRONMENT_PARAMS, *VERSION_PARAMS, *COMMIT_PARAMS, *BRANCH_PARAMS, "BUILD_NUMBER", "JOB_NAME")
_VAR_START_RE = re.compile(r"(?:^|, )([A-Za-z_][A-Za-z0-9_.\-]*)=")
_TRAILING_NUMBER_RE = re.compile(r"/(\d+)/?$")


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    body = require_object(body, "$")
    if "build" in body:
        return normalize_notification(body, "cloudbees")
    if "buildUrl" in body or "event" in body:
        return _outbound(body)
    raise PayloadRejected("expected a Notification plugin body ('build') or an Outbound WebHook body ('buildUrl')", "build")


def _outbound(body: dict) -> Normalized:
    build_url = text(body.get("buildUrl"))
    if build_url is None:
        raise PayloadRejected("an Outbound WebHook event has a buildUrl", "buildUrl")
    event = (text(body.get("event")) or "").lower()
    if event not in _EVENTS:
        raise PayloadRejected("event is one of start, success, failure, unstable, pipeline", "event")
    raw_vars = body.get("buildVars")
    if raw_vars is not None and not isinstance(raw_vars, (str, dict)):
        raise PayloadRejected("buildVars is Map.toString() text", "buildVars")
    variables = parse_build_vars(raw_vars)
    project = text(body.get("projectName")) or "cloudbees job"
    number = _build_number(body, build_url)
    change = NormalizedChange(
        provider="cloudbees",
        fingerprint=build_url,
        title=f"{project} #{number}" if number else project,
        service=param(variables, SERVICE_PARAMS) or project.rsplit("/", 1)[-1],
        environment=param(variables, ENVIRONMENT_PARAMS),
        version=param(variables, VERSION_PARAMS),
        commit=param(variables, COMMIT_PARAMS),
        branch=param(variables, BRANCH_PARAMS),
        result=_EVENTS[event],
        phase=None,
        occurred_at=None,  # the plugin sends no time
        url=build_url,
        labels={**public_params(variables, _PIPELINE_LABELS if event == "pipeline" else None), "job": project, "event": event},
    )
    final = event in ("success", "failure", "unstable", "aborted")
    return Normalized(alerts=deploy_alerts(change, final), change_events=[change], delivery_id=None)


def parse_build_vars(value: object) -> dict[str, str]:
    """`{A=1, B=x, y}` (Java Map.toString) -> {'A': '1', 'B': 'x, y'}; a JSON object as is."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    if not isinstance(value, str):
        return {}
    s = value.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    starts = list(_VAR_START_RE.finditer(s))
    out: dict[str, str] = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(s)
        out.setdefault(m.group(1), s[m.end():end])
    return out


def _build_number(body: dict, build_url: str) -> str | None:
    number = body.get("buildNumber")
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return str(number)
    m = _TRAILING_NUMBER_RE.search(build_url)
    if m:
        return m.group(1)
    name = text(body.get("buildName"))
    return name.lstrip("#") if name else None
