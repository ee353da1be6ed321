"""The learned co-occurrence model and the per-organization settings: values, limits, JSON."""

from __future__ import annotations

import json

import pytest

from server.domains.incidents.correlation import MAX_PAIR_SERVICES, CooccurrenceModel, CorrelationSettings

from .support import model


def test_strength_is_the_share_of_the_partners_incidents_and_is_directional():
    learned = model(("db-primary", "payments", "checkout"), repeat=4)
    for _ in range(12):
        learned.observe_incident(["checkout"])  # checkout also fails on its own, often
    assert learned.support("checkout", "db-primary") == 4
    assert learned.strength("checkout", "db-primary") == 1.0  # checkout alerted in every db-primary outage
    assert learned.strength("db-primary", "checkout") == 0.25  # db-primary in 4 of 16 checkout incidents
    assert learned.incidents == 16 and learned.incidents_of("checkout") == 16


def test_strength_is_zero_below_min_support_for_unknown_services_and_for_itself():
    learned = model(("a", "b"), repeat=2)
    assert learned.strength("a", "b") == 0.0
    assert learned.strength("a", "b", min_support=2) == 1.0
    assert learned.strength("a", "zzz") == 0.0 and learned.strength("zzz", "a") == 0.0
    assert learned.strength("a", "a", min_support=1) == 0.0


def test_observe_ignores_duplicates_and_empty_names_and_forget_undoes_it():
    learned = model(("a", "b", "b", "", None))
    assert learned.support("a", "b") == 1 and learned.incidents_of("b") == 1
    learned.observe_incident(["a", "c"])
    learned.forget_incident(["a", "c"])
    assert learned.to_dict() == model(("a", "b")).to_dict()
    learned.forget_incident(["a", "b"])
    assert learned.to_dict() == CooccurrenceModel().to_dict()


def test_huge_incidents_count_per_service_but_not_per_pair():
    learned = CooccurrenceModel()
    learned.observe_incident([f"svc-{k}" for k in range(MAX_PAIR_SERVICES + 1)])
    assert learned.incidents_of("svc-0") == 1 and learned.support("svc-0", "svc-1") == 0
    assert learned.to_dict()["pairs"] == []


def test_partners_are_cached_until_the_model_learns_more():
    learned = model(("db-primary", "payments"), repeat=3)
    assert set(learned.partners("payments", 0.5, 3)) == {"db-primary"}
    for _ in range(10):
        learned.observe_incident(["db-primary"])  # payments now in 3 of 13 db-primary incidents
    assert learned.partners("payments", 0.5, 3) == {}


def test_json_round_trip_is_exact_and_deterministic():
    learned = model(("checkout", "payments", "db-primary"), ("search", "redis-cache"), ("checkout",), repeat=3)
    data = json.loads(json.dumps(learned.to_dict()))
    again = CooccurrenceModel.from_dict(data)
    assert again.to_dict() == learned.to_dict()
    assert again.strength("payments", "db-primary") == learned.strength("payments", "db-primary") == 1.0
    assert data["pairs"] == sorted(data["pairs"]) and all(a < b for a, b, _ in data["pairs"])
    reordered = model(("db-primary", "payments", "checkout"), ("checkout",), ("redis-cache", "search"), repeat=3)
    assert json.dumps(reordered.to_dict()) == json.dumps(learned.to_dict())


def test_from_dict_refuses_another_version():
    with pytest.raises(ValueError):
        CooccurrenceModel.from_dict({"version": 99, "incidents": 0, "services": {}, "pairs": []})


def test_settings_defaults_and_json_round_trip():
    settings = CorrelationSettings()
    assert settings.window_minutes == 30 and settings.use_cooccurrence
    stored = json.loads(json.dumps(settings.to_dict()))
    assert CorrelationSettings.from_dict({**stored, "added_in_a_later_version": 1}) == settings
    assert CorrelationSettings.from_dict({"window_minutes": 10}).window_minutes == 10


@pytest.mark.parametrize("field, value", [
    ("window_minutes", 0), ("window_minutes", 1.5), ("window_minutes", True),
    ("title_similarity_threshold", 1.0), ("title_similarity_threshold", -0.1),
    ("cooccurrence_threshold", "0.5"), ("cooccurrence_min_support", 0),
    ("cooccurrence_window_minutes", 0), ("fingerprint_horizon_minutes", 0), ("use_title", 1),
])
def test_settings_reject_values_that_would_not_mean_anything(field, value):
    with pytest.raises(ValueError, match=field):
        CorrelationSettings(**{field: value})
