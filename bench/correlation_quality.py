"""Correlation quality and speed: pair precision/recall/F1 on labelled alert storms, decisions/s.

Replays each storm of `bench/correlation_data.py` (the fixed ones in
tests/fixtures/correlation/storms.json and freshly generated seeds) through
`server.domains.incidents.correlation.correlate` the way the ingestion service does: firing
alerts in time order, the open incidents of the organization as `IncidentFacts`, a new incident
when the decision says so. Incidents stay open for the whole storm (a storm is shorter than the
fingerprint horizon); the co-occurrence model is learned from the storm's `history` only, never
from its ground truth.

Quality is measured over all pairs of firing alerts: a pair is predicted related when both alerts
ended in the same incident, truly related when both have the same `group`. Precision = correct
related pairs / predicted related pairs; recall = correct related pairs / true related pairs.
Printed for all signals, each signal alone ("only fingerprint" is what plain deduplication
gives), all but one (ablation), threshold sweeps, and harder storms where 10 % of incidents and
background alerts collide with related activity.

Speed: `correlate` against the 50 largest incidents of a storm, all moved inside the window (the
expensive case), for alerts that join, alerts that match nothing (every tier evaluated) and storm
titles without service or fingerprint, against a baseline measured in the same run: one set
lookup per open incident, the floor of any correlator that looks at them all.

    .venv/bin/python bench/correlation_quality.py [--seeds 1 2 ... 12] [--no-sweep]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.correlation_data import generate  # noqa: E402
from server.domains.incidents.correlation import (  # noqa: E402
    AlertFacts, CooccurrenceModel, CorrelationSettings, IncidentFacts, correlate,
)

FIXTURE = ROOT / "tests" / "fixtures" / "correlation" / "storms.json"
SIGNALS = ("use_fingerprint_group", "use_service", "use_title", "use_cooccurrence")
SHORT = {"use_fingerprint_group": "fingerprint", "use_service": "service", "use_title": "title",
         "use_cooccurrence": "cooccurrence"}


def load_storms(path: Path = FIXTURE) -> list[dict]:
    """The fixed storms the tests use (written by bench/correlation_data.py --out)."""
    return json.loads(path.read_text())["storms"]


def firing_alerts(storm: dict) -> list[tuple[AlertFacts, str]]:
    """(alert, true group) for every firing event, in arrival order."""
    start = datetime.fromisoformat(storm["start"])
    out = []
    for record in sorted((a for a in storm["alerts"] if a["status"] == "firing"), key=lambda a: (a["at"], a["id"])):
        alert = AlertFacts(
            fingerprint=record["fingerprint"], title=record["title"], at=start + timedelta(seconds=record["at"]),
            service=record["service"], environment=record["environment"], group_key=record["group_key"],
        )
        out.append((alert, record["group"]))
    return out


def learn(history: list[list[str]]) -> CooccurrenceModel:
    model = CooccurrenceModel()
    for services in history:
        model.observe_incident(services)
    return model


def replay(alerts: list[AlertFacts], model: CooccurrenceModel,
           settings: CorrelationSettings) -> tuple[list[int], Counter]:
    """The incident each alert ended in (numbered in opening order), and the reasons used."""
    incidents: dict[int, IncidentFacts] = {}
    horizon = timedelta(minutes=settings.fingerprint_horizon_minutes or 10**6)
    assigned, reasons = [], Counter()
    for alert in alerts:
        # What the service's SQL would load: open incidents with an alert inside the horizon.
        open_now = [i for i in incidents.values() if i.last_alert_at >= alert.at - horizon]
        decision = correlate(alert, open_now, model, settings)
        if decision.incident_id is None:
            number = len(incidents)
            incidents[number] = IncidentFacts.open(number, alert)
            reasons["new"] += 1
        else:
            number = decision.incident_id
            incidents[number] = incidents[number].with_alert(alert)
            reasons[str(decision.reason)] += 1
        assigned.append(number)
    return assigned, reasons


def pair_scores(truth: list, predicted: list) -> tuple[float, float, float]:
    """Pair precision, recall and F1 from the contingency table (no pair enumeration)."""
    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both = pairs(Counter(zip(truth, predicted)))
    predicted_pairs, true_pairs = pairs(Counter(predicted)), pairs(Counter(truth))
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate(storm: dict, settings: CorrelationSettings = CorrelationSettings()) -> dict:
    labelled = firing_alerts(storm)
    alerts = [a for a, _ in labelled]
    truth = [g for _, g in labelled]
    predicted, reasons = replay(alerts, learn(storm["history"]), settings)
    precision, recall, f1 = pair_scores(truth, predicted)
    return {"precision": precision, "recall": recall, "f1": f1, "incidents": len(set(predicted)),
            "groups": len(set(truth)), "reasons": reasons}


def only(signal: str | None, base: CorrelationSettings = CorrelationSettings()) -> CorrelationSettings:
    return replace(base, **{s: s == signal for s in SIGNALS})


def variants() -> list[tuple[str, CorrelationSettings]]:
    base = CorrelationSettings()
    rows = [("all signals (defaults)", base)]
    rows += [(f"only {SHORT[s]}", only(s)) for s in SIGNALS]
    rows += [(f"all but {SHORT[s]}", replace(base, **{s: False})) for s in SIGNALS]
    return rows


def sweeps() -> list[tuple[str, CorrelationSettings]]:
    base = CorrelationSettings()
    rows = [(f"title threshold {t}", replace(base, title_similarity_threshold=t)) for t in (0.4, 0.5, 0.6, 0.7, 0.8)]
    rows += [(f"cooccurrence threshold {t}", replace(base, cooccurrence_threshold=t))
             for t in (0.05, 0.1, 0.15, 0.2, 0.3)]
    rows += [(f"cooccurrence min support {n}", replace(base, cooccurrence_min_support=n)) for n in (1, 3, 5, 10)]
    rows += [(f"cooccurrence window {w} min", replace(base, cooccurrence_window_minutes=w)) for w in (5, 10, 15, 30)]
    rows += [(f"window {w} min", replace(base, window_minutes=w)) for w in (10, 20, 30, 45, 60)]
    return rows


def table(title: str, rows: list[tuple[str, CorrelationSettings]], storms: list[dict]) -> list[dict]:
    print(f"\n{title}")
    print(f"  {'settings':28} {'precision':>9} {'recall':>7} {'F1':>6}   (mean over {len(storms)} storms; min P, R)")
    results = []
    for name, settings in rows:
        scores = [evaluate(storm, settings) for storm in storms]
        mean = {k: statistics.fmean(s[k] for s in scores) for k in ("precision", "recall", "f1")}
        print(f"  {name:28} {mean['precision']:9.3f} {mean['recall']:7.3f} {mean['f1']:6.3f}   "
              f"min P {min(s['precision'] for s in scores):.3f}  R {min(s['recall'] for s in scores):.3f}")
        results.append({"name": name, **mean})
    return results


def throughput(storm: dict, open_count: int = 50, rounds: int = 5) -> dict:
    """Decisions/s against `open_count` open incidents, all inside the window."""
    labelled = firing_alerts(storm)
    model = learn(storm["history"])
    alerts = [a for a, _ in labelled]
    predicted, _ = replay(alerts, model, CorrelationSettings())
    members: dict[int, list[AlertFacts]] = {}
    for alert, number in zip(alerts, predicted):
        members.setdefault(number, []).append(alert)
    # The largest incidents, each moved in time so its last alert falls in the 20 minutes before
    # `now`: every one is a candidate, none is ruled out by time.
    now = alerts[-1].at + timedelta(hours=1)
    rng = random.Random(1)
    chosen = sorted(members, key=lambda n: (-len(members[n]), n))[:open_count]
    opened = []
    for number in chosen:
        shift = now - timedelta(minutes=rng.uniform(0, 20)) - members[number][-1].at
        opened.append(IncidentFacts.from_alerts(number, [replace(a, at=a.at + shift) for a in members[number]]))
    # Joining alerts: storm alerts of those incidents, at `now`; misses: unknown service,
    # fingerprint and title, so every tier runs against every incident.
    joining = [replace(a, at=now) for number in chosen for a in members[number]][:1000]
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    missing = [AlertFacts(fingerprint=f"miss-{k}", title=" ".join(rng.sample(words, 5)) + f" {k}", at=now,
                          service=f"svc-{k % 7}", environment="prod") for k in range(1000)]
    # Storm titles without a service or known fingerprint: service-name inference and the title
    # tier run against every incident (the dearest real case).
    unlabelled = [AlertFacts(fingerprint=f"anon-{k}", title=a.title, at=now, environment=a.environment)
                  for k, a in enumerate(alerts[:1000])]
    started = time.perf_counter()
    for a in unlabelled:
        _ = a.tokens  # titles are tokenized once per alert by the service, not per decision
    tokenize = (time.perf_counter() - started) / len(unlabelled)
    for a in joining + missing:
        _ = a.tokens

    def per_decision(probes: list[AlertFacts], decide) -> float:
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for alert in probes:
                decide(alert)
            best = min(best, (time.perf_counter() - started) / len(probes))
        return best

    settings = CorrelationSettings()

    def baseline(alert: AlertFacts) -> bool:
        return any(alert.fingerprint in i.fingerprints for i in opened)

    return {
        "open": len(opened),
        "join": per_decision(joining, lambda a: correlate(a, opened, model, settings)),
        "miss": per_decision(missing, lambda a: correlate(a, opened, model, settings)),
        "unlabelled": per_decision(unlabelled, lambda a: correlate(a, opened, model, settings)),
        "baseline": per_decision(missing, baseline),
        "tokenize": tokenize,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(1, 13)),
                        help="generated storms besides the fixed one (its seed is skipped)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the threshold sweeps")
    args = parser.parse_args(argv)

    fixed = load_storms() if FIXTURE.exists() else [generate(1), generate(2)]
    storms = fixed + [generate(seed) for seed in args.seeds if seed not in {s["seed"] for s in fixed}]
    print("Correlation quality: pair precision / recall / F1 over all pairs of firing alerts, default settings")
    for storm in storms:
        firing = sum(1 for a in storm["alerts"] if a["status"] == "firing")
        result = evaluate(storm)
        label = "fixture" if any(storm is f for f in fixed) else "generated"
        print(f"  seed {storm['seed']:>3} ({label:9}) {firing:4} alerts {result['groups']:3} true groups -> "
              f"{result['incidents']:3} incidents   P {result['precision']:.3f}  R {result['recall']:.3f}  "
              f"F1 {result['f1']:.3f}   {dict(result['reasons'].most_common())}")
    table("Signals and ablation", variants(), storms)
    if not args.no_sweep:
        table("Threshold sweeps (other settings at defaults)", sweeps(), storms)
    hard = [generate(storm["seed"], collisions=0.1) for storm in storms]  # same seeds, harder
    table("Harder storms: 10 % of incidents and background alerts collide with related activity "
          "(errors no correlator can avoid)", [("all signals (defaults)", CorrelationSettings())], hard)

    speed = throughput(fixed[0])
    print(f"\nSpeed: correlate() against {speed['open']} open incidents, all inside the window "
          f"(one core, Python {sys.version.split()[0]})")
    for key, name in (("join", "alerts that join an incident"), ("miss", "alerts that match nothing (all tiers)"),
                      ("unlabelled", "storm titles without service/fingerprint")):
        print(f"  {name:40} {speed[key] * 1e6:7.1f} us/decision  {1 / speed[key]:10,.0f} decisions/s  "
              f"{speed[key] / speed['baseline']:5.1f}x baseline")
    print(f"  {'baseline: one set lookup per incident':40} {speed['baseline'] * 1e6:7.1f} us/decision  "
          f"{1 / speed['baseline']:10,.0f} decisions/s")
    print(f"  {'title tokenization (once per alert)':40} {speed['tokenize'] * 1e6:7.1f} us/alert")
    return 0


if __name__ == "__main__":
    sys.exit(main())
