"""Campaigns end to end on the local runtime: a negative X mention, routed and assigned, starts a
published campaign for a contact a CRM sync knows by both their X handle and their phone; the
SMS goes out through the provider sandbox, the customer's "no" branches to a call patched to
the assignee, who is notified. A colleague's fork changes one step while the original's run in
flight keeps its own version. Redeliveries and a crash between two steps send nothing twice; a
STOP ends the contact's runs, quiet hours postpone a send, and refused saves change nothing; a wait
ends through its one-time schedule; `switchboard campaigns start|runs|stop` drive the running hub."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from infra.local.runtime import EXAMPLES_DIR
from infra.local.samples import build_reply
from infra.local.samples.x import ACCOUNT, x_signature
from switchboard_core import aws
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from switchboard_core.routing.contacts import ContactStore, Identity
from switchboard_core.routing.rules import RuleSet
from tests.integration.conftest import wait_for
from tests.zones import DAYTIME, NIGHT, zone_where

pytestmark = pytest.mark.integration

TENANT = "demo"
BUSINESS_SMS = "+15005550006"  # the demo Twilio connection's sender number
RITA = "+14155550181"  # the social-care responder routing assigns mentions to
ON_CALL = "+14155550182"  # the number the colleague's fork calls instead
RULES = {
    "default_team": "front-desk",
    "rules": [
        # As the sample rules do: a conversation stays with its agent (the customer's SMS reply too).
        {"name": "keep-agent", "then": {"kind": "sticky"}},
        {"name": "mentions", "when": {"types": ["mention.created"]}, "then": {"kind": "assign", "team": "social-care"}},
    ],
}
# Routing's decision on a negative mention: the run knows the assignee from it.
NEGATIVE_MENTION = {
    "source": ["switchboard.routing"],
    "detail-type": ["routing.assigned"],
    "detail": {"attributes": {"source_type": ["mention.created"], "sentiment": [{"numeric": ["<", -0.3]}]}},
}
ANGRY = "@switchboard_demo this is terrible, the worst service ever. I am furious and disappointed."
FIRST_TEXT = "Hi {name}, we saw your post and we're sorry. Did we sort it out? Reply YES or NO."


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    phone: str
    x_id: str


# --- the world ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def social_care(hub) -> Iterator[Any]:
    """Mentions are assigned to the social-care team, whose one member has a phone (the rules in
    force before are put back afterwards)."""
    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    current = store.rules(TENANT)
    version = store.put_rules(TENANT, RuleSet.model_validate(RULES), current[1] if current else None, datetime.now(UTC))
    store.put_team(TENANT, Team(name="social-care"))
    store.put_responder(
        Responder(
            id="rita",
            tenant=TENANT,
            name="Rita Social",
            teams=["social-care"],
            capacity=1000,
            contact_points=[ContactPoint(channel="sms", to=RITA)],
        )
    )
    yield hub
    if current is not None:
        store.put_rules(TENANT, current[0], version, datetime.now(UTC))


def example() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES_DIR / "campaign-negative-mention.yaml").read_text())


@pytest.fixture(scope="module")
def campaign(social_care) -> Iterator[str]:
    """The example campaign, triggered by routing's decision on a negative mention, published."""
    hub = social_care
    status, created = hub.admin(
        "POST",
        "/admin/campaigns",
        {"name": "negative-mention", "flow": example()["flow"], "trigger": {"event_pattern": NEGATIVE_MENTION}},
    )
    assert status == 201, created
    status, published = hub.admin("POST", f"/admin/campaigns/{created['id']}/publish", {"version": 1})
    assert status == 200, published
    yield created["id"]
    hub.admin("POST", f"/admin/campaigns/{created['id']}/stop")


def crm_customer(hub, name: str, **attributes: str) -> Customer:
    """A contact as a CRM sync leaves it: known by phone and X account, with a name and a time
    zone (by default one where it is daytime now: quiet hours hold no send back)."""
    attributes.setdefault("timezone", zone_where(DAYTIME))
    store = ContactStore(aws.resource("dynamodb").Table(hub.runtime.names.table("contacts")))
    phone, x_id = f"+1415556{secrets.randbelow(10**4):04d}", str(10**17 + secrets.randbelow(10**17))
    now = datetime.now(UTC)
    record = store.resolve(
        TENANT,
        [Identity(kind="phone", value=phone), Identity(kind="handle", value=f"x:{x_id}")],
        reason="crm:sync",
        now=now,
    )
    assert record is not None
    store.update_attributes(record.id, {"name": name, **attributes}, now)
    return Customer(record.id, name, phone, x_id)


