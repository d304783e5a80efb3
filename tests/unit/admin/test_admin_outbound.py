"""PUT/DELETE /admin/connections/{id}/outbound: the send-API credentials auto-replies use."""

from __future__ import annotations

import json

import pytest

from infra import topology
from switchboard_core import aws
from tests.unit.admin.test_admin_api import ADMIN, OTHER, STAFF, TWILIO, call  # noqa: F401 - the call fixture

pytestmark = pytest.mark.usefixtures("aws_world")
OUTBOUND = {"account_sid": "AC" + "0123456789abcdef" * 2, "auth_token": "s" * 32}


def secret_names() -> list[str]:
    """Connections' secrets (not the stack's own, like the cursor key)."""
    prefixes = (topology.secrets_prefix("test"), topology.outbound_secrets_prefix("test"))
    return sorted(
        s["Name"] for s in aws.client("secretsmanager").list_secrets()["SecretList"] if s["Name"].startswith(prefixes)
    )


def test_store_show_and_remove_outbound_credentials(call):  # noqa: F811
    created = call("POST", "/admin/connections", TWILIO)[1]
    status, updated = call("PUT", f"/admin/connections/{created['id']}/outbound", {"credentials": OUTBOUND})
    assert status == 200 and updated["outbound_configured_at"]
    assert "s" * 32 not in json.dumps(updated) and OUTBOUND["account_sid"] not in json.dumps(updated)
    outbound_secret = f"{topology.outbound_secrets_prefix('test')}{created['id']}"
    assert outbound_secret in secret_names()
    stored = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=outbound_secret)["SecretString"])
    assert stored["current"] == OUTBOUND
    replaced = {**OUTBOUND, "auth_token": "r" * 32}
    assert call("PUT", f"/admin/connections/{created['id']}/outbound", {"credentials": replaced})[0] == 200
    stored = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=outbound_secret)["SecretString"])
    assert stored["current"]["auth_token"] == "r" * 32
    assert call("DELETE", f"/admin/connections/{created['id']}/outbound")[0] == 204
    assert "outbound_configured_at" not in call("GET", f"/admin/connections/{created['id']}")[1]
    assert outbound_secret not in secret_names()
    assert call("DELETE", f"/admin/connections/{created['id']}/outbound")[0] == 204  # idempotent


def test_deleting_a_connection_deletes_its_outbound_secret(call):  # noqa: F811
    created = call("POST", "/admin/connections", TWILIO)[1]
    call("PUT", f"/admin/connections/{created['id']}/outbound", {"credentials": OUTBOUND})
    assert call("DELETE", f"/admin/connections/{created['id']}")[0] == 204
    assert secret_names() == []


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"credentials": {**OUTBOUND, "account_sid": "nope"}}, "validation_error", "account_sid"),
        ({"credentials": {"auth_token": "s" * 32}}, "validation_error", "account_sid"),
        ({"credentials": {**OUTBOUND, "extra": "x"}}, "validation_error", "extra"),
        ({"credentials": OUTBOUND, "surprise": 1}, "validation_error", "surprise"),
        ({}, "validation_error", "credentials"),
    ],
)
def test_bad_outbound_credentials_are_400_naming_the_field(call, body, code, field):  # noqa: F811
    created = call("POST", "/admin/connections", TWILIO)[1]
    status, answer = call("PUT", f"/admin/connections/{created['id']}/outbound", body)
    assert status == 400 and answer["error"]["code"] == code, answer
    assert any(field in p["field"] for p in answer["error"]["details"]["problems"]), answer
    assert "outbound_configured_at" not in call("GET", f"/admin/connections/{created['id']}")[1]


def test_a_provider_that_cannot_send_is_refused(call):  # noqa: F811
    created = call(
        "POST",
        "/admin/connections",
        {"provider": "pipedrive", "tenant": "acme", "credentials": {"username": "u", "password": "p"}},
    )[1]
    status, answer = call("PUT", f"/admin/connections/{created['id']}/outbound", {"credentials": {"token": "x"}})
    assert status == 400 and answer["error"]["code"] == "outbound_unsupported"
    assert "twilio" in answer["error"]["message"]


def test_staff_cannot_and_other_tenants_do_not_see(call):  # noqa: F811
    created = call("POST", "/admin/connections", TWILIO)[1]
    path = f"/admin/connections/{created['id']}/outbound"
    assert call("PUT", path, {"credentials": OUTBOUND}, principal=STAFF)[0] == 403
    assert call("PUT", path, {"credentials": OUTBOUND}, principal=OTHER)[0] == 404
    assert call("DELETE", path, principal=OTHER)[0] == 404
    assert call("PUT", path, {"credentials": OUTBOUND}, principal=ADMIN)[0] == 200


def test_providers_say_which_can_send_replies(call):  # noqa: F811
    providers = {p["name"]: p for p in call("GET", "/admin/providers")[1]["providers"]}
    assert providers["twilio"]["replies"]["credential_fields"] == [
        "account_sid",
        "auth_token",
        "messaging_service_sid",
        "from_number",
    ]
    assert providers["twilio"]["replies"]["required"] == ["account_sid", "auth_token"]
    assert providers["pipedrive"]["replies"] is None
