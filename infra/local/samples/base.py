"""What every sample module shares: the signed request and small random-data helpers.

A provider's sample module (infra/local/samples/<provider>.py) defines `PROVIDER`,
`SAMPLES` (names, the default first), `demo_credentials()` and
`build(sample, credentials, url, now) -> SignedRequest`; the package finds it by itself.
A provider that reports on what the hub sent (delivery statuses, or the platform's echo of
a published reply) also defines `build_status(credentials, url, now, sent, state, reason)`
-> SignedRequest, which the provider sandbox uses to call the hub back.
Samples sign with hmac/hashlib (or the libraries the hub itself ships): they run in the
installed CLI, where the providers' SDKs are not available.

Phone numbers are from the fictional 555-01xx range; e-mail addresses use example.com.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request ready to send: what the provider would POST to the hub."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def random_hex(n: int) -> str:
    return secrets.token_hex(n)


def phone() -> str:
    """A fictional US number, +1 415 555 0101..0139 (0100 is the demo business number).
    0140..0199 are left to tests that need a customer no random sample can collide with
    (the integration tests share one hub: a sample from the same number would join their
    conversation)."""
    return f"+1415555{101 + secrets.randbelow(39):04d}"


def digits(n: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(n - 1))


def compact_json(payload: Any) -> bytes:
    # Meta and HubSpot send compact JSON with non-ASCII escaped.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def epoch_millis(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def failure_code(reason: str | None, default_code: str, default_words: str) -> tuple[str, str]:
    """A sandbox failure `reason` as the provider's (error code, words): "30003" or
    "30003: Unreachable handset" give the code (and words); free words keep `default_code`."""
    text = (reason or "").strip()
    code, _, words = text.partition(":") if ":" in text else (text, "", "")
    if code.strip().isdigit():
        return code.strip(), words.strip() or default_words
    return default_code, text or default_words
