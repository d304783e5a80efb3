"""The `switchboard` CLI without a running hub: every option has help, and every error is
one line saying what to do (AWS configuration, an unreachable hub, the hub's refusals,
missing or broken files). The hub's answers come from a stub HTTP server on loopback."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra.local.cli import build_parser, main


def walk(parser: argparse.ArgumentParser, path: str = "switchboard") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield path, action
            for choice in action._choices_actions:
                yield f"{path} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_and_subcommand_has_help():
    missing = [
        f"{path}: {action.dest}"
        for path, action in walk(build_parser())
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert not missing, missing
    assert sum(1 for _ in walk(build_parser())) > 60  # the walk reaches every level


class StubHub:
    """Answers (status, body) per "METHOD /path"; records what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.received: list[tuple[str, str, Any]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                hub.received.append((self.command, self.path, body))
                exact, path = f"{self.command} {self.path}", f"{self.command} {self.path.split('?')[0]}"
                status, payload = hub.answers.get(exact) or hub.answers.get(path) or (404, {"message": "Not Found"})
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_PUT = do_POST = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stub(tmp_path, monkeypatch) -> Iterator[StubHub]:
    monkeypatch.delenv("SWITCHBOARD_ADMIN_KEY", raising=False)
    monkeypatch.delenv("SWITCHBOARD_URL", raising=False)
    (tmp_path / "admin-key").write_text("sbk_12345678_local\n")
    hub = StubHub()
    yield hub
    hub.server.shutdown()


def cli(stub: StubHub, tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--state-dir", str(tmp_path), *args, "--url", stub.url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    assert err.startswith("switchboard: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_keys_for_a_stage_without_a_region_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    from switchboard_core import aws

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    aws.reset_clients()
    try:
        code = main(
            [
                "--state-dir",
                str(tmp_path),
                "keys",
                "--stage",
                "prod",
                "create",
                "--tenant",
                "acme",
                "--name",
                "ops",
                "--role",
                "admin",
            ]
        )
    finally:
        aws.reset_clients()
    err = one_line_error(capsys.readouterr().err)
    assert code == 2 and "no AWS region" in err and "--region" in err


def test_keys_without_credentials_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    from switchboard_core import aws

    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.reset_clients()
    try:
        code = main(["--state-dir", str(tmp_path), "keys", "--stage", "prod", "--region", "eu-west-1", "list"])
    finally:
        aws.reset_clients()
    err = one_line_error(capsys.readouterr().err)
    assert code == 2 and "no AWS credentials" in err and "aws configure" in err


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ValidationError", "Stack with id Switchboard-prod does not exist", "check --stage and --region"),
        ("ResourceNotFoundException", "Requested resource not found", "check --table"),
        ("ExpiredTokenException", "The security token included in the request is expired", "aws sso login"),
        ("AccessDeniedException", "not authorized to perform: dynamodb:PutItem", "credentials allowed"),
        ("ThrottlingException", "Rate exceeded", "AWS answered ThrottlingException to DescribeStacks"),
    ],
)
def test_aws_refusals_are_one_line_with_what_to_do(tmp_path, monkeypatch, capsys, code, message, expected):
    from botocore.exceptions import ClientError

    def refuse(args):
        raise ClientError({"Error": {"Code": code, "Message": message}}, "DescribeStacks")

    monkeypatch.setattr("infra.local.cli.key_store", refuse)
    assert main(["--state-dir", str(tmp_path), "keys", "--stage", "prod", "list"]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert message in err and expected in err


def test_an_unreachable_hub_says_to_start_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SWITCHBOARD_URL", raising=False)
    (tmp_path / "admin-key").write_text("sbk_12345678_local\n")
    (tmp_path / "runtime.json").write_text(json.dumps({"base_url": "http://127.0.0.1:9"}))  # a hub that died
    assert main(["--state-dir", str(tmp_path), "events"]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "cannot reach http://127.0.0.1:9" in err and "switchboard dev" in err
    (tmp_path / "runtime.json").unlink()
    assert main(["--state-dir", str(tmp_path), "conversations"]) == 2
    assert "no local hub is running" in one_line_error(capsys.readouterr().err)


def test_a_chosen_admin_key_the_authorizer_would_refuse_stops_dev_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SWITCHBOARD_ADMIN_KEY", "letmein")
    assert main(["--state-dir", str(tmp_path), "dev", "--port", "0"]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "SWITCHBOARD_ADMIN_KEY is not a Switchboard API key" in err and "must start with 'sbk_'" in err
    assert not (tmp_path / "runtime.json").exists()  # nothing was started


def test_the_authorizers_bare_403_becomes_a_line_about_the_key(stub, tmp_path, capsys):
    stub.answers["GET /admin/events"] = (403, {"message": "Forbidden"})
    code, _, err = cli(stub, tmp_path, capsys, "events")
    assert code == 2 and "the hub refused the admin key" in one_line_error(err) and "admin-key" in err


def test_a_tenant_the_key_may_not_read_is_one_line(stub, tmp_path, capsys):
    stub.answers["GET /admin/events"] = (
        403,
        {"error": {"code": "forbidden", "message": "this key may not read tenant 'other'"}},
    )
    code, out, err = cli(stub, tmp_path, capsys, "events", "--tenant", "other")
    assert code == 2 and not out
    assert "GET /admin/events -> 403 forbidden: this key may not read tenant 'other'" in one_line_error(err)
    assert "tenant=other" in stub.received[-1][1]


def test_a_listing_of_another_tenant_than_asked_for_is_refused(stub, tmp_path, capsys):
    stub.answers["GET /admin/events"] = (200, {"events": [{**EVENT, "tenant": "demo"}], "next_cursor": None})
    code, out, err = cli(stub, tmp_path, capsys, "events", "--tenant", "other")
    assert code == 2 and not out and "may not read tenant 'other'" in one_line_error(err)
    stub.answers["GET /admin/conversations"] = (200, {"conversations": [{"tenant": "demo", "id": "cv_1"}]})
    code, out, err = cli(stub, tmp_path, capsys, "conversations", "--tenant", "other")
    assert code == 2 and not out and "may not read tenant 'other'" in one_line_error(err)


def test_a_failing_hub_points_at_its_log(stub, tmp_path, capsys):
    stub.answers["GET /admin/conversations"] = (500, {"message": "Internal Server Error"})
    code, _, err = cli(stub, tmp_path, capsys, "conversations")
    assert code == 2 and "-> 500" in one_line_error(err) and "switchboard dev" in err


def test_empty_listings_say_what_was_filtered(stub, tmp_path, capsys):
    stub.answers["GET /admin/events"] = (200, {"events": [], "next_cursor": None})
    stub.answers["GET /admin/whoami"] = (200, {"tenant": "demo", "role": "admin", "key_id": "k", "name": "n"})
    code, out, _ = cli(stub, tmp_path, capsys, "events", "--type", "nope")
    assert code == 0 and out.startswith("no events of type 'nope' for tenant demo")
    assert "not an event type" in out
    code, out, _ = cli(stub, tmp_path, capsys, "events", "--type", "message.received", "--provider", "twilio")
    assert out.strip() == "no events of type 'message.received' from provider 'twilio' for tenant demo"
    code, out, _ = cli(stub, tmp_path, capsys, "events")
    assert out.startswith("no events yet for tenant demo")
    stub.answers["GET /admin/conversations"] = (200, {"conversations": [], "next_cursor": None})
    code, out, _ = cli(stub, tmp_path, capsys, "conversations", "--status", "waiting", "--tenant", "acme")
    assert out.strip() == "no conversations with status 'waiting' for tenant acme"


EVENT = {
    "id": "ev_1",
    "received_at": "2026-11-23T12:00:00+00:00",
    "provider": "twilio",
    "type": "message.received",
    "contact": {"phone": "+14155550101"},
    "text": "Hi",
    "attributes": {},
}
DERIVED = {
    "id": "ev_2",
    "received_at": "2026-11-23T12:00:00+00:00",
    "provider": "routing",
    "type": "conversation.opened",
    "contact": {"phone": "+14155550101"},
    "text": "Hi",
    "attributes": {"source_event": "ev_1", "contact": {"id": "ct_0123456789abcdef"}},
}


def test_events_and_conversations_show_contact_ids_under_headers(stub, tmp_path, capsys):
    stub.answers["GET /admin/events"] = (200, {"events": [DERIVED, EVENT], "next_cursor": None})
    code, out, _ = cli(stub, tmp_path, capsys, "events")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["RECEIVED", "PROVIDER", "TYPE", "CONTACT", "ID", "FROM", "TEXT"]
    assert all("ct_0123456789abcdef" in row for row in rows)  # the customer's own event too, via routing's
    stub.answers["GET /admin/events?provider=twilio&limit=20"] = (200, {"events": [EVENT], "next_cursor": None})
    stub.answers["GET /admin/events?provider=routing&limit=100"] = (200, {"events": [DERIVED], "next_cursor": None})
    code, out, _ = cli(stub, tmp_path, capsys, "events", "--provider", "twilio")
    assert code == 0  # routing's events filtered out
    (row,) = out.splitlines()[1:]
    assert row.split()[1:4] == ["twilio", "message.received", "ct_0123456789abcdef"]
    stub.answers["GET /admin/conversations"] = (
        200,
        {
            "conversations": [
                {
                    "id": "cv_1",
                    "contact_id": "ct_0123456789abcdef",
                    "status": "assigned",
                    "assignee": "omar",
                    "queue": "orders",
                    "channels": ["telephony"],
                    "topics": ["orders"],
                    "tags": [],
                    "last_activity_at": "2026-11-23T12:00:00+00:00",
                }
            ]
        },
    )
    code, out, _ = cli(stub, tmp_path, capsys, "conversations")
    assert code == 0
    header, row = out.splitlines()
    assert header.startswith("CONVERSATION") and "CONTACT ID" in header and "ASSIGNEE" in header
    assert row.split()[:5] == ["cv_1", "ct_0123456789abcdef", "assigned", "omar", "orders"]


def test_rules_put_sends_the_version_it_was_read_at_and_never_overwrites_blindly(stub, tmp_path, capsys):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rule_set": {"default_team": "front-desk", "rules": []}, "version": 3}))
    stub.answers["PUT /admin/routing/rules"] = (200, {"version": 4, "rules": 0})
    code, out, _ = cli(stub, tmp_path, capsys, "routing", "rules", "put", str(rules))
    assert code == 0 and "version 4" in out
    assert stub.received[-1][2] == {"rule_set": {"default_team": "front-desk", "rules": []}, "expected_version": 3}
    cli(stub, tmp_path, capsys, "routing", "rules", "put", str(rules), "--expected-version", "7")
    assert stub.received[-1][2]["expected_version"] == 7 and stub.received[-2][0] == "PUT"  # no GET first

    # A bare rule set (say, a copy of docs/examples/rules.json) replaces one in force only when asked.
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"default_team": "front-desk", "rules": []}))
    stub.answers["GET /admin/routing/rules"] = (200, {"rule_set": {}, "version": 3})
    sent = len(stub.received)
    code, _, err = cli(stub, tmp_path, capsys, "routing", "rules", "put", str(bare))
    assert code == 2 and "version 3 is in force" in one_line_error(err) and "--expected-version 3" in err
    assert [r[0] for r in stub.received[sent:]] == ["GET"]  # nothing was put
    cli(stub, tmp_path, capsys, "routing", "rules", "put", str(bare), "--expected-version", "3")
    assert stub.received[-1][0] == "PUT" and stub.received[-1][2]["expected_version"] == 3

    stub.answers["GET /admin/routing/rules"] = (404, {"error": {"code": "no_rule_set", "message": "none yet"}})
    cli(stub, tmp_path, capsys, "routing", "rules", "put", str(bare))
    assert stub.received[-1][0] == "PUT" and stub.received[-1][2]["expected_version"] is None  # the first rule set

    stub.answers["PUT /admin/routing/rules"] = (
        400,
        {
            "error": {
                "code": "validation_error",
                "message": "invalid request: rule_set.default_team, rule_set.rules.0.then",
                "details": {
                    "problems": [
                        {
                            "field": "rule_set.default_team",
                            "in": "body",
                            "problem": "String should have at least 1 character",
                        },
                        {"field": "rule_set.rules.0.then", "in": "body", "problem": "Input tag 'shout' does not match"},
                    ]
                },
            }
        },
    )
    code, out, err = cli(stub, tmp_path, capsys, "routing", "rules", "put", str(rules))
    assert code == 2 and not out
    assert err.splitlines() == [
        f"switchboard: the hub refused {rules} (2 problems; nothing changed):",
        "  default_team: String should have at least 1 character",
        "  rules.0.then: Input tag 'shout' does not match",
    ]

    stub.answers["PUT /admin/routing/rules"] = (
        409,
        {"error": {"code": "version_conflict", "message": "the rule set in force is version 4"}},
    )
    code, _, err = cli(stub, tmp_path, capsys, "routing", "rules", "put", str(rules))
    assert code == 2 and "version 4" in one_line_error(err) and "--expected-version" in err