def post_mention(hub, customer: Customer, text: str) -> None:
    """X's Account Activity webhook for a tweet mentioning the business, signed as X signs it."""
    tweet = str(10**18 + secrets.randbelow(10**18))
    now = datetime.now(UTC)
    payload = {
        "for_user_id": ACCOUNT["id_str"],
        "tweet_create_events": [
            {
                "created_at": now.strftime("%a %b %d %H:%M:%S +0000 %Y"),
                "id": int(tweet),
                "id_str": tweet,
                "text": text,
                "in_reply_to_status_id_str": None,
                "user": {"id": int(customer.x_id), "id_str": customer.x_id, "name": customer.name},
                "timestamp_ms": str(int(now.timestamp() * 1000)),
            }
        ],
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    secret = hub.connection("x")["credentials"]["consumer_secret"]
    headers = {"Content-Type": "application/json", "X-Twitter-Webhooks-Signature": x_signature(secret, body)}
    status, _, answer = hub.request("POST", hub.webhook_url("x"), body, headers)
    assert status == 200, answer


def reply_request(hub, customer: Customer, text: str) -> tuple[str, bytes, dict[str, str]]:
    """What `switchboard sandbox reply --provider twilio` posts: the customer's SMS to the sender number."""
    signed = build_reply(
        "twilio", hub.connection("twilio")["credentials"], hub.webhook_url("twilio"), customer.phone, text, BUSINESS_SMS
    )
    return signed.url, signed.body, signed.headers


def reply(hub, customer: Customer, text: str) -> tuple[str, bytes, dict[str, str]]:
    url, body, headers = reply_request(hub, customer, text)
    status, _, answer = hub.request("POST", url, body, headers)
    assert status == 200, answer
    return url, body, headers


def sms_to(hub, phone: str) -> list[Any]:
    return [m for m in hub.runtime.provider_apis.messages if m.provider == "twilio" and m.to == phone]


def calls_to(hub, phone: str) -> list[Any]:
    return [c for c in hub.runtime.provider_apis.placed_calls if c.to == phone]


def runs_of(hub, campaign_id: str, contact_id: str, key: str | None = None) -> list[dict[str, Any]]:
    status, _, listing = hub.request(
        "GET", f"/admin/campaigns/{campaign_id}/runs?limit=100", key=key or hub.runtime.admin_key
    )
    assert status == 200, listing
    return [run for run in listing["runs"] if run["contact"]["id"] == contact_id]


def the_run(hub, campaign_id: str, contact_id: str, **expected: Any) -> dict[str, Any] | None:
    """The contact's one run of the campaign once it has the expected fields (state, current_step...)
    and its sends are settled."""
    runs = runs_of(hub, campaign_id, contact_id)
    if len(runs) != 1:
        return None
    run = runs[0]
    return run if settled(run) and all(run.get(name) == value for name, value in expected.items()) else None


def settled(run: dict[str, Any]) -> bool:
    """No message step still "requested". The outbox saves the run (its next state, the send
    "requested") before it sends and records "sent" after; the functions run concurrently, so a
    read may fall in between, as it may on AWS. A call stays "requested" until its outcome comes."""
    return all(outcome != "requested" or "call" in step for step, outcome in steps(run))


def steps(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["step"], step["outcome"]) for step in run["steps_done"]]


def campaign_notifications(hub, run_id: str) -> list[dict[str, Any]]:
    """The notifications function's notification.sent for a run's notify step. It sends a recipient 3
    notifications per 5 minutes, then digests the rest: Rita, told of each assignment too, is told
    at once only in the first story."""
    return [e for e in hub.logged_events(type="notification.sent", limit="100") if e["attributes"].get("run") == run_id]


def sandbox_call_outcome(hub, call_id: str, outcome: str) -> None:
    """`switchboard sandbox call-outcome`: the provider's signed callbacks of the call, to the hub."""
    statuses = hub.runtime.post_call_callbacks(
        next(c for c in hub.runtime.provider_apis.placed_calls if c.call_id == call_id), outcome, None
    )
    assert all(status == 200 for status in statuses), statuses


def timeline_types(hub, contact_id: str) -> list[str]:
    status, timeline = hub.admin("GET", f"/admin/contacts/{contact_id}/timeline?limit=100")
    assert status == 200, timeline
    return [entry["type"] for entry in timeline["events"]]


