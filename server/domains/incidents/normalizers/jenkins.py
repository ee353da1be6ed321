"""Jenkins Notification plugin (JSON format): one deployment change event per delivery.

The body is the plugin's JobState: `{name, display_name, url, build: {full_url, number, queue_id,
timestamp, duration, phase, status, url, scm: {url, branch, commit, changes, culprits},
parameters, log, notes, artifacts, test_summary}}`; Gson omits nulls, so `status` is absent until
the build has a result and `full_url` is absent when Jenkins has no root URL.

- result: `build.status` (SUCCESS, FAILURE, UNSTABLE, ABORTED, NOT_BUILT), else the phase while
  running (QUEUED -> queued, STARTED or anything else -> started).
- title: `<job path> #<number>`, the job path read from `url` (`job/a/job/b/` -> `a/b`).
- service: parameter SERVICE -> the parent of a nested job (a multibranch or folder job is named
  after its branch) -> the job name. environment: parameter ENVIRONMENT (or ENV, DEPLOY_ENV...).
- labels: the build parameters (minus any whose name suggests a secret) plus job, build number,
  phase, status, culprits and SCM URL.
- fingerprint: `build.full_url`, so every phase of one build updates the same change event;
  without it, `<job path>#<number>`.

Deployment alerts: a final result of failure or aborted also yields a firing alert of severity
high; a final success yields a resolved alert with the same fingerprint, which clears it. The
fingerprint is `deploy|<service>|<environment>` (not the build URL), so the next successful deploy
of that service to that environment resolves the alert of an earlier failed one. The ingestion
service should ignore a resolved alert that matches no open alert (every successful deploy
sends one).

Sources: https://plugins.jenkins.io/notification/ ; jenkinsci/notification-plugin
src/main/java/com/tikal/hudson/plugins/notification/Phase.java (buildJobState), model/*.java.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import unquote

from .common import join_parts, parse_time, require_object, str_labels, text, to_str
from .types import Normalized, NormalizedAlert, NormalizedChange, PayloadRejected

RESULTS = {
    "success": "success",
    "failure": "failure",
    "unstable": "unstable",
    "aborted": "aborted",
    "not_built": "not_built",
}
_VERB = {"failure": "failed", "aborted": "aborted", "success": "succeeded"}
FINAL_PHASES = frozenset({"COMPLETED", "FINALIZED"})

# Build parameter names, case-insensitive, most common first.
SERVICE_PARAMS = ("SERVICE", "SERVICE_NAME", "APP", "APP_NAME", "APPLICATION", "COMPONENT")
ENVIRONMENT_PARAMS = ("ENVIRONMENT", "ENV", "DEPLOY_ENV", "DEPLOY_ENVIRONMENT", "TARGET_ENV", "TARGET_ENVIRONMENT", "STAGE")
VERSION_PARAMS = ("VERSION", "APP_VERSION", "RELEASE_VERSION", "RELEASE", "IMAGE_TAG", "BUILD_VERSION")
COMMIT_PARAMS = ("GIT_COMMIT", "COMMIT", "COMMIT_SHA", "REVISION")
BRANCH_PARAMS = ("GIT_BRANCH", "BRANCH_NAME", "BRANCH")


def normalize(body: object, headers: Mapping[str, str] | None, now: datetime | None) -> Normalized:
    return normalize_notification(body, "jenkins")


def normalize_notification(body: object, provider: str) -> Normalized:
    """The Notification plugin's JobState, shared with CloudBees CI."""
    body = require_object(body, "$")
    build = require_object(body.get("build"), "build")
    raw_params = build.get("parameters")
    if raw_params is not None and not isinstance(raw_params, dict):
        raise PayloadRejected("parameters is an object of build parameters", "build.parameters")
    params = str_labels(raw_params)
    scm = build.get("scm") if isinstance(build.get("scm"), dict) else {}

    segments = job_segments(text(body.get("url"))) or [s for s in [text(body.get("name"))] if s]
    job_path = "/".join(segments) or text(body.get("display_name")) or "jenkins job"
    number = text(build.get("number"))
    phase = (text(build.get("phase")) or "").upper() or None
    status = (text(build.get("status")) or "").lower()
    result = RESULTS.get(status) or ("queued" if phase == "QUEUED" else "started")
    full_url = text(build.get("full_url"))

    labels = public_params(params)
    labels.update(
        (k, v)
        for k, v in (
            ("job", job_path),
            ("build_number", number),
            ("phase", phase),
            ("status", status.upper() or None),
            ("culprits", to_str(scm.get("culprits")) if scm.get("culprits") else None),
            ("scm_url", text(scm.get("url"))),
        )
        if v
    )
    change = NormalizedChange(
        provider=provider,
        fingerprint=full_url or (f"{job_path}#{number}" if number else job_path),
        title=f"{job_path} #{number}" if number else job_path,
        service=param(params, SERVICE_PARAMS) or service_from_job(segments) or text(body.get("name")),
        environment=param(params, ENVIRONMENT_PARAMS),
        version=param(params, VERSION_PARAMS),
        commit=text(scm.get("commit")) or param(params, COMMIT_PARAMS),
        branch=text(scm.get("branch")) or param(params, BRANCH_PARAMS),
        result=result,
        phase=phase,
        occurred_at=parse_time(build.get("timestamp")),
        url=full_url,
        labels=labels,
    )
    final = phase in FINAL_PHASES or phase is None
    return Normalized(alerts=deploy_alerts(change, final), change_events=[change], delivery_id=None)


