"""GET /admin/events/{event_id} (the raw request, redacted; what consumed it) and
GET /admin/connections/{id}/stats, with webhooks through the ingest and event-log functions
as the topology configures them, on moto."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.lambdas import LocalFunctions
from infra.local.samples import build_sample, demo_credentials
from switchboard_core import aws
from switchboard_core.campaigns.runs import Run, RunContact, RunStatus, RunTrigger, run_id
from switchboard_core.event_log import EventLogStore
from switchboard_core.events import CanonicalEvent, Channel, EventDraft, RawRef
from switchboard_core.raw_store import REDACTED, RawStore
from tests.unit.admin.conftest import admin_event
from tests.unit.admin.test_campaigns_api import FLOW
from tests.unit.admin.test_subscriptions import HOOK, RECEIVED, put_delivery
from tests.unit.event_log.test_event_log_consumer import envelope, sqs_event

TENANT = "acme"
ADMIN = {"key_id": "ka1", "tenant": TENANT, "name": "ops", "role": "admin"}
STAFF = {"key_id": "ka2", "tenant": TENANT, "name": "agent", "role": "staff"}
PARTNER = {"key_id": "ka3", "tenant": TENANT, "name": "crm", "role": "partner"}
OTHER_TENANT = {"key_id": "kb1", "tenant": "globex", "name": "ops", "role": "admin"}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Hub:
    """Admin calls, webhooks into ingest, and the bus's events into the event-log function."""

    def __init__(self, admin: Any, aws_world: Any) -> None:
        self.admin, self.world = admin, aws_world
        self.functions = LocalFunctions(aws_world.names.mapping(), "test")
        self.credentials = demo_credentials("telegram")
        status, _, body = self.call(
            "POST", "/admin/connections", {"provider": "telegram", "credentials": self.credentials}
        )
        assert status == 201, body
        self.connection = body["id"]

    def call(self, method: str, path: str, body: Any = None, key: dict = ADMIN, query: dict | None = None):
        return self.admin(
            admin_event(method, path, body=json.dumps(body) if body is not None else None, principal=key, query=query)
        )

    def url(self, connection: str | None = None) -> str:
        return f"https://hooks.example.com/webhooks/telegram/{connection or self.connection}"

    def post(self, body: bytes, headers: dict[str, str], connection: str | None = None) -> dict[str, Any]:
        connection = connection or self.connection
        path = f"/webhooks/telegram/{connection}"
        event = {
            "version": "2.0",
            "routeKey": "ANY /webhooks/{provider}/{connection}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "hooks.example.com", "x-forwarded-proto": "https"}
            | {k.lower(): v for k, v in headers.items()},
            "pathParameters": {"provider": "telegram", "connection": connection},
            "requestContext": {
                "http": {"method": "POST", "path": path, "sourceIp": "1.2.3.4"},
                "domainName": "hooks.example.com",
                "requestId": "r1",
                "stage": "$default",
                "routeKey": "ANY /webhooks/{provider}/{connection}",
            },
            "body": body.decode(),
            "isBase64Encoded": False,
        }
        return self.functions.invoke("ingest", event)

    def signed(self) -> Any:
        return build_sample("telegram", None, self.credentials, self.url())

    def log_published(self) -> list[dict[str, Any]]:
        """Hand what was published to the event-log function, as its queue would."""
        published = self.world.bus.events()
        if published:
            self.functions.invoke("event_log", sqs_event([json.dumps(e) for e in published]))
        return published

    def stats(self, **query: str) -> tuple[int, Any]:
        status, _, body = self.call("GET", f"/admin/connections/{self.connection}/stats", query=query or None)
        return status, body


@pytest.fixture
def hub(admin, aws_world) -> Hub:
    return Hub(admin, aws_world)


def accepted_event(hub: Hub) -> tuple[dict[str, Any], Any]:
    """A signed webhook through ingest and the event log: its event and the request."""
    request = hub.signed()
    assert hub.post(request.body, request.headers)["statusCode"] == 200
    published = hub.log_published()
    assert len(published) == 1
    return published[0]["detail"], request


# --- one event ------------------------------------------------------------------------------------


