"""A campaign runner wired to moto's tables and scheduler, with a recording fake for the
channels (their executors are tested on their own), for the runner's and handler's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from switchboard_core import aws
from switchboard_core.campaigns.flow import Flow
from switchboard_core.campaigns.guards import FrequencyCap
from switchboard_core.campaigns.models import Author, Campaign, CampaignVersion
from switchboard_core.campaigns.run_store import RunStore
from switchboard_core.campaigns.runner import CampaignScheduler, Runner, RunnerDeps
from switchboard_core.campaigns.runs import ConnectCallAction, PlaceCallAction, SendMessageAction
from switchboard_core.campaigns.store import CampaignStore
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import SendFailure
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contacts import ContactStore, Identity
from switchboard_core.routing.conversations import ConversationStore
from tests.unit.campaigns.runs_table import create_runs_table

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 14:00 UTC: outside the default quiet hours
ANA = Author(key_id="k1", name="ana")
GROUP = "switchboard-test-campaigns"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:test-campaigns"
ROLE_ARN = "arn:aws:iam::123456789012:role/test-campaign-scheduler"
PHONE = "+15550001111"

NEGATIVE_MENTION = {
    "start": "text",
    "steps": {
        "text": {"type": "send_message", "channel": "sms", "text": "Hi ${name}, all sorted?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT4H", "next": "read", "on_timeout": "done"},
        "read": {"type": "branch", "cases": [{"when": {"reply_words": ["no"]}, "next": "call"}], "default": "done"},
        "call": {"type": "connect_call", "responder": {"assignee": True}, "next": "tell"},
        "tell": {"type": "notify", "to": {"assignee": True}, "text": "Calling ${name} now", "next": "won"},
        "won": {"type": "end", "converted": True},
        "done": {"type": "end"},
    },
}


@dataclass
class Accepted:
    provider: str
    provider_message_id: str
    connection: str


@dataclass
class FakeChannels:
    """Records what would have gone out; `fail_next` makes the next call raise it."""

    sent: list[Any] = field(default_factory=list)
    fail_next: list[BaseException] = field(default_factory=list)
    fail_before_request: list[BaseException] = field(default_factory=list)
    outcomes: dict[str, tuple[str, str, str, str | None]] = field(default_factory=dict)

    def _go(self, action: Any, provider_id: str, hand_off: Any) -> Accepted:
        if self.fail_before_request:  # a lookup before the provider's request failed
            raise self.fail_before_request.pop(0)
        hand_off()  # the provider's request goes now
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append(action)
        return Accepted("twilio", f"{provider_id}{len(self.sent)}", "con_twilio")

    def send_message(self, action: SendMessageAction, tenant: str, hand_off: Any) -> Accepted:
        return self._go(action, "SM", hand_off)

    def place_call(self, action: PlaceCallAction, tenant: str, hand_off: Any) -> Accepted:
        return self._go(action, "CA", hand_off)

    def connect_call(self, action: ConnectCallAction, responder_phone: str, tenant: str, hand_off: Any) -> Accepted:
        return self._go((action, responder_phone), "CA", hand_off)

    def call_outcome(self, event: CanonicalEvent) -> tuple[str, str, str, str | None] | None:
        return self.outcomes.get(event.id)


@dataclass
class Posted:
    calls: list[tuple[Any, bytes, dict[str, str]]] = field(default_factory=list)
    status: int | None = 200

    def __call__(self, endpoint: Any, body: bytes, headers: dict[str, str], timeout: float) -> Any:
        from switchboard_core.subscriptions.sender import SendResult

        self.calls.append((endpoint, body, headers))
        return SendResult(status_code=self.status, latency_ms=1, error=None if self.status else "refused")


class World:
    def __init__(self, aws_world: Any) -> None:
        names = aws_world.names.mapping()
        dynamodb = aws.resource("dynamodb")
        self.runs_table = create_runs_table()
        self.runs = RunStore(self.runs_table)
        self.campaigns = CampaignStore(dynamodb.Table(names["table:campaigns"]))
        self.contacts = ContactStore(dynamodb.Table(names["table:contacts"]))
        self.conversations = ConversationStore(dynamodb.Table(names["table:conversations"]))
        self.config = RoutingConfigStore(dynamodb.Table(names["table:routing"]))
        self.channels = FakeChannels()
        self.published: list[CanonicalEvent] = []
        self.posted = Posted()
        self.scheduler_client = aws.client("scheduler")
        self.scheduler_client.create_schedule_group(Name=GROUP)
        self.deps = RunnerDeps(
            runs=self.runs,
            campaigns=self.campaigns,
            contacts=self.contacts,
            conversations=self.conversations,
            config=self.config,
            executor=self.channels,
            scheduler=CampaignScheduler(self.scheduler_client, GROUP, QUEUE_ARN, ROLE_ARN),
            publish=self.published.extend,
            webhook_keys=lambda tenant: [b"k" * 32],
            post=self.posted,
            local_endpoints=True,
            cap=FrequencyCap(max_sends=3, window=timedelta(days=1)),
        )

    def runner(self, now: datetime = NOW, last_attempt: bool = False) -> Runner:
        return Runner(self.deps, now, last_attempt=last_attempt)

    def campaign(
        self, flow: dict[str, Any] = NEGATIVE_MENTION, campaign_id: str = "cmp_1", publish: bool = True
    ) -> str:
        campaign = Campaign(
            id=campaign_id, tenant="acme", name="negative", owner=ANA, created_at=NOW, updated_at=NOW, latest_version=1
        )
        version = CampaignVersion(
            campaign=campaign_id, version=1, flow=Flow.model_validate(flow), saved_at=NOW, saved_by=ANA
        )
        self.campaigns.create(campaign, version)
        if publish:
            self.campaigns.publish(campaign_id, 1, ANA, NOW)
        return campaign_id

    def contact(self, phone: str = PHONE, **attributes: str) -> str:
        record = self.contacts.resolve("acme", [Identity(kind="phone", value=phone)], reason="test", now=NOW)
        assert record is not None
        if attributes:
            self.contacts.update_attributes(record.id, attributes, NOW)
        return record.id

    def schedules(self) -> list[dict[str, Any]]:
        names = [s["Name"] for s in self.scheduler_client.list_schedules(GroupName=GROUP)["Schedules"]]
        return [self.scheduler_client.get_schedule(Name=name, GroupName=GROUP) for name in names]

    def types(self) -> list[str]:
        return [event.type for event in self.published]


def failure(kind: type[SendFailure], code: str = "http_503") -> SendFailure:
    return kind(code, "the provider said so")
