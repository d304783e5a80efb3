"""Warm CPU per webhook for every provider at 1 KB, 16 KB and 256 KB bodies: `make bench`
(full) or `python -m tests.bench.providers --quick`.

For each provider (switchboard_core.providers.PROVIDER_NAMES) a correctly signed sample of
each size is built (infra/local/samples: the longest human text of the provider's default
sample is lengthened, then the sample is signed as the provider signs it; the five SMS
providers write the customer's text through `build_reply`). Two things are timed on it,
interleaved in rounds in this one process (`time.process_time`, median of the rounds):

- the hub's own work: ingest's logic (`functions.ingest.logic.handle_webhook`: the media type,
  the signature with every valid credential set, normalising, the delivery id, the raw
  request's document as stored, the canonical events and their PutEvents entries) with AWS
  replaced by in-memory fakes (no botocore: what AWS costs per call is
  tests/bench/ingest_handler.py's subject);
- the baseline: the provider's own signature primitive over the body (HMAC-SHA256 or -SHA1,
  Ed25519, RSA SHA256withRSA; a constant-time comparison for the five that sign nothing) plus
  the bare parse (`json.loads`, `parse_qs`, `ElementTree.fromstring`).

Targets: the hub's work <= 3x the baseline at every size, and linear in the body: the 256 KB
figure at most 1.5x what a straight line through the 1 KB and 16 KB figures predicts. Exit
status 1 when a target is missed in a full run; the quick form (CI) proves it runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

SIZES = (1024, 16 * 1024, 256 * 1024)
TARGET = 3.0
LINEARITY_TARGET = 1.5
CONNECTION = "con_bench0000000000000000"
FILLER = "lorem ipsum dolor sit amet "
# The providers that authenticate without signing the body (a shared secret or Basic
# credentials, an organisation id): their baseline is a constant-time comparison.
UNSIGNED = {"bandwidth", "freshdesk", "pipedrive", "salesforce", "telegram"}
SHA1 = {"intercom", "twilio", "websub"}
ED25519 = {"discord", "telnyx"}
RSA = {"sns"}
REPLY_SAMPLES = {"bandwidth", "plivo", "telnyx", "twilio", "vonage"}  # build_reply: the SMS's text


# ----------------------------------------------------------------------------- sized samples


def _pad_longest_text(value: Any, extra: int) -> tuple[Any, bool]:
    """`value` with its longest string that has a space (human text, not an id or a URL)
    lengthened by `extra` characters."""
    best: list[Any] = []

    def walk(node: Any, parent: Any, key: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, node, k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, node, i)
        elif isinstance(node, str) and " " in node and (not best or len(node) > len(best[0])):
            best[:] = [node, parent, key]

    walk(value, None, None)
    if not best or best[1] is None:
        # No human text (a generic sender's event): a description field of filler is added.
        target = value[0] if isinstance(value, list) and value else value
        if not isinstance(target, dict):
            return value, False
        best[:] = ["", target, "description"]
    text, parent, key = best
    parent[key] = text + " " + (FILLER * (extra // len(FILLER) + 1))[: max(extra - 1, 0)]
    return value, True


@contextmanager
def _padding_json(extra: int) -> Iterator[None]:
    """While a sample is built, its first JSON document with human text gets `extra` more bytes."""
    original = json.dumps
    done = [extra <= 0]

    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        if not done[0] and isinstance(obj, dict | list):
            obj, padded = _pad_longest_text(json.loads(original(obj)), extra)
            done[0] = padded
        return original(obj, *args, **kwargs)

    json.dumps = dumps
    try:
        yield
    finally:
        json.dumps = original


def sized_sample(provider: str, size: int, credentials: dict[str, str], url: str, now: datetime) -> Any:
    """`provider`'s default sample (its SMS for the SMS providers), signed, about `size` bytes."""
    from infra.local import samples
    from infra.local.samples import websub

    def build(extra: int) -> Any:
        if provider in REPLY_SAMPLES:
            text = "Hi, is my order on its way?" + (" " + FILLER * (extra // len(FILLER) + 1))[:extra]
            return samples.build_reply(provider, credentials, url, "+14155550123", text, "+14155550100", now)
        if provider == "salesforce":  # unsigned SOAP: the case's description is lengthened
            signed = samples.build_sample(provider, "case-updated", credentials, url, now)
            filler = " " + (FILLER * (extra // len(FILLER) + 1))[: max(extra - 1, 0)]
            body = signed.body.replace(b"My order never arrived.", b"My order never arrived." + filler.encode())
            return replace(signed, body=body)
        if provider == "websub":  # the Atom entry's title, then signed again as the hub signs it
            signed = samples.build_sample(provider, None, credentials, url, now)
            filler = " " + (FILLER * (extra // len(FILLER) + 1))[: max(extra - 1, 0)]
            body = signed.body.replace(b" other tips</title>", b" other tips" + filler.encode() + b"</title>")
            headers = {**signed.headers, "X-Hub-Signature": websub.hub_signature(credentials["secret"], body)}
            return replace(signed, body=body, headers=headers)
        with _padding_json(extra):
            return samples.build_sample(provider, None, credentials, url, now)

    unpadded = len(build(0).body)
    signed = build(max(size - unpadded, 0))
    if not 0.9 * size <= len(signed.body) <= 1.1 * size and size > unpadded:
        raise RuntimeError(f"{provider}: a {size}-byte sample came out at {len(signed.body)} bytes")
    return signed


# ----------------------------------------------------------------------------- the hub's work


class _Table:
    def __init__(self, item: dict[str, Any]) -> None:
        self._item = item

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": dict(self._item)}


class _Credentials:
    def __init__(self, stored: Any) -> None:
        self._stored = stored

    def get(self, _connection_id: str) -> Any:
        return self._stored


class _Discard:
    """S3's put_object and EventBridge's put_events, answered at once."""

    def put_object(self, **_: Any) -> dict[str, Any]:
        return {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def hub_work(provider: str, credentials: dict[str, str], now: datetime) -> Callable[[Any], None]:
    """Ingest's logic for one signed request, AWS faked; raises unless it was accepted."""
    from functions.ingest.logic import IngestDeps, handle_webhook
    from switchboard_core.bus import EventPublisher
    from switchboard_core.connections import ConnectionStore, StoredCredentials
    from switchboard_core.providers.base import WebhookRequest
    from switchboard_core.raw_store import RawStore

    deps = IngestDeps(
        connections=ConnectionStore(
            _Table({"id": CONNECTION, "provider": provider, "tenant": "demo", "created_at": "2026-01-01T00:00:00Z"})
        ),
        credentials=_Credentials(StoredCredentials(current=credentials)),  # type: ignore[arg-type]
        raw_store=RawStore(_Discard(), "bench-raw"),
        publisher=EventPublisher(_Discard(), "bench-bus"),
        run_once=lambda key, work: (work(), False),
        max_body_bytes=1024 * 1024,
    )

    def run(signed: Any) -> None:
        # A new request each time, as each webhook is: nothing parsed is carried over.
        request = WebhookRequest(
            method=signed.method,
            url=signed.url,
            headers={k.lower(): v for k, v in signed.headers.items()},
            body=signed.body,
            query=parse_qs(signed.url.partition("?")[2], keep_blank_values=True),
            received_at=now,
        )
        outcome = handle_webhook(request, provider, CONNECTION, deps, now)
        if outcome.kind != "accepted":
            raise RuntimeError(f"{provider}: {outcome.kind}")

    return run


# ----------------------------------------------------------------------------- the baseline


def _parse(content_type: str) -> Callable[[bytes], Any]:
    if "form" in content_type:
        return lambda body: parse_qs(body.decode(), keep_blank_values=True)
    if "xml" in content_type:
        return ElementTree.fromstring
    return json.loads  # JSON, and SNS's JSON sent as text/plain


def baseline(provider: str, signed: Any) -> Callable[[], None]:
    """The provider's signature primitive over the body plus the bare parse, as one call."""
    body = signed.body
    parse = _parse(signed.headers.get("Content-Type", signed.headers.get("content-type", "")).lower())
    if provider in ED25519:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        public, signature = private.public_key(), private.sign(b"1700000000" + body)

        def check() -> None:
            public.verify(signature, b"1700000000" + body)
    elif provider in RSA:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_rsa, rsa_signature = key.public_key(), key.sign(body, padding.PKCS1v15(), hashes.SHA256())

        def check() -> None:
            public_rsa.verify(rsa_signature, body, padding.PKCS1v15(), hashes.SHA256())
    elif provider in UNSIGNED:
        secret = b"s" * 32

        def check() -> None:
            hmac.compare_digest(secret, b"s" * 32)
    else:
        digest = hashlib.sha1 if provider in SHA1 else hashlib.sha256
        expected = hmac.new(b"k" * 32, body, digest).digest()

        def check() -> None:
            hmac.compare_digest(
                base64.b64encode(hmac.new(b"k" * 32, body, digest).digest()), base64.b64encode(expected)
            )

    def run() -> None:
        check()
        parse(body)

    return run


# ----------------------------------------------------------------------------- measuring


@dataclass
class Figures:
    hub_us: float
    baseline_us: float
    body_bytes: int

    @property
    def ratio(self) -> float:
        return self.hub_us / self.baseline_us


def measure(provider: str, rounds: int, scale: float) -> dict[int, Figures]:
    from infra.local.samples import demo_credentials

    now = datetime.now(UTC)
    credentials = demo_credentials(provider)
    url = f"https://hooks.example.com/webhooks/{provider}/{CONNECTION}"
    hub = hub_work(provider, credentials, now)
    found: dict[int, Figures] = {}
    for size in SIZES:
        signed = sized_sample(provider, size, credentials, url, now)
        base = baseline(provider, signed)
        repeat = max(2, int(scale * 200 * 1024 / size))
        hub(signed)  # warm: the SNS certificate, the adapter's caches
        hub_samples, base_samples = [], []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(repeat):
                hub(signed)
            hub_samples.append((time.process_time() - started) / repeat * 1e6)
            started = time.process_time()
            for _ in range(repeat):
                base()
            base_samples.append((time.process_time() - started) / repeat * 1e6)
        found[size] = Figures(statistics.median(hub_samples), statistics.median(base_samples), len(signed.body))
    return found


def linearity(figures: dict[int, Figures]) -> float:
    """The 256 KB figure over a straight line through the 1 KB and 16 KB ones."""
    small, middle, large = (figures[size] for size in SIZES)
    slope = (middle.hub_us - small.hub_us) / (middle.body_bytes - small.body_bytes)
    predicted = small.hub_us + slope * (large.body_bytes - small.body_bytes)
    return large.hub_us / predicted if predicted > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): no verdict")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--provider", action="append", help="only these (repeatable)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 1)")
    args = parser.parse_args(argv)
    from infra.local.sns_dev import DEV_CERT_DIR_ENV, dev_certificate_dir
    from switchboard_core.providers import PROVIDER_NAMES

    # As under `switchboard dev`: the sns samples' demo certificate is trusted (dev only).
    os.environ.setdefault(DEV_CERT_DIR_ENV, str(dev_certificate_dir()))
    rounds, scale = (args.rounds or 1, 0.05) if args.quick else (args.rounds or 5, 1.0)
    providers = [p for p in PROVIDER_NAMES if not args.provider or p in args.provider]
    report: dict[str, Any] = {"quick": args.quick, "rounds": rounds, "target": TARGET, "providers": {}}
    missed: list[str] = []
    for provider in providers:
        figures = measure(provider, rounds, scale)
        linear = linearity(figures)
        row = {
            str(size): {
                "body_bytes": f.body_bytes,
                "hub_us": round(f.hub_us, 1),
                "baseline_us": round(f.baseline_us, 1),
                "ratio": round(f.ratio, 2),
            }
            for size, f in figures.items()
        }
        over = [size for size, f in figures.items() if f.ratio > TARGET]
        report["providers"][provider] = {"sizes": row, "linearity": round(linear, 2), "missed_sizes": over}
        if over or linear > LINEARITY_TARGET:
            missed.append(provider)
    report["missed"] = missed
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"warm CPU per webhook, hub's work (ingest's logic, AWS faked) vs the provider's signature primitive + "
            f"bare parse; median of {rounds} interleaved rounds; us (ratio); target <= {TARGET}x, 256 KB <= "
            f"{LINEARITY_TARGET}x a line through 1 KB and 16 KB"
        )
        print(f"  {'provider':18} {'1 KB':>22} {'16 KB':>22} {'256 KB':>24}  linear  verdict")
        for provider, entry in report["providers"].items():
            cells = [
                f"{s['hub_us']:>8.1f}/{s['baseline_us']:<7.1f}({s['ratio']:5.2f}x)" for s in entry["sizes"].values()
            ]
            verdict = "MISSED" if provider in missed else "ok"
            print(f"  {provider:18} {'  '.join(cells)}  {entry['linearity']:5.2f}x  {verdict}")
    if missed and not args.quick:
        print(f"provider CPU target missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