def counts(hub, campaign_id: str, key: str | None = None) -> dict[int, dict[str, dict[str, int]]]:
    status, _, answer = hub.request("GET", f"/admin/campaigns/{campaign_id}/versions", key=key or hub.runtime.admin_key)
    assert status == 200, answer
    return {version["version"]: version["counts"] for version in answer["versions"]}


# --- stories -----------------------------------------------------------------------------------


def test_a_negative_mention_texts_the_customer_and_a_no_connects_them_to_the_assignee(campaign, social_care):
    hub = social_care
    customer = crm_customer(hub, "Jordan")
    rita_before = len(sms_to(hub, RITA))
    counted_before = counts(hub, campaign).get(1, {})
    post_mention(hub, customer, ANGRY)

    [sms] = wait_for(lambda: sms_to(hub, customer.phone), timeout=30)
    assert sms.text == FIRST_TEXT.format(name="Jordan")
    run = wait_for(lambda: the_run(hub, campaign, customer.id, state="waiting", current_step="await_answer"))
    assert run, runs_of(hub, campaign, customer.id)
    assert run["version"] == 1 and run["waiting_for"] == "reply"
    assert steps(run) == [("text_customer", "sent"), ("await_answer", "waiting")]

    reply(hub, customer, "no")
    [call] = wait_for(lambda: calls_to(hub, customer.phone), timeout=30)
    assert call.provider == "twilio" and call.from_ == BUSINESS_SMS
    assert f"<Number>{RITA}</Number>" in (call.twiml or ""), call.twiml  # patched to the assignee
    done = wait_for(lambda: the_run(hub, campaign, customer.id, state="completed"), timeout=30)
    assert done, runs_of(hub, campaign, customer.id)
    assert steps(done) == [
        ("text_customer", "sent"),
        ("await_answer", "waiting"),
        ("await_answer", "replied"),
        ("read_answer", "case 0"),
        ("call_customer", "requested"),
        ("notify_assignee", "sent"),
        ("done", "ended"),
    ]
    [notified] = wait_for(lambda: campaign_notifications(hub, done["id"]), timeout=30)
    assert notified["attributes"]["responder"] == "rita" and notified["attributes"]["channel"] == "sms"
    told = [m.text for m in sms_to(hub, RITA)[rita_before:] if m.text.startswith("[negative-mention]")]
    urgent = '[negative-mention] URGENT Campaign negative-mention: Jordan said the problem is not solved ("no"); '
    assert told == [urgent + "you are being connected."]
    # The contact answers the call: its report comes back through ingest and settles the step.
    sandbox_call_outcome(hub, call.call_id, "answered")
    answered = wait_for(
        lambda: (run := the_run(hub, campaign, customer.id)) and ("call_customer", "answered") in steps(run) and run,
        timeout=30,
    )
    assert answered, runs_of(hub, campaign, customer.id)
    assert sms_to(hub, customer.phone) == [sms] and calls_to(hub, customer.phone) == [call]

    # Each step's counts moved on version 1.
    def moved() -> dict[str, dict[str, int]]:
        now = counts(hub, campaign)[1]
        return {
            step: {k: v - counted_before.get(step, {}).get(k, 0) for k, v in counters.items() if v}
            for step, counters in now.items()
        }

    expected = {
        "text_customer": {"entered": 1, "sent": 1},
        "await_answer": {"entered": 1, "replied": 1},
        "read_answer": {"entered": 1},
        "call_customer": {"entered": 1, "sent": 1},
        "notify_assignee": {"entered": 1, "sent": 1},
        "done": {"entered": 1},
    }
    assert wait_for(lambda: {s: c for s, c in moved().items() if any(c.values())} == expected, timeout=10), moved()
    # The contact's timeline shows the campaign beside the mention and the reply.
    wanted = {"campaign.run_started", "campaign.message_sent", "campaign.step_completed", "campaign.run_completed"}
    assert wait_for(lambda: wanted <= set(timeline_types(hub, customer.id)), timeout=20), timeline_types(
        hub, customer.id
    )
    types = timeline_types(hub, customer.id)
    assert "mention.created" in types and "message.received" in types
    assert types.count("campaign.message_sent") == 1 and types.count("campaign.run_started") == 1


def staff_key(hub, name: str) -> tuple[str, str]:
    """A second user of the tenant (a staff key, as `switchboard keys create` makes one): key, key id."""
    from switchboard_core.principals import ApiKeyStore, Role

    store = ApiKeyStore(aws.resource("dynamodb").Table(hub.runtime.names.table("api_keys")))
    key, record = store.create(tenant=TENANT, name=name, role=Role.STAFF, now=datetime.now(UTC))
    return key, record.key_id