def test_an_accepted_webhook_shows_its_event_raw_request_redacted_and_the_event_log(hub):
    event, request = accepted_event(hub)
    status, _, body = hub.call("GET", f"/admin/events/{event['id']}")
    assert status == 200, body
    assert body["event"]["id"] == event["id"] and body["event"]["connection"] == hub.connection
    raw = body["raw"]
    assert body["raw_unavailable"] is None
    assert raw["method"] == "POST" and raw["url"] == hub.url()
    headers = {k.lower(): v for k, v in raw["headers"].items()}
    assert headers[SECRET_HEADER.lower()] == REDACTED
    assert SECRET_HEADER.lower() in [n.lower() for n in raw["redacted_headers"]]
    assert raw["body"] == request.body.decode()
    assert base64.b64decode(raw["body_base64"]) == request.body
    assert body["consumed_by"][0] == {
        "consumer": "event_log",
        "status": "logged",
        "at": body["event"]["received_at"],
        "ref": {"event_id": event["id"]},
        "detail": None,
    }
    # The connection's secret is nowhere in the answer, whoever may read it.
    for key in (ADMIN, STAFF):
        answer = hub.call("GET", f"/admin/events/{event['id']}", key=key)
        assert answer[0] == 200
        assert hub.credentials["secret_token"] not in json.dumps(answer[2])


def stored_event(hub: Hub, raw_ref: RawRef | None, n: int = 1) -> CanonicalEvent:
    event = CanonicalEvent.from_draft(
        EventDraft(type="message.received", provider_event_id=f"upd{n}", text="hi"),
        provider="telegram",
        connection=hub.connection,
        tenant=TENANT,
        channel=Channel.SOCIAL,
        received_at=datetime.now(UTC).replace(microsecond=0),
        raw_ref=raw_ref,
    )
    table = aws.resource("dynamodb").Table(hub.world.names.table("event_log"))
    assert EventLogStore(table, ttl=timedelta(days=30)).put(event)
    return event


def test_a_raw_object_stored_unredacted_is_redacted_on_the_way_out(hub):
    """An object written before a redaction rule existed: the answer redacts by the adapter's names."""
    from switchboard_core.providers.base import WebhookRequest

    request = hub.signed()
    store = RawStore(aws.client("s3"), hub.world.names.bucket("raw"))
    ref = store.put(
        WebhookRequest(
            method="POST",
            url=hub.url(),
            headers={k.lower(): v for k, v in request.headers.items()}
            | {"authorization": "Bearer s3cr3t-bearer-token"},
            body=request.body,
        ),
        provider="telegram",
        tenant=TENANT,
        connection=hub.connection,
        delivery_id="d1",
        received_at=datetime.now(UTC),
        credential_headers=(),  # nothing redacted at store time
    )
    assert (
        hub.credentials["secret_token"].encode()
        in aws.client("s3").get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
    )
    event = stored_event(hub, ref)
    status, _, body = hub.call("GET", f"/admin/events/{event.id}")
    assert status == 200, body
    text = json.dumps(body)
    assert hub.credentials["secret_token"] not in text and "s3cr3t-bearer-token" not in text
    assert {n.lower() for n in body["raw"]["redacted_headers"]} == {SECRET_HEADER.lower(), "authorization"}


def test_a_derived_event_and_an_expired_raw_object_answer_raw_null_with_the_reason(hub):
    derived = stored_event(hub, None, 1)
    gone = stored_event(hub, RawRef(bucket=hub.world.names.bucket("raw"), key="raw/acme/x/2026/01/01/gone.json"), 2)
    for event, reason in ((derived, "derived"), (gone, "expired")):
        status, _, body = hub.call("GET", f"/admin/events/{event.id}")
        assert status == 200, body
        assert body["raw"] is None and body["raw_unavailable"] == reason


def test_unknown_ids_other_tenants_and_partners_are_refused_alike(hub):
    event, _ = accepted_event(hub)
    unknown = hub.call("GET", "/admin/events/00000000-0000-0000-0000-000000000000")
    other = hub.call("GET", f"/admin/events/{event['id']}", key=OTHER_TENANT)
    assert unknown[0] == other[0] == 404
    assert unknown[2]["error"]["code"] == other[2]["error"]["code"] == "unknown_event"
    partner = hub.call("GET", f"/admin/events/{event['id']}", key=PARTNER)
    assert partner[0] == 403 and event["id"] not in json.dumps(partner[2])
    too_long = hub.call("GET", "/admin/events/" + "e" * 65)
    assert too_long[0] == 400 and "event_id" in json.dumps(too_long[2])


