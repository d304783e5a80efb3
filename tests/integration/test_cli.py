"""The CLI a newcomer uses, against the running local hub."""

from __future__ import annotations

import pytest

from infra.local.cli import main
from tests.integration.conftest import INGEST_CACHE_SECONDS, wait_for

pytestmark = pytest.mark.integration


def run(hub, capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()  # what the in-process functions printed before
    code = main(["--state-dir", str(hub.runtime.state.path), *args])
    captured = capsys.readouterr()
    # The functions run in this process and print their JSON logs and metrics (EMF lines).
    return code, "".join(
        line for line in (captured.out + captured.err).splitlines(keepends=True) if not line.startswith('{"')
    )


def test_send_every_default_sample_then_list_events(hub, capsys):
    for provider in ("twilio", "meta", "hubspot", "standard-webhooks"):
        code, out = run(hub, capsys, "send", provider)
        assert code == 0, out
        assert "-> 20" in out
    assert wait_for(lambda: len({e["provider"] for e in hub.logged_events(limit="100")}) >= 4)
    code, out = run(hub, capsys, "events", "--limit", "50")
    assert code == 0
    for provider in ("twilio", "meta", "hubspot", "standard-webhooks"):
        assert provider in out


def test_send_refuses_unknown_provider_and_sample(hub, capsys):
    assert run(hub, capsys, "send", "nope")[0] == 2
    code, out = run(hub, capsys, "send", "twilio", "carrier-pigeon")
    assert code == 2 and "sms" in out
    code, out = run(hub, capsys, "send", "--list")
    assert code == 0 and "standard-webhooks" in out


@pytest.mark.shows_secret_once  # `keys create` prints the new key
def test_keys_create_authorize_and_revoke(hub, capsys):
    code, out = run(hub, capsys, "keys", "create", "--tenant", "demo", "--name", "agent", "--role", "staff")
    assert code == 0
    key = next(line for line in out.splitlines() if line.startswith("sbk_"))
    status, _, who = hub.request("GET", "/admin/whoami", key=key)
    assert status == 200 and who["role"] == "staff"
    assert (
        hub.request("POST", "/admin/connections", {"provider": "twilio", "credentials": {"auth_token": "x"}}, key=key)[
            0
        ]
        == 403
    )
    code, out = run(hub, capsys, "keys", "list")
    assert who["key_id"] in out
    assert run(hub, capsys, "keys", "revoke", who["key_id"])[0] == 0
    assert hub.request("GET", "/admin/whoami", key=key)[0] == 403
    assert run(hub, capsys, "keys", "revoke", "nokey")[0] == 2


def test_admin_requires_a_key(hub):
    assert hub.request("GET", "/admin/providers")[0] == 401
    assert hub.request("GET", "/admin/providers", key="sbk_wrong_key")[0] == 403


def test_connection_lifecycle_over_http(hub):
    from infra.local.samples import build_sample

    status, created = hub.admin(
        "POST",
        "/admin/connections",
        {"provider": "standard-webhooks", "credentials": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
    )
    assert status == 201 and created["webhook_url"].startswith(hub.url)
    signed = build_sample(
        "standard-webhooks", None, {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, created["webhook_url"]
    )
    assert hub.request("POST", signed.url, signed.body, signed.headers)[0] == 200
    assert hub.admin("DELETE", f"/admin/connections/{created['id']}")[0] == 204

    def status_after_delete() -> int:
        signed = build_sample(
            "standard-webhooks", None, {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, created["webhook_url"]
        )
        return hub.request("POST", signed.url, signed.body, signed.headers)[0]

    # As on AWS, a sandbox that read the connection keeps it for ingest's cache time (the tests'
    # hub: INGEST_CACHE_SECONDS), then refuses it.
    assert wait_for(lambda: status_after_delete() == 404, timeout=INGEST_CACHE_SECONDS + 10, interval=0.5)


def test_schema_check_passes(capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert main(["schema", "--check"]) == 0


def test_a_contact_id_printed_by_conversations_and_events_can_be_followed_to_its_timeline(hub, capsys):
    from tests.integration.test_routing_stories import post_twilio_sms

    post_twilio_sms(hub, "+14155550179", "Hello from the CLI test")
    found = wait_for(
        lambda: [
            e
            for e in hub.bus.events()
            if e["detail-type"] == "conversation.opened" and e["detail"]["contact"].get("phone") == "+14155550179"
        ],
        timeout=60,  # routing may have other modules' events queued before this one (a shared hub)
    )
    conversation = found[0]["detail"]["conversation_key"]
    code, out = run(hub, capsys, "conversations", "--limit", "50")
    header, *lines = out.splitlines()
    assert code == 0 and header.split()[:3] == ["CONVERSATION", "CONTACT", "ID"]
    (line,) = [line for line in lines if line.startswith(conversation)]
    contact_id = line.split()[1]  # what a newcomer copies from the listing
    assert contact_id == found[0]["detail"]["attributes"]["contact"]["id"]
    code, out = run(hub, capsys, "events", "--provider", "twilio", "--limit", "50")
    assert code == 0 and "CONTACT ID" in out.splitlines()[0]
    assert any("+14155550179" in line and contact_id in line for line in out.splitlines())
    code, out = run(hub, capsys, "timeline", contact_id)
    assert code == 0 and "Hello from the CLI test" in out and out.startswith("OCCURRED")
    assert run(hub, capsys, "timeline", "ct_nobody")[0] == 2


def test_routing_simulate_command(hub, capsys, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(
        '{"default_team": "front-desk", "rules": [{"name": "all", "then": {"kind": "assign", "team": "x"}}]}'
    )
    code, out = run(hub, capsys, "routing", "simulate", str(rules), "--limit", "20")
    assert code == 0 and "compared with what happened" in out
    rules.write_text('{"rules": "nope"}')
    code, out = run(hub, capsys, "routing", "simulate", str(rules))
    assert code == 2 and f"the hub refused {rules}" in out
    assert "  rules: " in out and "  default_team: " in out  # each problem, named as the file names it


def test_rules_and_taxonomy_get_then_put_round_trip(hub, capsys, tmp_path):
    code, out = run(hub, capsys, "routing", "rules", "get")
    assert code == 0
    saved = tmp_path / "rules.json"
    saved.write_text(out[: out.rindex("}") + 1])  # the rule set and the version it was read at
    version = hub.admin("GET", "/admin/routing/rules")[1]["version"]
    code, out = run(hub, capsys, "routing", "rules", "put", str(saved))
    assert code == 0 and f"version {version + 1}" in out
    # The same file again is stale now: refused, not a silent overwrite of what was saved since.
    code, out = run(hub, capsys, "routing", "rules", "put", str(saved))
    assert code == 2 and "version_conflict" in out and "rules get" in out
    code, out = run(hub, capsys, "routing", "taxonomy", "get")
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(out[: out.rindex("}") + 1])
    code, out = run(hub, capsys, "routing", "taxonomy", "put", str(taxonomy))
    assert code == 0 and "saved" in out


def test_sent_lists_what_the_provider_sandbox_received(hub, capsys):
    from infra.local.provider_apis import SentMessage

    hub.runtime.provider_apis.record(
        SentMessage("telegram", to="8620544687", text="Danke, we are on it", message_id="4711")
    )
    code, out = run(hub, capsys, "sent")
    assert code == 0 and "telegram" in out and "8620544687" in out and "Danke, we are on it" in out


def test_a_tenant_the_key_may_not_read_is_refused_in_one_line(hub, capsys):
    from tests.integration.test_routing_stories import post_twilio_sms

    post_twilio_sms(hub, "+14155550162", "Make sure the demo tenant has events")
    wait_for(lambda: hub.logged_events(limit="5"))
    for command in ("events", "conversations"):
        code, out = run(hub, capsys, command, "--tenant", "other")
        # (the hub's functions log into the same streams: only the CLI's own line is looked at)
        errors = [line for line in out.splitlines() if line.startswith("switchboard: ")]
        assert code == 2 and len(errors) == 1 and "may not read tenant 'other'" in errors[0], out