def as_key(hub, key: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    status, _, payload = hub.request(method, path, body, key=key)
    return status, payload


def test_a_colleagues_fork_changes_one_step_and_the_originals_run_keeps_its_version(campaign, social_care):
    hub = social_care
    customer = crm_customer(hub, "Casey")
    post_mention(hub, customer, ANGRY)
    original = wait_for(lambda: the_run(hub, campaign, customer.id, state="waiting", current_step="await_answer"))
    assert original, runs_of(hub, campaign, customer.id)

    # A colleague, given viewer access, forks it, calls the on-call number instead of the assignee, publishes.
    key, key_id = staff_key(hub, "casey-colleague")
    status, shared = hub.admin("POST", f"/admin/campaigns/{campaign}/shares", {"principal": key_id, "access": "viewer"})
    assert status in (200, 201), shared
    status, fork = as_key(hub, key, "POST", f"/admin/campaigns/{campaign}/fork", {"name": "negative-mention-on-call"})
    assert status == 201, fork
    assert fork["forked_from"] == {"campaign": campaign, "version": 1} and fork["version"] == 1
    status, shown = as_key(hub, key, "GET", f"/admin/campaigns/{fork['id']}")
    assert status == 200, shown
    flow = shown["flow"]
    flow["steps"]["call_customer"]["responder"] = {"number": ON_CALL}
    status, saved = as_key(hub, key, "PUT", f"/admin/campaigns/{fork['id']}", {"flow": flow, "expected_version": 1})
    assert status == 200 and saved["version"] == 2, saved
    status, diff = as_key(hub, key, "GET", f"/admin/campaigns/{fork['id']}/diff?from=1&to=2")
    assert status == 200 and diff["steps"]["added"] == [] and diff["steps"]["removed"] == [], diff
    assert [change["step"] for change in diff["steps"]["changed"]] == ["call_customer"], diff
    status, published = as_key(hub, key, "POST", f"/admin/campaigns/{fork['id']}/publish", {"version": 2})
    assert status == 200, published
    try:
        # The fork's run, for another customer (one contact gets at most 3 sends and calls a day).
        other = crm_customer(hub, "Dana")
        status, started = as_key(hub, key, "POST", f"/admin/campaigns/{fork['id']}/runs", {"contacts": [other.id]})
        assert status == 202 and started["version"] == 2, started
        forked = wait_for(lambda: the_run(hub, fork["id"], other.id, state="waiting", current_step="await_answer"))
        assert forked, runs_of(hub, fork["id"], other.id)
        assert forked["version"] == 2
        assert [m.text for m in sms_to(hub, other.phone)] == [FIRST_TEXT.format(name="Dana")]

        # Both say "no": each run goes on with its own version's flow.
        reply(hub, customer, "no")
        reply(hub, other, "no")
        [mine_call] = wait_for(lambda: calls_to(hub, customer.phone), timeout=30)
        [their_call] = wait_for(lambda: calls_to(hub, other.phone), timeout=30)
        assert f"<Number>{RITA}</Number>" in (mine_call.twiml or ""), mine_call.twiml
        assert f"<Number>{ON_CALL}</Number>" in (their_call.twiml or ""), their_call.twiml
        mine = wait_for(lambda: the_run(hub, campaign, customer.id, state="completed"), timeout=30)
        theirs = wait_for(lambda: the_run(hub, fork["id"], other.id, state="completed"), timeout=30)
        assert mine and theirs, (runs_of(hub, campaign, customer.id), runs_of(hub, fork["id"], other.id))
        assert mine["id"] == original["id"] and mine["version"] == 1
        assert ("notify_assignee", "sent") in steps(mine)
        # The fork's run was started by hand: no conversation, no assignee to tell.
        assert ("notify_assignee", "failed") in steps(theirs), theirs
        assert runs_of(hub, fork["id"], customer.id) == [] and runs_of(hub, campaign, other.id) == []
        # The original is as it was: one version, live.
        status, head = hub.admin("GET", f"/admin/campaigns/{campaign}")
        assert status == 200 and head["version"] == 1 and head["live"] is True, head
        assert head["flow"]["steps"]["call_customer"]["responder"]["assignee"] is True
        assert counts(hub, fork["id"], key)[2]["call_customer"]["entered"] == 1
        assert not any(n for step in counts(hub, fork["id"], key)[1].values() for n in step.values())  # v1 never ran
    finally:
        as_key(hub, key, "POST", f"/admin/campaigns/{fork['id']}/stop")


def republish(hub, event: dict[str, Any]) -> None:
    """The bus delivering an event again: the same event (same id) put on it once more."""
    from switchboard_core.bus import EventPublisher
    from switchboard_core.events import CanonicalEvent

    EventPublisher(aws.client("events"), hub.runtime.names.bus).publish([CanonicalEvent.model_validate(event)])


def logged_for(hub, kind: str, contact_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in hub.logged_events(type=kind, limit="100")
        if (e["attributes"].get("contact") or {}).get("id") == contact_id
    ]


def settles(check: Any, seconds: float = 3.0) -> None:
    """Give the hub `seconds` to do something it must not (a second send): wait_for returns early if it does."""
    wait_for(check, timeout=seconds)


def test_a_redelivered_trigger_or_reply_starts_nothing_and_sends_nothing_twice(campaign, social_care):
    hub = social_care
    customer = crm_customer(hub, "Robin")
    post_mention(hub, customer, ANGRY)
    run = wait_for(lambda: the_run(hub, campaign, customer.id, state="waiting", current_step="await_answer"))
    assert run, runs_of(hub, campaign, customer.id)

    # The bus delivers routing's decision (the trigger) again.
    [assigned] = wait_for(lambda: logged_for(hub, "routing.assigned", customer.id))
    republish(hub, assigned)
    settles(lambda: len(sms_to(hub, customer.phone)) > 1 or len(runs_of(hub, campaign, customer.id)) > 1)
    assert len(sms_to(hub, customer.phone)) == 1
    assert [r["id"] for r in runs_of(hub, campaign, customer.id)] == [run["id"]]

    # Twilio posts the customer's "no" twice; then the bus delivers routing's conversation event again.
    url, body, headers = reply(hub, customer, "no")
    status, _, _ = hub.request("POST", url, body, headers)
    assert status == 200
    [call] = wait_for(lambda: calls_to(hub, customer.phone), timeout=30)
    done = wait_for(lambda: the_run(hub, campaign, customer.id, state="completed"), timeout=30)
    assert done, runs_of(hub, campaign, customer.id)
    updates = [e for e in logged_for(hub, "conversation.updated", customer.id) if e["text"] == "no"]
    assert len(updates) == 1, updates  # ingest took the webhook once
    republish(hub, updates[0])
    settles(lambda: len(calls_to(hub, customer.phone)) > 1, 3)
    assert calls_to(hub, customer.phone) == [call] and len(sms_to(hub, customer.phone)) == 1
    # One request to tell the assignee (whether the notifications function sends it at once or puts
    # it in Rita's digest depends on how many she got in the last 5 minutes: 3 at most).
    requested = hub.logged_events(type="campaign.notification_requested", limit="100")
    assert len([e for e in requested if e["attributes"]["run"] == done["id"]]) == 1
    assert the_run(hub, campaign, customer.id) == done


@pytest.fixture
def quick_redelivery(hub) -> Iterator[None]:
    """A message whose invocation crashed comes back after 2 s instead of the queue's 120 s."""
    from infra import topology

    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=hub.runtime.names.queue(topology.CAMPAIGN_QUEUE))["QueueUrl"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "2"})
    yield
    sqs.set_queue_attributes(QueueUrl=url, Attributes=before)


