"""The embedded emulator's CPU per request over HTTP, moto's app against the JSON-protocol shortcut:
`python -m tests.bench.emulator_requests` (in `make bench`; `--quick` in CI, which only proves
it runs and prints every figure).

Each round starts, in a fresh child process, the emulator as the local hub starts it (moto's
threaded server on loopback, its connections kept alive), once with moto's app alone
(`Emulator(shortcut=False)`) and once with infra/local/emulator.py's `JsonProtocolShortcut`
in front of it, the two in alternating order from round to round. A grandchild (the caller, as
a function's sandbox is) makes the same calls through boto3 against it: DynamoDB PutItem, then
GetItem of those items, UpdateItem, SQS SendMessage and ReceiveMessage, EventBridge PutEvents,
Secrets Manager GetSecretValue. What is timed is
the emulator process's CPU (`time.process_time`: its serving threads, the HTTP parsing and the
kernel's loopback work included; the caller's CPU is in another process) per request, by
action; the figure is the median over the rounds, and the ratio of the shortcut's to moto's
app's within each round is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

ACTIONS = (  # in this order: GetItem reads the items PutItem wrote
    "dynamodb.PutItem",
    "dynamodb.GetItem",
    "dynamodb.UpdateItem",
    "sqs.SendMessage",
    "sqs.ReceiveMessage",
    "events.PutEvents",
    "secretsmanager.GetSecretValue",
)

# The caller: one boto3 client per service, `requests` calls of each action on a signal, a line
# back when done. Warmed first, so each client's first-call setup is not in the figures.
CALLER = r"""
import sys
import boto3

endpoint, requests = sys.argv[1], int(sys.argv[2])
session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
dynamodb, sqs, events, secrets = (
    session.client(name, endpoint_url=endpoint) for name in ("dynamodb", "sqs", "events", "secretsmanager")
)
dynamodb.create_table(
    TableName="bench",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
queue = sqs.create_queue(QueueName="bench")["QueueUrl"]
secrets.create_secret(Name="bench", SecretString="x" * 64)
calls = {
    "dynamodb.GetItem": lambda i: dynamodb.get_item(TableName="bench", Key={"pk": {"S": f"k{i % 50}"}}),
    "dynamodb.PutItem": lambda i: dynamodb.put_item(
        TableName="bench",
        Item={"pk": {"S": f"k{i}"}, "text": {"S": "x" * 500}},
        ConditionExpression="attribute_not_exists(pk)",
    ),
    "dynamodb.UpdateItem": lambda i: dynamodb.update_item(
        TableName="bench",
        Key={"pk": {"S": f"k{i}"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "done"}},
    ),
    "sqs.SendMessage": lambda i: sqs.send_message(QueueUrl=queue, MessageBody="x" * 1000),
    "sqs.ReceiveMessage": lambda i: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1),
    "events.PutEvents": lambda i: events.put_events(Entries=[{"Source": "bench", "DetailType": "d", "Detail": "{}"}]),
    "secretsmanager.GetSecretValue": lambda i: secrets.get_secret_value(SecretId="bench"),
}
calls = {name: calls[name] for name in sys.argv[3].split(",")}
for call in calls.values():
    for i in range(10):
        call(100_000 + i)
print("ready", flush=True)
for name, call in calls.items():
    if not sys.stdin.readline():  # the emulator's side stopped
        break
    for i in range(requests):
        call(i)
    print(name, flush=True)
"""


def serve(shortcut: bool, requests: int) -> dict[str, float]:
    """In this process: the emulator, a caller against it, the emulator's CPU per request (us)."""
    from infra.local.emulator import Emulator

    emulator = Emulator(shortcut=shortcut)
    endpoint = emulator.start()
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, endpoint, str(requests), ",".join(ACTIONS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert caller.stdin is not None and caller.stdout is not None
    figures = {}
    try:
        assert caller.stdout.readline().strip() == "ready", "the caller did not start"
        for action in ACTIONS:
            started = time.process_time()
            caller.stdin.write("\n")
            caller.stdin.flush()
            done = caller.stdout.readline().strip()
            assert done == action, f"the caller stopped at {action}: {done!r}"
            figures[action] = round(1e6 * (time.process_time() - started) / requests, 1)
    except BaseException:
        caller.kill()
        raise
    finally:
        caller.stdin.close()
        caller.wait(timeout=60)
        emulator.stop()
    return figures


def one_round(shortcut: bool, requests: int) -> dict[str, float]:
    mode = "shortcut" if shortcut else "moto"
    child = subprocess.run(
        [sys.executable, "-m", "tests.bench.emulator_requests", "--serve", mode, "--requests", str(requests)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if child.returncode != 0:
        raise RuntimeError(f"the {mode} round failed:\n{child.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def run(rounds: int, requests: int) -> dict[str, Any]:
    measured: dict[str, list[dict[str, float]]] = {"moto": [], "shortcut": []}
    for index in range(rounds):
        # Each round both ways, in alternating order, so neither always runs first.
        for shortcut in (False, True) if index % 2 == 0 else (True, False):
            measured["shortcut" if shortcut else "moto"].append(one_round(shortcut, requests))
    report: dict[str, Any] = {"rounds": rounds, "requests_per_action": requests, "actions": {}}
    for action in ACTIONS:
        moto = [figures[action] for figures in measured["moto"]]
        shortcut = [figures[action] for figures in measured["shortcut"]]
        report["actions"][action] = {
            "moto_us": round(statistics.median(moto), 1),
            "shortcut_us": round(statistics.median(shortcut), 1),
            "ratio": round(statistics.median(s / m for s, m in zip(shortcut, moto, strict=True)), 2),
        }
    means = {mode: [statistics.mean(figures.values()) for figures in rounds_] for mode, rounds_ in measured.items()}
    report["all_actions_ratio"] = round(
        statistics.median(s / m for s, m in zip(means["shortcut"], means["moto"], strict=True)), 2
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): one round of 20 requests per action")
    parser.add_argument("--rounds", type=int, help="rounds, each moto's app then the shortcut (default 5)")
    parser.add_argument("--requests", type=int, help="requests per action per round (default 300)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", choices=["moto", "shortcut"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    requests = args.requests or (20 if args.quick else 300)
    if args.serve:  # a round's child
        print(json.dumps(serve(args.serve == "shortcut", requests)))
        return 0
    report = run(args.rounds or (1 if args.quick else 5), requests)
    report["quick"] = args.quick
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"the emulator's CPU per request over HTTP, median of {report['rounds']} rounds of "
        f"{requests} requests per action (us): moto's app, then the JSON-protocol shortcut"
    )
    for action, figures in report["actions"].items():
        print(f"  {action:32s} {figures['moto_us']:8.1f} {figures['shortcut_us']:8.1f}   {figures['ratio']:.2f}x")
    print(f"  every action, the mean per request: {report['all_actions_ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
