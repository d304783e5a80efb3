"""Partner subscriptions through the admin handler, against moto: every route, who may see
and change what (a partner sees only its own: another's answers 404), the checks a
subscription passes when saved (SSRF guard with an injected resolver, pattern problems
named, EventBridge's own verdict), the bus rule kept in step (pattern scoped to the tenant,
state on pause and resume, removed on delete), rotation's grace period, and what retry,
resume and replay put on the delivery queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from infra.local.lambdas import LocalFunctions
from switchboard_core import aws
from switchboard_core.event_log import EventLogStore
from switchboard_core.subscriptions.signing import SigningSecrets
from tests.unit.admin.conftest import OPERATOR, admin_event
from tests.unit.admin.test_admin_api import ADMIN, OTHER, PARTNER, STAFF
from tests.unit.admin.test_admin_contract import GOOD_RULES
from tests.unit.event_log.test_event_log_consumer import canonical

OTHER_PARTNER = {"key_id": "k5", "tenant": "acme", "name": "helpdesk-partner", "role": "partner"}
HOOK = "http://127.0.0.1:9/hook"  # the local runtime accepts loopback only
RECEIVED = {"detail-type": ["message.received"]}
SUBSCRIPTION_FIELDS = {
    "id",
    "tenant",
    "owner",
    "url",
    "event_pattern",
    "description",
    "ordered",
    "status",
    "created_at",
    "updated_at",
    "secret_version",
}


def call(admin, method, path, body=None, query=None, principal=ADMIN):
    text = json.dumps(body) if isinstance(body, dict | list) else body
    return admin(admin_event(method, path, body=text, query=query, principal=principal))


def create(admin, principal=ADMIN, **fields: Any) -> dict[str, Any]:
    body = {"url": HOOK, "event_pattern": RECEIVED} | fields
    status, _, answer = call(admin, "POST", "/admin/subscriptions", body, principal=principal)
    assert status == 201, answer
    return answer


def refused(answer, status: int, code: str) -> dict[str, Any]:
    got, _, body = answer
    assert got == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


def problems(error: dict[str, Any]) -> dict[str, str]:
    return {p["field"]: p["problem"] for p in error.get("details", {}).get("problems", [])}


def names(aws_world) -> dict[str, str]:
    return aws_world.names.mapping()


def rule_of(aws_world, subscription_id: str) -> dict[str, Any]:
    mapping = names(aws_world)
    return aws.client("events").describe_rule(
        Name=f"{mapping['rule_prefix']}{subscription_id}", EventBusName=mapping["bus"]
    )


def secret_of(aws_world, subscription_id: str) -> SigningSecrets:
    value = aws.client("secretsmanager").get_secret_value(SecretId=f"switchboard/test/subscriptions/{subscription_id}")
    return SigningSecrets.model_validate_json(value["SecretString"])


def queued(aws_world) -> list[dict[str, Any]]:
    """Every message on the delivery queue (read and removed)."""
    sqs, url = aws.client("sqs"), names(aws_world)["queue_url:deliveries"]
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def subscriptions_table(aws_world) -> Any:
    return aws.resource("dynamodb").Table(names(aws_world)["table:subscriptions"])


def event_log(aws_world) -> EventLogStore:
    return EventLogStore(aws.resource("dynamodb").Table(names(aws_world)["table:event_log"]), timedelta(days=30))


def put_delivery(aws_world, subscription_id: str, event, state: str) -> None:
    subscriptions_table(aws_world).put_item(
        Item={
            "pk": f"SUB#{subscription_id}",
            "sk": f"EVENT#{event.id}",
            "subscription": subscription_id,
            "event_id": event.id,
            "state": state,
            "attempts": 1,
            "event_type": event.type,
            "event_time": event.received_at.isoformat(),
            "updated_at": event.received_at.isoformat(),
        }
    )


def put_attempt(aws_world, subscription_id: str, event_id: str, at: datetime, attempt: int, **fields: Any) -> None:
    subscriptions_table(aws_world).put_item(
        Item={
            "pk": f"SUB#{subscription_id}",
            "sk": f"ATTEMPT#{at.isoformat()}#{event_id}#{attempt:03d}",
            "subscription": subscription_id,
            "event_id": event_id,
            "attempt": attempt,
            "at": at.isoformat(),
            "latency_ms": 12,
            "response_excerpt": "",
            "outcome": "retry",
            "trigger": "bus",
        }
        | fields
    )


@pytest.fixture
def admin_with(aws_world, event_pattern_tests):
    """An admin function with extra environment (as on AWS: no SWITCHBOARD_ENDPOINTS, or an archive)."""

    def make(**env: str):
        functions = LocalFunctions(names(aws_world), "test", extra_env=env)

        def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
            result = functions.invoke("admin", event)
            body = result.get("body")
            return result["statusCode"], result.get("headers") or {}, json.loads(body) if body else None

        return invoke

    return make


@pytest.fixture
def resolver(monkeypatch):
    """Host name -> addresses, instead of the system's resolver."""
    from switchboard_core import endpoints

    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    monkeypatch.setattr(endpoints, "resolve_host", resolve)
    return table


