"""Ingest's whole handler against AWS's inbound-webhook sample: `make bench` (full) or
`python -m tests.bench.ingest_handler --quick`.

The same signed Twilio SMS (API Gateway HTTP API events, one fresh MessageSid each) goes to
two handlers with AWS stubbed at botocore's HTTP send (tests/bench/stub_aws.py: every client
still validates, serialises, signs and parses; no moto, no socket):

- ingest's own handler (`functions.ingest.handler.handler`: Powertools' logger, metrics and
  resolver, the connection and credential checks, dedupe, the raw request kept in S3, the
  canonical events published);
- the baseline (tests/bench/twilio_sample.py): only what the aws-samples serverless-patterns
  eventbridge-webhooks/3-twilio handler does (verify Twilio's signature, parse the form, one
  PutEvents, clients built at import).

Warm: CPU per webhook (`time.process_time`), the two handlers interleaved in rounds in this one
process, median over the rounds; target ingest <= 3x the baseline. Cold: fresh interpreters in
a Lambda-like sandbox (tests/bench/coldstart.py's: our code compiled at import, the function's
environment), each timing its handler module's import plus the first invocation (the clients,
the secret read); target ingest <= 1.5x the baseline, tracing off in both (the sample does not
trace); ingest with X-Ray tracing as deployed (Tracing.ACTIVE) is printed beside it.
The AWS calls each handler made per webhook are counted and printed.

Exit status 1 when a target is missed in a full run; the quick form (CI) proves it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.bench import stub_aws
from tests.bench.coldstart import Sandbox

WARM_TARGET = 3.0
COLD_TARGET = 1.5
HOST = "hooks.example.com"
CONNECTION = "con_bench0000000000000000"
BASELINE_SECRET = "twilio-webhook-secret"
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "EVENT_BUS_NAME": "bench-bus",
    "TWILIO_WEBHOOK_SECRET_ARN": BASELINE_SECRET,
}


def ingest_environment() -> dict[str, str]:
    from infra.topology import FUNCTIONS, function_environment
    from tests.bench.coldstart import _PlaceholderNames

    return function_environment(FUNCTIONS["ingest"], _PlaceholderNames(), "bench")


def stub_answers(auth_token: str) -> dict[str, Any]:
    """What the stub answers: the connection's item, its credentials, the baseline's secret."""
    from boto3.dynamodb.types import TypeSerializer

    from switchboard_core.connections import StoredCredentials

    environment = ingest_environment()
    item = {"id": CONNECTION, "provider": "twilio", "tenant": "demo", "created_at": "2026-01-01T00:00:00+00:00"}
    serialiser = TypeSerializer()
    return {
        "items": {environment["TABLE_CONNECTIONS"]: {k: serialiser.serialize(v) for k, v in item.items()}},
        "secrets": {
            environment["SECRETS_PREFIX"] + CONNECTION: StoredCredentials(
                current={"auth_token": auth_token}
            ).model_dump_json(),
            BASELINE_SECRET: auth_token,
        },
    }


def sms_events(count: int, auth_token: str) -> list[dict[str, Any]]:
    """`count` signed Twilio SMS as API Gateway HTTP API (payload 2.0) events."""
    from infra.local.samples import build_reply

    path = f"/webhooks/twilio/{CONNECTION}"
    events = []
    for n in range(count):
        signed = build_reply(
            "twilio",
            {"auth_token": auth_token},
            f"https://{HOST}{path}",
            f"+1415555{n % 10000:04d}",
            "Hi, is my order #4417 on its way?",
            "+14155550100",
        )
        headers = {k.lower(): v for k, v in signed.headers.items()}
        events.append(
            {
                "version": "2.0",
                "routeKey": "ANY /webhooks/{provider}/{connection}",
                "rawPath": path,
                "rawQueryString": "",
                "headers": {**headers, "host": HOST, "x-forwarded-proto": "https", "x-forwarded-port": "443"},
                "requestContext": {
                    "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
                    "domainName": HOST,
                    "requestId": f"req-{n}",
                    "routeKey": "ANY /webhooks/{provider}/{connection}",
                    "stage": "$default",
                    "time": "02/Dec/2026:12:00:00 +0000",
                    "timeEpoch": 1_796_212_800_000,
                },
                "pathParameters": {"provider": "twilio", "connection": CONNECTION},
                "body": signed.body.decode(),
                "isBase64Encoded": False,
            }
        )
    return events


def warm(rounds: int, per_round: int) -> dict[str, Any]:
    """CPU per webhook of each handler, interleaved in rounds (medians of the per-round means)."""
    os.environ.update({**AWS_ENVIRONMENT, **ingest_environment(), "POWERTOOLS_TRACE_DISABLED": "true"})
    auth_token = "0" * 8 + "bench" * 4 + "0" * 4
    answers = stub_answers(auth_token)
    stub_aws.install()
    stub_aws.ITEMS.update(answers["items"])
    stub_aws.SECRETS.update(answers["secrets"])
    from switchboard_core import aws

    aws.reset_clients()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        import functions.ingest.handler as ingest
        from tests.bench import twilio_sample

        for log_handler in ingest.logger.handlers:  # Powertools' logger keeps the stdout it found at import
            if hasattr(log_handler, "setStream"):
                log_handler.setStream(sink)
    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
        "ingest": ingest.handler,
        "baseline": twilio_sample.handler,
    }
    expected = {"ingest": 200, "baseline": 202}
    events = sms_events((rounds + 1) * per_round * 2, auth_token)
    context = stub_aws.LambdaContext()
    per_webhook: dict[str, list[float]] = {name: [] for name in handlers}
    calls: dict[str, Counter[str]] = {name: Counter() for name in handlers}
    cursor = 0
    for round_number in range(rounds + 1):  # the first round warms both up and is not counted
        for name, handler in handlers.items():
            batch = events[cursor : cursor + per_round]
            cursor += per_round
            before = Counter(stub_aws.CALLS)
            with contextlib.redirect_stdout(sink):
                started = time.process_time()
                for event in batch:
                    answer = handler(event, context)
                    if answer["statusCode"] != expected[name]:
                        raise RuntimeError(f"{name} answered {answer['statusCode']}: {answer.get('body')}")
                spent = time.process_time() - started
            sink.seek(0)
            sink.truncate()
            if round_number:
                per_webhook[name].append(spent / per_round * 1e6)
                calls[name].update(Counter(stub_aws.CALLS) - before)
    counted = rounds * per_round
    figures: dict[str, dict[str, Any]] = {
        name: {
            "cpu_us": round(statistics.median(samples), 1),
            "aws_calls_per_webhook": {op: round(n / counted, 3) for op, n in sorted(calls[name].items())},
        }
        for name, samples in per_webhook.items()
    }
    ratio = figures["ingest"]["cpu_us"] / figures["baseline"]["cpu_us"]
    return {**figures, "ratio": round(ratio, 2), "target": WARM_TARGET, "rounds": rounds, "per_round": per_round}


# The child times its handler module's import and first invocation; AWS is stubbed when
# botocore.endpoint is first imported, so boto3's import stays inside the timing.
CHILD = """
import json, sys, time
import stub_aws
stub_aws.install_on_import()
given = json.loads(sys.stdin.read())
stub_aws.ITEMS.update(given["items"])
stub_aws.SECRETS.update(given["secrets"])
context = stub_aws.LambdaContext()
cpu, wall = time.process_time(), time.perf_counter()
import {module} as function
imported = time.process_time()
answer = function.handler(given["event"], context)
done_cpu, done_wall = time.process_time(), time.perf_counter()
print()
print(json.dumps({{"import_ms": (imported - cpu) * 1000, "cpu_ms": (done_cpu - cpu) * 1000,
                  "wall_ms": (done_wall - wall) * 1000, "status": answer["statusCode"]}}))