def test_a_crash_between_two_steps_resumes_without_sending_again(
    campaign, social_care, quick_redelivery, tmp_path, request
):
    """The state write after the SMS went out (the step's outcome, the move to the wait) fails once,
    as if the function died there: the next delivery for the run (the trigger again, or routing's event
    for the mention) finishes the outbox, and the claim on the send's key keeps it from going twice."""
    from tests.integration import faults

    hub = social_care
    customer = crm_customer(hub, "Alex")
    marker = tmp_path / "crashed"
    # In the campaigns function's own sandboxes (a patch here would not reach them).
    hub.runtime.functions.inject("campaigns", faults.__file__, "crash_run_save_once", customer.id, str(marker))
    request.addfinalizer(lambda: hub.runtime.functions.clear_injections("campaigns"))
    post_mention(hub, customer, ANGRY)
    expected = [("text_customer", "sent"), ("await_answer", "waiting")]
    # The crashed message comes back after its (shortened) visibility timeout; on a loaded machine
    # with other modules' work queued before it, that takes longer than an idle run's few seconds.
    run = wait_for(lambda: (run := the_run(hub, campaign, customer.id)) and steps(run) == expected and run, timeout=90)
    assert marker.exists(), "the state write never failed: the test proved nothing"
    assert run, runs_of(hub, campaign, customer.id)
    assert run["id"] == marker.read_text() and run["state"] == "waiting" and run["current_step"] == "await_answer"
    settles(lambda: len(sms_to(hub, customer.phone)) > 1, 3)
    assert [m.text for m in sms_to(hub, customer.phone)] == [FIRST_TEXT.format(name="Alex")]
    # campaign.message_sent published again by the resumed outbox carries the same id.
    assert len({e["id"] for e in logged_for(hub, "campaign.message_sent", customer.id)}) == 1


