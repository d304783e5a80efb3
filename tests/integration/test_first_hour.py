"""A newcomer's first minutes, as the README tells them: `switchboard dev` (what `make dev`
runs) on a fresh state directory, then, with no other step, `switchboard send twilio sms`
leads to a conversation with a queue, an assignee and an auto-reply, seen through
`switchboard conversations`, `timeline <the contact id it prints>` and `sent`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.cli import main
from tests import log_secrets
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`switchboard dev` in its own process, as a newcomer starts it: nothing seeded by the test."""
    state = tmp_path_factory.mktemp("fresh-clone-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "AWS_"))}
    command = Path(sys.executable).parent / "switchboard"  # what `make dev` runs, after installing
    process = subprocess.Popen(
        [str(command), "--state-dir", str(state), "dev", "--port", "0", "--quiet"],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def serving() -> bool:
        runtime = state / "runtime.json"
        if process.poll() is not None:
            raise AssertionError(f"switchboard dev exited: {process.stdout.read() if process.stdout else ''}")
        if not runtime.exists():
            return False
        try:
            with urllib.request.urlopen(json.loads(runtime.read_text())["base_url"] + "/admin/whoami", timeout=2):
                pass
        except urllib.error.HTTPError:
            return True  # answering (401 without a key)
        except (OSError, ValueError):
            return False
        return True

    try:
        assert wait_for(serving, timeout=90, interval=0.5), "switchboard dev did not start"
        yield state
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as a newcomer stops it
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        keep_for_the_secrets_scan(state, process.stdout.read() if process.stdout else "")


def keep_for_the_secrets_scan(state: Path, output: str) -> None:
    """The process's secrets (its admin key, its demo connections' credentials) registered, and
    its output kept for the scan at the end of the run (tests/log_secrets.py): its welcome shows
    the admin key by design, nothing else may appear."""
    admin_key_file, demo_file = state / "admin-key", state / "demo.json"
    admin_key = admin_key_file.read_text().strip() if admin_key_file.exists() else ""
    log_secrets.register(admin_key, "switchboard dev's admin key (test_first_hour)")
    if demo_file.exists():
        for provider, entry in json.loads(demo_file.read_text())["connections"].items():
            secrets = [entry.get("credentials"), entry.get("outbound")]
            log_secrets.register(secrets, f"switchboard dev's demo {provider} credentials (test_first_hour)")
    log_secrets.record_output(output, "switchboard dev in a subprocess (test_first_hour)", shown=[admin_key])


def switchboard(state: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["--state-dir", str(state), *args])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def rows(table: str) -> list[dict[str, str]]:
    """A CLI table as dicts, by its header's column positions."""
    header, *lines = table.splitlines()
    names = header.split("  ")
    starts = [header.index(name) for name in (n.strip() for n in names if n.strip())]
    keys = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    return [{k: line[s:e].strip() for k, s, e in zip(keys, starts, [*starts[1:], None], strict=True)} for line in lines]


def test_send_twilio_sms_is_routed_assigned_and_answered_with_no_other_step(fresh_hub, capsys):
    state = fresh_hub
    out = switchboard(state, capsys, "send", "twilio", "sms")
    assert "-> 200" in out

    def conversation() -> dict[str, str] | None:
        listed = rows(switchboard(state, capsys, "conversations"))
        return next((c for c in listed if c["ASSIGNEE"] != "-"), None)

    found = wait_for(conversation, timeout=30)
    assert found, "no conversation was assigned"
    assert (found["QUEUE"], found["ASSIGNEE"], found["TOPICS"]) == ("orders", "omar", "orders")
    contact = found["CONTACT ID"]
    assert contact.startswith("ct_")

    def replied() -> list[dict[str, str]]:
        text = switchboard(state, capsys, "sent")
        return [] if text.startswith("no replies") else rows(text)

    (reply,) = wait_for(replied, timeout=30)
    assert reply["PROVIDER"] == "twilio"
    assert reply["TEXT"] == "Thanks for your message! Our orders team has it and will reply within 4 hours."

    timeline = wait_for(
        lambda: [e for e in rows(switchboard(state, capsys, "timeline", contact)) if e["TYPE"] == "reply.sent"],
        timeout=30,
    )
    assert timeline, "the auto-reply is not on the contact's timeline"
    entries = rows(switchboard(state, capsys, "timeline", contact))
    assert [e["TYPE"] for e in entries][-1] == "message.received"
    assert {e["CONVERSATION"] for e in entries} == {found["CONVERSATION"]}

    events = rows(switchboard(state, capsys, "events"))
    assert {e["CONTACT ID"] for e in events if e["PROVIDER"] in ("twilio", "routing", "replies")} == {contact}
