"""`switchboard subscriptions|deliveries|listen` against a fake hub on loopback: what each
command sends (with the key it was given), what it prints, refusals in one line (a refused
pattern with each problem on its own line), and `listen`'s receiver verifying deliveries with
the public standardwebhooks library: a good signature is printed and answered 200, a bad
one refused with 401, and the subscription deleted on Ctrl-C."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from infra.local import cli
from infra.local.cli import main

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SUB = {
    "id": "sub_0123456789abcdef",
    "tenant": "demo",
    "owner": "k4",
    "url": "http://127.0.0.1:9/hook",
    "event_pattern": {"detail-type": ["message.received"]},
    "description": "crm sync",
    "ordered": False,
    "status": "active",
    "created_at": "2026-12-01T10:00:00+00:00",
    "updated_at": "2026-12-01T10:00:00+00:00",
    "secret_version": 1,
}


class FakeHub:
    """Answers (status, body) per "METHOD /path" (query ignored unless given); records each request."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.received: list[dict[str, Any]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                hub.received.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": body,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                key = f"{self.command} {self.path}"
                status, payload = (
                    hub.answers.get(key) or hub.answers.get(key.split("?")[0]) or (404, {"message": "Not Found"})
                )
                raw = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = do_PATCH = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["method"] == method]


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Iterator[FakeHub]:
    monkeypatch.delenv("SWITCHBOARD_ADMIN_KEY", raising=False)
    (tmp_path / "admin-key").write_text("sbk_12345678_local\n")
    fake = FakeHub()
    monkeypatch.setenv("SWITCHBOARD_URL", fake.url)
    yield fake
    fake.server.shutdown()


