"""The sample routing set-up in docs/examples/ (what `switchboard dev` seeds the demo tenant
with): it is valid, and every customer message any `switchboard send` sample posts is
routed to a queue with an assignee and, where the provider can be answered, gets an
auto-reply. Pure: the samples go through the adapters, sensing, rules and assignment
without the runtime."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from functions.routing.logic import CUSTOMER_INITIATED
from infra.local.runtime import EXAMPLES_DIR, InvalidExample, load_routing_example
from infra.local.samples import SAMPLES, build_sample, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import SENDERS, reply_address
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from switchboard_core.routing import is_conversational
from switchboard_core.routing.assignment import choose_in_queue, choose_nearest
from switchboard_core.routing.rules import AssignNearest, decide
from switchboard_core.routing.sensing import Sensor

# A weekday afternoon in California, when every demo responder is on shift.
NOW = datetime(2026, 11, 24, 20, tzinfo=UTC)
EXAMPLE = load_routing_example(EXAMPLES_DIR, "demo")
SENSOR = Sensor(EXAMPLE.taxonomy)
ALL_SAMPLES = [(provider, sample) for provider, names in SAMPLES.items() for sample in names]


def sample_events(provider: str, sample: str) -> list[CanonicalEvent]:
    credentials = demo_credentials(provider)
    signed = build_sample(provider, sample, credentials, f"https://hub.example.com/webhooks/{provider}/c1", now=NOW)
    request = WebhookRequest(
        method=signed.method,
        url=signed.url,
        headers={k.lower(): v for k, v in signed.headers.items()},
        body=signed.body,
        query=parse_qs(urlsplit(signed.url).query, keep_blank_values=True),
        received_at=NOW,
    )
    adapter = get_adapter(provider)
    return [
        CanonicalEvent.from_draft(
            draft,
            provider=provider,
            connection="c1",
            tenant="demo",
            channel=adapter.channel,
            received_at=NOW,
            raw_ref=None,
        )
        for draft in adapter.normalise(request)
    ]


def route(event: CanonicalEvent) -> tuple[object, str | None, str | None]:
    sensed = SENSOR.sense(event)
    decision = decide(EXAMPLE.rule_set, event, sensed, {}, has_assignee=False, at=NOW)
    target = decision.target
    if isinstance(target, AssignNearest):
        choice = choose_nearest(target, EXAMPLE.responders, sensed.location, NOW)
    else:
        choice = choose_in_queue(target, EXAMPLE.responders, NOW)
    return decision, target.team if target else None, choice.responder.id if choice else None


def test_the_examples_are_valid_and_consistent():
    teams = {team.name for team in EXAMPLE.teams}
    assert EXAMPLE.rule_set.default_team in teams
    assert {r.then.team for r in EXAMPLE.rule_set.rules if getattr(r.then, "team", None)} <= teams
    assert {team for r in EXAMPLE.responders for team in r.teams} <= teams
    assert all(r.tenant == "demo" for r in EXAMPLE.responders)
    kinds = {rule.then.kind for rule in EXAMPLE.rule_set.rules}
    assert {"assign", "nearest", "auto_reply", "tag", "sticky"} <= kinds
    assert any(rule.when.topics_any for rule in EXAMPLE.rule_set.rules)


def test_a_broken_example_names_the_file_and_the_field(tmp_path):
    for name in ("rules.json", "taxonomy.json", "teams.json", "responders.json"):
        (tmp_path / name).write_text((EXAMPLES_DIR / name).read_text())
    rules = json.loads((tmp_path / "rules.json").read_text())
    rules["rules"][0]["then"]["kind"] = "shout"
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    with pytest.raises(InvalidExample, match=r"rules\.json: rules\.0\.then"):
        load_routing_example(tmp_path, "demo")
    (tmp_path / "rules.json").write_text("{")
    with pytest.raises(InvalidExample, match=r"rules\.json"):
        load_routing_example(tmp_path, "demo")


@pytest.mark.parametrize(("provider", "sample"), ALL_SAMPLES)
def test_every_customer_event_a_sample_posts_gets_a_queue_an_assignee_and_a_reply(provider, sample):
    for event in sample_events(provider, sample):
        if not is_conversational(event):
            continue
        decision, queue, assignee = route(event)
        assert queue and assignee, (event.type, decision)
        if event.type in CUSTOMER_INITIATED:
            assert decision.auto_reply is not None, event.type
            if provider in SENDERS and reply_address(event) is not None:
                assert decision.auto_reply_rule == "acknowledge"


def test_samples_exercise_topics_nearest_and_the_default_queue():
    def outcome(provider: str, sample: str) -> tuple[str, str | None, str | None]:
        (event,) = [e for e in sample_events(provider, sample) if is_conversational(e)]
        decision, queue, assignee = route(event)
        return decision.rule or "(default)", queue, assignee

    assert outcome("twilio", "sms") == ("orders", "orders", "omar")  # "order", skills orders >= 2
    assert outcome("twilio", "conversations")[:2] == ("billing", "billing")  # "refund"
    assert outcome("slack", "message")[:2] == ("technical", "support")  # "API"
    assert outcome("telegram", "location") == ("on-site", "field", "jo-berkeley")  # nearest to Oakland
    assert outcome("meta", "whatsapp")[:2] == ("(default)", "front-desk")  # nothing matched


def test_sender_providers_default_samples_can_be_answered():
    """Where the hub can send (twilio, telegram, slack, meta...), the default sample's reply has an address.
    HubSpot's webhooks carry no message: its thread-message sample is answered once the hubspot_threads
    function has fetched the message it names (as the provider sandbox answers it)."""
    for provider in SENDERS:
        if provider == "hubspot":
            continue
        (event,) = [e for e in sample_events(provider, SAMPLES[provider][0]) if is_conversational(e)]
        assert reply_address(event) is not None, provider
    assert reply_address(fetched_hubspot_thread_message()) is not None


def fetched_hubspot_thread_message() -> CanonicalEvent:
    from functions.hubspot_threads.logic import ThreadMessage, thread_event
    from infra.local.samples.hubspot import thread_message

    signed = build_sample("hubspot", "thread-message", demo_credentials("hubspot"), "https://hub.example.com/x", NOW)
    (webhook,) = [
        CanonicalEvent.from_draft(
            draft,
            provider="hubspot",
            connection="c1",
            tenant="demo",
            channel=get_adapter("hubspot").channel,
            received_at=NOW,
            raw_ref=None,
        )
        for draft in get_adapter("hubspot").normalise(
            WebhookRequest(method="POST", url=signed.url, headers={}, body=signed.body)
        )
    ]
    message = ThreadMessage.model_validate(thread_message(signed))
    event = thread_event(webhook, str(webhook.attributes["objectId"]), message)
    assert event.type == "message.received" and is_conversational(event)
    return event
