"""Responders' and teams' contact points through the admin API: each checked for its channel's
shape, named connections checked against the tenant's, webhooks against the SSRF rules; one
400 naming every bad field."""

from __future__ import annotations

import pytest

from infra.local.lambdas import LocalFunctions
from tests.unit.admin.test_admin_api import OTHER, TWILIO, admin_caller

pytestmark = pytest.mark.usefixtures("aws_world")
PUBLIC_HOOK = "https://93.184.215.14/notify"  # a literal public address: nothing to resolve
SLACK = {"provider": "slack", "tenant": "acme", "credentials": {"signing_secret": "s" * 32}}


@pytest.fixture
def call(aws_world):
    """The admin function as deployed: endpoints must be public https (not the local runtime's loopback)."""
    functions = LocalFunctions(aws_world.names.mapping(), "test", extra_env={"SWITCHBOARD_ENDPOINTS": "public"})
    return admin_caller(functions)


def problems(answer: dict) -> dict[str, str]:
    return {p["field"]: p["problem"] for p in answer["error"]["details"]["problems"]}


@pytest.fixture
def connections(call):
    twilio = call("POST", "/admin/connections", TWILIO)[1]["id"]
    slack = call("POST", "/admin/connections", SLACK)[1]["id"]
    other = call("POST", "/admin/connections", TWILIO | {"tenant": "globex"}, principal=OTHER)[1]["id"]
    return {"twilio": twilio, "slack": slack, "other_tenant": other}


def test_a_responder_saves_its_contact_points_and_preferences(call, connections):
    body = {
        "name": "Jo",
        "teams": ["field"],
        "contact_points": [
            {"channel": "sms", "to": "+14155550142", "connection": connections["twilio"]},
            {"channel": "slack", "to": "U024BE7LH", "connection": connections["slack"]},
            {"channel": "email", "to": "jo@example.com"},
            {"channel": "webhook", "to": PUBLIC_HOOK},
        ],
        "notification_preferences": {
            "channels": ["sms", "email"],
            "time_zone": "America/Los_Angeles",
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "urgent_only_outside_hours": True,
        },
    }
    status, saved = call("PUT", "/admin/responders/jo", body)
    assert status == 200, saved
    assert [p["channel"] for p in saved["contact_points"]] == ["sms", "slack", "email", "webhook"]
    assert saved["notification_preferences"]["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    listed = call("GET", "/admin/responders")[1]["responders"]
    assert next(r for r in listed if r["id"] == "jo")["contact_points"] == saved["contact_points"]


@pytest.mark.parametrize(
    ("point", "field", "problem"),
    [
        ({"channel": "sms", "to": "4155550142"}, "contact_points.0", "E.164"),
        ({"channel": "sms", "to": "+1415555"}, "contact_points.0", "E.164"),
        ({"channel": "slack", "to": "general", "connection": "con_x"}, "contact_points.0", "Slack user or channel id"),
        ({"channel": "slack", "to": "U024BE7LH"}, "contact_points.0", "connection"),
        ({"channel": "email", "to": "jo@"}, "contact_points.0", "e-mail address"),
        ({"channel": "email", "to": "jo@example.com", "connection": "con_x"}, "contact_points.0", "sms and slack"),
        ({"channel": "webhook", "to": "ftp://example.com"}, "contact_points.0", "https URL"),
        ({"channel": "fax", "to": "+14155550142"}, "contact_points.0.channel", "sms"),
    ],
)
def test_a_malformed_contact_point_is_a_400_naming_it(call, point, field, problem):
    status, answer = call("PUT", "/admin/responders/jo", {"name": "Jo", "contact_points": [point]})
    assert status == 400, answer
    found = problems(answer)
    assert any(f.endswith(field) and problem in p for f, p in found.items()), found


def test_connections_must_exist_in_the_tenant_and_fit_the_channel(call, connections):
    body = {
        "name": "Jo",
        "contact_points": [
            {"channel": "slack", "to": "U024BE7LH", "connection": "con_doesnotexist"},
            {"channel": "slack", "to": "U024BE7LH", "connection": connections["twilio"]},
            {"channel": "sms", "to": "+14155550142", "connection": connections["other_tenant"]},
            {"channel": "sms", "to": "+14155550142", "connection": connections["twilio"]},  # fine
        ],
    }
    status, answer = call("PUT", "/admin/responders/jo", body)
    assert status == 400 and answer["error"]["code"] == "validation_error"
    found = problems(answer)
    assert set(found) == {"contact_points.0.connection", "contact_points.1.connection", "contact_points.2.connection"}
    assert "unknown connection" in found["contact_points.0.connection"]
    assert (
        "twilio connection" in found["contact_points.1.connection"] and "slack" in found["contact_points.1.connection"]
    )
    assert "unknown connection" in found["contact_points.2.connection"]  # another tenant's, as if unknown
    assert call("GET", "/admin/responders")[1]["responders"] == []  # nothing saved


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://10.0.0.5/hook", "not a public address"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::ffff:10.0.0.1]/x", "not a public address"),
        ("https://127.0.0.1/x", "loopback"),
        ("http://93.184.215.14/notify", "scheme must be https"),
    ],
)
def test_a_private_webhook_address_is_refused_for_teams_and_responders(call, url, problem):
    point = {"channel": "webhook", "to": url}
    for path in ("/admin/teams/field", "/admin/responders/jo"):
        body = {"contact_points": [point]} | ({"name": "Jo"} if "responders" in path else {})
        status, answer = call("PUT", path, body)
        assert status == 400, answer
        assert problem in problems(answer)["contact_points.0.to"], answer


def test_a_team_saves_its_on_call_contact(call, connections):
    point = {"channel": "sms", "to": "+14155550199", "connection": connections["twilio"]}
    status, saved = call("PUT", "/admin/teams/field", {"contact_points": [point]})
    assert status == 200 and saved["contact_points"] == [point]