CHECK_IN = {
    "start": "ask",
    "steps": {
        "ask": {"type": "send_message", "channel": "sms", "text": "Hi ${name}, how was your visit?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT1H", "next": "thanks", "on_timeout": "done"},
        "thanks": {"type": "send_message", "channel": "sms", "text": "Thanks, ${name}!", "next": "done"},
        "done": {"type": "end"},
    },
}


@pytest.fixture(scope="module")
def check_in(social_care) -> Iterator[str]:
    """A campaign without a trigger, started for lists of contacts, published."""
    hub = social_care
    status, created = hub.admin("POST", "/admin/campaigns", {"name": "check-in", "flow": CHECK_IN})
    assert status == 201, created
    status, published = hub.admin("POST", f"/admin/campaigns/{created['id']}/publish", {"version": 1})
    assert status == 200, published
    yield created["id"]
    hub.admin("POST", f"/admin/campaigns/{created['id']}/stop")


def cli(hub, *args: str) -> str:
    """`switchboard ARGS` against the running hub: what it printed. Its output goes to a buffer that
    stays open (not capsys's), since a function's logger first used meanwhile keeps the stream it found."""
    import contextlib
    import io

    from infra.local.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--state-dir", str(hub.runtime.state_dir), *args])
    assert code == 0, out.getvalue()
    return "".join(line for line in out.getvalue().splitlines(keepends=True) if not line.startswith('{"'))


def test_a_stop_reply_ends_every_run_of_the_contact(check_in, social_care):
    hub = social_care
    customer = crm_customer(hub, "Sky")
    # `switchboard campaigns start` twice: two requests, two runs for the same contact (by phone).
    for _ in range(2):
        assert "version 1: 1 run requested" in cli(hub, "campaigns", "start", check_in, customer.phone)
    runs = wait_for(
        lambda: (
            len(found := runs_of(hub, check_in, customer.id)) == 2
            and all(r["current_step"] == "await" and settled(r) for r in found)
            and found
        ),
        timeout=30,
    )
    assert runs, [(r["state"], r["current_step"], steps(r)) for r in runs_of(hub, check_in, customer.id)]
    assert [m.text for m in sms_to(hub, customer.phone)] == ["Hi Sky, how was your visit?"] * 2
    listed = json.loads(cli(hub, "campaigns", "runs", check_in, "--json"))
    assert {r["id"] for r in runs} <= {r["id"] for r in listed}

    reply(hub, customer, "STOP")

    def all_stopped() -> list[dict[str, Any]] | None:
        found = runs_of(hub, check_in, customer.id)
        return found if all(r["state"] == "stopped" for r in found) else None

    stopped = wait_for(all_stopped, timeout=30)
    assert stopped, runs_of(hub, check_in, customer.id)
    assert {r["end_reason"] for r in stopped} == {"the contact opted out of sms"}
    settles(lambda: len(sms_to(hub, customer.phone)) > 2, 3)
    assert len(sms_to(hub, customer.phone)) == 2  # no "Thanks": a STOP is no answer to branch on


