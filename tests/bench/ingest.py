"""Ingest benchmark: `make bench` (full) or `python -m tests.bench.ingest --quick`.

Prints figures measured in this one run, and ratios between them, so that the
numbers compare like with like on whatever machine runs it:

1. cold import of the ingest handler, in fresh interpreters, against importing
   boto3 alone (the floor every Python Lambda pays);
2. CPU per request of each adapter's verify + normalise (no I/O), against one bare
   HMAC-SHA256 of the same body;
3. end-to-end latency and throughput of signed webhooks through the local runtime
   (gateway -> ingest -> moto server), sequentially;
4. auto-reply latency on the local runtime: from posting a signed SMS to its reply
   reaching the provider sandbox (ingest, bus, routing, replies, Twilio's API), one
   customer at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path


def cold_import_ms(module: str, runs: int) -> float:
    """Median wall time of `import module` in a fresh interpreter."""
    code = f"import time; t=time.perf_counter(); import {module}; print((time.perf_counter()-t)*1000)"
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"},
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def adapter_cpu_us(provider: str, iterations: int) -> float:
    from infra.local.samples import build_sample, demo_credentials
    from infra.local.sns_dev import DEV_CERT_DIR_ENV, dev_certificate_dir
    from switchboard_core.providers import get_adapter
    from switchboard_core.providers.base import WebhookRequest

    # As under `switchboard dev`: the sns samples' demo certificate is trusted (dev only).
    os.environ.setdefault(DEV_CERT_DIR_ENV, str(dev_certificate_dir()))
    adapter = get_adapter(provider)
    credentials = demo_credentials(provider)
    signed = build_sample(provider, None, credentials, f"https://hooks.example.com/webhooks/{provider}/con_1")
    request = WebhookRequest(
        method=signed.method,
        url=signed.url,
        body=signed.body,
        headers={k.lower(): v for k, v in signed.headers.items()},
    )
    now = datetime.now(UTC)
    start = time.process_time()
    for _ in range(iterations):
        adapter.verify(request, credentials, now)
        adapter.normalise(request)
    return (time.process_time() - start) / iterations * 1e6


def bare_hmac_us(iterations: int) -> float:
    import hashlib
    import hmac

    body = b"x" * 600
    start = time.process_time()
    for _ in range(iterations):
        hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    return (time.process_time() - start) / iterations * 1e6


def end_to_end(requests: int) -> dict[str, float]:
    from infra.local.runtime import LocalRuntime
    from infra.local.samples import build_sample

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    runtime = LocalRuntime(state_dir=Path(tempfile.mkdtemp()), port=0, demo_routing=False).start()
    try:
        entry = runtime.demo["connections"]["twilio"]
        url = f"{runtime.base_url}/webhooks/twilio/{entry['id']}"
        latencies = []
        started = time.perf_counter()
        for _ in range(requests):
            signed = build_sample("twilio", "sms", entry["credentials"], url)
            request = urllib.request.Request(signed.url, data=signed.body, method="POST", headers=signed.headers)
            t = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
            latencies.append((time.perf_counter() - t) * 1000)
        elapsed = time.perf_counter() - started
    finally:
        runtime.stop()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "per_second": requests / elapsed,
    }


AUTO_REPLY_RULES = {
    "default_team": "care",
    "rules": [
        {
            "name": "acknowledge",
            "then": {"kind": "auto_reply", "template": "Thanks! ${team} replies within ${reply_within}."},
        },
        {"name": "care", "then": {"kind": "assign", "team": "care"}},
    ],
}
# Fictional numbers (555-0140..0199) in several area codes: one new customer, so one
# conversation and one auto-reply, per request.
AREA_CODES = ("212", "312", "415", "503", "617", "646", "702", "713", "808", "917")


def auto_reply_latency(requests: int) -> dict[str, float]:
    from twilio.request_validator import RequestValidator

    from infra.local.runtime import LocalRuntime
    from switchboard_core import aws
    from switchboard_core.routing.assignment import Responder
    from switchboard_core.routing.config_store import RoutingConfigStore
    from switchboard_core.routing.rules import RuleSet

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    runtime = LocalRuntime(state_dir=Path(tempfile.mkdtemp()), port=0, demo_routing=False).start()
    try:
        store = RoutingConfigStore(aws.resource("dynamodb").Table(runtime.names.table("routing")))
        store.put_rules("demo", RuleSet.model_validate(AUTO_REPLY_RULES), None, datetime.now(UTC))
        store.put_responder(Responder(id="bench", tenant="demo", name="Bench", teams=["care"], capacity=1000))
        entry = runtime.demo["connections"]["twilio"]
        url = f"{runtime.base_url}/webhooks/twilio/{entry['id']}"
        validator = RequestValidator(entry["credentials"]["auth_token"])
        latencies = []
        for n in range(requests):
            customer = f"+1{AREA_CODES[n // 60 % len(AREA_CODES)]}5550{140 + n % 60}"
            params = {
                "MessageSid": f"SM{n:032x}",
                "AccountSid": "AC" + "b" * 32,
                "From": customer,
                "To": "+14155550100",
                "Body": "Hi, where is my order?",
                "NumMedia": "0",
            }
            body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in params.items()).encode()
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": validator.compute_signature(url, params),
                },
            )
            t = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
            while not any(m.to == customer for m in runtime.provider_apis.messages):
                if time.perf_counter() - t > 30:
                    raise RuntimeError(f"no auto-reply reached {customer} within 30 s")
                time.sleep(0.002)
            latencies.append((time.perf_counter() - t) * 1000)
    finally:
        runtime.stop()
    latencies.sort()
    return {"p50_ms": statistics.median(latencies), "p95_ms": latencies[max(int(len(latencies) * 0.95) - 1, 0)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): fewer samples, same report")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import_runs, iterations, requests = (3, 300, 20) if args.quick else (9, 5000, 300)
    replies = 5 if args.quick else 120

    report: dict[str, object] = {"quick": args.quick}
    boto3_ms = cold_import_ms("boto3", import_runs)
    ingest_ms = cold_import_ms("functions.ingest.handler", import_runs)
    report["cold_import_ms"] = {
        "boto3": round(boto3_ms, 1),
        "ingest_handler": round(ingest_ms, 1),
        "ratio_ingest_to_boto3": round(ingest_ms / boto3_ms, 2),
    }
    hmac_us = bare_hmac_us(iterations * 4)
    adapters = {}
    from switchboard_core.providers import PROVIDER_NAMES

    for provider in PROVIDER_NAMES:
        cpu = adapter_cpu_us(provider, iterations)
        adapters[provider] = {"cpu_us": round(cpu, 1), "ratio_to_bare_hmac": round(cpu / hmac_us, 1)}
    report["verify_and_normalise"] = {"bare_hmac_sha256_us": round(hmac_us, 2), **adapters}
    report["local_end_to_end_twilio_sms"] = {k: round(v, 1) for k, v in end_to_end(requests).items()}
    report["requests"] = requests
    report["local_auto_reply_twilio_sms"] = {k: round(v, 1) for k, v in auto_reply_latency(replies).items()}
    report["auto_replies"] = replies

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    cold = report["cold_import_ms"]
    print(
        f"cold import (median of {import_runs}): boto3 {cold['boto3']} ms, ingest handler "
        f"{cold['ingest_handler']} ms -> ratio {cold['ratio_ingest_to_boto3']}x"
    )
    print(f"verify+normalise CPU per request ({iterations} iterations; bare HMAC-SHA256 of 600 B = {hmac_us:.2f} us):")
    for provider, figures in adapters.items():
        print(f"  {provider:18} {figures['cpu_us']:8.1f} us  ({figures['ratio_to_bare_hmac']}x bare HMAC)")
    e2e = report["local_end_to_end_twilio_sms"]
    print(
        f"local runtime, {requests} signed Twilio SMS sequentially: p50 {e2e['p50_ms']} ms, "
        f"p95 {e2e['p95_ms']} ms, {e2e['per_second']} req/s"
    )
    reply = report["local_auto_reply_twilio_sms"]
    print(
        f"local runtime, {replies} signed Twilio SMS from new customers, webhook posted -> auto-reply at "
        f"Twilio's API (sandbox): p50 {reply['p50_ms']} ms, p95 {reply['p95_ms']} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
