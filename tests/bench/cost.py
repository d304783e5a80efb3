"""Cost per million inbound webhooks, from measured figures: `python -m tests.bench.cost`
(in `make bench`; `--quick` in CI).

What it measures, in this run: ingest's CPU per webhook and the AWS calls it makes
(tests/bench/ingest_handler.py's warm figure: a Twilio SMS through the whole handler, AWS
stubbed at botocore's send). What it takes from the code: each function's memory
(infra/topology.FUNCTIONS) and each consumer's batch size. What it assumes, and prints: the
time each AWS call waits on the network (not measurable here) and how this machine's CPU
compares with Lambda's (1 vCPU at 1,769 MB, proportionally less below). Prices are AWS's
us-east-1 list prices as published on the pages in PRICES (read 2026-12-02); the output is a
table of dollars per million webhooks by service.

The webhook modelled is an inbound SMS in an existing conversation: ingest publishes one
event (message.received), which the event-log and routing queues receive; routing publishes
conversation.updated, which the event-log and campaigns queues receive. Features that act on
some messages only (auto-replies, notifications, subscriptions' deliveries, campaigns' sends)
add their own calls and are not in the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# us-east-1 list prices, read 2026-12-02 (docs/operations.md, "Cost and quotas", cites the pages).
PRICES = {
    "lambda_request": 0.20 / 1e6,  # per request
    "lambda_gb_second": 0.0000166667,  # x86, first 6 billion GB-s a month
    "api_gateway_http_request": 1.00 / 1e6,  # HTTP API, first 300 million a month, per 512 KB
    "eventbridge_custom_event": 1.00 / 1e6,  # per 64 KB chunk published
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand, per write request unit (1 KB)
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand, per read request unit (4 KB strongly consistent)
    "s3_put": 0.005 / 1000,  # S3 Standard PUT
    "s3_gb_month": 0.023,
    "cloudwatch_logs_gb": 0.50,  # ingestion
}
LAMBDA_VCPU_MB = 1769  # Lambda gives a full vCPU at 1,769 MB, proportionally less below
# Assumed network wait per AWS call from a Lambda in the same region (not measured here).
CALL_WAIT_MS = {"GetItem": 5.0, "PutItem": 7.0, "UpdateItem": 7.0, "PutObject": 25.0, "PutEvents": 20.0}
LOG_BYTES_PER_INVOCATION = 1500  # ingest's Powertools log line, the metrics' EMF line, Lambda's REPORT
EVENT_BYTES = 3 * 1024  # one canonical event in the event log (under 64 KB: one chunk everywhere)
RAW_BYTES = 2 * 1024  # the raw request kept in S3 (a form-encoded SMS, base64 in JSON)


def model(ingest_cpu_us: float, calls: dict[str, float], cpu_speed: float = 1.0) -> dict[str, Any]:
    """Dollars per million webhooks by service, from ingest's measured CPU and calls."""
    from infra.topology import FUNCTIONS

    ingest = FUNCTIONS["ingest"]
    cpu_ms = ingest_cpu_us / 1000 * cpu_speed * max(1.0, LAMBDA_VCPU_MB / ingest.memory_mb)
    wait_ms = sum(CALL_WAIT_MS.get(op, 10.0) * n for op, n in calls.items())
    ingest_ms = cpu_ms + wait_ms
    per_million: dict[str, float] = {}
    million = 1e6
    per_million["API Gateway (HTTP API request)"] = million * PRICES["api_gateway_http_request"]
    gb_s = ingest.memory_mb / 1024 * ingest_ms / 1000
    per_million["Lambda: ingest (request + duration)"] = million * (
        PRICES["lambda_request"] + gb_s * PRICES["lambda_gb_second"]
    )
    # Consumers: event_log gets two events per webhook, routing one, campaigns one; batches fill
    # at high rates (batch_size records per invocation), each invocation assumed 50 ms per record.
    consumer_cost = 0.0
    for name, events in (("event_log", 2), ("routing", 1), ("campaigns", 1)):
        function = FUNCTIONS[name]
        assert function.consumer is not None
        invocations = events / function.consumer.batch_size
        seconds = events * 0.050
        consumer_cost += million * (
            invocations * PRICES["lambda_request"] + function.memory_mb / 1024 * seconds * PRICES["lambda_gb_second"]
        )
    per_million["Lambda: event_log, routing, campaigns (50 ms a record)"] = consumer_cost
    per_million["EventBridge (2 custom events)"] = million * 2 * PRICES["eventbridge_custom_event"]
    # Each queued event: SendMessage by EventBridge, ReceiveMessage and DeleteMessage (batched by
    # Lambda's poller: counted once per batch), so about one request per message plus the batch's.
    sqs_requests = 0.0
    for name, events in (("event_log", 2), ("routing", 1), ("campaigns", 1)):
        consumer = FUNCTIONS[name].consumer
        assert consumer is not None
        sqs_requests += events * (1 + 2 / consumer.batch_size)
    per_million["SQS (4 messages)"] = million * sqs_requests * PRICES["sqs_request"]
    writes = calls.get("PutItem", 0) + calls.get("UpdateItem", 0)
    reads = calls.get("GetItem", 0)
    # The event log writes each event (two items of about 3 KB: 3 WRU each).
    per_million["DynamoDB: ingest's dedupe and connection reads"] = million * (
        writes * PRICES["dynamodb_write_unit"] + reads * PRICES["dynamodb_read_unit"]
    )
    per_million["DynamoDB: the event log (2 events, 3 KB)"] = million * 2 * 3 * PRICES["dynamodb_write_unit"]
    per_million["S3: raw request (PUT)"] = million * calls.get("PutObject", 0) * PRICES["s3_put"]
    per_million["CloudWatch Logs (ingest's lines)"] = (
        million * LOG_BYTES_PER_INVOCATION / 1e9 * PRICES["cloudwatch_logs_gb"]
    )
    dollars = {k: round(v, 2) for k, v in per_million.items()}
    return {
        "ingest_cpu_us_measured": ingest_cpu_us,
        "ingest_calls_per_webhook": calls,
        "ingest_billed_ms_model": round(ingest_ms, 1),
        "ingest_memory_mb": ingest.memory_mb,
        "dollars_per_million": dollars,
        # The sum of the rows as printed, so the table adds up (the exact sum can differ by a cent).
        "total_per_million": round(sum(dollars.values()), 2),
        "storage_per_million_per_month": {
            "S3 raw requests (GB-month)": round(million * RAW_BYTES / 1e9 * PRICES["s3_gb_month"], 2),
        },
        "assumed_call_wait_ms": CALL_WAIT_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer warm rounds (CI)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from tests.bench.ingest_handler import warm

    measured = warm(2 if args.quick else 7, 20 if args.quick else 100)
    report = model(measured["ingest"]["cpu_us"], measured["ingest"]["aws_calls_per_webhook"])
    report["quick"] = args.quick
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"cost per million inbound SMS webhooks (us-east-1 list prices): ingest {report['ingest_cpu_us_measured']} us "
        f"CPU measured, {report['ingest_billed_ms_model']} ms billed at {report['ingest_memory_mb']} MB (model: CPU "
        f"scaled to Lambda's share + assumed call waits {CALL_WAIT_MS})"
    )
    for service, dollars in report["dollars_per_million"].items():
        print(f"  {service:58} ${dollars:8.2f}")
    print(f"  {'total':58} ${report['total_per_million']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