# --- create, read, list -----------------------------------------------------------------------


def test_create_makes_record_secret_and_a_rule_scoped_to_the_tenant(admin, aws_world):
    created = create(admin, description="CRM sync", ordered=True)
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    assert created["tenant"] == "acme" and created["owner"] == ADMIN["key_id"] and created["ordered"] is True
    assert secret_of(aws_world, created["id"]).current == created["secret"]
    rule = rule_of(aws_world, created["id"])
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {"detail-type": ["message.received"], "detail": {"tenant": ["acme"]}}
    mapping = names(aws_world)
    (target,) = aws.client("events").list_targets_by_rule(Rule=rule["Name"], EventBusName=mapping["bus"])["Targets"]
    assert target["Id"] == "delivery" and target["Arn"] == mapping["queue_arn:deliveries"]
    # What EventBridge cannot put on the queue (after a day of retries) is kept on the DLQ.
    assert target["DeadLetterConfig"] == {"Arn": mapping["dlq_arn:deliveries"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    template = target["InputTransformer"]["InputTemplate"]
    assert template == '{"subscription": "' + created["id"] + '", "event": <aws.events.event.json>}'


def test_a_rule_delivers_the_tenants_matching_events_to_the_delivery_queue(admin, aws_world):
    created = create(admin)
    events = aws.client("events")
    bus = names(aws_world)["bus"]
    entries = [
        {"Source": e.source, "DetailType": e.type, "Detail": e.model_dump_json(), "EventBusName": bus}
        for e in (canonical(1), canonical(2, tenant="globex"))
    ]
    events.put_events(Entries=entries)
    (message,) = queued(aws_world)
    assert message["subscription"] == created["id"]
    assert message["event"]["detail"]["id"] == canonical(1).id


def test_the_secret_appears_only_on_create_and_rotate(admin):
    created = create(admin)
    secret = created["secret"]
    path = f"/admin/subscriptions/{created['id']}"
    for answer in (
        call(admin, "GET", path),
        call(admin, "GET", "/admin/subscriptions"),
        call(admin, "PATCH", path, {"description": "x"}),
        call(admin, "POST", f"{path}/pause"),
        call(admin, "POST", f"{path}/resume"),
    ):
        assert answer[0] == 200 and "secret" not in json.dumps(answer[2]).replace("secret_version", "")
        assert secret not in json.dumps(answer[2])
    assert set(call(admin, "GET", path)[2]) == SUBSCRIPTION_FIELDS


def test_listing_pages_with_sealed_cursors(admin):
    ids = [create(admin, description=str(n))["id"] for n in range(3)]
    seen, cursor = [], None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, _, page = call(admin, "GET", "/admin/subscriptions", query=query)
        assert status == 200 and len(page["subscriptions"]) <= 2
        seen += [s["id"] for s in page["subscriptions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids  # oldest first, each once
    _, _, first = call(admin, "GET", "/admin/subscriptions", query={"limit": "1"})
    # A cursor continues only the listing it came from: not another tenant's.
    answer = call(
        admin,
        "GET",
        "/admin/subscriptions",
        query={"tenant": "globex", "cursor": first["next_cursor"]},
        principal=OPERATOR,
    )
    refused(answer, 400, "invalid_cursor")
    refused(call(admin, "GET", "/admin/subscriptions", query={"cursor": "forged"}), 400, "invalid_cursor")


def test_operator_keys_name_the_tenant(admin):
    error = refused(
        call(admin, "POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": RECEIVED}, principal=OPERATOR),
        400,
        "validation_error",
    )
    assert "tenant" in problems(error)
    created = create(admin, principal=OPERATOR, tenant="globex")
    assert created["tenant"] == "globex"
    refused(call(admin, "GET", "/admin/subscriptions", principal=OPERATOR), 400, "validation_error")
    _, _, page = call(admin, "GET", "/admin/subscriptions", query={"tenant": "globex"}, principal=OPERATOR)
    assert [s["id"] for s in page["subscriptions"]] == [created["id"]]


# --- permissions ------------------------------------------------------------------------------


def test_partners_see_and_change_only_their_own(admin):
    mine = create(admin, principal=PARTNER)
    theirs = create(admin, principal=OTHER_PARTNER)
    admins = create(admin)
    assert mine["owner"] == PARTNER["key_id"]
    _, _, page = call(admin, "GET", "/admin/subscriptions", principal=PARTNER)
    assert [s["id"] for s in page["subscriptions"]] == [mine["id"]]
    _, _, page = call(admin, "GET", "/admin/subscriptions")
    assert {s["id"] for s in page["subscriptions"]} == {mine["id"], theirs["id"], admins["id"]}
    for other in (theirs["id"], admins["id"], "sub_doesnotexist"):
        path = f"/admin/subscriptions/{other}"
        for method, suffix, body in (
            ("GET", "", None),
            ("PATCH", "", {"description": "mine now"}),
            ("DELETE", "", None),
            ("POST", "/pause", None),
            ("POST", "/resume", None),
            ("POST", "/rotate", None),
            ("GET", "/deliveries", None),
            ("POST", "/deliveries/ev-1/retry", None),
            ("POST", "/replay", {"since": "2026-12-01T00:00:00Z", "until": "2026-12-01T01:00:00Z"}),
        ):
            error = refused(call(admin, method, path + suffix, body, principal=PARTNER), 404, "unknown_subscription")
            assert other in error["message"]
    # The owner and the tenant's admins still can.
    assert call(admin, "POST", f"/admin/subscriptions/{mine['id']}/pause", principal=PARTNER)[0] == 200
    assert call(admin, "POST", f"/admin/subscriptions/{theirs['id']}/pause")[0] == 200


def test_a_partner_naming_another_tenant_is_refused(admin):
    body = {"url": HOOK, "event_pattern": RECEIVED, "tenant": "globex"}
    error = refused(call(admin, "POST", "/admin/subscriptions", body, principal=PARTNER), 403, "forbidden")
    assert "globex" in error["message"]
    refused(call(admin, "GET", "/admin/subscriptions", query={"tenant": "globex"}, principal=PARTNER), 403, "forbidden")


def test_a_partner_key_cannot_create_or_list_connections(admin):
    twilio = {"provider": "twilio", "credentials": {"auth_token": "a" * 32}}
    refused(call(admin, "POST", "/admin/connections", twilio, principal=PARTNER), 403, "forbidden")
    refused(call(admin, "GET", "/admin/connections", principal=PARTNER), 403, "forbidden")
    refused(call(admin, "PUT", "/admin/routing/rules", {"rule_set": GOOD_RULES}, principal=PARTNER), 403, "forbidden")


def test_staff_read_their_tenants_but_change_nothing(admin):
    created = create(admin)
    path = f"/admin/subscriptions/{created['id']}"
    assert call(admin, "GET", path, principal=STAFF)[0] == 200
    assert call(admin, "GET", "/admin/subscriptions", principal=STAFF)[2]["subscriptions"][0]["id"] == created["id"]
    assert call(admin, "GET", f"{path}/deliveries", principal=STAFF)[0] == 200
    refused(
        call(admin, "POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": RECEIVED}, principal=STAFF),
        403,
        "forbidden",
    )
    for method, suffix, body in (
        ("PATCH", "", {"description": "x"}),
        ("DELETE", "", None),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("POST", "/rotate", None),
        ("POST", "/deliveries/ev-1/retry", None),
        ("POST", "/replay", {"since": "2026-12-01T00:00:00Z", "until": "2026-12-01T01:00:00Z"}),
    ):
        refused(call(admin, method, path + suffix, body, principal=STAFF), 403, "forbidden")
    assert call(admin, "GET", path)[2]["status"] == "active"


def test_other_tenants_see_nothing(admin):
    created = create(admin)
    refused(call(admin, "GET", f"/admin/subscriptions/{created['id']}", principal=OTHER), 404, "unknown_subscription")
    refused(
        call(admin, "DELETE", f"/admin/subscriptions/{created['id']}", principal=OTHER), 404, "unknown_subscription"
    )
    assert call(admin, "GET", "/admin/subscriptions", principal=OTHER)[2]["subscriptions"] == []
    body = {"url": HOOK, "event_pattern": RECEIVED, "tenant": "acme"}
    refused(call(admin, "POST", "/admin/subscriptions", body, principal=OTHER), 403, "forbidden")


# --- checks when saving -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://10.0.0.1/hook", "not a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "not a loopback address"),
        ("ftp://127.0.0.1/hook", "scheme"),
        ("http://user:pw@127.0.0.1/hook", "credentials"),
        ("http://partner.example/hook", "does not resolve"),
        ("http://rebind.example/hook", "not a loopback address"),  # a name resolving to a private address
        ("not a url", "scheme"),
    ],
)
def test_local_runtime_refuses_endpoints_off_this_machine(admin, resolver, url, problem):
    resolver["rebind.example"] = ["127.0.0.1", "192.168.1.7"]
    error = refused(
        call(admin, "POST", "/admin/subscriptions", {"url": url, "event_pattern": RECEIVED}), 400, "endpoint_refused"
    )
    assert problem in problems(error)["url"], error


