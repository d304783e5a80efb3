"""A consumer's SQS queue and its dead-letter queue, built the same way for every consumer:
the static ones (components/consumers.py) and the delivery queue that partner subscriptions'
run-time rules feed (components/subscriptions.py)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import topology

# Lambda's guidance for SQS event sources: visibility timeout at least six times the
# function timeout, so a batch retried after throttling is not redelivered mid-flight.
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION = Duration.days(14)  # the SQS maximum: time to notice, fix and redrive


def visibility_timeout_seconds(function: topology.Function) -> int:
    assert function.consumer is not None
    return max(VISIBILITY_TIMEOUT_FACTOR * function.timeout_seconds, function.consumer.visibility_timeout_seconds)


def consumer_queues(scope: Construct, construct_id: str, function: topology.Function) -> tuple[sqs.Queue, sqs.Queue]:
    """(queue, dlq) for a consumer function: SQS-managed encryption, SSL only, the queue's
    visibility timeout per `visibility_timeout_seconds`, redrive after max_receive_count."""
    consumer = function.consumer
    assert consumer is not None
    dlq = sqs.Queue(
        scope,
        f"{construct_id}DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
    )
    queue = sqs.Queue(
        scope,
        f"{construct_id}Queue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(visibility_timeout_seconds(function)),
        # SQS's maximum: a message that waits (a retry hours away, a breaker, an ordered line)
        # or a consumer that is down for days must not lose it to the 4-day default.
        retention_period=DLQ_RETENTION,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=consumer.max_receive_count),
    )
    return queue, dlq
