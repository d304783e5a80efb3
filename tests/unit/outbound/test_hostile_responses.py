"""Hostile answers from the providers' send APIs: a platform (or whatever answers in its place:
a proxy, a captive portal, a compromised endpoint) is outside input too. Whatever status,
body and headers come back, every sender either returns the provider's message id (text)
or raises a SendFailure or Refused, which the calling function turns into a retry, a DLQ
entry or a failed-send event; never an unhandled exception that would stall its queue.

Derandomised, a few hundred examples by default; `SWITCHBOARD_FUZZ_EXAMPLES` sets the count
(`make fuzz`).
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_core.outbound import Refused, SendFailure, send
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from tests.hostile import HOSTILE_BODIES, HOSTILE_HEADER_VALUES, UNICODE_EDGES
from tests.unit.outbound.test_every_sender import CASES

FUZZ_EXAMPLES = os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES")
PROVIDERS = sorted(CASES)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(UNICODE_EDGES)
)
ANSWER_KEYS = ("id", "sid", "message_id", "messages", "data", "ok", "result", "error", "errors", "code", "message")
MORE_KEYS = ("status", "error_code", "detail", "title", "uuid", "message_uuid", "ts", "channel", "ticket", "results")
KEYS = st.sampled_from([*ANSWER_KEYS, *MORE_KEYS]) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=25
)
BODIES = st.one_of(
    JSON.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(list(HOSTILE_BODIES.values())),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=128),
)
HEADER_NAMES = st.sampled_from(
    ["retry-after", "x-rate-limit-reset", "x-business-use-case-usage", "x-app-usage", "content-type", "location"]
)
ODD_HEADER_VALUES = ("[" * 50_000, '{"1": [{"estimated_time_to_regain_access": 1e308}]}', "-1", "1e999")
HEADER_VALUES = st.sampled_from([*HOSTILE_HEADER_VALUES.values(), *ODD_HEADER_VALUES, "Fri, 31 Dec 9999 23:59:59 GMT"])


@settings(
    max_examples=int(FUZZ_EXAMPLES or 300),
    deadline=None,
    derandomize=FUZZ_EXAMPLES is None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    provider=st.sampled_from(PROVIDERS),
    status=st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 429, 500, 503]) | st.integers(100, 599),
    body=BODIES,
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3),
)
def test_property_any_provider_answer_is_an_id_or_a_send_failure(provider, status, body, headers):
    make_credentials, make_address = CASES[provider]

    def transport(request: OutboundRequest) -> ProviderResponse:
        return ProviderResponse(status=status, body=body, headers=headers)

    try:
        message_id = send(make_address(), "hi", make_credentials(), transport, base_url="https://api.example.test")
    except (SendFailure, Refused):
        return
    assert isinstance(message_id, str)
    message_id.encode("utf-8")  # stored and logged: must be text a JSON encoder and DynamoDB take


def test_a_deeply_nested_answer_is_not_json_rather_than_a_recursion_error():
    assert ProviderResponse(status=200, body=b"[" * 100_000 + b"]" * 100_000).json() is None