def test_local_runtime_accepts_a_name_resolving_to_loopback(admin, resolver):
    resolver["localhost"] = ["127.0.0.1", "::1"]
    assert create(admin, url="http://localhost:8123/hook")["url"] == "http://localhost:8123/hook"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.partner.example/x", "scheme must be https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::ffff:169.254.169.254]/x", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://10.1.2.3/x", "not a public address"),
        ("https://192.168.0.10/x", "not a public address"),
        ("https://100.64.0.1/x", "not a public address"),
        ("https://224.0.0.1/x", "not a unicast"),
        ("https://internal.partner.example/x", "not a public address"),  # resolves to 10.0.0.5
        ("https://metadata.partner.example/x", "link-local"),  # resolves to the metadata service
        ("https://mixed.partner.example/x", "loopback"),  # one good address, one loopback
    ],
)
def test_outside_the_local_runtime_only_public_https_endpoints(admin_with, resolver, url, problem):
    resolver.update(
        {
            "internal.partner.example": ["10.0.0.5"],
            "metadata.partner.example": ["169.254.169.254"],
            "mixed.partner.example": ["93.184.216.34", "127.0.0.1"],
        }
    )
    public = admin_with(SWITCHBOARD_ENDPOINTS="public")
    error = refused(
        call(public, "POST", "/admin/subscriptions", {"url": url, "event_pattern": RECEIVED}), 400, "endpoint_refused"
    )
    assert problem in problems(error)["url"], error