"""


def cold(rounds: int) -> dict[str, Any]:
    """Import plus first invocation in fresh interpreters, the three kinds interleaved per round."""
    auth_token = "1" * 8 + "bench" * 4 + "1" * 4
    answers = stub_answers(auth_token)
    events = sms_events(rounds * 3, auth_token)
    kinds = {
        "baseline": ("twilio_sample", None, {"POWERTOOLS_TRACE_DISABLED": "true"}, 202),
        "ingest": ("functions.ingest.handler", "ingest", {"POWERTOOLS_TRACE_DISABLED": "true"}, 200),
        "ingest_traced": ("functions.ingest.handler", "ingest", {}, 200),
    }
    samples: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="switchboard-ingest-cold-") as directory:
        sandbox = Sandbox.stage(Path(directory))
        # The baseline's module sits in the task root without bytecode, as ours does.
        shutil.copy(Path(__file__).with_name("twilio_sample.py"), sandbox.task_root / "twilio_sample.py")
        # The AWS stub too: the sandbox's path holds the task root and the layers, never this repo.
        shutil.copy(Path(__file__).with_name("stub_aws.py"), sandbox.task_root / "stub_aws.py")
        for n in range(rounds):
            for index, (kind, (module, function, extra, status)) in enumerate(kinds.items()):
                environment = {**sandbox.environment(function), **AWS_ENVIRONMENT, **extra}
                if "POWERTOOLS_TRACE_DISABLED" not in extra:
                    environment.pop("POWERTOOLS_TRACE_DISABLED", None)
                out = subprocess.run(
                    [sys.executable, "-c", CHILD.format(module=module)],
                    input=json.dumps({**answers, "event": events[n * 3 + index]}),
                    capture_output=True,
                    text=True,
                    env=environment,
                    cwd=sandbox.task_root,
                    check=False,
                )
                if out.returncode != 0:
                    raise RuntimeError(f"{kind} failed:\n{out.stderr[-3000:]}")
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                if figures["status"] != status:
                    raise RuntimeError(f"{kind} answered {figures['status']}:\n{out.stdout[-2000:]}")
                samples[kind].append(figures)
    medians = {
        kind: {key: round(statistics.median(s[key] for s in taken), 1) for key in ("import_ms", "cpu_ms", "wall_ms")}
        for kind, taken in samples.items()
    }
    base = medians["baseline"]["cpu_ms"]
    return {
        **medians,
        "ratio": round(medians["ingest"]["cpu_ms"] / base, 2),
        "ratio_traced": round(medians["ingest_traced"]["cpu_ms"] / base, 2),
        "target": COLD_TARGET,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): no verdict")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, help="warm rounds (default 15, quick 2)")
    parser.add_argument("--cold-rounds", type=int, help="fresh interpreters per kind (default 11, quick 1)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 15)
    report: dict[str, Any] = {
        "quick": args.quick,
        "warm": warm(rounds, 20 if args.quick else 200),
        "cold": cold(args.cold_rounds or (1 if args.quick else 11)),
    }
    report["missed"] = [part for part in ("warm", "cold") if report[part]["ratio"] > report[part]["target"]]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        w, c = report["warm"], report["cold"]
        print("Twilio SMS through ingest's handler vs the aws-samples baseline, AWS stubbed at botocore's send")
        print(
            f"  warm CPU per webhook (median of {w['rounds']} rounds of {w['per_round']}, interleaved): "
            f"ingest {w['ingest']['cpu_us']} us, baseline {w['baseline']['cpu_us']} us -> {w['ratio']}x "
            f"(target <= {w['target']}x) {'ok' if w['ratio'] <= w['target'] else 'MISSED'}"
        )
        for name in ("ingest", "baseline"):
            made = ", ".join(f"{op} {n:g}" for op, n in w[name]["aws_calls_per_webhook"].items())
            print(f"    AWS calls per webhook, {name}: {made}")
        print(
            f"  cold import + first invocation, CPU (wall) ms, median of {c['rounds']} fresh interpreters: "
            f"baseline {c['baseline']['cpu_ms']} ({c['baseline']['wall_ms']}), of which import "
            f"{c['baseline']['import_ms']}; ingest {c['ingest']['cpu_ms']} ({c['ingest']['wall_ms']}), import "
            f"{c['ingest']['import_ms']} -> {c['ratio']}x (target <= {c['target']}x) "
            f"{'ok' if c['ratio'] <= c['target'] else 'MISSED'}"
        )
        print(
            f"    ingest with X-Ray tracing as deployed (not in the verdict: the sample does not trace): "
            f"{c['ingest_traced']['cpu_ms']} ms -> {c['ratio_traced']}x"
        )
    if report["missed"] and not args.quick:
        print(f"ingest vs sample target missed: {', '.join(report['missed'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
