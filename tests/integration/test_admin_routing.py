"""The admin API for routing over HTTP on the local runtime: rule sets (validated,
versioned), taxonomy, responders, simulation, and who may change them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

GOOD = {
    "default_team": "front-desk",
    "rules": [{"name": "parts", "when": {"topics_any": ["parts"]}, "then": {"kind": "assign", "team": "parts"}}],
}


def staff_key(hub) -> str:
    from datetime import UTC, datetime

    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore, Role

    store = ApiKeyStore(aws.resource("dynamodb").Table(hub.runtime.names.table("api_keys")))
    key, _ = store.create(tenant="demo", name="agent", role=Role.STAFF, now=datetime.now(UTC))
    return key


def test_rule_sets_are_validated_versioned_and_never_left_invalid(hub):
    current = hub.admin("GET", "/admin/routing/rules")
    expected = current[1]["version"] if current[0] == 200 else None
    bad = {
        "rule_set": {"default_team": "", "rules": [{"name": "x", "then": {"kind": "teleport"}}]},
        "expected_version": expected,
    }
    status, answer = hub.admin("PUT", "/admin/routing/rules", bad)
    assert status == 400 and answer["error"]["code"] == "validation_error"
    fields = {p["field"] for p in answer["error"]["details"]["problems"]}
    assert "rule_set.default_team" in fields and any(f.startswith("rule_set.rules.0.then") for f in fields)
    assert hub.admin("GET", "/admin/routing/rules")[0] == current[0]  # nothing changed

    status, saved = hub.admin("PUT", "/admin/routing/rules", {"rule_set": GOOD, "expected_version": expected})
    assert status == 200 and saved["version"] == (expected or 0) + 1
    stale = hub.admin("PUT", "/admin/routing/rules", {"rule_set": GOOD, "expected_version": expected})
    assert stale[0] == 409 and stale[1]["error"]["details"]["current_version"] == saved["version"]
    status, shown = hub.admin("GET", "/admin/routing/rules")
    assert status == 200 and shown["rule_set"]["rules"][0]["name"] == "parts"


def test_taxonomy_and_responders(hub):
    taxonomy = {"topics": [{"name": "parts", "phrases": ["brake pad"]}], "entities": {}}
    status, saved = hub.admin("PUT", "/admin/routing/taxonomy", taxonomy)
    assert status == 200 and saved["phrases"] == 1
    assert hub.admin("PUT", "/admin/routing/taxonomy", {"topics": [{"name": "x", "phrases": []}]})[0] == 400
    profile = {
        "name": "Pia",
        "teams": ["parts"],
        "skills": {"parts": 3},
        "capacity": 4,
        "location": {"latitude": 53.55, "longitude": 9.99},
    }
    status, responder = hub.admin("PUT", "/admin/responders/pia-admin-test", profile)
    assert status == 200 and responder["tenant"] == "demo" and responder["load"] == 0
    bad = hub.admin("PUT", "/admin/responders/bad-skill", {**profile, "skills": {"parts": 9}})
    assert bad[0] == 400 and "skills" in bad[1]["error"]["message"]
    assert "pia-admin-test" in [r["id"] for r in hub.admin("GET", "/admin/responders")[1]["responders"]]
    assert hub.admin("DELETE", "/admin/responders/pia-admin-test")[0] == 204
    assert hub.admin("DELETE", "/admin/responders/pia-admin-test")[0] == 404


def test_staff_reads_but_cannot_change_routing(hub):
    key = staff_key(hub)
    assert hub.request("GET", "/admin/routing/taxonomy", key=key)[0] == 200
    status, _, answer = hub.request(
        "PUT", "/admin/routing/rules", {"rule_set": GOOD, "expected_version": None}, key=key
    )
    assert status == 403 and answer["error"]["code"] == "forbidden"
    assert hub.request("PUT", "/admin/responders/x", {"name": "X"}, key=key)[0] == 403


def test_simulation_changes_nothing(hub):
    before = hub.admin("GET", "/admin/routing/rules")
    status, report = hub.admin("POST", "/admin/routing/simulate", {"rule_set": GOOD, "limit": 50})
    assert status == 200 and "events" in report and report["changed"] <= report["compared"]
    assert hub.admin("GET", "/admin/routing/rules") == before
    assert hub.admin("POST", "/admin/routing/simulate", {"rule_set": {"rules": []}})[0] == 400


def test_merges_can_be_undone_and_conversations_moved_along(hub):
    from datetime import UTC, datetime

    from switchboard_core import aws
    from switchboard_core.routing.contacts import ContactStore, Identity
    from tests.integration.conftest import wait_for
    from tests.integration.test_routing_stories import post_twilio_sms

    contacts = ContactStore(aws.resource("dynamodb").Table(hub.runtime.names.table("contacts")))
    now = datetime.now(UTC)
    by_phone = contacts.resolve("demo", [Identity(kind="phone", value="+14155550171")], reason="t", now=now)
    by_email = contacts.resolve("demo", [Identity(kind="email", value="lee@example.com")], reason="t", now=now)
    merged = contacts.resolve(
        "demo",
        [Identity(kind="phone", value="+14155550171"), Identity(kind="email", value="lee@example.com")],
        reason="crm",
        now=now,
    )
    status, shown = hub.admin("GET", f"/admin/contacts/{merged.id}")
    assert status == 200 and len(shown["merges"]) == 1
    status, restored = hub.admin("POST", f"/admin/contacts/merges/{shown['merges'][0]}/undo")
    assert status == 200 and restored["id"] in {by_phone.id, by_email.id} and restored["merged_into"] is None
    assert hub.admin("POST", f"/admin/contacts/merges/{shown['merges'][0]}/undo")[0] == 409
    assert hub.admin("POST", "/admin/contacts/merges/mg_nothing/undo")[0] == 404

    post_twilio_sms(hub, "+14155550172", "please call me back")
    opened = wait_for(
        lambda: [
            e
            for e in hub.bus.events()
            if e["detail-type"] == "conversation.opened" and e["detail"]["contact"].get("phone") == "+14155550172"
        ]
    )
    conversation_id = opened[0]["detail"]["conversation_key"]
    status, moved = hub.admin("POST", f"/admin/conversations/{conversation_id}/status", {"status": "resolved"})
    assert status == 200 and moved["status"] == "resolved"
    assert hub.admin("POST", f"/admin/conversations/{conversation_id}/status", {"status": "asleep"})[0] == 400


def test_teams_crud_with_their_members(hub):
    status, team = hub.admin(
        "PUT", "/admin/teams/roadside", {"description": "Towing and breakdowns", "default_priority": 1}
    )
    assert status == 200 and team["name"] == "roadside"
    hub.admin("PUT", "/admin/responders/tow-1", {"name": "Tow 1", "teams": ["roadside"], "skills": {"towing": 2}})
    listed = {t["name"]: t for t in hub.admin("GET", "/admin/teams")[1]["teams"]}
    assert "tow-1" in listed["roadside"]["members"]
    assert hub.admin("PUT", "/admin/teams/bad%20name", {})[0] == 400
    assert hub.admin("PUT", "/admin/teams/x", {"default_priority": 9})[0] == 400
    assert hub.admin("DELETE", "/admin/teams/roadside")[0] == 204
    assert hub.admin("DELETE", "/admin/teams/roadside")[0] == 404


def test_fields_the_path_or_server_decide_cannot_be_set_through_the_body(hub):
    for body in ({"name": "X", "load": 0}, {"name": "X", "tenant": "other"}, {"name": "X", "id": "y"}):
        status, answer = hub.admin("PUT", "/admin/responders/r-1", body)
        assert status == 400 and answer["error"]["code"] == "validation_error", body
    status, _, answer = hub.request(
        "PUT", "/admin/responders/r-1", b'["X"]', {"Content-Type": "application/json"}, key=hub.runtime.admin_key
    )
    assert status == 400 and answer["error"]["code"] == "malformed_request"
    assert hub.admin("PUT", "/admin/teams/t-1", {"name": "renamed"})[0] == 400
