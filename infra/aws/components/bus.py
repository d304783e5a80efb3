"""The custom EventBridge bus that carries canonical events, with an archive for replay."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from infra import topology
from infra.aws.config import StageConfig


class Bus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        # The bus's name, known at synth (IAM resource patterns such as the subscriptions' rule
        # ARNs are built from it); `name` is the same value as a reference.
        self.physical_name = config.prefix
        self.bus = events.EventBus(self, "EventBus", event_bus_name=self.physical_name)
        # Every canonical event (source switchboard.*) is archived, so a consumer that was
        # down or buggy can be fed again with `aws events start-replay`.
        self.archive = self.bus.archive(
            "Archive",
            description=f"Canonical Switchboard events ({config.stage}) for replay",
            event_pattern=events.EventPattern(source=events.Match.prefix(topology.EVENT_SOURCE_PREFIX)),
            retention=Duration.days(config.archive_days),
        )

    @property
    def name(self) -> str:
        return self.bus.event_bus_name