def test_outside_the_local_runtime_a_public_endpoint_is_accepted(admin_with, resolver, aws_world):
    resolver["hooks.partner.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    public = admin_with(SWITCHBOARD_ENDPOINTS="public")
    created = create(public, url="https://hooks.partner.example/switchboard")
    assert rule_of(aws_world, created["id"])["State"] == "ENABLED"
    # ...and a PATCH to a private one is refused there too, leaving the URL as it was.
    resolver["hooks.partner.example"] = ["10.9.8.7"]
    path = f"/admin/subscriptions/{created['id']}"
    refused(call(public, "PATCH", path, {"description": "again"}), 400, "endpoint_refused")
    assert call(public, "GET", path)[2]["description"] == ""


@pytest.mark.parametrize(
    ("pattern", "fields"),
    [
        ({}, ["event_pattern"]),
        ({"detail-type": "message.received"}, ["event_pattern.detail-type"]),
        ({"account": ["123"]}, ["event_pattern.account"]),
        ({"detail": {"text": []}}, ["event_pattern.detail.text"]),
        ({"detail": {"n": [{"numeric": [">", "x"]}]}}, ["event_pattern.detail.n[0].numeric"]),
        ({"detail": {"x": [{"regex": "a.*"}]}}, ["event_pattern.detail.x[0]"]),
        ({"$or": [{"source": ["a"]}]}, ["event_pattern.$or"]),
        # every problem is named, not only the first
        (
            {"detail-type": [], "detail": {"n": [{"exists": "yes"}]}},
            ["event_pattern.detail-type", "event_pattern.detail.n[0].exists"],
        ),
    ],
)
def test_bad_patterns_are_refused_naming_each_problem(admin, aws_world, pattern, fields):
    error = refused(
        call(admin, "POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": pattern}),
        400,
        "invalid_event_pattern",
    )
    assert set(fields) <= set(problems(error)), error
    assert (
        aws.client("events").list_rules(
            EventBusName=names(aws_world)["bus"], NamePrefix=names(aws_world)["rule_prefix"]
        )["Rules"]
        == []
    )


def test_a_pattern_naming_another_tenant_is_refused_and_its_own_is_accepted(admin, aws_world):
    body = {"url": HOOK, "event_pattern": {"detail": {"tenant": ["globex"]}}}
    error = refused(call(admin, "POST", "/admin/subscriptions", body, principal=PARTNER), 400, "invalid_event_pattern")
    assert "event_pattern.detail.tenant" in problems(error)
    # No pattern can widen the tenant: $or branches are ANDed with it on the bus.
    widening = {"$or": [{"detail-type": ["message.received"]}, {"source": [{"prefix": ""}]}]}
    created = create(admin, principal=PARTNER, event_pattern=widening)
    assert json.loads(rule_of(aws_world, created["id"])["EventPattern"])["detail"] == {"tenant": ["acme"]}
    own = create(admin, principal=PARTNER, event_pattern={"detail": {"tenant": ["acme"]}})
    assert own["event_pattern"] == {"detail": {"tenant": ["acme"]}}


