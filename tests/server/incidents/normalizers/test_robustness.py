"""Bad input gets PayloadRejected or a sane result, never another exception (which would be a 500).

Every accepted fixture is mutated at every key down to depth 4 (key removed, or its value replaced
by null, a number, a string, an empty list, an empty object) and fed to the provider's module
directly, bypassing the registry's safety net that turns stray exceptions into rejections, so a
normalizer that relies on that net fails here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from server.domains.incidents import normalizers
from server.domains.incidents.normalizers import PayloadRejected
from server.domains.incidents.normalizers.types import ALERT_STATUSES, CHANGE_RESULTS, SEVERITIES, Normalized

from ._fixtures import fixture_files, load

REPLACEMENTS = (None, 7, "x", [], {}, True, -1.5)
MODULES = {
    "grafana": normalizers.grafana,
    "alertmanager": normalizers.alertmanager,
    "datadog": normalizers.datadog,
    "netdata": normalizers.netdata,
    "pagerduty": normalizers.pagerduty,
    "splunk": normalizers.splunk,
    "jenkins": normalizers.jenkins,
    "cloudbees": normalizers.cloudbees,
    "dynatrace": normalizers.dynatrace,
    "bigpanda": normalizers.bigpanda,
    "generic": normalizers.generic,
}
ACCEPTED = [(name, path) for name, path in fixture_files() if load(path)["expect"]["kind"] != "rejected"]


def paths(value: object, depth: int = 4, prefix: tuple = ()) -> Iterator[tuple]:
    if depth == 0:
        return
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = list(enumerate(value))[:3]
    else:
        return
    for key, child in items:
        yield prefix + (key,)
        yield from paths(child, depth - 1, prefix + (key,))


def mutations(body: object) -> Iterator[object]:
    for path in paths(body):
        for replacement in (*REPLACEMENTS, "<delete>"):
            mutated = copy.deepcopy(body)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            if replacement == "<delete>":
                if isinstance(parent, dict):
                    del parent[path[-1]]
                else:
                    parent.pop(path[-1])
            else:
                parent[path[-1]] = replacement
            yield mutated


def check(result: Normalized) -> None:
    for alert in result.alerts:
        assert alert.severity in SEVERITIES and alert.status in ALERT_STATUSES
        assert isinstance(alert.title, str) and alert.title
        assert isinstance(alert.fingerprint, str) and alert.fingerprint
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in alert.labels.items())
        for value in (alert.service, alert.environment, alert.description, alert.source_url, alert.group_key):
            assert value is None or isinstance(value, str)
    for change in result.change_events:
        assert change.result in CHANGE_RESULTS
        assert isinstance(change.fingerprint, str) and change.fingerprint
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in change.labels.items())


@pytest.mark.parametrize("path", [p for _, p in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_mutated_payloads_never_crash(path):
    fx = load(path)
    module = MODULES[fx["provider"]]
    count = 0
    for body in mutations(fx["body"]):
        count += 1
        try:
            result = module.normalize(body, fx["headers"], None)
        except PayloadRejected as exc:
            assert exc.message
            continue
        check(result)
    assert count > 0


@pytest.mark.parametrize("provider", sorted(MODULES))
def test_generic_garbage(provider):
    module = MODULES[provider]
    for body in ({}, {"alerts": [None]}, {"event": {}}, {"build": {}}, {"alerts": [{}]}, {"": ""}, {"a": {"b": {"c": [1]}}}):
        try:
            check(module.normalize(body, {}, None))
        except PayloadRejected:
            pass