_SECRET_NAME_RE = re.compile(r"pass|secret|token|credential|private|api_?key|auth", re.IGNORECASE)


def public_params(params: Mapping[str, str], keep: Iterable[str] | None = None) -> dict[str, str]:
    """Build parameters fit to keep as labels: non-empty, and none whose name suggests a secret.

    With `keep`, only those names (case-insensitive) are kept: a pipeline step sends the whole
    build environment, which is noise (PATH, HOME...) and may hold bound credentials.
    """
    wanted = {k.lower() for k in keep} if keep is not None else None
    return {
        k: v
        for k, v in params.items()
        if v and not _SECRET_NAME_RE.search(k) and (wanted is None or k.lower() in wanted)
    }


def job_segments(url: str | None) -> list[str]:
    """`job/payments/job/api-deploy/` -> ['payments', 'api-deploy']; [] for other shapes."""
    if not url:
        return []
    parts = [unquote(p) for p in url.strip("/").split("/") if p]
    return [parts[i + 1] for i in range(len(parts) - 1) if parts[i] == "job"]


def service_from_job(segments: list[str]) -> str | None:
    if len(segments) >= 2:
        return segments[-2]
    return segments[-1] if segments else None


def param(params: Mapping[str, str], names: Iterable[str]) -> str | None:
    """A build parameter by any of `names`, case-insensitively."""
    for name in names:
        value = params.get(name)
        if value and value.strip():
            return value.strip()
    lowered = {k.lower(): v for k, v in params.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value and value.strip():
            return value.strip()
    return None


def deploy_alerts(change: NormalizedChange, final: bool) -> list[NormalizedAlert]:
    """The alert a finished deployment raises (failure/aborted) or clears (success)."""
    if not final or change.result not in ("failure", "aborted", "success"):
        return []
    failed = change.result != "success"
    target = change.service or change.title
    where = f" to {change.environment}" if change.environment else ""
    labels = dict(change.labels)
    for key, value in (("version", change.version), ("commit", change.commit), ("branch", change.branch)):
        if value:
            labels.setdefault(key, value)
    return [
        NormalizedAlert(
            provider=change.provider,
            provider_alert_id=None,
            fingerprint=join_parts("deploy", change.service, change.environment),
            title=f"Deployment {_VERB[change.result]}: {target}{where}",
            description=f"{change.title} finished with result {change.result}",
            severity="high" if failed else "info",
            status="firing" if failed else "resolved",
            acknowledged=False,
            service=change.service,
            environment=change.environment,
            started_at=change.occurred_at if failed else None,
            ended_at=None if failed else change.occurred_at,
            labels=labels,
            source_url=change.url,
            priority=None,
            group_key=change.fingerprint,
        )
    ]
