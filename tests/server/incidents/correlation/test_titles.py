"""Title normalization: what stays the same when the same problem fires again, and what differs."""

from __future__ import annotations

import pytest

from server.domains.incidents.correlation import title_similarity, title_tokens


@pytest.mark.parametrize("title, expected", [
    ("Checkout latency p99 2503ms > 1500ms", {"checkout", "latency", "p99"}),
    ("[FIRING:2] CRITICAL: payments error rate 54% above 5% threshold",
     {"payment", "error", "rate", "threshold"}),
    ("Payment provider timeouts, last txn 7039d296-6c0a-4abc-a123-0123456789ab",
     {"payment", "provider", "timeout", "last", "txn"}),
    ("Redis connection refused from 10.1.2.3:6379 (12 retries)", {"redis", "connection", "refused", "retry"}),
    ("api-gateway upstream 5xx 55% route /v520/orders", {"api", "gateway", "upstream", "5xx", "route", "order"}),
    ("Job deadbeefcafe failed in prod", {"job", "failed"}),
    ("Datenbank-Verbindungen erschöpft", {"datenbank", "verbindungen", "erschöpft"}),
    ("", set()),
    ("12345 67.8%", set()),
])
def test_tokens_drop_numbers_ids_and_boilerplate(title, expected):
    assert title_tokens(title) == expected


def test_host_names_are_kept_whole_with_their_role():
    tokens = title_tokens("High CPU usage on checkout-05 (93%)")
    assert tokens == {"high", "cpu", "usage", "checkout-05", "checkout"}
    node = title_tokens("Node node-6.eu-west-1.compute.internal NotReady")
    assert node == {"node", "notready", "node-6.eu-west-1.compute.internal"}  # not the domain's words


def test_same_rule_with_new_numbers_is_identical():
    a = title_tokens("Slow queries on db-primary: p95 8227ms over last 7m")
    b = title_tokens("Slow queries on db-primary: p95 412ms over last 55m")
    assert a == b and title_similarity(a, b) == 1.0


def test_generic_titles_on_different_hosts_stay_below_the_default_threshold():
    a = title_tokens("High CPU usage on ip-10-0-60-111 (22%)")
    b = title_tokens("High CPU usage on ip-10-0-7-3 (97%)")
    assert title_similarity(a, b) == pytest.approx(0.6)  # 3 of 5: not *above* 0.6


def test_similarity_is_jaccard_and_safe_on_empty_sets():
    assert title_similarity(frozenset({"a", "b"}), frozenset({"b", "c"})) == pytest.approx(1 / 3)
    assert title_similarity(frozenset(), frozenset({"a"})) == 0.0
    assert title_similarity(frozenset(), frozenset()) == 0.0