def test_eventbridges_own_verdict_is_a_400_naming_its_reason(admin, aws_world):
    events = aws.client("events")
    with Stubber(events) as stub:
        stub.add_client_error(
            "test_event_pattern",
            service_error_code="InvalidEventPatternException",
            service_message="Event pattern is not valid. Reason: Unrecognized match type wildcard",
            http_status_code=400,
        )
        error = refused(
            call(
                admin,
                "POST",
                "/admin/subscriptions",
                {"url": HOOK, "event_pattern": {"detail": {"x": [{"wildcard": "a*"}]}}},
            ),
            400,
            "invalid_event_pattern",
        )
        stub.assert_no_pending_responses()
    assert "Unrecognized match type wildcard" in problems(error)["event_pattern"]
    assert call(admin, "GET", "/admin/subscriptions")[2]["subscriptions"] == []


def test_a_failed_rule_leaves_nothing_half_made(admin, aws_world, monkeypatch):
    events = aws.client("events")

    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "too many rules"}}, "PutTargets")

    monkeypatch.setattr(events, "put_targets", refuse)
    status, _, body = call(admin, "POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": RECEIVED})
    assert status == 500, body
    mapping = names(aws_world)
    assert events.list_rules(EventBusName=mapping["bus"], NamePrefix=mapping["rule_prefix"])["Rules"] == []
    assert subscriptions_table(aws_world).scan()["Items"] == []
    listed = aws.client("secretsmanager").list_secrets()["SecretList"]
    assert [s["Name"] for s in listed if "/subscriptions/" in s["Name"]] == []


def test_bad_bodies_name_the_field(admin):
    for body, field in (
        ({"event_pattern": RECEIVED}, "url"),
        ({"url": HOOK}, "event_pattern"),
        ({"url": HOOK, "event_pattern": RECEIVED, "secret": "whsec_mine"}, "secret"),
        ({"url": HOOK, "event_pattern": RECEIVED, "tenant": "a b"}, "tenant"),
        ({"url": HOOK, "event_pattern": ["x"]}, "event_pattern"),
        ({"url": HOOK, "event_pattern": RECEIVED, "description": "x" * 501}, "description"),
    ):
        error = refused(call(admin, "POST", "/admin/subscriptions", body), 400, "validation_error")
        assert field in problems(error), (body, error)


# --- change -----------------------------------------------------------------------------------


def test_patch_rechecks_and_updates_the_rule(admin, aws_world):
    created = create(admin)
    path = f"/admin/subscriptions/{created['id']}"
    status, _, patched = call(
        admin, "PATCH", path, {"event_pattern": {"source": ["switchboard.twilio"]}, "ordered": True, "description": "d"}
    )
    assert status == 200 and patched["ordered"] is True and patched["description"] == "d"
    assert json.loads(rule_of(aws_world, created["id"])["EventPattern"]) == {
        "source": ["switchboard.twilio"],
        "detail": {"tenant": ["acme"]},
    }
    refused(call(admin, "PATCH", path, {"url": "http://10.0.0.1/x"}), 400, "endpoint_refused")
    refused(
        call(admin, "PATCH", path, {"event_pattern": {"detail": {"tenant": ["globex"]}}}), 400, "invalid_event_pattern"
    )
    refused(call(admin, "PATCH", path, {"status": "active"}), 400, "validation_error")
    refused(call(admin, "PATCH", path, {"tenant": "globex"}), 400, "validation_error")
    got = call(admin, "GET", path)[2]
    assert got["url"] == HOOK and got["event_pattern"] == {"source": ["switchboard.twilio"]}
    # A paused subscription's new pattern does not switch its rule back on.
    assert call(admin, "POST", f"{path}/pause")[0] == 200
    assert call(admin, "PATCH", path, {"event_pattern": RECEIVED})[0] == 200
    assert rule_of(aws_world, created["id"])["State"] == "DISABLED"


def test_pause_and_resume_switch_the_rule_and_resume_resends_held_deliveries(admin, aws_world):
    created = create(admin)
    path = f"/admin/subscriptions/{created['id']}"
    status, _, paused = call(admin, "POST", f"{path}/pause")
    assert status == 200 and paused["status"] == "paused"
    assert rule_of(aws_world, created["id"])["State"] == "DISABLED"
    held, delivered, gone = canonical(1), canonical(2), canonical(3)
    log = event_log(aws_world)
    log.put(held)
    log.put(delivered)
    put_delivery(aws_world, created["id"], held, "held")
    put_delivery(aws_world, created["id"], delivered, "delivered")
    put_delivery(aws_world, created["id"], gone, "held")  # no longer in the event log
    status, _, resumed = call(admin, "POST", f"{path}/resume")
    assert status == 200 and resumed["status"] == "active"
    assert resumed["resent"] == 1 and resumed["missing_events"] == [gone.id]
    assert rule_of(aws_world, created["id"])["State"] == "ENABLED"
    (message,) = queued(aws_world)
    assert message["subscription"] == created["id"] and message["trigger"].startswith("resume:")
    assert message["event"]["detail"]["id"] == held.id
    assert message["event"]["detail-type"] == "message.received" and message["event"]["source"] == "switchboard.twilio"


