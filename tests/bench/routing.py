"""Routing benchmark: `make bench` (full) or `python -m tests.bench.routing --quick`.

CPU per event of the routing function's own work -- sensing (Aho-Corasick over the
taxonomy, VADER sentiment, urgency) and deciding against the rule set -- measured with
time.process_time in this one run, and how it grows with the taxonomy:

1. 1,000 rules and 10,000 taxonomy phrases (the issue's reference size);
2. 1,000 rules and 10, 100, 1,000 and 10,000 phrases, with the ratio to 10 phrases;
3. sense + decide at 10 and at 1,000 rules: rules gated on topics no message has (skipped by the
   rule set's index), and rules with only a sentiment condition (each evaluated: the worst case);
4. the configuration step per event at 10 and at 1,000 rules (1,000 phrases), against moto's
   DynamoDB: what routing does now (a consistent read of the small VERSIONS item, the parsed
   rule set and sensor kept by version) against what it did before (a consistent read and a
   parse of the whole rule set and taxonomy per event): CPU and wall time per event, DynamoDB
   round trips and response bytes per event (a botocore hook), and the ratio 1,000/10 rules.
5. a whole event through route() (contact, conversation, sensing, rules, outcome) against moto's
   DynamoDB, an SMS from a known person in their open conversation: round trips, response bytes
   and CPU per event at the 10th and at the 400th event of one conversation (what an event costs
   must not grow with the conversation it joins). The EventBridge publish is not counted.
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
from tests.bench import use_in_process_moto

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
    """`rules` rules; all but the catch-all test topics no message has (the index skips them)."""
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


def ungated_rule_set(rules: int) -> RuleSet:
    """`rules` rules no index can skip (a sentiment condition only), none matching, then a catch-all."""
    body = [
        {"name": f"rule{n}", "when": {"sentiment_min": 0.999}, "then": {"kind": "assign", "team": f"team{n % 20}"}}
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


def configuration_per_event(rules: int, iterations: int) -> dict[str, dict[str, float]]:
    """The configuration step of one event, cached by version (now) and read per event (before)."""
    from moto import mock_aws

    from functions.routing.logic import RoutingDeps
    from infra import topology
    from infra.local.emulator import create_table
    from switchboard_core import aws
    from switchboard_core.routing.config_store import RoutingConfigStore
    from tests.bench.scale import DynamoCounter

    use_in_process_moto()
    figures: dict[str, dict[str, float]] = {}
    with mock_aws():
        aws.reset_clients(keep_session=True)
        dynamodb = aws.resource("dynamodb")
        create_table(dynamodb.meta.client, "bench-routing", topology.TABLES["routing"])
        config = RoutingConfigStore(dynamodb.Table("bench-routing"))
        now = datetime(2026, 11, 23, tzinfo=UTC)
        config.put_rules("t", rule_set(rules), None, now)
        config.put_taxonomy("t", taxonomy(1_000, random.Random(7)), now)
        deps = RoutingDeps(contacts=None, conversations=None, config=config, sensors={})  # type: ignore[arg-type]
        counter = DynamoCounter(dynamodb.meta.client)

        def now_cached() -> None:
            deps.configuration("t")

        def before() -> None:  # the sensor was kept by version, but both documents were read and parsed
            config.taxonomy("t")
            config.rules("t")

        for name, step in (("cached_by_version", now_cached), ("read_per_event", before)):
            step()  # warm: the cache filled, botocore's models loaded
            with counter.measure() as calls:
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(iterations):
                    step()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            figures[name] = {
                "cpu_us": round(cpu / iterations * 1e6, 1),
                "wall_us": round(wall / iterations * 1e6, 1),
                "round_trips": round(calls.total_round_trips / iterations, 2),
                "response_bytes": round(calls.response_bytes / iterations),
            }
    aws.reset_clients(keep_session=True)
    return figures


def whole_event_per_event(iterations: int, into: tuple[int, ...] = (10, 400)) -> dict[str, dict[str, float]]:
    """route() of one SMS in a known person's conversation, after `into` events of it."""
    from datetime import timedelta

    from moto import mock_aws

    from functions.routing.logic import RoutingDeps, route
    from infra import topology
    from infra.local.emulator import create_table, patch_moto
    from switchboard_core import aws
    from switchboard_core.events import Contact
    from switchboard_core.routing.config_store import RoutingConfigStore
    from switchboard_core.routing.contacts import ContactStore
    from switchboard_core.routing.conversations import ConversationStore
    from tests.bench.scale import DynamoCounter

    use_in_process_moto()
    patch_moto()  # the emulator's moto, as the unit tests and the local hub run it
    start = datetime(2026, 11, 23, tzinfo=UTC)

    def sms(n: int) -> CanonicalEvent:
        return CanonicalEvent.from_draft(
            EventDraft(
                type="message.received",
                provider_event_id=f"SM{n:08d}",
                occurred_at=start + timedelta(seconds=n),
                contact=Contact(phone="+14155550123"),
                conversation_key="twilio:AC1:+14155550100:+14155550123",
                text=MESSAGES[n % len(MESSAGES)],
            ),
            provider="twilio",
            connection="con_bench",
            tenant="t",
            channel=Channel.TELEPHONY,
            received_at=start + timedelta(seconds=n),
            raw_ref=None,
        )

    figures: dict[str, dict[str, float]] = {}
    with mock_aws():
        aws.reset_clients(keep_session=True)
        dynamodb = aws.resource("dynamodb")
        for name in ("contacts", "conversations", "routing"):
            create_table(dynamodb.meta.client, f"bench-{name}", topology.TABLES[name])
        config = RoutingConfigStore(dynamodb.Table("bench-routing"))
        config.put_rules("t", rule_set(10), None, start)
        config.put_taxonomy("t", taxonomy(1_000, random.Random(7)), start)
        deps = RoutingDeps(
            contacts=ContactStore(dynamodb.Table("bench-contacts")),
            conversations=ConversationStore(dynamodb.Table("bench-conversations"), timedelta(days=365)),
            config=config,
            sensors={},
        )
        counter = DynamoCounter(dynamodb.meta.client)
        routed = 0
        for mark in into:
            while routed < mark:  # the conversation so far
                route(sms(routed), deps, start, lambda derived: None)
                routed += 1
            batch = [sms(routed + n) for n in range(iterations)]
            with counter.measure() as calls:
                cpu = time.process_time()
                for event in batch:
                    route(event, deps, start, lambda derived: None)
                cpu = time.process_time() - cpu
            routed += iterations
            figures[str(mark)] = {
                "cpu_us": round(cpu / iterations * 1e6, 1),
                "round_trips": round(calls.total_round_trips / iterations, 2),
                "response_bytes": round(calls.response_bytes / iterations),
            }
    aws.reset_clients(keep_session=True)
    return figures


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
    # Deciding walks, in order, the rules an event can meet until one assigns: rules gated on a
    # topic, type, provider or channel the event lacks are skipped by an index built once per rule
    # set; rules with only other conditions (sentiment here, the worst case) are each evaluated.
    sensor = Sensor(taxonomy(1_000, random.Random(7)))
    decide_us = {
        kind: {str(n): round(cpu_per_event_us(sensor, build(n), iterations), 1) for n in (10, 1_000)}
        for kind, build in (("gated", rule_set), ("ungated", ungated_rule_set))
    }
    config_iterations = 50 if args.quick else 500
    configuration = {str(rules): configuration_per_event(rules, config_iterations) for rules in (10, 1_000)}
    whole_event = whole_event_per_event(10 if args.quick else 100)
    report = {
        "quick": args.quick,
        "rules": 1000,
        "cpu_us_per_event": {str(k): round(v, 1) for k, v in growth.items()},
        "ratio_to_10_phrases": {str(k): round(v / growth[10], 2) for k, v in growth.items()},
        "taxonomy_build_ms": {str(k): round(v, 1) for k, v in build_ms.items()},
        "sense_and_decide_us_1000_phrases": decide_us,
        "configuration_per_event": configuration,
        "whole_event_into_conversation": whole_event,
        "configuration_ratio_1000_to_10_rules": {
            way: round(configuration["1000"][way]["cpu_us"] / configuration["10"][way]["cpu_us"], 2)
            for way in ("cached_by_version", "read_per_event")
        },
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
    for kind, figures in decide_us.items():
        print(
            f"sense + decide, 1,000 phrases, rules {kind:<8}: {figures['10']:8.1f} us at 10 rules, "
            f"{figures['1000']:8.1f} us at 1,000 ({figures['1000'] / figures['10']:.2f}x)"
        )
    print(f"routing's configuration step per event (moto's DynamoDB, 1,000 phrases, {config_iterations} events):")
    for rules, ways in configuration.items():
        for way, f in ways.items():
            print(
                f"  {int(rules):>5} rules, {way:<17}: {f['cpu_us']:8.1f} us CPU {f['wall_us']:8.1f} us wall, "
                f"{f['round_trips']:.0f} DynamoDB round trip(s), {f['response_bytes']:>7,} response bytes"
            )
    for way, ratio in report["configuration_ratio_1000_to_10_rules"].items():  # type: ignore[attr-defined]
        print(f"  CPU at 1,000 rules / 10 rules, {way}: {ratio:.2f}x")
    print("a whole event through route() (moto's DynamoDB in-process), an SMS in a known person's conversation:")
    for mark, f in whole_event.items():
        print(
            f"  after {int(mark):>4} events of it: {f['cpu_us']:9.1f} us CPU, {f['round_trips']:.1f} DynamoDB round "
            f"trips, {f['response_bytes']:>7,} response bytes"
        )
    first, last = whole_event.values()
    print(f"  CPU at the last / the first: {last['cpu_us'] / first['cpu_us']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
