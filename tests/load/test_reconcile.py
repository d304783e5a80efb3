"""The load test's short form: two webhooks per provider in the mix, a SIGKILL of a real
`switchboard dev` in the middle, and the reconciliation must balance (nothing acknowledged lost,
nothing stored twice, every rejection with its status). The long form: `make soak`
(`python -m tests.load.reconcile --webhooks 20000 --kill-at 10000`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.load.reconcile import Hub, Load, free_port, reconcile

pytestmark = pytest.mark.integration
# Two per provider: the local runtime serves a few webhooks/s on 2 shared cores, and the hub
# starts twice (about 15 s each); SWITCHBOARD_LOAD_WEBHOOKS sends more.
SHORT_FORM_WEBHOOKS = int(os.environ.get("SWITCHBOARD_LOAD_WEBHOOKS", "42"))


def test_a_killed_hub_keeps_everything_it_acknowledged(capsys: pytest.CaptureFixture[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="switchboard-load-"))
    hub = Hub(work / "state", free_port())
    hub.start(fresh=True)
    try:
        load = Load(hub, SHORT_FORM_WEBHOOKS, concurrency=8, kill_at=SHORT_FORM_WEBHOOKS // 2, seed=13)
        load.create_connections()
        load.run()
        result = reconcile(load, settle_seconds=120)
        # The key made with the CLI and the connections made through the API, after the kill.
        listed = hub.admin("GET", "/admin/connections")
        kept = {c["id"] for c in listed["connections"]} if isinstance(listed, dict) else set()
    finally:
        hub.stop()
    with capsys.disabled():
        print("\n" + result.table())
    assert load.restart_seconds > 0, "the hub was not killed and restarted"
    assert not result.problems, "\n".join(result.problems)
    assert {c["id"] for c in load.connections.values()} <= kept