def test_resume_clears_failing_and_disabled(admin, aws_world):
    created = create(admin)
    table = subscriptions_table(aws_world)
    table.update_item(
        Key={"pk": f"SUB#{created['id']}", "sk": "META"},
        UpdateExpression="SET #s = :s, failing_since = :t, status_reason = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "disabled", ":t": "2026-11-01T00:00:00+00:00", ":r": "410 Gone"},
    )
    aws.client("events").disable_rule(
        Name=rule_of(aws_world, created["id"])["Name"], EventBusName=names(aws_world)["bus"]
    )
    _, _, resumed = call(admin, "POST", f"/admin/subscriptions/{created['id']}/resume")
    assert resumed["status"] == "active" and "failing_since" not in resumed and "status_reason" not in resumed
    assert rule_of(aws_world, created["id"])["State"] == "ENABLED"


def test_rotate_keeps_the_old_secret_signing_for_the_grace_period(admin, aws_world):
    from infra import topology
    from switchboard_core.subscriptions.policy import load_policy

    created = create(admin)
    before = datetime.now(UTC)
    status, _, rotated = call(admin, "POST", f"/admin/subscriptions/{created['id']}/rotate")
    assert status == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["secret_version"] == 2
    stored = secret_of(aws_world, created["id"])
    assert stored.current == rotated["secret"] and stored.previous == created["secret"]
    grace = load_policy({"DELIVERY_POLICY": json.dumps(topology.delivery_policy())}).rotation_grace_seconds
    until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert until == stored.previous_expires_at
    assert (
        timedelta(seconds=grace) - timedelta(seconds=5)
        < until - before
        <= timedelta(seconds=grace) + timedelta(seconds=5)
    )
    assert len(stored.signing_keys(before)) == 2  # both sign during the grace period
    assert len(stored.signing_keys(until + timedelta(seconds=1))) == 1  # then only the new one
    # A second rotation drops the first secret.
    _, _, again = call(admin, "POST", f"/admin/subscriptions/{created['id']}/rotate")
    stored = secret_of(aws_world, created["id"])
    assert stored.previous == rotated["secret"] and created["secret"] not in stored.model_dump_json()
    assert again["secret_version"] == 3


def test_delete_removes_rule_secret_and_record(admin, aws_world):
    created = create(admin, principal=PARTNER)
    path = f"/admin/subscriptions/{created['id']}"
    assert call(admin, "DELETE", path, principal=PARTNER)[0] == 204
    with pytest.raises(ClientError, match="ResourceNotFound"):
        rule_of(aws_world, created["id"])
    with pytest.raises(ClientError, match="ResourceNotFound"):
        secret_of(aws_world, created["id"])
    refused(call(admin, "GET", path, principal=PARTNER), 404, "unknown_subscription")
    refused(call(admin, "DELETE", path, principal=PARTNER), 404, "unknown_subscription")


# --- deliveries, retry, replay ----------------------------------------------------------------


def test_deliveries_list_attempts_newest_first_filtered_and_paged(admin, aws_world):
    created = create(admin)
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    put_attempt(aws_world, created["id"], "ev-a", start, 1, status_code=503, response_excerpt="busy")
    put_attempt(aws_world, created["id"], "ev-a", start + timedelta(seconds=5), 2, error="timeout")
    put_attempt(aws_world, created["id"], "ev-b", start + timedelta(seconds=7), 1, status_code=200, outcome="delivered")
    path = f"/admin/subscriptions/{created['id']}/deliveries"
    _, _, page = call(admin, "GET", path)
    assert [(a["event_id"], a["attempt"]) for a in page["attempts"]] == [("ev-b", 1), ("ev-a", 2), ("ev-a", 1)]
    first = page["attempts"][2]
    assert first["status_code"] == 503 and first["response_excerpt"] == "busy" and first["latency_ms"] == 12
    assert page["attempts"][1]["error"] == "timeout" and page["attempts"][1]["status_code"] is None
    _, _, only_a = call(admin, "GET", path, query={"event_id": "ev-a"})
    assert [a["attempt"] for a in only_a["attempts"]] == [2, 1]
    _, _, one = call(admin, "GET", path, query={"limit": "1"})
    _, _, rest = call(admin, "GET", path, query={"limit": "5", "cursor": one["next_cursor"]})
    assert [a["event_id"] for a in one["attempts"] + rest["attempts"]] == ["ev-b", "ev-a", "ev-a"]
    # The cursor of another filter is refused.
    refused(call(admin, "GET", path, query={"event_id": "ev-b", "cursor": one["next_cursor"]}), 400, "invalid_cursor")


