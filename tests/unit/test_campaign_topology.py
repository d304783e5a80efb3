"""The campaigns part of infra/topology.py: the names other code is written against, and the
campaign consumer's `$or` pattern, matched by the same matcher the local bus uses."""

from __future__ import annotations

import json
import uuid

import pytest

from infra import topology
from infra.local.emulator import test_event_pattern as matches

CAMPAIGNS = topology.FUNCTIONS["campaigns"]


def test_the_names_of_the_contract() -> None:
    assert topology.CAMPAIGNS_SOURCE == "switchboard.campaigns"
    assert topology.CAMPAIGN_QUEUE == "campaigns"
    assert topology.CAMPAIGN_RULE_INFIX == "cmp-"
    assert topology.campaign_schedule_group("dev") == "switchboard-dev-campaigns"
    table = topology.TABLES["campaign_runs"]
    assert (table.partition_key, table.sort_key, table.ttl_attribute) == ("pk", "sk", "expires_at")
    assert {(i.name, i.partition_key, i.sort_key) for i in table.indexes} == {
        ("by_campaign", "campaign", "started_at"),
        ("by_contact", "contact_key", "started_at"),
    }


def test_the_campaigns_function() -> None:
    assert CAMPAIGNS.handler == "functions.campaigns.handler.handler"
    assert CAMPAIGNS.directory == "functions/campaigns"
    assert CAMPAIGNS.timeout_seconds == 30
    assert CAMPAIGNS.tables == {
        "campaign_runs": "readwrite",
        "campaigns": "read",
        "contacts": "readwrite",
        "conversations": "read",
        "routing": "read",
        "connections": "read",
    }
    assert CAMPAIGNS.deps_layer and CAMPAIGNS.publishes and CAMPAIGNS.public_url
    assert CAMPAIGNS.outbound_secrets == "read" and CAMPAIGNS.notification_secrets == "read"
    assert not CAMPAIGNS.sends_notifications and CAMPAIGNS.secrets is None and CAMPAIGNS.subscription_secrets is None
    consumer = CAMPAIGNS.consumer
    assert consumer is not None
    assert (consumer.queue, consumer.batch_size, consumer.max_receive_count, consumer.visibility_timeout_seconds) == (
        "campaigns",
        1,
        8,
        120,
    )


def test_the_campaign_flags_are_on_admin_and_campaigns_only() -> None:
    def having(flag: str) -> set[str]:
        return {name for name, spec in topology.FUNCTIONS.items() if getattr(spec, flag)}

    assert having("uses_campaign_queue") == {"admin", "campaigns"}
    assert having("schedules_campaign_timers") == {"campaigns"}
    assert having("manages_campaign_rules") == {"admin"}
    assert having("notification_secrets") == {"campaigns"}
    assert topology.FUNCTIONS["admin"].tables["campaign_runs"] == "read"


def test_names_fit_the_services_limits() -> None:
    """Stages are at most 20 characters (StageConfig); EventBridge rule names and Scheduler group
    names at most 64; campaign ids are cmp_ + 16 hex digits (functions/admin/campaigns.py)."""
    stage = "s" * 20
    assert len(f"switchboard-{stage}-{topology.CAMPAIGN_RULE_INFIX}cmp_{'0' * 16}") <= 64
    assert len(topology.campaign_schedule_group(stage)) <= 64


def _environment(name: str) -> dict[str, str]:
    from infra.local.emulator import LocalNames

    return topology.function_environment(topology.FUNCTIONS[name], LocalNames("t").mapping(), "t")


def test_function_environment_fills_the_campaign_variables() -> None:
    campaigns, admin = _environment("campaigns"), _environment("admin")
    assert campaigns["CAMPAIGN_SCHEDULE_GROUP"] == "switchboard-t-campaigns"
    assert campaigns["CAMPAIGN_QUEUE_ARN"].endswith(":switchboard-t-campaigns")
    assert campaigns["CAMPAIGN_SCHEDULER_ROLE_ARN"].endswith(":role/switchboard-t-campaign-scheduler")
    assert campaigns["NOTIFICATION_SECRETS_PREFIX"] == topology.notification_secrets_prefix("t")
    assert admin["CAMPAIGN_RULE_PREFIX"] == "switchboard-t-cmp-"
    assert admin["CAMPAIGN_DLQ_ARN"].endswith(":switchboard-t-campaigns-dlq")
    assert admin["CAMPAIGN_QUEUE_URL"].endswith("/switchboard-t-campaigns")
    assert admin["EVENT_BUS_NAME"] == "switchboard-t"


def test_function_environment_needs_the_campaign_names() -> None:
    """A backend that forgets a campaign name fails at synth / start, not in a handler."""
    from infra.local.emulator import LocalNames

    names = LocalNames("t").mapping()
    for missing in ("campaign_schedule_group", "campaign_scheduler_role_arn", f"queue_arn:{topology.CAMPAIGN_QUEUE}"):
        with pytest.raises(KeyError, match=missing):
            topology.function_environment(CAMPAIGNS, {k: v for k, v in names.items() if k != missing}, "t")
    for missing in ("campaign_rule_prefix", f"dlq_arn:{topology.CAMPAIGN_QUEUE}"):
        with pytest.raises(KeyError, match=missing):
            topology.function_environment(
                topology.FUNCTIONS["admin"], {k: v for k, v in names.items() if k != missing}, "t"
            )


def _event(source: str, detail_type: str) -> str:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "account": "123456789012",
            "region": "us-east-1",
            "time": "2030-03-01T09:00:00Z",
            "resources": [],
            "source": source,
            "detail-type": detail_type,
            "detail": {"tenant": "demo"},
        }
    )


PATTERN = json.dumps(CAMPAIGNS.consumer.event_pattern if CAMPAIGNS.consumer else None)


@pytest.mark.parametrize(
    ("source", "detail_type", "expected"),
    [
        # replies and opt-outs come through routing's conversation events
        ("switchboard.routing", "conversation.opened", True),
        ("switchboard.routing", "conversation.updated", True),
        ("switchboard.routing", "routing.assigned", False),
        ("switchboard.routing", "message.status_updated", False),
        # the providers' reports on what a run sent or called
        ("switchboard.twilio", "message.status_updated", True),
        ("switchboard.vonage", "call.completed", True),
        ("switchboard.twilio", "call.in_progress", True),
        ("switchboard.telnyx", "call.no_answer", True),
        ("switchboard.twilio", "call.busy", True),
        ("switchboard.twilio", "call.failed", True),
        ("switchboard.twilio", "call.canceled", True),
        ("switchboard.twilio", "call.ringing", False),
        ("switchboard.twilio", "message.received", False),  # reaches a run through routing's conversation event
        # never the hub's own status events
        ("switchboard.answers", "message.status_updated", False),
        ("switchboard.campaigns", "message.status_updated", False),
        ("switchboard.campaigns", "campaign.message_sent", False),
        ("switchboard.calls", "call.patched", False),
    ],
)
def test_the_consumer_pattern(source: str, detail_type: str, expected: bool) -> None:
    assert matches(PATTERN, _event(source, detail_type)) is expected