def test_consumed_by_reads_routing_replies_deliveries_and_campaign_runs_by_key(hub):
    event, _ = accepted_event(hub)
    event_id = event["id"]
    names, dynamodb = hub.world.names, aws.resource("dynamodb")
    now = datetime.now(UTC).replace(microsecond=0)
    # What routing keeps: the outcome (a derived reply.requested), the routed mark, the timeline item.
    requested = CanonicalEvent.from_draft(
        EventDraft(type="reply.requested", provider_event_id=f"{event_id}:reply.requested", text="Thanks"),
        provider="routing",
        connection=hub.connection,
        tenant=TENANT,
        channel=Channel.SOCIAL,
        received_at=now,
        raw_ref=None,
    )
    conversations = dynamodb.Table(names.table("conversations"))
    conversations.put_item(
        Item={"pk": f"OUTCOME#{event_id}", "conversation_id": "cv_1", "events": f"[{requested.model_dump_json()}]"}
    )
    conversations.put_item(Item={"pk": f"EVENT#{event_id}", "conversation_id": "cv_1", "routed_at": now.isoformat()})
    dynamodb.Table(names.table("contacts")).put_item(
        Item={"pk": f"TIMELINE#{event_id}", "contact_id": "ct_1", "at": f"{now.isoformat()}#{event_id}", "entry": {}}
    )
    sent = CanonicalEvent.from_draft(
        EventDraft(type="reply.sent", provider_event_id=f"{requested.id}:outcome", attributes={}),
        provider="replies",
        connection=hub.connection,
        tenant=TENANT,
        channel=Channel.SOCIAL,
        received_at=now,
        raw_ref=None,
    )
    dynamodb.Table(names.table("replies")).put_item(
        Item={"pk": f"REQUEST#{requested.id}", "outcome": sent.model_dump_json()}
    )
    # Two subscriptions: one has a delivery record for the event, the other none.
    status, _, delivered_to = hub.call("POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": RECEIVED})
    assert status == 201, delivered_to
    assert hub.call("POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": RECEIVED})[0] == 201
    put_delivery(hub.world, delivered_to["id"], CanonicalEvent.model_validate(event), "retrying")
    # A campaign whose run this event started (its id derives from campaign, contact and event).
    status, _, campaign = hub.call("POST", "/admin/campaigns", {"name": "welcome", "flow": FLOW})
    assert status == 201, campaign
    run = Run(
        id=run_id(campaign["id"], "ct_1", event_id),
        tenant=TENANT,
        campaign=campaign["id"],
        campaign_name="welcome",
        version=1,
        contact=RunContact(id="ct_1"),
        trigger=RunTrigger(event_id=event_id),
        status=RunStatus.WAITING,
        current_step="hello",
        sequence=1,
        started_at=now,
        updated_at=now,
    )
    # And a run of another of its campaigns, started earlier, that this event answered (a reply).
    status, _, asked = hub.call("POST", "/admin/campaigns", {"name": "survey", "flow": FLOW})
    assert status == 201, asked
    answered = run.model_copy(
        update={
            "id": run_id(asked["id"], "ct_1", "earlier-event"),
            "campaign": asked["id"],
            "trigger": RunTrigger(event_id="earlier-event"),
        }
    )
    runs = dynamodb.Table(names.table("campaign_runs"))
    for stored in (run, answered):
        runs.put_item(Item={"pk": f"run#{stored.id}", "sk": "state", "run": stored.model_dump_json()})
    runs.put_item(Item={"pk": f"reply#{TENANT}#ct_1#{event_id}", "sk": "run", "run": answered.id})

    status, _, body = hub.call("GET", f"/admin/events/{event_id}")
    assert status == 200, body
    by_consumer = {entry["consumer"]: entry for entry in body["consumed_by"]}
    assert [entry["consumer"] for entry in body["consumed_by"]] == [
        "event_log",
        "routing",
        "replies",
        "subscription",
        "campaign",
        "campaign",
    ]
    assert by_consumer["routing"]["status"] == "routed"
    assert by_consumer["routing"]["ref"] == {"conversation_id": "cv_1", "contact_id": "ct_1"}
    assert by_consumer["routing"]["detail"] == {"derived_events": [{"id": requested.id, "type": "reply.requested"}]}
    assert by_consumer["replies"]["status"] == "sent"
    assert by_consumer["replies"]["ref"] == {"request_event_id": requested.id, "outcome_event_id": sent.id}
    assert by_consumer["subscription"]["status"] == "retrying"
    assert by_consumer["subscription"]["ref"] == {"subscription_id": delivered_to["id"]}
    assert by_consumer["subscription"]["detail"]["attempts"] == 1
    campaigns = sorted(
        (e["ref"]["campaign_id"], e["ref"]["run_id"], e["status"], e["detail"]["role"])
        for e in body["consumed_by"]
        if e["consumer"] == "campaign"
    )
    assert campaigns == sorted(
        [(campaign["id"], run.id, "waiting", "started"), (asked["id"], answered.id, "waiting", "reply")]
    )
    # A staff key that may not see the (unshared) campaign sees no run of it.
    status, _, seen_by_staff = hub.call("GET", f"/admin/events/{event_id}", key=STAFF)
    assert status == 200
    assert "campaign" not in {entry["consumer"] for entry in seen_by_staff["consumed_by"]}