def test_retry_queues_one_delivery(admin, aws_world):
    created = create(admin)
    event = canonical(1)
    event_log(aws_world).put(event)
    put_delivery(aws_world, created["id"], event, "failed")
    status, _, answer = call(admin, "POST", f"/admin/subscriptions/{created['id']}/deliveries/{event.id}/retry")
    assert status == 202 and answer["trigger"].startswith("retry:") and answer["event_id"] == event.id
    (message,) = queued(aws_world)
    assert message == {
        "subscription": created["id"],
        "event": {
            "source": "switchboard.twilio",
            "detail-type": "message.received",
            "time": event.received_at.isoformat(),
            "detail": json.loads(event.model_dump_json()),
        },
        "trigger": answer["trigger"],
    }


def test_retry_refuses_what_it_cannot_send(admin, aws_world):
    created = create(admin)
    path = f"/admin/subscriptions/{created['id']}/deliveries"
    error = refused(call(admin, "POST", f"{path}/ev-gone/retry"), 404, "unknown_event")
    assert "ev-gone" in error["message"]
    foreign = canonical(2, tenant="globex")
    event_log(aws_world).put(foreign)
    refused(call(admin, "POST", f"{path}/{foreign.id}/retry"), 404, "unknown_event")
    # An event of the tenant the pattern does not match has no delivery to retry.
    other = create(admin, event_pattern={"detail-type": ["call.started"]})
    mine = canonical(3)
    event_log(aws_world).put(mine)
    refused(
        call(admin, "POST", f"/admin/subscriptions/{other['id']}/deliveries/{mine.id}/retry"), 404, "unknown_delivery"
    )
    # ...and one it matches can be sent even if the bus never delivered it.
    assert call(admin, "POST", f"{path}/{mine.id}/retry")[0] == 202
    assert [m["event"]["detail"]["id"] for m in queued(aws_world)] == [mine.id]


def test_local_replay_queues_exactly_the_matching_events_of_the_range(admin, aws_world):
    created = create(
        admin, event_pattern={"detail-type": ["message.received"], "detail": {"text": [{"prefix": "keep"}]}}
    )
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(hours=2), now - timedelta(hours=1)
    log = event_log(aws_world)

    def event(n: int, at: datetime, text: str, tenant: str = "acme"):
        made = canonical(n, tenant=tenant, received=at)
        made = made.model_copy(update={"text": text})
        log.put(made)
        return made

    inside = [event(1, since, "keep 1"), event(2, since + timedelta(minutes=30), "keep 2")]
    event(3, since + timedelta(minutes=40), "drop: text does not match")
    event(4, since + timedelta(minutes=50), "keep but globex", tenant="globex")
    event(5, since - timedelta(seconds=1), "keep: before the range")
    event(6, until, "keep: at the end, which is excluded")
    status, _, answer = call(
        admin,
        "POST",
        f"/admin/subscriptions/{created['id']}/replay",
        {"since": since.isoformat(), "until": until.isoformat()},
    )
    assert status == 202, answer
    assert answer["source"] == "event_log" and answer["queued"] == 2 and answer["replay"].startswith(created["id"])
    messages = queued(aws_world)
    assert sorted(m["event"]["detail"]["id"] for m in messages) == sorted(e.id for e in inside)
    assert {m["trigger"] for m in messages} == {f"replay:{answer['replay']}"}


