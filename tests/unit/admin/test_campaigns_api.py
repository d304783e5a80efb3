"""Campaign definitions through the admin handler against moto: create, save versions (a stale
one is 409 and saves nothing), publish, fork, share (enforced on every call), versions, diff,
and 400s naming the step."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from switchboard_core import aws
from tests.unit.admin.conftest import admin_functions
from tests.unit.admin.test_admin_api import ADMIN, OTHER, PARTNER, STAFF, admin_caller

pytestmark = pytest.mark.usefixtures("aws_world")

EXAMPLE = yaml.safe_load((Path(__file__).parents[3] / "docs/examples/campaign-negative-mention.yaml").read_text())
COLLEAGUE = {"key_id": "k6", "tenant": "acme", "name": "sam", "role": "staff"}  # responder sam, team support
ABROAD = {"key_id": "k7", "tenant": "globex", "name": "lee", "role": "staff"}
FLOW = {
    "start": "hello",
    "steps": {
        "hello": {"type": "send_message", "channel": "sms", "text": "Hi ${name}", "next": "done"},
        "done": {"type": "end"},
    },
}


@pytest.fixture
def call(aws_world):
    return admin_caller(admin_functions(aws_world))


@pytest.fixture
def table(aws_world):
    return aws.resource("dynamodb").Table(aws_world.names.mapping()["table:campaigns"])


def edited(text: str) -> dict:
    flow = copy.deepcopy(FLOW)
    flow["steps"]["hello"]["text"] = text
    return flow


def create(call, principal=ADMIN, **fields) -> dict:
    status, body = call("POST", "/admin/campaigns", {"name": "welcome", "flow": FLOW} | fields, principal=principal)
    assert status == 201, body
    return body


def test_create_answers_version_one_as_a_draft_and_reads_back(call):
    created = create(call, trigger=EXAMPLE["trigger"])
    assert created["id"].startswith("cmp_") and created["version"] == 1 and created["latest_version"] == 1
    assert created["published_version"] is None and created["live"] is False
    assert created["owner"] == {"key_id": "k1", "name": "ops"} and created["tenant"] == "acme"
    assert created["access"] == "manager" and created["flow"]["steps"]["hello"]["text"] == "Hi ${name}"
    status, shown = call("GET", f"/admin/campaigns/{created['id']}")
    assert status == 200 and shown == created


def test_the_example_campaign_is_accepted(call):
    created = create(call, name="negative-mention", flow=EXAMPLE["flow"], trigger=EXAMPLE["trigger"])
    assert created["trigger"] == EXAMPLE["trigger"] and len(created["flow"]["steps"]) == len(EXAMPLE["flow"]["steps"])


def test_an_invalid_flow_is_400_naming_each_step(call, table):
    flow = copy.deepcopy(EXAMPLE["flow"])
    flow["steps"]["thank"]["type"] = "send_fax"
    flow["steps"]["read_answer"]["cases"].append(
        {"when": {"attribute": {"name": "vip", "exists": True}}, "next": "nowhere"}
    )
    flow["steps"]["orphan"] = {"type": "end"}
    flow["steps"]["tell_team"]["next"] = "read_answer"  # branch -> notify -> branch, never waiting
    status, body = call("POST", "/admin/campaigns", {"name": "x", "flow": flow})
    assert status == 400 and body["error"]["code"] == "validation_error"
    assert [p["field"] for p in body["error"]["details"]["problems"]] == ["flow.steps.thank"]
    flow["steps"]["thank"]["type"] = "send_message"
    status, body = call("POST", "/admin/campaigns", {"name": "x", "flow": flow})
    fields = {p["field"]: p["problem"] for p in body["error"]["details"]["problems"]}
    assert status == 400 and set(fields) == {
        "flow.steps.read_answer.cases.3.next",
        "flow.steps.orphan",
        "flow.steps.read_answer",
    }, fields
    assert "(read_answer -> tell_team -> read_answer)" in fields["flow.steps.read_answer"] and all(
        p["in"] == "body" for p in body["error"]["details"]["problems"]
    )
    assert table.scan()["Items"] == []  # nothing saved


def test_a_bad_trigger_and_a_refused_webhook_are_named(call):
    flow = {
        "start": "hook",
        "steps": {"hook": {"type": "webhook", "url": "https://203.0.113.9/x", "next": "done"}, "done": {"type": "end"}},
    }
    status, body = call(
        "POST", "/admin/campaigns", {"name": "x", "flow": flow, "trigger": {"event_pattern": {"source": "x"}}}
    )
    fields = {p["field"]: p["problem"] for p in body["error"]["details"]["problems"]}
    assert status == 400 and set(fields) == {"trigger.event_pattern.source", "flow.steps.hook.url"}
    assert "loopback" in fields["flow.steps.hook.url"]
    flow["steps"]["hook"]["url"] = "http://127.0.0.1:9/hook"  # the local runtime calls this machine only
    assert call("POST", "/admin/campaigns", {"name": "x", "flow": flow})[0] == 201


def test_validate_checks_without_saving(call, table):
    status, body = call("POST", "/admin/campaigns/validate", {"flow": EXAMPLE["flow"], "trigger": EXAMPLE["trigger"]})
    assert status == 200 and body == {"valid": True, "tenant": "acme", "steps": 12, "trigger": True}
    status, body = call("POST", "/admin/campaigns/validate", {"flow": {"start": "a", "steps": {"a": {"type": "x"}}}})
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "flow.steps.a"
    assert call("POST", "/admin/campaigns/validate", {"flow": FLOW}, principal=PARTNER)[0] == 403
    assert table.scan()["Items"] == []


def test_saving_versions_and_a_stale_save_is_409_with_nothing_half_saved(call, table):
    campaign = create(call)
    path = f"/admin/campaigns/{campaign['id']}"
    status, saved = call("PUT", path, {"flow": edited("v2"), "expected_version": 1})
    assert status == 200 and saved["version"] == 2 and saved["latest_version"] == 2
    before = sorted(table.scan()["Items"], key=lambda item: item["sk"])
    status, body = call("PUT", path, {"flow": edited("stale"), "expected_version": 1})
    assert status == 409 and body["error"]["code"] == "version_conflict"
    assert body["error"]["details"] == {"current_version": 2}
    assert sorted(table.scan()["Items"], key=lambda item: item["sk"]) == before
    assert call("GET", path)[1]["flow"]["steps"]["hello"]["text"] == "v2"
    assert call("GET", path, query="version=1")[1]["flow"]["steps"]["hello"]["text"] == "Hi ${name}"
    assert call("GET", path, query="version=3")[0] == 404
    status, body = call("PUT", path, {"flow": {"start": "a", "steps": {}}, "expected_version": 2})
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "flow.steps"
    assert sorted(table.scan()["Items"], key=lambda item: item["sk"]) == before


def test_publish_makes_a_version_live_and_versions_list_them(call):
    campaign = create(call)
    path = f"/admin/campaigns/{campaign['id']}"
    call("PUT", path, {"flow": edited("v2"), "expected_version": 1})
    status, published = call("POST", f"{path}/publish", {"version": 1})
    assert status == 200 and published["published_version"] == 1 and published["published_by"]["key_id"] == "k1"
    status, body = call("POST", f"{path}/publish", {"version": 3})
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "version"
    status, listed = call("GET", f"{path}/versions")
    assert status == 200 and [(v["version"], v["live"]) for v in listed["versions"]] == [(1, True), (2, False)]
    assert listed["versions"][0]["published_at"] and listed["versions"][1]["published_at"] is None
    assert call("GET", path)[1]["live"] is False and call("GET", path, query="version=1")[1]["live"] is True


def test_diff_between_two_versions(call):
    campaign = create(call)
    path = f"/admin/campaigns/{campaign['id']}"
    call("PUT", path, {"flow": edited("Hello ${name}"), "trigger": EXAMPLE["trigger"], "expected_version": 1})
    status, diff = call("GET", f"{path}/diff", query="from=1&to=2")
    assert status == 200, diff
    assert diff["from"] == 1 and diff["to"] == 2 and diff["start"] is None
    assert diff["steps"] == {
        "added": [],
        "removed": [],
        "changed": [{"step": "hello", "fields": [{"field": "text", "from": "Hi ${name}", "to": "Hello ${name}"}]}],
    }
    assert diff["trigger"]["from"] is None and diff["trigger"]["to"] == EXAMPLE["trigger"]
    assert call("GET", f"{path}/diff", query="from=1&to=7")[0] == 404
    status, body = call("GET", f"{path}/diff", query="from=1")
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "to"


def test_shares_are_enforced_on_every_call(call):
    campaign = create(call, principal=STAFF)  # k2 owns it
    path = f"/admin/campaigns/{campaign['id']}"
    # Nobody else but the tenant's admins knows it exists.
    for stranger in (COLLEAGUE, ABROAD, PARTNER, OTHER):
        assert call("GET", path, principal=stranger)[0] == 404
        assert call("PUT", path, {"flow": FLOW, "expected_version": 1}, principal=stranger)[0] == 404
    assert call("GET", path, principal=ADMIN)[1]["access"] == "manager"
    assert call("GET", "/admin/campaigns", principal=COLLEAGUE)[1]["campaigns"] == []
    assert call("GET", "/admin/campaigns", principal=PARTNER)[0] == 403

    # A viewer reads, lists and diffs, but may not save, publish or share.
    status, shared = call("POST", f"{path}/shares", {"principal": "k6", "access": "viewer"}, principal=STAFF)
    assert status == 200 and [(s["principal"], s["access"]) for s in shared["shares"]] == [("k6", "viewer")]
    assert call("GET", path, principal=COLLEAGUE)[1]["access"] == "viewer"
    assert [c["id"] for c in call("GET", "/admin/campaigns", principal=COLLEAGUE)[1]["campaigns"]] == [campaign["id"]]
    status, body = call("PUT", path, {"flow": edited("mine"), "expected_version": 1}, principal=COLLEAGUE)
    assert status == 403 and body["error"]["code"] == "forbidden" and "editor" in body["error"]["message"]
    assert call("POST", f"{path}/publish", {"version": 1}, principal=COLLEAGUE)[0] == 403
    assert call("POST", f"{path}/shares", {"principal": "k9", "access": "editor"}, principal=COLLEAGUE)[0] == 403
    assert call("GET", f"{path}/versions", principal=COLLEAGUE)[1]["latest_version"] == 1

    # An editor saves and publishes, but does not share.
    call("POST", f"{path}/shares", {"principal": "k6", "access": "editor"}, principal=ADMIN)
    assert call("PUT", path, {"flow": edited("mine"), "expected_version": 1}, principal=COLLEAGUE)[0] == 200
    assert call("POST", f"{path}/publish", {"version": 2}, principal=COLLEAGUE)[0] == 200
    assert call("POST", f"{path}/shares", {"principal": "k9", "access": "viewer"}, principal=COLLEAGUE)[0] == 403
    assert call("GET", path, principal=PARTNER)[0] == 404  # partners never see campaigns


def test_a_team_share_reaches_the_keys_named_after_its_responders(call):
    assert call("PUT", "/admin/teams/support", {})[0] == 200
    assert call("PUT", "/admin/responders/sam", {"name": "Sam", "teams": ["support"]})[0] == 200
    campaign = create(call)
    path = f"/admin/campaigns/{campaign['id']}"
    status, body = call("POST", f"{path}/shares", {"team": "nobody", "access": "viewer"})
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "team"
    assert call("POST", f"{path}/shares", {"team": "support", "access": "editor"})[0] == 200
    assert call("GET", path, principal=COLLEAGUE)[1]["access"] == "editor"
    assert call("GET", path, principal=STAFF)[0] == 404  # k2 "agent" is no responder of support
    # The team is the campaign tenant's: a key of another tenant with the same name is not in it.
    assert call("GET", path, principal={**ABROAD, "name": "sam"})[0] == 404
    status, body = call("POST", f"{path}/shares", {"team": "support", "principal": "k2", "access": "viewer"})
    assert status == 400


def test_a_fork_across_tenants_keeps_its_lineage_and_the_original_unchanged(call):
    original = create(call, trigger=EXAMPLE["trigger"])
    path = f"/admin/campaigns/{original['id']}"
    call("POST", f"{path}/publish", {"version": 1})
    assert call("POST", f"{path}/fork", {}, principal=ABROAD)[0] == 404  # not shared yet
    call("POST", f"{path}/shares", {"principal": "k7", "access": "viewer"})
    status, fork = call("POST", f"{path}/fork", {"name": "welcome, globex"}, principal=ABROAD)
    assert status == 201, fork
    assert fork["forked_from"] == {"campaign": original["id"], "version": 1} and fork["tenant"] == "globex"
    assert fork["owner"]["key_id"] == "k7" and fork["version"] == 1 and fork["published_version"] is None
    assert fork["flow"] == original["flow"] and fork["trigger"] == original["trigger"]
    fork_path = f"/admin/campaigns/{fork['id']}"
    assert call("PUT", fork_path, {"flow": edited("Hej ${name}"), "expected_version": 1}, principal=ABROAD)[0] == 200
    assert call("POST", f"{fork_path}/publish", {"version": 2}, principal=ABROAD)[0] == 200
    still = call("GET", path)[1]
    assert still["latest_version"] == 1 and still["published_version"] == 1
    assert still["flow"]["steps"]["hello"]["text"] == "Hi ${name}"
    assert call("GET", fork_path, principal=ADMIN)[0] == 404  # acme's admin does not see globex's fork
    # Forking into a tenant the key may not create in is refused.
    status, body = call("POST", f"{path}/fork", {"tenant": "initech"}, principal=ABROAD)
    assert status == 403 and body["error"]["details"]["tenant"] == "initech"
    assert call("POST", f"{path}/fork", {"version": 5}, principal=ABROAD)[0] == 404


def test_listing_pages_with_a_cursor(call):
    ids = [create(call, name=f"c{i}")["id"] for i in range(3)]
    create(call, principal=OTHER)
    status, page = call("GET", "/admin/campaigns", query="limit=2")
    assert status == 200 and [c["id"] for c in page["campaigns"]] == ids[:2] and page["next_cursor"]
    status, rest = call("GET", "/admin/campaigns", query=f"limit=2&cursor={page['next_cursor']}")
    assert [c["id"] for c in rest["campaigns"]] == ids[2:]
    assert call("GET", "/admin/campaigns", query="tenant=globex")[0] == 200  # visibility is per campaign
    assert call("GET", "/admin/campaigns", query="tenant=globex")[1]["campaigns"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"flow": FLOW},  # no name
        {"name": "x"},  # no flow
        {"name": "x", "flow": FLOW, "colour": "red"},
        {"name": "x", "flow": FLOW, "tenant": "a b"},
    ],
)
def test_malformed_create_requests_are_400(call, body):
    status, answer = call("POST", "/admin/campaigns", body)
    assert status == 400 and answer["error"]["code"] == "validation_error"


def test_staff_create_in_their_tenant_only_and_partners_never(call):
    assert create(call, principal=STAFF)["owner"]["key_id"] == "k2"
    assert call("POST", "/admin/campaigns", {"name": "x", "flow": FLOW, "tenant": "globex"}, principal=STAFF)[0] == 403
    assert call("POST", "/admin/campaigns", {"name": "x", "flow": FLOW}, principal=PARTNER)[0] == 403
    assert call("GET", "/admin/campaigns/cmp_nope")[0] == 404
    assert call("GET", "/admin/campaigns/sub_nope")[0] == 404
