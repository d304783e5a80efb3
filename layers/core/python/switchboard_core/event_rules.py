"""Rules the admin API makes on the hub's bus at run time, each with one SQS queue target.

A partner subscription and a campaign's trigger are each one rule whose target wraps the
matched event in a small JSON message (an input template) for that feature's queue. Both are
written here so the target's retry policy and dead-letter queue, and the answers to a full bus
or a pattern EventBridge refuses, are the same for both.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard_core.errors import HubError
from switchboard_core.subscriptions.patterns import InvalidPattern

# EventBridge's maximum retry attempts: a queue it cannot reach is retried for a day (the
# event age below), then the event is kept on the dead-letter queue (alarmed), not dropped.
TARGET_RETRY_ATTEMPTS = 185
TARGET_MAX_EVENT_AGE_SECONDS = 86400


def wrapped_event_template(fields: dict[str, str]) -> str:
    """An input template: `fields` as a JSON object with the matched event added as "event"."""
    return json.dumps(fields)[:-1] + ', "event": <aws.events.event.json>}'


def put_queue_rule(
    events: Any,
    *,
    bus_name: str,
    name: str,
    pattern: dict[str, Any],
    description: str,
    target_id: str,
    queue_arn: str,
    input_template: str,
    dead_letter_queue_arn: str,
    quota_message: str,
    enabled: bool = True,
    pattern_field: str | None = None,
) -> None:
    """Create or update the rule `name` and its one queue target.

    The state is always given: PutRule without one would enable a disabled rule. A bus at its
    rules quota answers 503 (rules_quota_reached) with `quota_message`; a pattern EventBridge
    refuses answers 400 naming `pattern_field` when there is one (otherwise the error is raised).
    A refused target answers 502; the rule made so far is the caller's to remove."""
    from botocore.exceptions import ClientError

    try:
        events.put_rule(
            Name=name,
            EventBusName=bus_name,
            EventPattern=json.dumps(pattern),
            State="ENABLED" if enabled else "DISABLED",
            Description=description,
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "InvalidEventPatternException" and pattern_field is not None:
            reason = exc.response["Error"].get("Message") or "invalid pattern"
            raise InvalidPattern(
                [{"field": pattern_field, "in": "body", "problem": f"EventBridge: {reason}"}]
            ) from None
        if code != "LimitExceededException":
            raise
        raise HubError(quota_message, status=503, code="rules_quota_reached") from None
    answer = events.put_targets(
        Rule=name,
        EventBusName=bus_name,
        Targets=[
            {
                "Id": target_id,
                "Arn": queue_arn,
                "InputTransformer": {"InputPathsMap": {}, "InputTemplate": input_template},
                "RetryPolicy": {
                    "MaximumRetryAttempts": TARGET_RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": TARGET_MAX_EVENT_AGE_SECONDS,
                },
                "DeadLetterConfig": {"Arn": dead_letter_queue_arn},
            }
        ],
    )
    if answer.get("FailedEntryCount"):
        raise HubError(
            f"EventBridge refused the rule's target: {answer.get('FailedEntries')}", status=502, code="rule_failed"
        )


def delete_queue_rule(events: Any, *, bus_name: str, name: str, target_id: str) -> None:
    """Remove the rule and its target; a rule that is not there is fine (a retried delete)."""
    from botocore.exceptions import ClientError

    try:
        events.remove_targets(Rule=name, EventBusName=bus_name, Ids=[target_id])
        events.delete_rule(Name=name, EventBusName=bus_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