def next_local_eight(zone: str, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    eight = local.replace(hour=8, minute=0, second=0, microsecond=0)
    return (eight if local < eight else eight + timedelta(days=1)).astimezone(UTC)


def test_quiet_hours_postpone_a_send_to_the_contacts_next_morning(check_in, social_care):
    hub = social_care
    zone = zone_where(NIGHT)
    customer = crm_customer(hub, "Noor", timezone=zone)
    status, started = hub.admin("POST", f"/admin/campaigns/{check_in}/runs", {"contacts": [customer.id]})
    assert status == 202, started
    run = wait_for(lambda: the_run(hub, check_in, customer.id, state="waiting", waiting_for="postponed"))
    assert run, runs_of(hub, check_in, customer.id)
    assert run["current_step"] == "ask" and steps(run) == [("ask", "postponed")]
    assert run["steps_done"][0]["reason"] == "quiet_hours"
    assert datetime.fromisoformat(run["wake_at"]) == next_local_eight(zone, datetime.now(UTC))
    assert sms_to(hub, customer.phone) == []
    # The same request again (a retry after a timeout): no second run.
    status, again = hub.admin(
        "POST", f"/admin/campaigns/{check_in}/runs", {"contacts": [customer.id], "request": started["request"]}
    )
    assert status == 202 and again["request"] == started["request"], again
    settles(lambda: len(runs_of(hub, check_in, customer.id)) > 1, 3)
    assert [r["id"] for r in runs_of(hub, check_in, customer.id)] == [run["id"]]

    # `switchboard campaigns stop`: unpublished, and the run that waits for the morning is stopped.
    assert "1 run in flight asked to stop" in cli(hub, "campaigns", "stop", check_in)
    stopped = wait_for(lambda: the_run(hub, check_in, customer.id, state="stopped"), timeout=20)
    assert stopped, runs_of(hub, check_in, customer.id)
    status, head = hub.admin("GET", f"/admin/campaigns/{check_in}")
    assert status == 200 and head["live"] is False, head
    status, refused = hub.admin("POST", f"/admin/campaigns/{check_in}/runs", {"contacts": [customer.id]})
    assert status == 409 and refused["error"]["code"] == "not_published", refused
    assert sms_to(hub, customer.phone) == []


def campaign_items(hub) -> list[dict[str, Any]]:
    table = aws.resource("dynamodb").Table(hub.runtime.names.table("campaigns"))
    return sorted(
        table.scan(ConsistentRead=True)["Items"], key=lambda item: json.dumps(item, sort_keys=True, default=str)
    )


def test_refused_saves_change_nothing(social_care):
    hub = social_care
    status, created = hub.admin("POST", "/admin/campaigns", {"name": "refusals", "flow": CHECK_IN})
    assert status == 201, created
    path = f"/admin/campaigns/{created['id']}"
    key, key_id = staff_key(hub, "viewer-colleague")
    status, _ = hub.admin("POST", f"{path}/shares", {"principal": key_id, "access": "viewer"})
    assert status in (200, 201)
    before = campaign_items(hub)
    edited = json.loads(json.dumps(CHECK_IN).replace("Thanks", "Thank you"))

    # A viewer reads, but cannot save or publish.
    assert as_key(hub, key, "GET", path)[0] == 200
    status, refused = as_key(hub, key, "PUT", path, {"flow": edited, "expected_version": 1})
    assert status == 403, refused
    assert as_key(hub, key, "POST", f"{path}/publish", {"version": 1})[0] == 403

    # Invalid flows: 400 naming the step.
    dangling = json.loads(json.dumps(edited))
    dangling["steps"]["thanks"]["next"] = "nowhere"
    status, refused = hub.admin("PUT", path, {"flow": dangling, "expected_version": 1})
    assert status == 400 and [p["field"] for p in refused["error"]["details"]["problems"]] == [
        "flow.steps.thanks.next"
    ], refused
    looping = json.loads(json.dumps(edited))
    looping["steps"]["thanks"]["next"] = "ask"  # ask -> await -> thanks -> ask passes a wait: fine; this one does not
    looping["steps"]["ask"]["next"] = "thanks"
    looping["steps"]["await"] = {"type": "wait", "duration": "PT1M", "next": "done"}
    status, refused = hub.admin("PUT", path, {"flow": looping, "expected_version": 1})
    fields = [p["field"] for p in refused["error"]["details"]["problems"]] if status == 400 else refused
    assert status == 400 and "flow.steps.ask" in fields, refused
    unknown = json.loads(json.dumps(edited))
    unknown["steps"]["thanks"]["type"] = "send_fax"
    status, refused = hub.admin("PUT", path, {"flow": unknown, "expected_version": 1})
    assert status == 400 and [p["field"] for p in refused["error"]["details"]["problems"]] == ["flow.steps.thanks"]
    # No version 0 to have started from; and a version ahead of the latest is as stale as one behind.
    status, refused = hub.admin("PUT", path, {"flow": edited, "expected_version": 0})
    assert status == 400 and [p["field"] for p in refused["error"]["details"]["problems"]] == ["expected_version"]
    status, refused = hub.admin("PUT", path, {"flow": edited, "expected_version": 2})
    assert status == 409 and refused["error"]["code"] == "version_conflict", refused

    assert campaign_items(hub) == before  # nothing half-saved
    status, versions = hub.admin("GET", f"{path}/versions")
    assert status == 200 and [v["version"] for v in versions["versions"]] == [1]
    status, saved = hub.admin("PUT", path, {"flow": edited, "expected_version": 1})
    assert status == 200 and saved["version"] == 2, saved
    status, refused = hub.admin("PUT", path, {"flow": CHECK_IN, "expected_version": 1})
    assert status == 409 and refused["error"]["code"] == "version_conflict", refused


REMINDER = {
    "start": "ask",
    "steps": {
        "ask": {
            "type": "send_message",
            "channel": "sms",
            "text": "Hi ${name}, is the new router working?",
            "next": "await",
        },
        "await": {"type": "wait_for_reply", "timeout": "PT2S", "next": "done", "on_timeout": "nudge"},
        "nudge": {"type": "send_message", "channel": "sms", "text": "Just checking in, ${name}.", "next": "done"},
        "done": {"type": "end"},
    },
}


def test_a_wait_ends_when_its_timer_fires_and_the_run_goes_on_once(social_care):
    """The wait for a reply times out: its one-time schedule, fired by the local scheduler, is the
    run's timer message; the nudge goes out once."""
    hub = social_care
    status, created = hub.admin("POST", "/admin/campaigns", {"name": "reminder", "flow": REMINDER})
    assert status == 201, created
    path = f"/admin/campaigns/{created['id']}"
    assert hub.admin("POST", f"{path}/publish", {"version": 1})[0] == 200
    try:
        customer = crm_customer(hub, "Kim")
        status, started = hub.admin("POST", f"{path}/runs", {"contacts": [customer.id]})
        assert status == 202, started
        done = wait_for(lambda: the_run(hub, created["id"], customer.id, state="completed"), timeout=30)
        assert done, runs_of(hub, created["id"], customer.id)
        assert steps(done) == [
            ("ask", "sent"),
            ("await", "waiting"),
            ("await", "timed_out"),
            ("nudge", "sent"),
            ("done", "ended"),
        ]
        settles(lambda: len(sms_to(hub, customer.phone)) > 2, 2)
        assert [m.text for m in sms_to(hub, customer.phone)] == [
            "Hi Kim, is the new router working?",
            "Just checking in, Kim.",
        ]
    finally:
        hub.admin("POST", f"{path}/stop")


def test_the_example_as_written_starts_on_any_mention_and_calls_whoever_routing_assigned(social_care):
    """docs/examples/campaign-negative-mention.yaml with its own trigger (any mention.created, the
    provider's event, before routing has decided): the run finds the assignee on the conversation
    when it connects the call. A friendly mention does not start the negative-mention campaign."""
    hub = social_care
    status, created = hub.admin("POST", "/admin/campaigns", {"name": "example", **example()})
    assert status == 201, created
    path = f"/admin/campaigns/{created['id']}"
    assert hub.admin("POST", f"{path}/publish", {"version": 1})[0] == 200
    try:
        customer = crm_customer(hub, "Lou")
        post_mention(hub, customer, "@switchboard_demo love the new app, great work!")
        run = wait_for(lambda: the_run(hub, created["id"], customer.id, state="waiting", current_step="await_answer"))
        assert run, runs_of(hub, created["id"], customer.id)
        assert [m.text for m in sms_to(hub, customer.phone)] == [FIRST_TEXT.format(name="Lou")]
        reply(hub, customer, "not really")
        calls = wait_for(lambda: calls_to(hub, customer.phone), timeout=30)
        assert len(calls) == 1, runs_of(hub, created["id"], customer.id)
        [call] = calls
        assert f"<Number>{RITA}</Number>" in (call.twiml or ""), call.twiml
        done = wait_for(lambda: the_run(hub, created["id"], customer.id, state="completed"), timeout=30)
        assert done and ("notify_assignee", "sent") in steps(done), runs_of(hub, created["id"], customer.id)
    finally:
        hub.admin("POST", f"{path}/stop")
    status, listing = hub.admin("GET", "/admin/campaigns?limit=100")
    assert status == 200
    negative = next(c for c in listing["campaigns"] if c["name"] == "negative-mention")
    assert runs_of(hub, negative["id"], customer.id) == []  # routing's decision was not negative