# --- a connection's counts ---------------------------------------------------------------------------


def test_stats_count_accepted_duplicates_and_refusals_by_reason_per_day(hub):
    request = hub.signed()
    assert hub.post(request.body, request.headers)["statusCode"] == 200
    assert hub.post(request.body, request.headers)["statusCode"] == 200  # the same update again: a duplicate
    hub.log_published()
    forged = request.headers | {SECRET_HEADER: "not-the-secret"}
    assert hub.post(hub.signed().body, forged)["statusCode"] == 401
    assert hub.post(hub.signed().body, forged)["statusCode"] == 401
    assert hub.post(request.body, request.headers | {"Content-Type": "text/plain"})["statusCode"] == 415
    # Unknown connection: refused, counted nowhere.
    assert hub.post(request.body, request.headers, connection="con_0000000000000000")["statusCode"] == 404

    status, body = hub.stats(days="3")
    assert status == 200, body
    today = datetime.now(UTC).date()
    assert [day["date"] for day in body["days"]] == [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert body["days"][:2] == [
        {"date": (today - timedelta(days=n)).isoformat(), "accepted": 0, "duplicates": 0, "rejected": {}}
        for n in (2, 1)
    ]
    assert body["days"][2] == {
        "date": today.isoformat(),
        "accepted": 1,
        "duplicates": 1,
        "rejected": {"invalid_signature": 2, "unsupported_media_type": 1},
    }
    assert body["connection"] == hub.connection
    assert datetime.fromisoformat(body["last_received_at"]).date() == today
    items = aws.resource("dynamodb").Table(hub.world.names.table("connection_stats")).scan()["Items"]
    assert {item["connection"] for item in items} == {hub.connection}


def test_stats_default_to_14_zero_filled_days_and_refuse_days_out_of_range(hub):
    status, body = hub.stats()
    assert status == 200 and len(body["days"]) == 14 and body["last_received_at"] is None
    assert all(day["accepted"] == day["duplicates"] == 0 and day["rejected"] == {} for day in body["days"])
    assert len(hub.stats(days="90")[1]["days"]) == 90
    for days in ("0", "91", "-1", "two"):
        status, body = hub.stats(days=days)
        assert status == 400, body
        assert body["error"]["code"] == "validation_error"
        assert [problem["field"] for problem in body["error"]["details"]["problems"]] == ["days"]


def test_stats_are_refused_alike_for_unknown_and_other_tenants_connections(hub):
    unknown = hub.call("GET", "/admin/connections/con_0000000000000000/stats")
    other = hub.call("GET", f"/admin/connections/{hub.connection}/stats", key=OTHER_TENANT)
    assert unknown[0] == other[0] == 404
    assert unknown[2]["error"]["code"] == other[2]["error"]["code"] == "unknown_connection"
    assert hub.call("GET", f"/admin/connections/{hub.connection}/stats", key=STAFF)[0] == 200


def test_a_failing_stats_table_changes_no_answer_and_no_batch(hub, monkeypatch):
    """Counting is best-effort: ingest answers and the event log logs as without it."""
    from botocore.exceptions import ClientError

    def broken(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "UpdateItem")

    from switchboard_core.connection_stats import ConnectionStatsStore

    monkeypatch.setattr(ConnectionStatsStore, "_add", broken)
    request = hub.signed()
    assert hub.post(request.body, request.headers)["statusCode"] == 200
    assert hub.post(request.body, request.headers | {SECRET_HEADER: "nope"})["statusCode"] == 401
    published = hub.world.bus.events()
    answer = hub.functions.invoke(
        "event_log", sqs_event([envelope(CanonicalEvent.model_validate(published[0]["detail"]))])
    )
    assert answer == {"batchItemFailures": []}
    assert hub.call("GET", f"/admin/events/{published[0]['detail']['id']}")[0] == 200
