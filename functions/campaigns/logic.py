"""The campaign function's logic: read one queue message and hand it to the runner.

A body with a `detail-type` is a bus event in EventBridge's envelope (routing's conversation
events, providers' delivery and call reports); anything else is one of the campaign
function's own messages (`CAMPAIGN_WORK`: a trigger, a start or stop request, a timer).
The channel executors are switchboard_core.campaigns.channels bound to their dependencies.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from switchboard_core.campaigns.runner import Handled, MalformedWork, RetryLater, Runner
from switchboard_core.campaigns.runs import ConnectCallAction, PlaceCallAction, SendMessageAction
from switchboard_core.campaigns.work import (
    CAMPAIGN_WORK,
    StartRequest,
    StopRequest,
    TimerMessage,
    TriggerMessage,
)
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import TransientFailure

# Backoff of a message the runner could not apply yet (another change came first, a claim
# held, a contact routing has not created): seconds, doubling per receive, at most 5 minutes.
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300


class ChannelExecutor:
    """The channels (send_message, place_call, connect_call, call_outcome) with their deps.
    The module is imported at first use: it brings the senders (Vonage's JWT among them),
    which a message that sends nothing does not need."""

    def __init__(self, deps: Any) -> None:
        self._deps = deps
        self._module: Any = None

    @property
    def _channels(self) -> Any:
        if self._module is None:
            self._module = importlib.import_module("switchboard_core.campaigns.channels")
        return self._module

    def send_message(self, action: SendMessageAction, tenant: str, hand_off: Callable[[], None]) -> Any:
        return self._channels.send_message(action, tenant, self._marking(hand_off))

    def place_call(self, action: PlaceCallAction, tenant: str, hand_off: Callable[[], None]) -> Any:
        return self._channels.place_call(action, tenant, self._marking(hand_off))

    def connect_call(
        self, action: ConnectCallAction, responder_phone: str, tenant: str, hand_off: Callable[[], None]
    ) -> Any:
        return self._channels.connect_call(action, responder_phone, tenant, self._marking(hand_off))

    def _marking(self, hand_off: Callable[[], None]) -> Any:
        """The deps with a transport that marks the hand-off just before the provider's request:
        the lookups before it (connection, credentials) leave the claim unmarked."""
        transport = self._deps.transport

        def marked(request: Any) -> Any:
            hand_off()
            return transport(request)

        return dataclasses.replace(self._deps, transport=marked)

    def call_outcome(self, event: CanonicalEvent) -> tuple[str, str, str, str | None] | None:
        found = self._channels.call_outcome(event)
        return None if found is None else (found[0], found[1], found[2], found[3])


def parse(body: str) -> CanonicalEvent | TriggerMessage | StartRequest | StopRequest | TimerMessage:
    """The message's body as what it is; MalformedWork (kept in the dead-letter queue) if none."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedWork(f"the message is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedWork("the message is not a JSON object")
    try:
        if "detail-type" in document:
            # Powertools' EventBridge model serves bus events only, not the function's own work.
            from switchboard_core.envelopes import CanonicalEventBridgeEvent

            return CanonicalEventBridgeEvent.model_validate(document).detail
        return CAMPAIGN_WORK.validate_python(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise MalformedWork(f"the message is not campaign work nor a bus event: {problems}") from None


def handle(body: str, runner: Runner) -> Handled:
    work = parse(body)
    if isinstance(work, CanonicalEvent):
        return runner.bus_event(work)
    if isinstance(work, TriggerMessage):
        return runner.trigger(work)
    if isinstance(work, StartRequest):
        return runner.start(work)
    if isinstance(work, StopRequest):
        return runner.stop(work)
    return runner.timer(work)


def retry_delay(error: Exception, receive_count: int) -> int:
    """Seconds before the queue delivers a message again: a provider's Retry-After when it gave
    one, else a growing backoff (at most what the runner asked for: a held claim's holder is
    done, or its lease over, soon)."""
    if isinstance(error, TransientFailure) and error.retry_after is not None:
        return max(1, min(int(error.retry_after + 0.999), 12 * 3600))
    backoff = min(FIRST_RETRY_SECONDS * 2 ** max(receive_count - 1, 0), MAX_RETRY_SECONDS)
    if isinstance(error, RetryLater) and error.retry_within is not None:
        return max(1, min(backoff, int(error.retry_within + 0.999)))
    return backoff
