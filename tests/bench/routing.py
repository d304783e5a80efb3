"""Routing benchmark: `make bench` (full) or `python -m tests.bench.routing --quick`.

CPU per event of the routing function's own work -- sensing (Aho-Corasick over the
taxonomy, VADER sentiment, urgency) and deciding against the rule set -- measured with
time.process_time in this one run, and how it grows with the taxonomy:

1. 1,000 rules and 10,000 taxonomy phrases (the issue's reference size);
2. 1,000 rules and 10, 100, 1,000 and 10,000 phrases, with the ratio to 10 phrases.
The DynamoDB and EventBridge calls around it are I/O and are not counted here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime

from switchboard_core.events import CanonicalEvent, Channel, EventDraft
from switchboard_core.routing.rules import RuleSet, decide
from switchboard_core.routing.sensing import Sensor, Taxonomy, Topic

WORDS = (
    "brake",
    "pad",
    "wiper",
    "engine",
    "battery",
    "tyre",
    "mirror",
    "clutch",
    "filter",
    "hose",
    "pump",
    "sensor",
    "lamp",
    "belt",
    "gasket",
    "valve",
    "radiator",
    "piston",
    "axle",
    "bearing",
)
MESSAGES = (
    "My car broke down on the motorway and I am stranded, please send help asap",
    "The brake pad you sold me squeals terribly, worst purchase ever, I want a refund",
    "Thanks for the quick delivery of the wiper blades, great service!",
    "Is the radiator hose for a 2019 model in stock at the Hamburg dealer?",
)


def taxonomy(phrases: int, rng: random.Random) -> Taxonomy:
    """`phrases` distinct two- and three-word phrases over 100 topics; a few match the messages."""
    seen: set[str] = {"brake pad", "broke down", "radiator hose", "wiper blades"}
    while len(seen) < phrases:
        seen.add(" ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(rng.choice((2, 3)))))
    ordered = sorted(seen)[:phrases]
    topics: dict[str, list[str]] = {}
    for index, phrase in enumerate(ordered):
        topics.setdefault(f"topic{index % 100}", []).append(phrase)
    return Taxonomy(topics=[Topic(name=name, phrases=items) for name, items in topics.items()])


def rule_set(rules: int) -> RuleSet:
    """`rules` rules; all but the last few test topics no message has, so all are evaluated."""
    body = [
        {
            "name": f"rule{n}",
            "when": {"topics_any": [f"topic{n % 100}-x"], "sentiment_max": 0.5},
            "then": {"kind": "assign", "team": f"team{n % 20}"},
        }
        for n in range(rules - 1)
    ]
    body.append({"name": "catch-all", "then": {"kind": "assign", "team": "front-desk"}})
    return RuleSet.model_validate({"default_team": "front-desk", "rules": body})


def events() -> list[CanonicalEvent]:
    received = datetime(2026, 11, 23, tzinfo=UTC)
    return [
        CanonicalEvent.from_draft(
            EventDraft(type="message.received", provider_event_id=str(n), text=text),
            provider="twilio",
            connection="c",
            tenant="t",
            channel=Channel.TELEPHONY,
            received_at=received,
            raw_ref=None,
        )
        for n, text in enumerate(MESSAGES)
    ]


def cpu_per_event_us(sensor: Sensor, rules: RuleSet, iterations: int) -> float:
    batch = events()
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for event in batch:  # warm: VADER's lexicon loads on first use
        decide(rules, event, sensor.sense(event), {}, False, now)
    start = time.process_time()
    for _ in range(iterations):
        for event in batch:
            decide(rules, event, sensor.sense(event), {}, False, now)
    return (time.process_time() - start) / (iterations * len(batch)) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): fewer iterations, same report")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    iterations = 20 if args.quick else 250
    rng = random.Random(7)
    rules = rule_set(1000)
    growth: dict[int, float] = {}
    build_ms: dict[int, float] = {}
    for phrases in (10, 100, 1_000, 10_000):
        started = time.process_time()
        sensor = Sensor(taxonomy(phrases, rng))
        build_ms[phrases] = (time.process_time() - started) * 1000
        growth[phrases] = cpu_per_event_us(sensor, rules, iterations)
    report = {
        "quick": args.quick,
        "rules": 1000,
        "cpu_us_per_event": {str(k): round(v, 1) for k, v in growth.items()},
        "ratio_to_10_phrases": {str(k): round(v / growth[10], 2) for k, v in growth.items()},
        "taxonomy_build_ms": {str(k): round(v, 1) for k, v in build_ms.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"routing CPU per event (sense + decide), 1,000 rules, {iterations} x {len(MESSAGES)} events:")
    for phrases, cpu in growth.items():
        print(
            f"  {phrases:>6} phrases: {cpu:8.1f} us/event  ({cpu / growth[10]:.2f}x 10 phrases; "
            f"automaton built in {build_ms[phrases]:.1f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