def test_replay_ranges_are_checked(admin):
    created = create(admin)
    path = f"/admin/subscriptions/{created['id']}/replay"
    now = datetime.now(UTC)
    for body, field in (
        ({"since": "2026-12-01T02:00:00Z", "until": "2026-12-01T01:00:00Z"}, "(body)"),
        ({"since": "2026-10-01T00:00:00Z", "until": "2026-11-15T00:00:00Z"}, "(body)"),
        ({"since": "2026-12-01T00:00:00", "until": "2026-12-01T01:00:00Z"}, "since"),
        ({"since": "2026-12-01T00:00:00Z"}, "until"),
        ({"since": "yesterday", "until": "2026-12-01T01:00:00Z"}, "since"),
        ({"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}, "until"),
    ):
        error = refused(call(admin, "POST", path, body), 400, "validation_error")
        assert field in problems(error), (body, error)


def test_replay_on_aws_replays_the_archive_through_this_subscriptions_rule_only(admin_with, aws_world):
    archive = "arn:aws:events:us-east-1:123456789012:archive/switchboard-test-events"
    on_aws = admin_with(EVENT_ARCHIVE_ARN=archive)
    created = create(on_aws)
    mapping = names(aws_world)
    since, until = datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    with Stubber(aws.client("events")) as stub:
        stub.add_response(
            "start_replay",
            {"ReplayArn": "arn:aws:events:us-east-1:123456789012:replay/r", "State": "STARTING"},
            {
                "ReplayName": ANY,
                "Description": ANY,
                "EventSourceArn": archive,
                "EventStartTime": since,
                "EventEndTime": until,
                "Destination": {
                    "Arn": f"arn:aws:events:us-east-1:123456789012:event-bus/{mapping['bus']}",
                    "FilterArns": [
                        f"arn:aws:events:us-east-1:123456789012:rule/{mapping['bus']}/{mapping['rule_prefix']}{created['id']}"
                    ],
                },
            },
        )
        status, _, answer = call(
            on_aws,
            "POST",
            f"/admin/subscriptions/{created['id']}/replay",
            {"since": since.isoformat(), "until": until.isoformat()},
        )
        stub.assert_no_pending_responses()
    assert status == 202 and answer["source"] == "archive" and answer["queued"] is None
    assert rule_of(aws_world, created["id"])["Arn"].endswith(
        f"rule/{mapping['bus']}/{mapping['rule_prefix']}{created['id']}"
    )
    assert queued(aws_world) == []


def test_a_full_rules_quota_is_a_503_naming_it_and_leaves_nothing(admin, aws_world, monkeypatch):
    events = aws.client("events")

    def full(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "rules limit"}}, "PutRule")

    monkeypatch.setattr(events, "put_rule", full)
    error = refused(
        call(admin, "POST", "/admin/subscriptions", {"url": HOOK, "event_pattern": RECEIVED}),
        503,
        "rules_quota_reached",
    )
    assert "Rules per event bus" in error["message"]
    assert subscriptions_table(aws_world).scan()["Items"] == []
    assert [
        s for s in aws.client("secretsmanager").list_secrets()["SecretList"] if "/subscriptions/" in s["Name"]
    ] == []


def test_an_archive_refusing_the_range_is_a_400_naming_why(admin_with):
    on_aws = admin_with(EVENT_ARCHIVE_ARN="arn:aws:events:us-east-1:123456789012:archive/switchboard-test-events")
    created = create(on_aws)
    with Stubber(aws.client("events")) as stub:
        stub.add_client_error(
            "start_replay",
            service_error_code="ValidationException",
            service_message="Parameter EventStartTime is not valid. Reason: before the archive was created",
        )
        body = {"since": "2026-11-30T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
        error = refused(
            call(on_aws, "POST", f"/admin/subscriptions/{created['id']}/replay", body), 400, "validation_error"
        )
    assert "before the archive was created" in problems(error)["since"]


def test_replays_beyond_eventbridges_concurrency_are_a_503_to_retry(admin_with):
    on_aws = admin_with(EVENT_ARCHIVE_ARN="arn:aws:events:us-east-1:123456789012:archive/switchboard-test-events")
    created = create(on_aws)
    with Stubber(aws.client("events")) as stub:
        stub.add_client_error("start_replay", service_error_code="LimitExceededException", service_message="10 replays")
        body = {"since": "2026-11-30T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
        error = refused(call(on_aws, "POST", f"/admin/subscriptions/{created['id']}/replay", body), 503, "replays_busy")
    assert "try again" in error["message"]


def test_a_rotation_that_loses_a_race_leaves_the_secret_as_it_was(admin, aws_world, monkeypatch):
    from switchboard_core.subscriptions.store import SubscriptionStore

    created = create(admin)
    monkeypatch.setattr(SubscriptionStore, "save", lambda self, subscription, expected_version: False)
    refused(call(admin, "POST", f"/admin/subscriptions/{created['id']}/rotate"), 409, "version_conflict")
    stored = secret_of(aws_world, created["id"])
    assert stored.current == created["secret"] and stored.previous is None  # no unseen secret signs


def test_resume_resends_every_held_delivery_in_batches(admin, aws_world):
    created = create(admin)
    path = f"/admin/subscriptions/{created['id']}"
    call(admin, "POST", f"{path}/pause")
    log = event_log(aws_world)
    held = [canonical(n) for n in range(130)]
    for event in held:
        log.put(event)
        put_delivery(aws_world, created["id"], event, "held")
    _, _, resumed = call(admin, "POST", f"{path}/resume")
    assert resumed["resent"] == 130 and resumed["missing_events"] == []
    messages = queued(aws_world)
    assert sorted(m["event"]["detail"]["id"] for m in messages) == sorted(e.id for e in held)
    assert len({m["trigger"] for m in messages}) == 1
