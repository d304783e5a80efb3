"""The EventBridge envelope of a canonical event, as consumers receive it from their queue.

Kept apart from events.py: it needs Powertools' parser models, which the ingest path
(which only publishes) has no reason to import.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from switchboard_core.events import CanonicalEvent


class CanonicalEventBridgeEvent(EventBridgeModel):
    detail: CanonicalEvent