def test_rules_and_taxonomy_get_print_a_file_put_takes(stub, tmp_path, capsys):
    stub.answers["GET /admin/routing/rules"] = (200, {"rule_set": {"default_team": "x", "rules": []}, "version": 2})
    code, out, _ = cli(stub, tmp_path, capsys, "routing", "rules", "get")
    assert code == 0 and json.loads(out) == {"rule_set": {"default_team": "x", "rules": []}, "version": 2}
    stub.answers["GET /admin/routing/taxonomy"] = (200, {"taxonomy": {"topics": [], "entities": {}}, "version": 0})
    code, out, _ = cli(stub, tmp_path, capsys, "routing", "taxonomy", "get")
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(out)
    stub.answers["PUT /admin/routing/taxonomy"] = (200, {"version": 1, "phrases": 0})
    code, out, _ = cli(stub, tmp_path, capsys, "routing", "taxonomy", "put", str(taxonomy))
    assert code == 0 and stub.received[-1][2] == {"topics": [], "entities": {}} and "version 1" in out


@pytest.mark.parametrize(
    "command", [("routing", "rules", "put"), ("routing", "taxonomy", "put"), ("routing", "simulate")]
)
def test_missing_and_broken_files_are_one_line(stub, tmp_path, capsys, command):
    code, _, err = cli(stub, tmp_path, capsys, *command, str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read" in one_line_error(err) and "No such file" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"rules": [')
    code, _, err = cli(stub, tmp_path, capsys, *command, str(broken))
    assert code == 2 and "is not valid JSON" in one_line_error(err) and "line 1" in err
    assert not stub.received  # nothing was sent


def test_simulation_text_says_what_was_compared():
    from infra.local.cli import simulation_text

    not_routed = {
        "action": "none",
        "rule": None,
        "reason": "not routed: no rule set was in force",
        "queue": None,
        "assignee": None,
        "tags": [],
        "auto_reply_rule": None,
    }
    proposed = {
        "action": "assign",
        "rule": "orders",
        "reason": "rule 'orders' (topics_any)",
        "queue": "orders",
        "assignee": "omar",
        "tags": ["urgent"],
        "auto_reply_rule": "acknowledge",
    }
    report = {
        "compared": 1,
        "changed": 1,
        "not_compared": 1,
        "not_routed": 1,
        "events": [
            {
                "provider": "twilio",
                "type": "message.received",
                "occurred_at": "2026-11-23T12:00:00+00:00",
                "topics": ["orders"],
                "proposed": proposed,
                "actual": not_routed,
                "changed": True,
                "changes": ["queue", "assignee", "tags", "auto_reply_rule"],
                "not_compared": None,
            },
            {
                "provider": "meta",
                "type": "message.received",
                "occurred_at": "2026-11-23T12:01:00+00:00",
                "topics": [],
                "proposed": proposed,
                "actual": None,
                "changed": False,
                "changes": [],
                "not_compared": "routing's outcome for this event is not among the events simulated",
            },
        ],
    }
    text = simulation_text(report)
    assert "would: orders/omar  tags: urgent  reply: acknowledge" in text
    assert "was:   -/-  tags: -  reply: -  (not routed: no rule set was in force)  changes: queue" in text
    assert "was:   not compared: routing's outcome" in text
    assert text.splitlines()[-1] == (
        "2 customer events: 1 compared with what happened, 1 would change, 1 not "
        "compared (outcome unknown, see above); 1 had no rule set in force"
    )


def test_an_invalid_example_stops_dev_in_one_line(tmp_path, monkeypatch, capsys):
    from infra.local.runtime import InvalidExample

    def start(self):
        raise InvalidExample("docs/examples/rules.json: rules.0.then: Input tag 'shout' does not match")

    monkeypatch.delenv("SWITCHBOARD_ADMIN_KEY", raising=False)
    monkeypatch.setattr("infra.local.runtime.LocalRuntime.start", start)
    assert main(["--state-dir", str(tmp_path), "dev", "--port", "0"]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "rules.json: rules.0.then" in err and "docs/examples/README.md" in err
