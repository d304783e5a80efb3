"""Hostile requests the ingest, admin and gateway tests share: the catalogue of the issue's
cases (oversized, deeply nested, XML entity expansion, header injection, odd ids, unicode edge
cases) and a re-signer that signs an arbitrary body the way each provider's sample does, so a
hostile body passes verification and reaches the parser instead of stopping at a 401.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from infra.local.samples import (
    discord,
    hubspot,
    intercom,
    linkedin,
    meta,
    slack,
    standard_webhooks,
    telnyx,
    websub,
    x,
    zendesk,
)
from infra.local.samples.base import SignedRequest

# --- bodies -----------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
XXE_FILE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>'
XXE_NETWORK = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><x/>'
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "' + b"A" * 50_000 + b'">]><x>' + b"&a;" * 200 + b"</x>"
)
DEEP_XML = b"<a>" * 50_000 + b"</a>" * 50_000

HOSTILE_BODIES: dict[str, bytes] = {
    "empty": b"",
    "deep-json-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-json-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "huge-json-number": b'{"n": ' + b"9" * 50_000 + b"}",
    "json-escaped-lone-surrogate": b'{"text": "\\ud800", "message": {"text": "\\udfff"}}',
    "json-nul": b'{"text": "a\\u0000b\\u0000"}',
    "json-duplicate-keys": b'{"type": "a", "type": "b", "id": 1, "id": "x"}',
    "json-nan": b'{"n": NaN, "i": Infinity, "m": -Infinity}',
    "bom-json": b"\xef\xbb\xbf{}",
    "utf16-json": '{"a": 1}'.encode("utf-16"),
    "not-utf8": b"\xff\xfe\xfa\x80\x81",
    "overlong-utf8": b'{"path": "\xc0\xae\xc0\xae\xc0\xaf", "nul": "\xc0\x80"}',
    "encoded-surrogate-utf8": b'{"text": "\xed\xa0\x80"}',
    "nul-bytes": b"\x00" * 64,
    "billion-laughs": BILLION_LAUGHS,
    "xxe-file": XXE_FILE,
    "xxe-network-dtd": XXE_NETWORK,
    "quadratic-blowup": QUADRATIC_BLOWUP,
    "deep-xml": DEEP_XML,
    "form-repeated-keys": b"a=1&a=2&a=&&=&b&%ff=%fe&From=%2B1&From=%2B2&Body=x&Body=y",
    "form-bad-escapes": b"a=%zz&%=%%&b=%ED%A0%80&c=%C0%AE",
}
"""Bodies a client may send by mistake or on purpose; none of them is a server error."""

UNICODE_EDGES = (
    "\u0000",  # NUL
    "\ufeff",  # BOM / zero-width no-break space
    "\u202e",  # right-to-left override
    "\u2066\u2069",  # isolates
    "\u200b\u200d",  # zero-width space and joiner
    "\U0001f4a9",  # outside the BMP (a UTF-16 pair)
    "e\u0301",  # combining mark
    "\uffff\ufffe",  # non-characters
    "\u2028\u2029",  # line and paragraph separators (break JavaScript string literals)
    "\r\n\t\x0b\x0c",
)
"""Valid text that is seldom expected: a request carrying it is as good as any other."""

# --- headers, queries and ids -----------------------------------------------------------------

HOSTILE_HEADER_VALUES: dict[str, str] = {
    "crlf-injection": "a\r\nX-Injected: 1\r\n\r\nbody",
    "bare-lf": "a\nb",
    "nul": "a\x00b",
    "lone-surrogate": "\ud800",
    "rtl-override": "\u202eevil",
    "latin-1": "caf\xe9",
    "very-long": "x" * 16_384,
    "empty": "",
}
HOSTILE_QUERIES: dict[str, str] = {
    "percent-surrogate": "a=%ED%A0%80&b=%ff%fe",
    "raw-surrogate": "a=\ud800",
    "nul": "a=%00&b=\x00",
    "bad-escapes": "%%%&&&==;;&%zz=1",
    "repeated": "a=1&a=2&a=3&hub.mode=subscribe&hub.mode=unsubscribe",
    "very-long": "a=" + "x" * 16_384,
    "overlong": "p=%C0%AE%C0%AE%C0%AF",
}
HOSTILE_IDS: dict[str, str] = {
    "traversal-encoded": "..%2F..%2Fetc%2Fpasswd",
    "traversal": "../../etc/passwd",
    "traversal-backslash": "..\\..\\windows",
    "dot": ".",
    "dotdot": "..",
    "nul": "con_\x00",
    "lone-surrogate": "\ud800",
    "rtl-override": "con_\u202e0001",
    "unicode": "c\u00f6n_\U0001f4a9",
    "crlf": "con\r\nx",
    "10kb": "c" * 10_240,
    "percent": "%00%ff",
    "json": '{"$ne": null}',
}


# --- signing arbitrary bodies ------------------------------------------------------------------


def resign(provider: str, credentials: dict[str, str], sample: SignedRequest, body: bytes) -> SignedRequest | None:
    """`sample` carrying `body` instead, signed as the provider signs it (its timestamp and
    other headers kept); None for a provider whose signature does not cover the body alone
    (the URL-and-parameter signers and SNS, whose signature is inside the body)."""
    headers = dict(sample.headers)

    def header(name: str) -> str:
        return next(v for k, v in headers.items() if k.lower() == name.lower())

    match provider:
        case "bandwidth" | "pipedrive" | "freshdesk" | "telegram":
            pass  # credentials in a header, not a signature over the body
        case "meta":
            headers["X-Hub-Signature-256"] = meta.meta_signature(credentials["app_secret"], body)
            headers.pop("X-Hub-Signature", None)
        case "x":
            headers["X-Twitter-Webhooks-Signature"] = x.x_signature(credentials["consumer_secret"], body)
        case "slack":
            stamp = header("X-Slack-Request-Timestamp")
            headers["X-Slack-Signature"] = slack.slack_signature(credentials["signing_secret"], stamp, body)
        case "discord":
            stamp = header("X-Signature-Timestamp")
            headers["X-Signature-Ed25519"] = discord.discord_signature(credentials["demo_private_key"], stamp, body)
        case "intercom":
            headers["X-Hub-Signature"] = intercom.intercom_signature(credentials["client_secret"], body)
        case "linkedin":
            headers["X-LI-Signature"] = linkedin.linkedin_signature(credentials["client_secret"], body)
        case "websub":
            method = header("X-Hub-Signature").split("=", 1)[0]
            headers["X-Hub-Signature"] = websub.hub_signature(credentials["secret"], body, method)
        case "zendesk":
            stamp = header("X-Zendesk-Webhook-Signature-Timestamp")
            headers["X-Zendesk-Webhook-Signature"] = zendesk.zendesk_signature(
                credentials["signing_secret"], stamp, body
            )
        case "standard-webhooks":
            headers["webhook-signature"] = standard_webhooks.standard_webhooks_signature(
                credentials["secret"], header("webhook-id"), header("webhook-timestamp"), body
            )
        case "telnyx":
            stamp = header("telnyx-timestamp")
            headers["telnyx-signature-ed25519"] = telnyx.sign(credentials["signing_key"], stamp, body)
        case "hubspot":
            stamp = header("X-HubSpot-Request-Timestamp")
            headers["X-HubSpot-Signature-v3"] = hubspot.hubspot_signature_v3(
                credentials["client_secret"], "POST", sample.url, body, stamp
            )
            headers.pop("X-HubSpot-Signature", None)
            headers.pop("X-HubSpot-Signature-Version", None)
        case _:
            return None
    return replace(sample, headers=headers, body=body)


def with_unicode_edges(value: Any, edge: str) -> Any:
    """`value` (parsed JSON) with `edge` appended to every string that is not a number, a
    time, an id the provider checks or a type name (kept so the request still normalises)."""
    if isinstance(value, dict):
        return {k: v if k in KEEP_KEYS else with_unicode_edges(v, edge) for k, v in value.items()}
    if isinstance(value, list):
        return [with_unicode_edges(v, edge) for v in value]
    if isinstance(value, str):
        return value + edge
    return value


KEEP_KEYS = frozenset(
    {
        "type",
        "time",
        "timestamp",
        "id",
        "event_id",
        "update_id",
        "message_id",
        "date",
        "event_type",
        "occurred_at",
        "created_at",
        "createdAt",
        "to",
        "from",
        "direction",
        "record_type",
        "event",
        "meta",
        "current",
        "previous",
        "triggered_at",
        "v",
    }
)


def json_with_unicode_edges(body: bytes, edge: str) -> bytes:
    return json.dumps(with_unicode_edges(json.loads(body), edge), ensure_ascii=False).encode("utf-8")
