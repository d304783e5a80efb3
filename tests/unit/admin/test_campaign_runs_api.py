"""Running campaigns through the admin handler against moto: publishing puts (or removes) the
trigger rule on the bus, and the rule delivers the tenant's matching events to the campaigns
queue as TriggerMessages; POST /runs sends a StartRequest per contact (in batches of ten),
refusing drafts, unknown or repeated contacts, malformed phones, viewers, strangers and partners;
GET /runs pages through the runs; versions carry per-step counts; stop unpublishes, removes the
rule and sends a StopRequest per run in flight."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.admin import campaign_runs
from switchboard_core import aws
from switchboard_core.campaigns.flow import Trigger
from switchboard_core.campaigns.run_store import RunStore
from switchboard_core.campaigns.runs import CounterMove, Run, RunContact, RunStatus, RunTrigger, StepRecord
from switchboard_core.campaigns.work import CAMPAIGN_WORK, StartRequest, StopRequest, TriggerMessage
from switchboard_core.errors import HubError
from switchboard_core.routing.contacts import ContactRecord
from tests.unit.admin.conftest import admin_functions, campaign_environment
from tests.unit.admin.test_admin_api import ADMIN, OTHER, PARTNER, STAFF, admin_caller

pytestmark = pytest.mark.usefixtures("aws_world")

FLOW = {
    "start": "hello",
    "steps": {
        "hello": {"type": "send_message", "channel": "sms", "text": "Hi ${name}", "next": "done"},
        "done": {"type": "end"},
    },
}
MENTIONS = {"event_pattern": {"detail-type": ["mention.created"]}}
VIEWER = {"key_id": "k6", "tenant": "acme", "name": "sam", "role": "staff"}


@pytest.fixture
def call(aws_world):
    return admin_caller(admin_functions(aws_world))


@pytest.fixture
def env(aws_world) -> dict[str, str]:
    return campaign_environment(aws_world.names)


def create(call, trigger: dict | None = MENTIONS, principal: dict = ADMIN) -> str:
    body: dict[str, Any] = {"name": "welcome", "flow": FLOW} | ({"trigger": trigger} if trigger else {})
    status, created = call("POST", "/admin/campaigns", body, principal=principal)
    assert status == 201, created
    return created["id"]


def published(call, trigger: dict | None = MENTIONS) -> str:
    campaign = create(call, trigger)
    assert call("POST", f"/admin/campaigns/{campaign}/publish", {"version": 1})[0] == 200
    return campaign


def add_contact(aws_world, contact_id: str, tenant: str = "acme", merged_into: str | None = None) -> None:
    now = datetime.now(UTC)
    record = ContactRecord(id=contact_id, tenant=tenant, created_at=now, updated_at=now, merged_into=merged_into)
    table = aws.resource("dynamodb").Table(aws_world.names.mapping()["table:contacts"])
    table.put_item(Item=record.model_dump(mode="json", exclude_none=True) | {"pk": f"CONTACT#{contact_id}"})


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs, found = aws.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def rule_of(aws_world, env, campaign: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    name = env["CAMPAIGN_RULE_PREFIX"] + campaign
    try:
        return aws.client("events").describe_rule(Name=name, EventBusName=aws_world.names.bus)
    except ClientError:
        return None


def put_event(aws_world, detail_type: str, tenant: str = "acme", source: str = "switchboard.routing") -> None:
    detail = {"tenant": tenant, "id": f"evt-{detail_type}-{tenant}-{source}"}
    answer = aws.client("events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": aws_world.names.bus,
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


# --- the trigger rule -------------------------------------------------------------------------


def test_publishing_puts_the_rule_scoped_to_the_tenant_targeting_the_campaigns_queue(call, aws_world, env):
    campaign = published(call)
    rule = rule_of(aws_world, env, campaign)
    assert rule is not None and rule["State"] == "ENABLED" and rule["Name"] == f"switchboard-test-cmp-{campaign}"
    assert json.loads(rule["EventPattern"]) == {
        "detail-type": ["mention.created"],
        "detail": {"tenant": ["acme"]},
        "source": [{"anything-but": "switchboard.campaigns"}],
    }
    (target,) = aws.client("events").list_targets_by_rule(Rule=rule["Name"], EventBusName=aws_world.names.bus)[
        "Targets"
    ]
    assert target["Arn"] == env["CAMPAIGN_QUEUE_ARN"]
    assert target["DeadLetterConfig"] == {"Arn": env["CAMPAIGN_DLQ_ARN"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["InputTransformer"]["InputTemplate"] == (
        '{"kind": "trigger", "campaign": "' + campaign + '", "event": <aws.events.event.json>}'
    )


def test_the_rule_delivers_the_tenants_matching_events_as_trigger_messages(call, aws_world, env):
    campaign = published(call)
    put_event(aws_world, "mention.created")
    put_event(aws_world, "mention.created", tenant="globex")  # another tenant's
    put_event(aws_world, "message.received")  # not the trigger
    put_event(aws_world, "mention.created", source="switchboard.campaigns")  # the campaigns' own
    (body,) = drain(env["CAMPAIGN_QUEUE_URL"])
    work = CAMPAIGN_WORK.validate_python(body)
    assert isinstance(work, TriggerMessage) and work.campaign == campaign
    assert work.event["detail-type"] == "mention.created" and work.event["detail"]["tenant"] == "acme"
    assert work.event["source"] == "switchboard.routing" and work.event["id"]


def test_a_trigger_naming_its_source_keeps_it(call, aws_world, env):
    trigger = {"event_pattern": {"source": ["switchboard.campaigns"], "detail-type": ["campaign.run_completed"]}}
    campaign = published(call, trigger)
    pattern = json.loads(rule_of(aws_world, env, campaign)["EventPattern"])
    assert pattern["source"] == ["switchboard.campaigns"]
    both = {"event_pattern": {"$or": [{"source": ["switchboard.campaigns"]}, {"source": ["switchboard.routing"]}]}}
    assert campaign_runs.rule_pattern(Trigger.model_validate(both), "acme") == both["event_pattern"] | {
        "detail": {"tenant": ["acme"]}
    }
    # One branch naming no source would match the campaigns' own events: they are left out.
    either = {"event_pattern": {"$or": [{"source": ["switchboard.campaigns"]}, {"detail-type": ["x.y"]}]}}
    assert campaign_runs.rule_pattern(Trigger.model_validate(either), "acme") == either["event_pattern"] | {
        "detail": {"tenant": ["acme"]},
        "source": [{"anything-but": "switchboard.campaigns"}],
    }


def test_publishing_a_version_without_a_trigger_removes_the_rule_and_back(call, aws_world, env):
    campaign = published(call)
    path = f"/admin/campaigns/{campaign}"
    assert call("PUT", path, {"flow": FLOW, "expected_version": 1})[0] == 200  # v2: no trigger
    assert call("POST", f"{path}/publish", {"version": 2})[0] == 200
    assert rule_of(aws_world, env, campaign) is None
    assert call("POST", f"{path}/publish", {"version": 2})[0] == 200  # again: nothing to remove, fine
    assert call("POST", f"{path}/publish", {"version": 1})[0] == 200
    assert rule_of(aws_world, env, campaign) is not None


def test_a_draft_puts_no_rule_and_a_refused_publish_none_either(call, aws_world, env):
    campaign = create(call)
    assert rule_of(aws_world, env, campaign) is None
    path = f"/admin/campaigns/{campaign}"
    call("POST", f"{path}/shares", {"principal": "k6", "access": "viewer"})
    assert call("POST", f"{path}/publish", {"version": 1}, principal=VIEWER)[0] == 403
    assert call("POST", f"{path}/publish", {"version": 1}, principal=PARTNER)[0] == 404
    assert call("POST", f"{path}/publish", {"version": 2})[0] == 400
    assert rule_of(aws_world, env, campaign) is None


def test_when_the_store_refuses_the_publish_the_rule_goes_back(call, aws_world, env, monkeypatch):
    from switchboard_core.campaigns.store import CampaignStore

    campaign = create(call)
    monkeypatch.setattr(CampaignStore, "publish", lambda *args: False)  # deleted meanwhile
    status, body = call("POST", f"/admin/campaigns/{campaign}/publish", {"version": 1})
    assert status == 404 and body["error"]["code"] == "unknown_campaign"
    assert rule_of(aws_world, env, campaign) is None


# --- starting runs ----------------------------------------------------------------------------


def test_runs_send_one_start_request_per_contact_for_the_live_version(call, aws_world, env):
    campaign = published(call, trigger=None)
    path = f"/admin/campaigns/{campaign}"
    call("PUT", path, {"flow": FLOW, "expected_version": 1})  # v2, a draft: runs start on v1
    add_contact(aws_world, "ct_0000000000000001")
    add_contact(aws_world, "ct_0000000000000002", merged_into="ct_0000000000000001")
    add_contact(aws_world, "ct_0000000000000003")
    phones = [f"+1415555{i:04d}" for i in range(22)]
    contacts = ["ct_0000000000000001", "ct_0000000000000003", *phones]
    status, body = call("POST", f"{path}/runs", {"contacts": contacts})
    assert status == 202, body
    assert body["campaign"] == campaign and body["version"] == 1 and body["accepted"] == 24
    assert body["request"].startswith("req_")
    sent = [StartRequest.model_validate(message) for message in drain(env["CAMPAIGN_QUEUE_URL"])]
    assert sorted(s.contact for s in sent) == sorted(contacts)
    assert {(s.tenant, s.campaign, s.version, s.request, s.requested_by) for s in sent} == {
        ("acme", campaign, 1, body["request"], "k1")
    }
    # A merged contact starts as its survivor; naming both is one contact twice.
    status, body = call("POST", f"{path}/runs", {"contacts": ["ct_0000000000000002"], "request": "crm-42"})
    assert status == 202 and body["request"] == "crm-42"
    (sent_again,) = drain(env["CAMPAIGN_QUEUE_URL"])
    assert sent_again["contact"] == "ct_0000000000000001" and sent_again["request"] == "crm-42"
    status, body = call("POST", f"{path}/runs", {"contacts": ["ct_0000000000000001", "ct_0000000000000002"]})
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "contacts.1"
    assert drain(env["CAMPAIGN_QUEUE_URL"]) == []


def problems_of(body: dict) -> dict[str, str]:
    return {p["field"]: p["problem"] for p in body["error"]["details"]["problems"]}


def test_bad_contacts_are_400_naming_each_and_nothing_is_sent(call, aws_world, env):
    campaign = published(call)
    path = f"/admin/campaigns/{campaign}/runs"
    add_contact(aws_world, "ct_00000000000000aa")
    add_contact(aws_world, "ct_00000000000000bb", tenant="globex")
    status, body = call(
        "POST",
        path,
        {
            "contacts": [
                "ct_00000000000000aa",
                "ct_0000000000000fff",
                "ct_00000000000000bb",
                "+14155550100",
                "+14155550100",
            ]
        },
    )
    assert status == 400
    fields = problems_of(body)
    assert set(fields) == {"contacts.1", "contacts.2", "contacts.4"}
    assert "no contact 'ct_0000000000000fff'" in fields["contacts.1"]
    assert "no contact 'ct_00000000000000bb'" in fields["contacts.2"]  # globex's: as if missing
    assert "repeats contacts.3" in fields["contacts.4"]
    for malformed in ("+1 415 555 0100", "4155550100", "+0123", "bob@example.com", ""):
        status, body = call("POST", path, {"contacts": ["ct_00000000000000aa", malformed]})
        assert status == 400 and list(problems_of(body)) == ["contacts.1"], (malformed, body)
    status, body = call("POST", path, {"contacts": []})
    assert status == 400 and list(problems_of(body)) == ["contacts"]
    status, body = call("POST", path, {"contacts": [f"+1415555{i:04d}" for i in range(1001)]})
    assert status == 400 and list(problems_of(body)) == ["contacts"] and "1000" in body["error"]["message"] + str(body)
    status, body = call("POST", path, {"contacts": ["+14155550100"], "version": 1})
    assert status == 400 and list(problems_of(body)) == ["version"]
    status, body = call("POST", path, {"contacts": ["+14155550100"], "request": "has spaces"})
    assert status == 400 and list(problems_of(body)) == ["request"]
    assert drain(env["CAMPAIGN_QUEUE_URL"]) == []


def test_a_thousand_contacts_are_accepted_and_sent_in_a_hundred_batches():
    # Through moto a hundred SendMessageBatch calls take half a minute: the route's other tests
    # go through the queue; this one counts the batches.
    contacts = [f"+1415555{i:04d}" for i in range(1000)]
    request = campaign_runs.StartRuns.model_validate({"contacts": contacts})
    sqs = RecordingSqs()
    campaign_runs.send_work([start(contact) for contact in request.contacts], deps_with(sqs))
    assert len(sqs.batches) == 100 and all(len(batch) == 10 for batch in sqs.batches)


def test_a_draft_is_409_not_published(call, env):
    campaign = create(call)
    status, body = call("POST", f"/admin/campaigns/{campaign}/runs", {"contacts": ["+14155550100"]})
    assert status == 409 and body["error"]["code"] == "not_published"
    assert drain(env["CAMPAIGN_QUEUE_URL"]) == []


def test_who_may_start_runs(call, env):
    campaign = create(call, principal=STAFF)
    path = f"/admin/campaigns/{campaign}"
    assert call("POST", f"{path}/publish", {"version": 1}, principal=STAFF)[0] == 200
    body = {"contacts": ["+14155550100"]}
    for stranger in (OTHER, PARTNER, VIEWER, {"key_id": "k9", "tenant": "globex", "name": "x", "role": "staff"}):
        status, answer = call("POST", f"{path}/runs", body, principal=stranger)
        assert status == 404 and answer["error"]["code"] == "unknown_campaign"
    call("POST", f"{path}/shares", {"principal": "k6", "access": "viewer"}, principal=STAFF)
    status, answer = call("POST", f"{path}/runs", body, principal=VIEWER)
    assert status == 403 and "editor" in answer["error"]["message"]
    assert call("POST", "/admin/campaigns/cmp_missing/runs", body)[0] == 404
    assert drain(env["CAMPAIGN_QUEUE_URL"]) == []
    call("POST", f"{path}/shares", {"principal": "k6", "access": "editor"}, principal=STAFF)
    assert call("POST", f"{path}/runs", body, principal=VIEWER)[0] == 202
    assert call("POST", f"{path}/runs", body, principal=ADMIN)[0] == 202  # the tenant's admin
    assert len(drain(env["CAMPAIGN_QUEUE_URL"])) == 2


# --- the queue, directly ----------------------------------------------------------------------


class RecordingSqs:
    def __init__(self, fail_on_call: int | None = None) -> None:
        self.batches: list[list[dict[str, str]]] = []
        self.fail_on_call = fail_on_call

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.batches.append(Entries)
        if len(self.batches) == self.fail_on_call:
            return {"Successful": [], "Failed": [{"Id": Entries[0]["Id"], "Code": "InternalError"}]}
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def deps_with(sqs: RecordingSqs) -> campaign_runs.RunDeps:
    settings = campaign_runs.RunSettings("bus", "p-cmp-", "https://queue", "arn:aws:sqs:r:1:q", "arn:aws:sqs:r:1:dlq")
    return campaign_runs.RunDeps(
        events=None, sqs=sqs, runs=RunStore(None), find_contacts=lambda ids: {}, settings=settings
    )


def start(contact: str) -> StartRequest:
    return StartRequest(tenant="acme", campaign="cmp_1", version=1, contact=contact, request="r")


def test_work_goes_in_batches_of_ten():
    sqs = RecordingSqs()
    campaign_runs.send_work([start(f"+1415555{i:04d}") for i in range(25)], deps_with(sqs))
    assert [len(batch) for batch in sqs.batches] == [10, 10, 5]
    bodies = [StartRequest.model_validate_json(e["MessageBody"]).contact for b in sqs.batches for e in b]
    assert bodies == [f"+1415555{i:04d}" for i in range(25)]


def test_an_entry_the_queue_refuses_raises_503():
    sqs = RecordingSqs(fail_on_call=2)
    with pytest.raises(HubError) as refused:
        campaign_runs.send_work([start(f"+1415555{i:04d}") for i in range(25)], deps_with(sqs))
    assert refused.value.status == 503 and "1 of 10" in refused.value.message
    assert len(sqs.batches) == 2  # stops at the failure


def test_a_refused_entry_through_the_route_names_the_request_to_retry(call, env, monkeypatch):
    campaign = published(call)
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def refusing(self, operation, params):
        if operation == "SendMessageBatch":
            return {"Successful": [], "Failed": [{"Id": "0", "Code": "InternalError", "SenderFault": False}]}
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refusing)
    status, body = call("POST", f"/admin/campaigns/{campaign}/runs", {"contacts": ["+14155550100"], "request": "r1"})
    assert (
        status == 503
        and body["error"]["details"] == {"request": "r1"}
        and '"request": "r1"' in body["error"]["message"]
    )


# --- listing runs, counts, stopping -----------------------------------------------------------


def runs_store(env) -> RunStore:
    return RunStore(aws.resource("dynamodb").Table(env["TABLE_CAMPAIGN_RUNS"]))


def a_run(campaign: str, number: int, status: RunStatus = RunStatus.WAITING, version: int = 1) -> Run:
    started = datetime(2026, 12, 1, 9, number, tzinfo=UTC)
    finished = status in (RunStatus.COMPLETED, RunStatus.STOPPED)
    return Run(
        id=f"run_{number:032x}",
        tenant="acme",
        campaign=campaign,
        campaign_name="welcome",
        version=version,
        contact=RunContact(id=f"ct_{number:016x}", name="Ada", phone="+14155550100"),
        trigger=RunTrigger(event_id="req_1"),
        status=status,
        current_step=None if finished else "done",
        sequence=2,
        steps_done=[
            StepRecord(step="hello", type="send_message", visit=1, at=started, outcome="sent", next="done"),
        ],
        started_at=started,
        updated_at=started,
        ended_at=started if finished else None,
        end_reason="completed" if finished else None,
    )


def test_runs_are_listed_newest_first_page_by_page(call, env):
    campaign = published(call)
    other = published(call)
    store = runs_store(env)
    for number in (1, 2, 3):
        store.create(a_run(campaign, number, RunStatus.COMPLETED if number == 1 else RunStatus.WAITING))
    store.create(a_run(other, 4))
    path = f"/admin/campaigns/{campaign}/runs"
    status, page = call("GET", path, query="limit=2")
    assert status == 200, page
    assert [run["contact"]["id"] for run in page["runs"]] == ["ct_0000000000000003", "ct_0000000000000002"]
    newest = page["runs"][0]
    assert newest == {
        "id": f"run_{3:032x}",
        "contact": {"id": "ct_0000000000000003", "name": "Ada", "phone": "+14155550100"},
        "version": 1,
        "state": "waiting",
        "current_step": "done",
        "waiting_for": None,
        "wake_at": None,
        "steps_done": [{"step": "hello", "outcome": "sent", "at": "2026-12-01T09:03:00Z", "reason": None}],
        "started_at": "2026-12-01T09:03:00Z",
        "ended_at": None,
        "end_reason": None,
    }
    status, rest = call("GET", path, query=f"limit=2&cursor={page['next_cursor']}")
    assert status == 200 and [run["state"] for run in rest["runs"]] == ["completed"]
    assert rest["runs"][0]["end_reason"] == "completed" and rest["next_cursor"] is None
    # A cursor is bound to its campaign's listing.
    status, body = call("GET", f"/admin/campaigns/{other}/runs", query=f"cursor={page['next_cursor']}")
    assert status == 400 and list(problems_of(body)) == ["cursor"]
    status, body = call("GET", path, query="limit=0")
    assert status == 400 and list(problems_of(body)) == ["limit"]


def test_who_may_read_runs(call, env):
    campaign = published(call)
    runs_store(env).create(a_run(campaign, 1))
    path = f"/admin/campaigns/{campaign}/runs"
    for stranger in (OTHER, PARTNER, VIEWER, STAFF):
        assert call("GET", path, principal=stranger)[0] == 404
    call("POST", f"/admin/campaigns/{campaign}/shares", {"principal": "k6", "access": "viewer"})
    status, page = call("GET", path, principal=VIEWER)
    assert status == 200 and len(page["runs"]) == 1


def test_versions_count_each_step_per_version(call, env):
    campaign = published(call)
    path = f"/admin/campaigns/{campaign}"
    call("PUT", path, {"flow": FLOW, "expected_version": 1})
    store = runs_store(env)
    moves = [CounterMove(step="hello", counter="entered"), CounterMove(step="hello", counter="sent")]
    store.create(a_run(campaign, 1), counters=moves)
    store.create(a_run(campaign, 2), counters=[*moves, CounterMove(step="done", counter="converted")])
    store.create(a_run(campaign, 3, version=2), counters=[CounterMove(step="hello", counter="failed")])
    status, listed = call("GET", f"{path}/versions")
    assert status == 200, listed
    zero = {"entered": 0, "sent": 0, "replied": 0, "failed": 0, "converted": 0}
    first, second = listed["versions"]
    assert first["counts"] == {"hello": zero | {"entered": 2, "sent": 2}, "done": zero | {"converted": 1}}
    assert second["counts"] == {"hello": zero | {"failed": 1}, "done": zero}


def test_stop_unpublishes_removes_the_rule_and_stops_each_run_in_flight(call, aws_world, env):
    campaign = published(call)
    store = runs_store(env)
    store.create(a_run(campaign, 1))
    store.create(a_run(campaign, 2, RunStatus.ACTIVE))
    store.create(a_run(campaign, 3, RunStatus.COMPLETED))
    path = f"/admin/campaigns/{campaign}"
    status, body = call("POST", f"{path}/stop")
    assert status == 202 and body == {"campaign": campaign, "stopping": 2, "more_in_flight": False}
    assert rule_of(aws_world, env, campaign) is None
    shown = call("GET", path)[1]
    assert shown["published_version"] is None and shown["published_at"] is None and shown["live"] is False
    stops = [CAMPAIGN_WORK.validate_python(message) for message in drain(env["CAMPAIGN_QUEUE_URL"])]
    assert all(isinstance(stop, StopRequest) for stop in stops)
    assert sorted(stop.run for stop in stops) == [f"run_{1:032x}", f"run_{2:032x}"]
    assert "stopped by ops" in stops[0].reason
    # No new runs until a version is published again.
    status, body = call("POST", f"{path}/runs", {"contacts": ["+14155550100"]})
    assert status == 409 and body["error"]["code"] == "not_published"
    put_event(aws_world, "mention.created")
    assert drain(env["CAMPAIGN_QUEUE_URL"]) == []
    # Stopping again asks again (finished runs ignore a stop); publishing brings the rule back.
    assert call("POST", f"{path}/stop")[1]["stopping"] == 2
    assert call("POST", f"{path}/publish", {"version": 1})[0] == 200
    assert rule_of(aws_world, env, campaign) is not None


def test_a_stop_asks_a_bounded_number_of_runs_and_records_when_it_stopped(call, aws_world, env, monkeypatch):
    from switchboard_core.campaigns.store import CampaignStore

    monkeypatch.setattr(campaign_runs, "MAX_STOP_REQUESTS", 2)
    campaign = published(call)
    store = runs_store(env)
    for number in (1, 2, 3):
        store.create(a_run(campaign, number))
    before = datetime.now(UTC)
    status, body = call("POST", f"/admin/campaigns/{campaign}/stop")
    assert status == 202 and body == {"campaign": campaign, "stopping": 2, "more_in_flight": True}
    stops = [CAMPAIGN_WORK.validate_python(message) for message in drain(env["CAMPAIGN_QUEUE_URL"])]
    assert sorted(stop.run for stop in stops) == [f"run_{1:032x}", f"run_{2:032x}"]  # the oldest first
    # The third stops on its next input: the campaign function compares its start with the stop.
    head = CampaignStore(aws.resource("dynamodb").Table(aws_world.names.table("campaigns"))).get(campaign)
    assert head.stopped_at is not None and head.stopped_at >= before and head.stopped_by.name == "ops"


def test_who_may_stop(call, aws_world, env):
    campaign = published(call)
    path = f"/admin/campaigns/{campaign}/stop"
    for stranger in (OTHER, PARTNER, VIEWER):
        assert call("POST", path, principal=stranger)[0] == 404
    call("POST", f"/admin/campaigns/{campaign}/shares", {"principal": "k6", "access": "viewer"})
    status, body = call("POST", path, principal=VIEWER)
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert rule_of(aws_world, env, campaign) is not None and call("GET", f"/admin/campaigns/{campaign}")[1]["live"]
    call("POST", f"/admin/campaigns/{campaign}/shares", {"principal": "k6", "access": "editor"})
    assert call("POST", path, principal=VIEWER)[0] == 202


def test_a_target_eventbridge_refuses_puts_the_live_versions_rule_back(call, aws_world, env, monkeypatch):
    campaign = published(call)
    path = f"/admin/campaigns/{campaign}"
    changed = {"event_pattern": {"detail-type": ["message.received"]}}
    assert call("PUT", path, {"flow": FLOW, "trigger": changed, "expected_version": 1})[0] == 200
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    refusals = iter([True])

    def refusing(self, operation, params):
        if operation == "PutTargets" and next(refusals, False):
            return {"FailedEntryCount": 1, "FailedEntries": [{"TargetId": "campaign", "ErrorCode": "Throttled"}]}
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refusing)
    status, body = call("POST", f"{path}/publish", {"version": 2})
    assert status == 502 and body["error"]["code"] == "rule_failed"
    assert json.loads(rule_of(aws_world, env, campaign)["EventPattern"])["detail-type"] == ["mention.created"]
    assert call("GET", path)[1]["published_version"] == 1


def test_the_rules_pattern_is_checked_whole_before_it_goes_on_the_bus():
    # Saved versions passed the checker; the tenant and the source exclusion still count toward
    # EventBridge's 4096 characters.
    near_the_limit = {"event_pattern": {"detail-type": ["x" * 4000]}}
    trigger = Trigger.model_validate(near_the_limit)
    with pytest.raises(HubError) as refused:
        campaign_runs.rule_pattern(trigger, "acme")
    assert refused.value.status == 400
    assert [p["field"] for p in refused.value.details["problems"]] == ["trigger.event_pattern"]
    assert "4096" in refused.value.details["problems"][0]["problem"]
