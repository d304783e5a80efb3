"""What the console's Events and Connections pages read, through the local hub: one event in
full (GET /admin/events/{id}) and a connection's daily counts (GET /admin/connections/{id}/stats)
after a signed webhook and a forged one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import wait_for
from tests.integration.test_webhooks import post_twilio, twilio_sms_params

pytestmark = pytest.mark.integration


def today_counts(hub) -> dict[str, Any]:
    connection = hub.connection("twilio")["id"]
    status, body = hub.admin("GET", f"/admin/connections/{connection}/stats?days=2")
    assert status == 200, body
    assert body["connection"] == connection and len(body["days"]) == 2
    today = body["days"][-1]
    assert today["date"] == datetime.now(UTC).date().isoformat()
    return today | {"last_received_at": body["last_received_at"]}


def test_a_webhook_shows_its_raw_request_and_consumers_and_the_stats_count_it(hub):
    before = today_counts(hub)
    params = twilio_sms_params("The lift on level 3 is stuck")
    status, _, _ = post_twilio(hub, params)
    assert status == 200
    forged_status, _, forged = post_twilio(hub, twilio_sms_params(), token="f" * 32)
    assert forged_status == 401 and forged["error"]["code"] == "invalid_signature"

    event = wait_for(
        lambda: next(
            (e for e in hub.logged_events(provider="twilio") if e["provider_event_id"] == params["MessageSid"]), None
        )
    )
    assert event, "the event never reached the event log"

    def routed() -> dict[str, Any] | None:
        status, body = hub.admin("GET", f"/admin/events/{event['id']}")
        assert status == 200, body
        return body if "routing" in {entry["consumer"] for entry in body["consumed_by"]} else None

    detail = wait_for(routed, timeout=30)
    assert detail, "routing never recorded the event"
    assert detail["event"] == event
    raw = detail["raw"]
    assert detail["raw_unavailable"] is None and raw["method"] == "POST" and raw["url"] == hub.webhook_url("twilio")
    assert raw["body"] and "level+3" in raw["body"]
    assert hub.connection("twilio")["credentials"]["auth_token"] not in json.dumps(detail)
    routing = next(entry for entry in detail["consumed_by"] if entry["consumer"] == "routing")
    assert routing["status"] in ("routed", "in_progress") and routing["ref"]["conversation_id"]
    status, conversation = hub.admin("GET", f"/admin/conversations/{routing['ref']['conversation_id']}")
    assert status == 200, conversation

    # Accepted is counted by the event-log consumer (after its batch); the refusal by ingest at once.
    after = wait_for(lambda: (c := today_counts(hub))["accepted"] > before["accepted"] and c)
    assert after, "the accepted event was never counted"
    assert after["accepted"] >= before["accepted"] + 1
    assert after["rejected"].get("invalid_signature", 0) == before["rejected"].get("invalid_signature", 0) + 1
    assert datetime.fromisoformat(after["last_received_at"]) >= datetime.fromisoformat(event["received_at"])

    status, body = hub.admin("GET", f"/admin/connections/{hub.connection('twilio')['id']}/stats?days=91")
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "days"
    status, body = hub.admin("GET", "/admin/events/00000000-0000-0000-0000-000000000000")
    assert status == 404 and body["error"]["code"] == "unknown_event"
