"""The decision rules of `correlate`: each signal, windows, environments, priority, determinism."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

import pytest

from server.domains.incidents.correlation import (
    MAX_TITLE_SETS, CorrelationSettings, IncidentFacts, Reason, Seen, correlate,
)

from .support import T0, alert, at, incident, model

DEFAULT = CorrelationSettings()


def test_no_open_incident_opens_a_new_one():
    decision = correlate(alert(), [], model(), DEFAULT)
    assert decision.is_new and decision.reason is None and decision.score is None


# --- fingerprint / group key ---------------------------------------------------------------------

def test_a_known_fingerprint_joins_beyond_the_window_and_across_environments():
    old = incident("i1", alert(0, fp="fp-1", env="staging", service="search"))
    decision = correlate(alert(300, fp="fp-1", env="prod", service="checkout"), [old], model(), DEFAULT)
    assert (decision.incident_id, decision.reason, decision.score) == ("i1", Reason.FINGERPRINT_GROUP, 1.0)
    assert "fp-1" in decision.detail


def test_a_known_group_key_joins_but_an_exact_fingerprint_is_preferred():
    by_group = incident("group", alert(10, fp="fp-2", group_key="g-1"))
    by_fingerprint = incident("exact", alert(0, fp="fp-1", service="search"))
    new = alert(12, fp="fp-1", group_key="g-1")
    decision = correlate(new, [by_group, by_fingerprint], model(), DEFAULT)
    assert decision.incident_id == "exact"
    other = replace(new, fingerprint="fp-9")
    assert correlate(other, [by_group, by_fingerprint], model(), DEFAULT).incident_id == "group"


def test_the_fingerprint_horizon_ends_identity_matches():
    old = incident("i1", alert(0, fp="fp-1"))
    day = 24 * 60
    assert correlate(alert(day, fp="fp-1"), [old], model(), DEFAULT).incident_id == "i1"
    assert correlate(alert(day + 1, fp="fp-1"), [old], model(), DEFAULT).is_new
    unlimited = replace(DEFAULT, fingerprint_horizon_minutes=None)
    assert correlate(alert(10 * day, fp="fp-1"), [old], model(), unlimited).incident_id == "i1"


# --- service within the window -------------------------------------------------------------------

def test_same_service_joins_up_to_the_window_boundary():
    open_ = incident("i1", alert(0, fp="a", service="checkout"))
    assert correlate(alert(30), [open_], model(), DEFAULT).reason == Reason.SERVICE_WINDOW
    late = alert(30)
    late = replace(late, at=late.at + timedelta(seconds=1))
    assert correlate(late, [open_], model(), DEFAULT).is_new


def test_only_recent_alerts_of_the_service_count_not_the_incidents_last_alert():
    # checkout alerted 40 minutes ago; the incident stays busy with payments: no snowball.
    busy = incident("i1", alert(0, fp="a", service="checkout"), alert(35, fp="b", service="payments"))
    assert correlate(alert(40, service="checkout"), [busy], model(), DEFAULT).is_new


def test_a_late_delivered_alert_joins_an_incident_that_started_after_it():
    open_ = incident("i1", alert(20, fp="a"))
    decision = correlate(alert(0), [open_], model(), DEFAULT)
    assert decision.incident_id == "i1" and "min after" in decision.detail


def test_different_environments_block_service_title_and_cooccurrence():
    learned = model(("db-primary", "payments"), repeat=5)
    staging = incident("i1", alert(0, fp="a", service="payments", title="payments error rate high", env="staging"),
                       alert(1, fp="b", service="db-primary", env="staging"))
    assert correlate(alert(5, service="payments", title="payments error rate high"), [staging], learned, DEFAULT).is_new
    assert correlate(alert(5, service="db-primary"), [staging], learned, DEFAULT).is_new


@pytest.mark.parametrize("alert_env, incident_env", [(None, "prod"), ("prod", None), (None, None)])
def test_a_missing_environment_blocks_nothing(alert_env, incident_env):
    open_ = incident("i1", alert(0, fp="a", env=incident_env))
    assert correlate(alert(5, env=alert_env), [open_], model(), DEFAULT).incident_id == "i1"


def test_a_service_named_in_the_title_stands_in_for_a_missing_service_label():
    open_ = incident("i1", alert(0, fp="a", service="payments"), alert(1, fp="b", service="api-gateway"))
    decision = correlate(alert(3, service=None, title="Pod payments-7f9c8-x2k4 in CrashLoopBackOff"),
                         [open_], model(), DEFAULT)
    assert decision.reason == Reason.SERVICE_WINDOW and "named in the title" in decision.detail
    # "api-gateway" is two words: a title saying "api" alone does not name it.
    assert correlate(alert(3, service=None, title="api errors"), [open_], model(), DEFAULT).is_new


# --- title similarity ----------------------------------------------------------------------------

def test_similar_titles_join_across_services_only_above_the_threshold():
    open_ = incident("i1", alert(0, fp="a", service="auth", title="Node node-6.eu-west-1.compute.internal NotReady"))
    same = alert(4, service="cdn", title="Node node-6.eu-west-1.compute.internal NotReady")
    decision = correlate(same, [open_], model(), DEFAULT)
    assert (decision.reason, decision.score) == (Reason.TITLE_SIMILARITY, 1.0)
    assert "notready" in decision.detail
    generic = incident("i2", alert(0, fp="c", service="auth", title="High CPU usage on ip-10-0-1-2"))
    other_host = alert(4, service="cdn", title="High CPU usage on ip-10-0-9-9")  # Jaccard exactly 0.6
    assert correlate(other_host, [generic], model(), DEFAULT).is_new
    looser = replace(DEFAULT, title_similarity_threshold=0.5)
    assert correlate(other_host, [generic], model(), looser).incident_id == "i2"


def test_a_title_seen_before_the_window_does_not_count():
    open_ = incident("i1", alert(0, fp="a", service="auth", title="Disk pressure on shared volume"),
                     alert(25, fp="b", service="auth", title="unrelated words"))
    assert correlate(alert(31, service="cdn", title="Disk pressure on shared volume"), [open_], model(), DEFAULT).is_new


# --- learned co-occurrence -----------------------------------------------------------------------

def test_a_learned_partner_joins_while_the_cascade_is_young():
    learned = model(("db-primary", "payments"), repeat=4)
    outage = incident("i1", alert(0, fp="a", service="db-primary"))
    decision = correlate(alert(8, service="payments"), [outage], learned, DEFAULT)
    assert (decision.reason, decision.score) == (Reason.COOCCURRENCE, 1.0)
    assert "4 of the 4 past incidents of 'db-primary'" in decision.detail


def test_cooccurrence_counts_from_the_partners_first_alert_not_its_last():
    learned = model(("db-primary", "payments"), repeat=4)
    outage = incident("i1", alert(0, fp="a", service="db-primary"), alert(25, fp="b", service="db-primary"))
    assert correlate(alert(10, service="payments"), [outage], learned, DEFAULT).reason == Reason.COOCCURRENCE
    assert correlate(alert(11, service="payments"), [outage], learned, DEFAULT).is_new  # 11 min after onset


def test_cooccurrence_needs_support_and_strength():
    outage = incident("i1", alert(0, fp="a", service="db-primary"))
    two = model(("db-primary", "payments"), repeat=2)
    assert correlate(alert(5, service="payments"), [outage], two, DEFAULT).is_new  # support 2 < 3
    assert correlate(alert(5, service="payments"), [outage], two,
                     replace(DEFAULT, cooccurrence_min_support=2)).reason == Reason.COOCCURRENCE
    weak = model(("db-primary", "payments"), repeat=3)
    for _ in range(27):
        weak.observe_incident(["db-primary"])  # payments in 3 of 30 db-primary incidents: 0.1, not above
    assert correlate(alert(5, service="payments"), [outage], weak, DEFAULT).is_new
    assert correlate(alert(5, service="payments"), [outage], None, DEFAULT).is_new


# --- priority and determinism --------------------------------------------------------------------

def _contenders():
    learned = model(("db-primary", "payments"), repeat=5)
    by_cooccurrence = incident("cooc", alert(9, fp="c1", service="db-primary"))
    by_title = incident("title", alert(9, fp="t1", service="search", title="payments provider timeouts rising"))
    by_service = incident("service", alert(1, fp="s1", service="payments", title="other words"))
    by_fingerprint = incident("fingerprint", alert(0, fp="fp-x", service="cdn"))
    new = alert(10, fp="fp-x", service="payments", title="payments provider timeouts rising")
    return new, [by_cooccurrence, by_title, by_service, by_fingerprint], learned


def test_priority_is_fingerprint_then_service_then_title_then_cooccurrence():
    new, incidents, learned = _contenders()
    expected = [("fingerprint", Reason.FINGERPRINT_GROUP), ("service", Reason.SERVICE_WINDOW),
                ("title", Reason.TITLE_SIMILARITY), ("cooc", Reason.COOCCURRENCE)]
    for winner, reason in expected:
        decision = correlate(new, incidents, learned, DEFAULT)
        assert (decision.incident_id, decision.reason) == (winner, reason)
        incidents = [i for i in incidents if i.id != winner]
    assert correlate(new, incidents, learned, DEFAULT).is_new


def test_each_signal_can_be_switched_off():
    new, incidents, learned = _contenders()
    off = replace(DEFAULT, use_fingerprint_group=False, use_service=False)
    assert correlate(new, incidents, learned, off).incident_id == "title"
    assert correlate(new, incidents, learned, replace(off, use_title=False)).incident_id == "cooc"
    assert correlate(new, incidents, learned, replace(off, use_title=False, use_cooccurrence=False)).is_new


def test_ties_go_to_the_higher_score_then_the_most_recent_evidence():
    a = incident("a", alert(0, fp="a", service="auth", title="disk full on shared volume"))
    b = incident("b", alert(5, fp="b", service="auth", title="disk full on shared volume now"))
    exact = alert(10, service="cdn", title="disk full on shared volume")
    assert correlate(exact, [b, a], model(), DEFAULT).incident_id == "a"  # score 1.0 beats 0.8
    older = incident("older", alert(0, fp="o", service="checkout"))
    newer = incident("newer", alert(3, fp="n", service="checkout"))
    assert correlate(alert(10), [older, newer], model(), DEFAULT).incident_id == "newer"


def test_the_decision_does_not_depend_on_the_order_of_incidents():
    new, incidents, learned = _contenders()
    twins = [incident(f"twin-{k}", alert(1, fp=f"tw-{k}", service="payments")) for k in range(3)]
    for pool in (incidents[:3], twins, [incidents[0], *twins]):
        results = {correlate(new, list(order), learned, DEFAULT) for order in itertools.permutations(pool)}
        assert len(results) == 1


def test_a_detached_fingerprint_never_rejoins_its_incident_but_can_join_another():
    split_off = incident("i1", alert(0, fp="a"), alert(1, fp="fp-1"), detached=("fp-1",))
    assert correlate(alert(5, fp="fp-1"), [split_off], model(), DEFAULT).is_new
    other = incident("i2", alert(0, fp="b"))
    assert correlate(alert(5, fp="fp-1"), [split_off, other], model(), DEFAULT).incident_id == "i2"


# --- facts ---------------------------------------------------------------------------------------

def test_facts_track_first_and_last_alert_per_service_and_recent_titles():
    facts = incident("i1", alert(5, fp="a", env=None, title="one"), alert(2, fp="b", service="auth"),
                     alert(9, fp="c", env="prod", title="one"))
    assert facts.started_at == at(2) and facts.last_alert_at == at(9)
    assert facts.services == {"checkout": Seen(at(5), at(9)), "auth": Seen(at(2), at(2))}
    assert facts.environment == "prod" and facts.fingerprints == {"a", "b", "c"}
    assert facts.titles[frozenset({"one"})] == at(9)
    many = incident("i2", *(alert(k, fp=f"f{k}", title=f"title number {word * 2}")
                            for k, word in enumerate("abcdefghijklmnopqrstuvwxyz")))
    assert len(many.titles) == MAX_TITLE_SETS and frozenset({"title", "number", "zz"}) in many.titles


def test_facts_accept_plain_collections_from_the_database():
    facts = IncidentFacts(id=1, started_at=T0, last_alert_at=at(5), services=["checkout"],
                          titles={("disk", "full"): at(5)}, fingerprints=["a"], group_keys=("g",))
    assert facts.services == {"checkout": Seen(T0, at(5))}
    assert facts.fingerprints == frozenset({"a"}) and facts.title_vocabulary == {"disk", "full"}
    assert correlate(alert(6, title="disk full", service="cdn"), [facts], model(), DEFAULT).incident_id == 1
    with pytest.raises(ValueError):
        IncidentFacts.from_alerts("empty", [])


def test_with_keys_is_the_same_as_a_dataclass_replace():
    from dataclasses import replace

    from tests.server.incidents.correlation.support import alert as make_alert
    from tests.server.incidents.correlation.support import incident as make_incident

    base = make_incident("i-1", make_alert(0, fp="a", title="Checkout latency high", group_key="g1"),
                         make_alert(3, fp="b", service="payments", title="Payments errors"))
    fast = base.with_keys(["b", "c"], ["g2"], ["x"])
    slow = replace(base, fingerprints=frozenset({"b", "c"}), group_keys=frozenset({"g2"}),
                   detached_fingerprints=frozenset({"x"}))
    assert fast == slow and fast.title_vocabulary == slow.title_vocabulary
    assert base.fingerprints == frozenset({"a", "b"})  # the original is untouched
    assert type(fast.fingerprints) is frozenset