def run(tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--state-dir", str(tmp_path), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.shows_secret_once
def test_create_sends_the_pattern_from_json_or_a_file_and_prints_the_secret_once(hub, tmp_path, capsys):
    hub.answers["POST /admin/subscriptions"] = (201, SUB | {"secret": SECRET})
    code, out, _ = run(
        tmp_path,
        capsys,
        "subscriptions",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--pattern",
        '{"detail-type": ["message.received"]}',
        "--description",
        "crm sync",
        "--ordered",
        "--key",
        "sbk_partner1_secret",
    )
    assert code == 0 and SECRET in out and SUB["id"] in out
    (sent,) = hub.sent("POST")
    assert sent["body"] == {
        "url": "http://127.0.0.1:9/hook",
        "event_pattern": {"detail-type": ["message.received"]},
        "description": "crm sync",
        "ordered": True,
    }
    assert sent["authorization"] == "Bearer sbk_partner1_secret"  # --key, not the local admin key
    pattern = tmp_path / "pattern.json"
    pattern.write_text('{"source": ["switchboard.twilio"]}')
    code, _, _ = run(
        tmp_path, capsys, "subscriptions", "create", "--url", "http://127.0.0.1:9/x", "--pattern", str(pattern)
    )
    assert code == 0 and hub.sent("POST")[-1]["body"]["event_pattern"] == {"source": ["switchboard.twilio"]}
    assert hub.sent("POST")[-1]["authorization"] == "Bearer sbk_12345678_local"


def test_a_refused_pattern_lists_each_problem(hub, tmp_path, capsys):
    hub.answers["POST /admin/subscriptions"] = (
        400,
        {
            "error": {
                "code": "invalid_event_pattern",
                "message": "event_pattern is not a valid EventBridge pattern: event_pattern.detail-type: ...",
                "details": {
                    "problems": [
                        {"field": "event_pattern.detail-type", "problem": "must be an array"},
                        {"field": "event_pattern.detail.tenant", "problem": "is set by the hub"},
                    ]
                },
            }
        },
    )
    code, _, err = run(
        tmp_path, capsys, "subscriptions", "create", "--url", "http://127.0.0.1:9/x", "--pattern", '{"x": 1}'
    )
    assert code == 2 and "invalid_event_pattern" in err
    assert "  event_pattern.detail-type: must be an array" in err
    assert "  event_pattern.detail.tenant: is set by the hub" in err


def test_bad_pattern_arguments_are_one_line(hub, tmp_path, capsys):
    for pattern, expected in (("{not json", "--pattern is not valid JSON"), ("missing.json", "cannot read")):
        code, _, err = run(
            tmp_path, capsys, "subscriptions", "create", "--url", "http://127.0.0.1:9/x", "--pattern", pattern
        )
        assert code == 2 and err.startswith("switchboard: ") and expected in err and err.count("\n") == 1, err
    assert hub.received == []


def test_list_follows_every_page(hub, tmp_path, capsys):
    second = SUB | {"id": "sub_fedcba9876543210", "status": "paused", "description": ""}
    hub.answers["GET /admin/subscriptions?limit=100"] = (200, {"subscriptions": [SUB], "next_cursor": "c1"})
    hub.answers["GET /admin/subscriptions?limit=100&cursor=c1"] = (
        200,
        {"subscriptions": [second], "next_cursor": None},
    )
    code, out, _ = run(tmp_path, capsys, "subscriptions", "list")
    header, *rows = out.splitlines()
    assert code == 0 and header.split()[:3] == ["ID", "STATUS", "URL"]
    assert [row.split()[:2] for row in rows] == [[SUB["id"], "active"], [second["id"], "paused"]]


def test_an_empty_list_says_how_to_start(hub, tmp_path, capsys):
    hub.answers["GET /admin/subscriptions"] = (200, {"subscriptions": [], "next_cursor": None})
    hub.answers["GET /admin/whoami"] = (200, {"tenant": "demo", "key_id": "k", "name": "n", "role": "partner"})
    code, out, _ = run(tmp_path, capsys, "subscriptions", "list")
    assert code == 0 and "no subscriptions for tenant demo" in out and "switchboard listen" in out


def test_show_pause_resume_rotate_delete(hub, tmp_path, capsys):
    path = f"/admin/subscriptions/{SUB['id']}"
    hub.answers[f"GET {path}"] = (200, SUB)
    hub.answers[f"POST {path}/pause"] = (200, SUB | {"status": "paused"})
    hub.answers[f"POST {path}/resume"] = (200, SUB | {"resent": 3, "missing_events": ["ev-old"]})
    hub.answers[f"POST {path}/rotate"] = (
        200,
        SUB | {"secret": "whsec_bmV3", "secret_version": 2, "previous_secret_valid_until": "2026-12-02T10:00:00+00:00"},
    )
    hub.answers[f"DELETE {path}"] = (204, None)
    code, out, _ = run(tmp_path, capsys, "subscriptions", "show", SUB["id"])
    assert code == 0 and json.loads(out) == SUB
    code, out, _ = run(tmp_path, capsys, "subscriptions", "pause", SUB["id"])
    assert code == 0 and "paused" in out and "held" in out
    code, out, _ = run(tmp_path, capsys, "subscriptions", "resume", SUB["id"])
    assert code == 0 and "3 held event(s) sent again" in out and "1 held event(s) are no longer" in out
    code, out, _ = run(tmp_path, capsys, "subscriptions", "rotate", SUB["id"])
    assert code == 0 and "whsec_bmV3" in out and "2026-12-02T10:00:00" in out
    code, out, _ = run(tmp_path, capsys, "subscriptions", "delete", SUB["id"])
    assert code == 0 and f"deleted {SUB['id']}" in out
    assert [(r["method"], r["path"]) for r in hub.received] == [
        ("GET", path),
        ("POST", f"{path}/pause"),
        ("POST", f"{path}/resume"),
        ("POST", f"{path}/rotate"),
        ("DELETE", path),
    ]


def test_another_partners_subscription_is_one_line(hub, tmp_path, capsys):
    hub.answers[f"POST /admin/subscriptions/{SUB['id']}/pause"] = (
        404,
        {"error": {"code": "unknown_subscription", "message": f"unknown subscription {SUB['id']!r}"}},
    )
    code, _, err = run(tmp_path, capsys, "subscriptions", "pause", SUB["id"], "--key", "sbk_partner2_x")
    assert code == 2 and err.count("\n") == 1 and "unknown_subscription" in err


def test_deliveries_prints_each_attempt(hub, tmp_path, capsys):
    attempt = {
        "event_id": "ev-1",
        "attempt": 2,
        "at": "2026-12-01T10:00:05+00:00",
        "status_code": None,
        "error": "timeout after 15 s",
        "latency_ms": 15001,
        "response_excerpt": "",
        "outcome": "retry",
        "next_attempt_at": "2026-12-01T10:05:05+00:00",
        "trigger": "bus",
    }
    first = attempt | {"attempt": 1, "status_code": 503, "error": None, "response_excerpt": "busy", "latency_ms": 40}
    hub.answers[f"GET /admin/subscriptions/{SUB['id']}/deliveries?event_id=ev-1&limit=20"] = (
        200,
        {"attempts": [attempt, first], "next_cursor": None},
    )
    code, out, _ = run(tmp_path, capsys, "deliveries", SUB["id"], "--event", "ev-1")
    header, *rows = out.splitlines()
    assert code == 0 and header.split()[:4] == ["AT", "EVENT", "#", "OUTCOME"]
    assert "timeout after 15 s" in rows[0] and "15001 ms" in rows[0] and "2026-12-01T10:05:05" in rows[0]
    assert "503" in rows[1] and "busy" in rows[1]
    hub.answers[f"GET /admin/subscriptions/{SUB['id']}/deliveries"] = (200, {"attempts": [], "next_cursor": None})
    code, out, _ = run(tmp_path, capsys, "deliveries", SUB["id"])
    assert code == 0 and "no delivery attempts yet" in out


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def signed(secret: str, body: bytes, msg_id: str) -> dict[str, str]:
    stamp = int(time.time())
    from datetime import UTC, datetime

    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }


