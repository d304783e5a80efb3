"""`switchboard campaigns ...` against the real admin function (in-process, on moto) served on
loopback: YAML and JSON files, validate, save (create and new versions, a stale one refused),
publish, share, fork and diff as a second user, and refusals naming each step."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from infra.local.cli import main
from tests.unit.admin.conftest import admin_event, admin_functions

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "campaign-negative-mention.yaml"
KEYS = {
    "sbk_ana": {"key_id": "k1", "tenant": "acme", "name": "ana", "role": "staff"},
    "sbk_lee": {"key_id": "k7", "tenant": "globex", "name": "lee", "role": "staff"},
}


@pytest.fixture
def hub(aws_world) -> Iterator[str]:
    """The admin function behind an HTTP server on 127.0.0.1, the key mapped to its principal
    as the authorizer would."""
    functions = admin_functions(aws_world)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else None
            url = urlsplit(self.path)
            principal = KEYS.get((self.headers.get("Authorization") or "").removeprefix("Bearer "))
            if principal is None:
                status, raw = 403, json.dumps({"message": "Forbidden"}).encode()
            else:
                event = admin_event(
                    self.command, url.path, body=body, query=dict(parse_qsl(url.query)), principal=principal
                )
                with lock:  # one invocation at a time, as one Lambda environment does
                    result = functions.invoke("admin", event)
                status, raw = result["statusCode"], (result.get("body") or "").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def run(hub: str, tmp_path: Path, capsys, *argv: str, key: str = "sbk_ana") -> tuple[int, str, str]:
    code = main(["--state-dir", str(tmp_path / "state"), "campaigns", *argv, "--url", hub, "--key", key])
    out, err = capsys.readouterr()
    return code, out, err


def campaign_id(out: str) -> str:
    return next(word for word in out.split() if word.startswith("cmp_"))


def test_validate_save_publish_and_show_the_example(hub, tmp_path, capsys):
    code, out, err = run(hub, tmp_path, capsys, "validate", str(EXAMPLE))
    assert code == 0, err
    assert "is valid for tenant acme: 12 steps, a trigger" in out
    code, out, err = run(hub, tmp_path, capsys, "save", str(EXAMPLE), "--name", "negative-mention")
    assert code == 0, err
    assert "version 1, a draft" in out
    cid = campaign_id(out)
    code, out, _ = run(hub, tmp_path, capsys, "publish", cid, "1")
    assert code == 0 and "version 1 is live" in out
    code, out, _ = run(hub, tmp_path, capsys, "show", cid)
    shown = json.loads(out)
    assert shown["live"] is True and shown["flow"]["start"] == "text_customer"
    assert shown["trigger"] == yaml.safe_load(EXAMPLE.read_text())["trigger"]
    code, out, _ = run(hub, tmp_path, capsys, "list")
    assert code == 0 and cid in out and "negative-mention" in out


def test_an_invalid_file_lists_each_problem_by_step(hub, tmp_path, capsys):
    document = yaml.safe_load(EXAMPLE.read_text())
    document["flow"]["steps"]["thank"]["next"] = "nowhere"
    document["flow"]["steps"]["nudge_later"]["duration"] = "P1M"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    for action in ("validate", "save"):
        code, _, err = (
            run(hub, tmp_path, capsys, action, str(bad), "--name", "x")
            if action == "save"
            else run(hub, tmp_path, capsys, action, str(bad))
        )
        assert code == 2
        assert "1 problem" in err and "flow.steps.nudge_later.duration: 'P1M'" in err
    document["flow"]["steps"]["nudge_later"]["duration"] = "P1D"
    bad.write_text(json.dumps(document))
    code, _, err = run(hub, tmp_path, capsys, "validate", str(bad))
    assert code == 2 and "flow.steps.thank.next: names step 'nowhere'" in err
    assert "flow.steps.resolved: is not reachable" in err
    code, out, _ = run(hub, tmp_path, capsys, "list")
    assert "no campaigns" in out  # nothing was saved


def test_files_that_are_not_flows_are_refused_in_one_line(hub, tmp_path, capsys):
    (tmp_path / "broken.yaml").write_text("flow: [unclosed")
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "empty.json").write_text("{}")
    for name, says in (
        ("broken.yaml", "not valid YAML"),
        ("list.json", "must hold an object"),
        ("empty.json", "no flow"),
    ):
        code, _, err = run(hub, tmp_path, capsys, "validate", str(tmp_path / name))
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run(hub, tmp_path, capsys, "validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err


def test_a_second_user_forks_edits_publishes_and_the_original_stays(hub, tmp_path, capsys):
    code, out, _ = run(hub, tmp_path, capsys, "save", str(EXAMPLE), "--name", "negative-mention")
    cid = campaign_id(out)
    run(hub, tmp_path, capsys, "publish", cid, "1")
    code, _, err = run(hub, tmp_path, capsys, "fork", cid, key="sbk_lee")
    assert code == 2 and "404" in err  # not shared with lee yet
    code, out, _ = run(hub, tmp_path, capsys, "share", cid, "--principal", "k7", "--access", "viewer")
    assert code == 0 and "key k7 is now a viewer" in out
    # A viewer cannot save onto the original.
    run(hub, tmp_path, capsys, "show", cid, key="sbk_lee")
    code, _, err = run(
        hub, tmp_path, capsys, "save", str(EXAMPLE), "--campaign", cid, "--expected-version", "1", key="sbk_lee"
    )
    assert code == 2 and "403" in err and "editor" in err
    code, out, err = run(hub, tmp_path, capsys, "fork", cid, "--name", "globex-mentions", key="sbk_lee")
    assert code == 0, err
    fork = campaign_id(out.split(" as campaign ")[1])
    assert f"forked {cid} version 1" in out and "tenant globex" in out
    # Lee edits the fork from its `show` output (it carries the version) and saves it.
    code, out, _ = run(hub, tmp_path, capsys, "show", fork, key="sbk_lee")
    shown = json.loads(out)
    shown["flow"]["steps"]["text_customer"]["channel"] = "whatsapp"
    edited = tmp_path / "fork.json"
    edited.write_text(json.dumps(shown))
    code, out, err = run(hub, tmp_path, capsys, "save", str(edited), key="sbk_lee")
    assert code == 0 and f"campaign {fork}" in out and "version 2" in out, err
    code, _, err = run(hub, tmp_path, capsys, "save", str(edited), key="sbk_lee")  # still says version 1
    assert code == 2 and "version_conflict" in err and "campaigns show" in err
    assert run(hub, tmp_path, capsys, "publish", fork, "2", key="sbk_lee")[0] == 0
    code, out, _ = run(hub, tmp_path, capsys, "diff", fork, "1", "2", key="sbk_lee")
    assert code == 0 and "~ step text_customer" in out and 'channel: "sms" -> "whatsapp"' in out
    code, out, _ = run(hub, tmp_path, capsys, "diff", fork, "1", "1", key="sbk_lee")
    assert "no changes" in out
    original = json.loads(run(hub, tmp_path, capsys, "show", cid)[1])
    assert original["latest_version"] == 1 and original["published_version"] == 1
    assert original["flow"]["steps"]["text_customer"]["channel"] == "sms"


def test_saving_onto_a_campaign_needs_the_version_edited(hub, tmp_path, capsys):
    code, out, _ = run(hub, tmp_path, capsys, "save", str(EXAMPLE), "--name", "n")
    cid = campaign_id(out)
    code, _, err = run(hub, tmp_path, capsys, "save", str(EXAMPLE), "--campaign", cid)
    assert code == 2 and "--expected-version" in err
    code, _, err = run(hub, tmp_path, capsys, "save", str(EXAMPLE))
    assert code == 2 and "needs a name" in err


def test_start_runs_and_stop_a_campaign(hub, aws_world, tmp_path, capsys):
    from datetime import UTC, datetime

    from switchboard_core import aws
    from switchboard_core.campaigns.run_store import RunStore
    from switchboard_core.campaigns.runs import Run, RunContact, RunStatus, RunTrigger, StepRecord
    from tests.unit.admin.conftest import campaign_environment

    env = campaign_environment(aws_world.names)
    code, out, _ = run(hub, tmp_path, capsys, "save", str(EXAMPLE), "--name", "negative-mention")
    cid = campaign_id(out)
    code, _, err = run(hub, tmp_path, capsys, "start", cid, "+14155550100")
    assert code == 2 and "not_published" in err and f"campaigns publish {cid} VERSION" in err
    run(hub, tmp_path, capsys, "publish", cid, "1")
    code, _, err = run(hub, tmp_path, capsys, "start", cid, "+14155550100", "+1 415")
    assert code == 2 and "nothing started" in err
    assert "contacts.1 (+1 415): Value error, '+1 415' is not an E.164 phone number" in err
    code, _, err = run(hub, tmp_path, capsys, "start", cid, "+14155550100", "ct_00000000000000ff")
    assert code == 2 and "contacts.1 (ct_00000000000000ff): tenant 'acme' has no contact" in err
    code, out, err = run(hub, tmp_path, capsys, "start", cid, "+14155550100", "+14155550101", "--request", "crm-7")
    assert code == 0, err
    assert f"campaign {cid} version 1: 2 runs requested (request crm-7)" in out
    sqs = aws.client("sqs")
    sent = sqs.receive_message(QueueUrl=env["CAMPAIGN_QUEUE_URL"], MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["contact"] for m in sent) == ["+14155550100", "+14155550101"]

    code, out, _ = run(hub, tmp_path, capsys, "runs", cid)
    assert code == 0 and "no runs yet" in out
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    RunStore(aws.resource("dynamodb").Table(env["TABLE_CAMPAIGN_RUNS"])).create(
        Run(
            id="run_" + "a" * 32,
            tenant="acme",
            campaign=cid,
            campaign_name="negative-mention",
            version=1,
            contact=RunContact(id="ct_0000000000000001", phone="+14155550100"),
            trigger=RunTrigger(event_id="crm-7"),
            status=RunStatus.WAITING,
            current_step="await_answer",
            sequence=2,
            steps_done=[
                StepRecord(step="text_customer", type="send_message", visit=1, at=at, outcome="sent"),
                StepRecord(step="await_answer", type="wait_for_reply", visit=1, at=at, outcome="waiting"),
            ],
            started_at=at,
            updated_at=at,
        )
    )
    code, out, _ = run(hub, tmp_path, capsys, "runs", cid)
    header, row = out.strip().splitlines()
    assert header.split() == ["RUN", "CONTACT", "VERSION", "STATE", "STEP", "LAST", "STARTED"]
    assert "ct_0000000000000001 (+14155550100)" in row and "await_answer: waiting" in row and " waiting " in row
    code, out, _ = run(hub, tmp_path, capsys, "runs", cid, "--steps")
    assert "text_customer: sent" in out and "await_answer: waiting" in out
    code, out, _ = run(hub, tmp_path, capsys, "runs", cid, "--json")
    assert json.loads(out)[0]["contact"]["id"] == "ct_0000000000000001"

    code, out, err = run(hub, tmp_path, capsys, "stop", cid)
    assert code == 0, err
    assert f"campaign {cid} stopped" in out and "1 run in flight asked to stop" in out
    assert json.loads(run(hub, tmp_path, capsys, "show", cid)[1])["published_version"] is None
    code, _, err = run(hub, tmp_path, capsys, "stop", cid, key="sbk_lee")
    assert code == 2 and "404" in err
