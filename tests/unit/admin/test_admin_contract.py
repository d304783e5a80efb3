"""The admin API's contract: one error shape for every refusal, hostile bodies and query
strings answered 4xx (never 5xx), signed cursors bound to their listing, sizes bounded by
what can be stored, tenants refused rather than swapped, and the committed OpenAPI document."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard_core import aws
from switchboard_core.cursors import CursorCodec
from switchboard_core.event_log import EventLogStore
from switchboard_core.routing.contacts import ContactRecord, ContactStore
from tests.unit.admin.conftest import OPERATOR, admin_event
from tests.unit.admin.test_admin_api import ADMIN, OTHER, PARTNER, STAFF
from tests.unit.event_log.test_event_log_consumer import canonical

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
GOOD_RULES = {"rules": [{"name": "all", "then": {"kind": "assign", "team": "support"}}], "default_team": "support"}


def call(admin, method, path, body=None, query=None, principal=ADMIN, **kwargs):
    text = json.dumps(body) if isinstance(body, dict | list) else body
    return admin(admin_event(method, path, body=text, query=query, principal=principal, **kwargs))


def assert_refusal(answer, status, code, fields=()):
    got_status, _, body = answer
    assert got_status == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    named = [p["field"] for p in body["error"].get("details", {}).get("problems", [])]
    for field in fields:
        assert field in named, body
    return body["error"]


# --- hostile bodies -------------------------------------------------------------------------

# Cases of one kind share a test (and one moto world): each world costs a second or two.


def test_a_body_that_is_not_utf8_is_a_400(admin):
    for method, path in [
        ("POST", "/admin/connections"),
        ("PUT", "/admin/routing/rules"),
        ("PUT", "/admin/responders/r-1"),
        ("PUT", "/admin/routing/taxonomy"),
    ]:
        error = assert_refusal(call(admin, method, path, body=b'{"name": "\xff\xfe"}'), 400, "malformed_request")
        assert "UTF-8" in error["message"], path


def test_a_body_flagged_base64_that_is_not_is_a_400(admin):
    event = admin_event("PUT", "/admin/routing/rules", body="{}", principal=ADMIN)
    event.update(isBase64Encoded=True, body="not base64 at all!")
    assert_refusal(admin(event), 400, "malformed_request")


def test_json_nested_deeper_than_storable_is_a_400(admin):
    for depth in (33, 5000, 100_000):
        deep = '{"rule_set": ' + "[" * depth + "]" * depth + "}"
        error = assert_refusal(call(admin, "PUT", "/admin/routing/rules", body=deep), 400, "malformed_request")
        assert "nests deeper than 32" in error["message"], depth


def test_a_body_that_is_not_a_json_object_is_a_400(admin):
    for body in ('["X"]', "42", '"text"', "null", "{not json"):
        assert_refusal(call(admin, "PUT", "/admin/responders/r-1", body=body), 400, "malformed_request")


def test_lone_surrogate_escapes_and_overlong_numbers_are_a_400(admin):
    # JSON can escape half a UTF-16 pair, which no store can encode (it was a 500 from the secret
    # write); Python refuses integers of more than 4,300 digits.
    bodies = {
        ("POST", "/admin/connections"): '{"provider": "telegram", "tenant": "t", "credentials": '
        '{"secret_token": "\\ud800"}}',
        ("PUT", "/admin/teams/support"): '{"description": "\\udfff"}',
        ("PUT", "/admin/routing/rules"): '{"expected_version": ' + "9" * 5000 + "}",
    }
    for (method, path), body in bodies.items():
        assert_refusal(call(admin, method, path, body=body), 400, "malformed_request")


def test_a_missing_body_is_a_400(admin):
    assert_refusal(call(admin, "POST", "/admin/connections"), 400, "malformed_request")


def test_a_body_that_is_not_json_by_content_type_is_a_415(admin):
    assert_refusal(
        call(admin, "POST", "/admin/connections", body="provider=twilio", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )


# --- one error shape, naming each field and where it was -------------------------------------


def test_validation_problems_name_each_field_and_where_it_was(admin):
    error = assert_refusal(
        call(admin, "PUT", "/admin/routing/rules", body={"rule_set": {"rules": [{"name": ""}]}, "expected_version": 0}),
        400,
        "validation_error",
    )
    problems = {(p["in"], p["field"]) for p in error["details"]["problems"]}
    assert ("body", "rule_set.rules.0.name") in problems and ("body", "rule_set.default_team") in problems
    assert ("body", "expected_version") in problems
    error = assert_refusal(
        call(admin, "GET", "/admin/events", query={"limit": "0", "since": "yesterday"}), 400, "validation_error"
    )
    assert {(p["in"], p["field"]) for p in error["details"]["problems"]} == {("query", "limit"), ("query", "since")}
    error = assert_refusal(call(admin, "PUT", "/admin/teams/bad name", body={}), 400, "validation_error")
    assert error["details"]["problems"][0]["in"] == "path" and error["details"]["problems"][0]["field"] == "name"


def test_unknown_query_parameters_are_refused_by_name(admin):
    error = assert_refusal(
        call(admin, "GET", "/admin/events", query={"typ": "message.received"}), 400, "validation_error", fields=["typ"]
    )
    assert "type" in error["details"]["problems"][0]["problem"]


def test_unknown_routes_are_404_and_wrong_methods_405_in_the_same_shape(admin):
    assert_refusal(call(admin, "GET", "/admin/nothing-here"), 404, "not_found")
    status, headers, body = call(admin, "PATCH", "/admin/routing/rules")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    assert headers["Allow"] == "GET, PUT" and body["error"]["details"]["allowed"] == ["GET", "PUT"]
    assert call(admin, "POST", "/admin/connections/con_x")[0] == 405


# --- tenants are refused, not swapped; refusals say what is needed --------------------------


def test_naming_a_tenant_the_key_may_not_read_is_refused(admin):
    for path in ("/admin/events", "/admin/connections", "/admin/routing/rules", "/admin/conversations", "/admin/teams"):
        error = assert_refusal(call(admin, "GET", path, query={"tenant": "globex"}), 403, "forbidden")
        assert "'globex'" in error["message"] and "admin or staff" in error["message"], path
        assert error["details"] == {"tenant": "globex", "roles": ["admin", "staff"]}
    assert call(admin, "GET", "/admin/events", query={"tenant": "acme"})[0] == 200


def test_a_partner_key_is_told_which_role_reading_needs(admin):
    error = assert_refusal(call(admin, "GET", "/admin/events", principal=PARTNER), 403, "forbidden")
    assert error["message"] == "this partner key may not read tenant 'acme': that needs a key with role admin or staff"
    error = assert_refusal(
        call(admin, "PUT", "/admin/routing/rules", body={"rule_set": GOOD_RULES}, principal=STAFF), 403, "forbidden"
    )
    assert "role admin" in error["message"] and error["details"]["roles"] == ["admin"]


def test_the_events_answer_says_what_was_filtered(admin):
    status, _, body = call(admin, "GET", "/admin/events", query={"type": "nope", "provider": "twilio"})
    assert status == 200 and body["events"] == []
    assert body["filters"] == {
        "tenant": "acme",
        "connection": None,
        "provider": "twilio",
        "type": "nope",
        "since": None,
    }
    assert call(admin, "GET", "/admin/events", query={"type": ""})[2]["filters"]["type"] is None


# --- cursors --------------------------------------------------------------------------------


def cursor_codec(aws_world) -> CursorCodec:
    secret = aws.client("secretsmanager").get_secret_value(SecretId=aws_world.names.secret("cursor_key"))
    return CursorCodec(secret["SecretString"])


@pytest.fixture
def logged_events(aws_world):
    log = EventLogStore(aws.resource("dynamodb").Table(aws_world.names.table("event_log")), ttl=timedelta(days=30))
    for n in range(7):
        log.put(canonical(n))
        log.put(canonical(100 + n, tenant="globex"))


@pytest.mark.usefixtures("logged_events")
def test_event_cursors_page_and_are_bound_to_their_listing(admin, aws_world):
    first = call(admin, "GET", "/admin/events", query={"limit": "3"})[2]
    cursor = first["next_cursor"]
    assert cursor and "sort_key" not in base64.urlsafe_b64decode(cursor + "==").decode(errors="replace")
    second = call(admin, "GET", "/admin/events", query={"limit": "3", "cursor": cursor})[2]
    assert not {e["id"] for e in first["events"]} & {e["id"] for e in second["events"]}
    # the same cursor for other filters, another tenant, or tampered with
    assert_refusal(
        call(admin, "GET", "/admin/events", query={"cursor": cursor, "type": "message.received"}),
        400,
        "invalid_cursor",
        fields=["cursor"],
    )
    assert_refusal(
        call(admin, "GET", "/admin/events", query={"cursor": cursor, "tenant": "globex"}, principal=OPERATOR),
        400,
        "invalid_cursor",
    )
    tampered = cursor[:-6] + ("A" if cursor[-6] != "A" else "B") + cursor[-5:]
    assert_refusal(call(admin, "GET", "/admin/events", query={"cursor": tampered}), 400, "invalid_cursor")


@pytest.mark.usefixtures("logged_events")
def test_signed_cursors_without_a_usable_position_are_400(admin, aws_world):
    scope = {"listing": "events", "tenant": "acme", "connection": None, "provider": None, "type": None, "since": None}
    for position in (
        {"id": "x"},  # lacks its keys
        {"id": "x", "sort_key": "2026", "tenant": "globex", "extra": "1"},  # more than a position
        {"id": "x", "sort_key": "2026", "connection": "con_1"},
    ):  # another index's
        forged = cursor_codec(aws_world).seal(scope, position)
        assert_refusal(call(admin, "GET", "/admin/events", query={"cursor": forged}), 400, "invalid_cursor")


def test_unsigned_or_foreign_cursors_are_400_on_every_listing(admin, aws_world):
    contacts = ContactStore(aws.resource("dynamodb").Table(aws_world.names.table("contacts")))
    now = datetime.now(UTC)
    contacts._table.put_item(
        Item=ContactRecord(id="ct_1", tenant="acme", created_at=now, updated_at=now).model_dump(mode="json")
        | {"pk": "CONTACT#ct_1"}
    )
    cursors = [
        # what this API used to issue: base64 of a DynamoDB key, well-formed but lacking keys or naming globex
        base64.urlsafe_b64encode(json.dumps({"id": "x"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"id": "x", "sort_key": "z", "tenant": "globex"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"at": "2026"}).encode()).decode(),
        "%%%",
        "x" * 5000,
    ]
    for path in ("/admin/events", "/admin/conversations", "/admin/contacts/ct_1/timeline"):
        for cursor in cursors:
            status, _, body = call(admin, "GET", path, query={"cursor": cursor})
            assert status == 400 and body["error"]["code"] in ("invalid_cursor", "validation_error"), (path, body)


def test_conversation_and_timeline_cursors_continue_only_their_own_listing(admin, aws_world):
    conversations = aws.resource("dynamodb").Table(aws_world.names.table("conversations"))
    contacts = ContactStore(aws.resource("dynamodb").Table(aws_world.names.table("contacts")))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(5):
        at = (start + timedelta(minutes=n)).isoformat()
        conversations.put_item(
            Item={
                "pk": f"CONV#cv_{n}",
                "id": f"cv_{n}",
                "tenant": "acme",
                "status": "open",
                "opened_at": at,
                "last_activity_at": at,
            }
        )
    for contact in ("ct_1", "ct_2"):
        contacts._table.put_item(
            Item=ContactRecord(id=contact, tenant="acme", created_at=start, updated_at=start).model_dump(mode="json")
            | {"pk": f"CONTACT#{contact}"}
        )
        for n in range(4):
            contacts.add_to_timeline(
                contact,
                {
                    "type": "message.received",
                    "provider": "twilio",
                    "channel": "telephony",
                    "occurred_at": start.isoformat(),
                    "conversation": None,
                    "text": f"m{n}",
                },
                f"{contact}-ev{n}",
                start + timedelta(minutes=n),
            )
    page = call(admin, "GET", "/admin/conversations", query={"limit": "2"})[2]
    after = call(admin, "GET", "/admin/conversations", query={"limit": "2", "cursor": page["next_cursor"]})[2]
    assert [c["id"] for c in page["conversations"] + after["conversations"]] == ["cv_4", "cv_3", "cv_2", "cv_1"]
    assert_refusal(
        call(admin, "GET", "/admin/conversations", query={"cursor": page["next_cursor"], "status": "open"}),
        400,
        "invalid_cursor",
    )
    timeline = call(admin, "GET", "/admin/contacts/ct_1/timeline", query={"limit": "2"})[2]
    more = call(admin, "GET", "/admin/contacts/ct_1/timeline", query={"limit": "2", "cursor": timeline["next_cursor"]})
    assert more[0] == 200 and [e["text"] for e in more[2]["events"]] == ["m1", "m0"]
    assert_refusal(
        call(admin, "GET", "/admin/contacts/ct_2/timeline", query={"cursor": timeline["next_cursor"]}),
        400,
        "invalid_cursor",
    )
    assert_refusal(
        call(admin, "GET", "/admin/conversations", query={"cursor": timeline["next_cursor"]}), 400, "invalid_cursor"
    )


# --- sizes are bounded by what one DynamoDB item holds --------------------------------------


def test_the_largest_rule_set_validation_allows_is_stored_compressed_and_routes_back_whole(admin):
    """5,000 rules (validation's most) are ~1.8 MB of JSON: stored zlib-compressed in one item."""
    rule = {"when": {"topics_any": ["billing"]}, "then": {"kind": "assign", "team": "support"}}
    rules = [{"name": f"rule-{n}", **rule} for n in range(5000)]
    status, _, saved = call(
        admin, "PUT", "/admin/routing/rules", body={"rule_set": {"rules": rules, "default_team": "support"}}
    )
    assert status == 200 and saved == {"version": 1, "rules": 5000}, saved
    status, _, read = call(admin, "GET", "/admin/routing/rules")
    assert (
        status == 200
        and read["version"] == 1
        and [r["name"] for r in read["rule_set"]["rules"]] == [r["name"] for r in rules]
    )


def test_a_rule_set_too_large_even_compressed_is_a_413_naming_it_not_a_500(admin):
    """Replies of random text do not compress: 400 of 1,600 characters are ~480 KB stored."""
    import secrets

    rules = [
        {
            "name": f"ack-{n}",
            "when": {"types": ["message.received"]},
            "then": {"kind": "auto_reply", "template": base64.b64encode(secrets.token_bytes(1200)).decode()},
        }
        for n in range(400)
    ]
    error = assert_refusal(
        call(admin, "PUT", "/admin/routing/rules", body={"rule_set": {"rules": rules, "default_team": "support"}}),
        413,
        "payload_too_large",
        fields=["rule_set"],
    )
    assert "bytes as stored" in error["message"] and "one item" in error["message"]
    assert call(admin, "GET", "/admin/routing/rules")[0] == 404  # nothing was stored


def test_a_taxonomy_larger_than_an_item_is_refused(admin):
    topics = [
        {"name": f"topic-{n}", "phrases": [f"phrase {n} {m} " + "x" * 40 for m in range(100)]} for n in range(100)
    ]
    assert_refusal(call(admin, "PUT", "/admin/routing/taxonomy", body={"topics": topics}), 413, "payload_too_large")


def test_credentials_larger_than_a_secret_holds_are_refused(admin):
    body = {"provider": "twilio", "credentials": {"auth_token": "a" * 32, "padding": "p" * 70_000}}
    assert_refusal(
        call(admin, "POST", "/admin/connections", body=body), 400, "validation_error", fields=["credentials"]
    )


# --- the OpenAPI document -------------------------------------------------------------------


def test_the_committed_openapi_document_is_current():
    from functions.admin.handler import render_openapi

    assert DOCUMENT.read_text() == render_openapi(), "docs/openapi.json is stale: run `make openapi`"


def test_openapi_json_is_served_and_lists_every_route_with_its_models(admin):
    status, _, served = call(admin, "GET", "/admin/openapi.json", principal=STAFF)
    # Imported after the call: the fixture reloads the handler when an earlier test in this worker
    # imported it (a new sandbox starts cold), and the app that served the document is the new one.
    from functions.admin.handler import app

    assert status == 200 and served == json.loads(DOCUMENT.read_text())
    assert served["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    routes = {(route.method.lower(), route.rule.pattern) for route in app._static_routes + app._dynamic_routes}
    documented = [(method, path) for path, operations in served["paths"].items() for method in operations]
    assert len(documented) == len(routes) == 57
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert len(success) == 1, (method, path)
            if success != ["204"]:
                assert operation["responses"][success[0]]["content"]["application/json"]["schema"], (method, path)
            assert "422" not in operation["responses"]
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
            # Actions on a resource (undo, pause, resume, rotate, retry, stop) take no body.
            if method in ("put", "post") and not path.endswith(
                ("/undo", "/pause", "/resume", "/rotate", "/retry", "/stop")
            ):
                assert operation["requestBody"]["content"]["application/json"]["schema"], (method, path)


def test_other_tenants_still_see_nothing(admin):
    created = call(
        admin, "POST", "/admin/connections", body={"provider": "twilio", "credentials": {"auth_token": "a" * 32}}
    )[2]
    assert call(admin, "GET", f"/admin/connections/{created['id']}", principal=OTHER)[0] == 404


def test_a_connection_of_another_tenant_than_the_one_named_is_refused(admin):
    created = call(
        admin, "POST", "/admin/connections", body={"provider": "twilio", "credentials": {"auth_token": "a" * 32}}
    )[2]
    error = assert_refusal(
        call(
            admin, "GET", "/admin/events", query={"tenant": "globex", "connection": created["id"]}, principal=OPERATOR
        ),
        400,
        "validation_error",
        fields=["connection"],
    )
    assert error["details"]["problems"][0]["problem"] == f"connection {created['id']!r} is not in tenant 'globex'"
    status, _, body = call(admin, "GET", "/admin/events", query={"connection": created["id"]}, principal=OPERATOR)
    assert status == 200 and body["filters"]["tenant"] == "acme" and body["filters"]["connection"] == created["id"]