def test_listen_subscribes_a_receiver_verifies_prints_and_unsubscribes(hub, tmp_path, capsys, monkeypatch):
    hub.answers["POST /admin/subscriptions"] = (201, SUB | {"secret": SECRET})
    hub.answers[f"DELETE /admin/subscriptions/{SUB['id']}"] = (204, None)
    pattern = tmp_path / "pattern.json"
    pattern.write_text('{"detail-type": ["message.received"]}')
    delivery = {
        "type": "message.received",
        "timestamp": "2026-12-01T10:00:00+00:00",
        "data": {"id": "ev-42", "provider": "twilio", "contact": {"phone": "+14155550100"}, "text": "Hello there"},
    }
    answers: dict[str, int] = {}

    def deliveries_then_ctrl_c() -> None:
        (created,) = hub.sent("POST")
        url = created["body"]["url"]
        assert url.startswith("http://127.0.0.1:") and created["body"]["event_pattern"] == {
            "detail-type": ["message.received"]
        }
        body = json.dumps(delivery).encode()
        answers["good"] = post(url, body, signed(SECRET, body, "ev-42"))
        answers["bad"] = post(url, body, signed("whsec_" + "A" * 44, body, "ev-42"))
        answers["tampered"] = post(url, body.replace(b"Hello", b"Howdy"), signed(SECRET, body, "ev-42"))
        answers["unsigned"] = post(url, body, {"content-type": "application/json"})
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "wait_for_interrupt", deliveries_then_ctrl_c)
    code, out, _ = run(tmp_path, capsys, "listen", "--pattern", str(pattern), "--key", "sbk_partner1_secret")
    assert code == 0, out
    assert answers == {"good": 200, "bad": 401, "tampered": 401, "unsigned": 401}
    printed = [line for line in out.splitlines() if "message.received" in line]
    assert len(printed) == 1 and "ev-42" in printed[0] and "+14155550100" in printed[0] and "Hello there" in printed[0]
    assert out.count("refused a delivery (401)") == 3
    (deleted,) = hub.sent("DELETE")
    assert (
        deleted["path"] == f"/admin/subscriptions/{SUB['id']}"
        and deleted["authorization"] == "Bearer sbk_partner1_secret"
    )
    assert "unsubscribed" in out


def test_listen_without_a_pattern_subscribes_to_every_event_and_a_refusal_stops_the_receiver(
    hub, tmp_path, capsys, monkeypatch
):
    hub.answers["POST /admin/subscriptions"] = (
        403,
        {"error": {"code": "forbidden", "message": "this staff key may not subscribe to tenant 'demo'"}},
    )
    monkeypatch.setattr(cli, "wait_for_interrupt", lambda: pytest.fail("must not wait after a refusal"))
    code, _, err = run(tmp_path, capsys, "listen")
    assert code == 2 and "forbidden" in err and err.count("\n") == 1
    (created,) = hub.sent("POST")
    assert created["body"]["event_pattern"] == {"source": [{"prefix": "switchboard."}]}
    with pytest.raises(urllib.error.URLError):  # the receiver is gone
        urllib.request.urlopen(created["body"]["url"], data=b"{}", timeout=2)


def test_listen_on_a_port_in_use_is_one_line(hub, tmp_path, capsys):
    code, _, err = run(tmp_path, capsys, "listen", "--port", str(hub.server.server_port))
    assert code == 2 and "cannot listen on 127.0.0.1" in err and "--port" in err
