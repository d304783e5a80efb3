"""The admin API through its handler, with the authorizer's principal in the event,
against moto: connections, rotation, events and who may see what."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from infra.local.lambdas import LocalFunctions
from switchboard_core.providers import PROVIDER_NAMES

pytestmark = pytest.mark.usefixtures("aws_world")


@pytest.fixture
def call(aws_world):
    return admin_caller(LocalFunctions(aws_world.names.mapping(), "test"))


def admin_caller(functions: LocalFunctions):
    """Calls the admin function as API Gateway would, with a principal from the authorizer."""

    def invoke(
        method: str, path: str, body: dict | None = None, principal: dict | None = None, query: str = ""
    ) -> tuple[int, dict]:
        event = {
            "version": "2.0",
            "routeKey": "ANY /admin/{proxy+}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {"host": "api.example.com", "x-forwarded-proto": "https", "content-type": "application/json"},
            "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
            "requestContext": {
                "http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
                "domainName": "api.example.com",
                "requestId": "r",
                "routeKey": "ANY /admin/{proxy+}",
                "stage": "$default",
                "authorizer": {"lambda": principal if principal is not None else ADMIN},
            },
            "body": json.dumps(body) if body is not None else None,
            "isBase64Encoded": False,
        }
        result = functions.invoke("admin", event)
        return result["statusCode"], json.loads(result["body"]) if result.get("body") else None

    return invoke


ADMIN = {"key_id": "k1", "tenant": "acme", "name": "ops", "role": "admin"}
STAFF = {"key_id": "k2", "tenant": "acme", "name": "agent", "role": "staff"}
OTHER = {"key_id": "k3", "tenant": "globex", "name": "ops", "role": "admin"}
PARTNER = {"key_id": "k4", "tenant": "acme", "name": "crm-partner", "role": "partner"}
TWILIO = {"provider": "twilio", "tenant": "acme", "credentials": {"auth_token": "a" * 32}}


def test_providers_lists_credential_fields_and_handshakes(call):
    status, body = call("GET", "/admin/providers", principal=PARTNER)
    assert status == 200
    by_name = {p["name"]: p for p in body["providers"]}
    assert by_name["meta"]["credential_fields"] == ["app_secret", "verify_token"] and by_name["meta"]["handshake"]
    assert set(by_name) == set(PROVIDER_NAMES)


def test_create_get_list_delete_connection(call):
    status, created = call("POST", "/admin/connections", TWILIO)
    assert status == 201
    assert created["webhook_url"] == f"https://api.example.com/webhooks/twilio/{created['id']}"
    assert "credentials" not in created and "a" * 32 not in json.dumps(created)
    assert call("GET", f"/admin/connections/{created['id']}")[1]["id"] == created["id"]
    assert [c["id"] for c in call("GET", "/admin/connections", principal=STAFF)[1]["connections"]] == [created["id"]]
    assert call("DELETE", f"/admin/connections/{created['id']}")[0] == 204
    assert call("GET", f"/admin/connections/{created['id']}")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "twilio", "credentials": {}}, "invalid_credentials"),
        ({"provider": "twilio", "credentials": {"auth_token": "x", "extra": "y"}}, "invalid_credentials"),
        ({"provider": "nope", "credentials": {"auth_token": "x"}}, "unknown_provider"),
        ({"credentials": {"auth_token": "x"}}, "validation_error"),
        ({"provider": "twilio", "credentials": {"auth_token": "x"}, "surprise": 1}, "validation_error"),
        ({"provider": "twilio", "tenant": "a b", "credentials": {"auth_token": "x"}}, "validation_error"),
    ],
)
def test_bad_connection_requests_are_400_naming_the_problem(call, body, field):
    status, answer = call("POST", "/admin/connections", body)
    assert status == 400 and answer["error"]["code"] == field, answer


def test_staff_reads_but_cannot_change_and_other_tenants_see_nothing(call):
    created = call("POST", "/admin/connections", TWILIO)[1]
    assert call("POST", "/admin/connections", TWILIO, principal=STAFF)[0] == 403
    assert call("DELETE", f"/admin/connections/{created['id']}", principal=STAFF)[0] == 403
    assert call("GET", f"/admin/connections/{created['id']}", principal=OTHER)[0] == 404
    assert call("POST", "/admin/connections", TWILIO, principal=OTHER)[0] == 403
    assert call("GET", "/admin/connections", principal=OTHER)[1]["connections"] == []
    assert call("GET", "/admin/connections", principal=PARTNER)[0] == 403


def test_rotation_reports_the_grace_period(call):
    created = call("POST", "/admin/connections", TWILIO)[1]
    status, rotated = call(
        "POST",
        f"/admin/connections/{created['id']}/rotate",
        {"credentials": {"auth_token": "b" * 32}, "grace_seconds": 3600},
    )
    assert status == 200
    until = datetime.fromisoformat(rotated["previous_credentials_valid_until"])
    assert 3500 < (until - datetime.now(UTC)).total_seconds() <= 3600
    assert (
        call(
            "POST",
            f"/admin/connections/{created['id']}/rotate",
            {"credentials": {"auth_token": "c"}, "grace_seconds": -1},
        )[0]
        == 400
    )


def test_events_query_is_validated_and_scoped(call):
    assert call("GET", "/admin/events", query="limit=0")[0] == 400
    assert call("GET", "/admin/events", query="since=yesterday")[0] == 400
    assert call("GET", "/admin/events", query="cursor=%%%")[0] == 400
    status, body = call("GET", "/admin/events", query="limit=5")
    assert status == 200 and body["events"] == [] and body["next_cursor"] is None
    assert body["filters"] == {"tenant": "acme", "connection": None, "provider": None, "type": None, "since": None}
    assert (
        call("GET", "/admin/events", principal={"key_id": "k", "tenant": "*", "name": "op", "role": "admin"})[0] == 400
    )


def test_missing_principal_and_unknown_routes(call):
    assert call("GET", "/admin/providers", principal={})[0] == 401
    status, body = call("GET", "/admin/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert call("POST", "/admin/connections", None)[0] == 400
