"""Hostile input end to end: the ingest handler in-process against moto, called with the HTTP
API (payload 2.0) events API Gateway would send, for every provider.

Each request starts from the provider's own signed sample (infra/local/samples) and is spoiled
one way: a hostile body (re-signed where the provider signs the body alone, so it reaches the
parser: tests/hostile.py), a hostile header value or duplicated signature header, a hostile
query string, an odd provider or connection id in the path. Whatever the spoiling, the answer
is never a 5xx nor an exception out of the handler; a 4xx is the hub's JSON error naming the
problem; and signed payloads whose strings carry unusual text are accepted and stored.

The property test draws the same kinds of spoiling at random (derandomised, a few hundred
examples by default; `SWITCHBOARD_FUZZ_EXAMPLES` sets the count, as in `make fuzz`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import topology
from infra.local.lambdas import LocalFunctions
from infra.local.samples import SAMPLES, build_sample, demo_credentials
from infra.local.samples.base import SignedRequest
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from tests.hostile import (
    HOSTILE_BODIES,
    HOSTILE_HEADER_VALUES,
    HOSTILE_IDS,
    HOSTILE_QUERIES,
    UNICODE_EDGES,
    json_with_unicode_edges,
    resign,
)

PROVIDERS = sorted(SAMPLES)
FUZZ_EXAMPLES = os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES")
HOST = "hooks.example.com"


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]


@dataclass
class Hub:
    """One connection per provider, with fresh demo credentials, and a way to send."""

    connections: dict[str, str]
    credentials: dict[str, dict[str, str]]
    functions: LocalFunctions
    s3: Any
    bucket: str

    def sample(self, provider: str, sample: str | None = None) -> SignedRequest:
        url = f"https://{HOST}/webhooks/{provider}/{self.connections[provider]}"
        return build_sample(provider, sample, self.credentials[provider], url)

    def send(
        self,
        request: SignedRequest,
        *,
        method: str | None = None,
        path: str | None = None,
        query: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        parts = urlsplit(request.url)
        path = parts.path if path is None else path
        segments = path.split("/")
        event = {
            "version": "2.0",
            "routeKey": "ANY /webhooks/{provider}/{connection}",
            "rawPath": path,
            "rawQueryString": parts.query if query is None else query,
            "headers": {
                "host": HOST,
                "x-forwarded-proto": "https",
                **{k.lower(): v for k, v in request.headers.items()},
                **(headers or {}),
            },
            "pathParameters": {"provider": segments[2] if len(segments) > 2 else "", "connection": segments[-1]},
            "requestContext": {
                "http": {"method": method or request.method, "path": path, "sourceIp": "198.51.100.7"},
                "domainName": HOST,
                "requestId": "r",
                "routeKey": "ANY /webhooks/{provider}/{connection}",
                "stage": "$default",
            },
            # Base64, as API Gateway passes a body it cannot pass as UTF-8 text: exact bytes.
            "body": base64.b64encode(request.body).decode(),
            "isBase64Encoded": True,
        }
        result = self.functions.invoke("ingest", event)
        return Answer(result["statusCode"], result.get("body") or "", dict(result.get("headers") or {}))

    def raw_objects(self) -> int:
        return self.s3.list_objects_v2(Bucket=self.bucket).get("KeyCount", 0)


@pytest.fixture
def hub(aws_world) -> Hub:
    names = aws_world.names
    store = ConnectionStore(aws.resource("dynamodb").Table(names.table("connections")))
    secrets = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"))
    connections, credentials = {}, {}
    for number, provider in enumerate(PROVIDERS):
        connections[provider] = f"con_{number:016x}"
        credentials[provider] = demo_credentials(provider)
        store.put(Connection(id=connections[provider], provider=provider, tenant="acme", created_at=datetime.now(UTC)))
        secrets.create(connections[provider], credentials[provider], "acme")
    return Hub(connections, credentials, LocalFunctions(names.mapping(), "test"), aws.client("s3"), names.bucket("raw"))


def assert_client_answer(answer: Answer, what: str) -> None:
    """Not a server error; a refusal is the hub's JSON error with a code and a message."""
    assert answer.status < 500, (what, answer)
    if answer.status >= 400:
        error = json.loads(answer.body)["error"]
        assert error["code"] and error["message"], (what, answer)


def spoil(hub: Hub, provider: str, send: Callable[[SignedRequest], Answer], what: str) -> Answer:
    """Send `provider`'s fresh signed sample through `send` (which spoils it) and check the answer."""
    answer = send(hub.sample(provider))
    assert_client_answer(answer, f"{provider}: {what}")
    return answer


# --- the catalogue, for every provider ---------------------------------------------------------


def test_hostile_bodies_are_refused_with_a_4xx_never_a_5xx(hub):
    for provider in PROVIDERS:
        for name, body in HOSTILE_BODIES.items():
            sample = hub.sample(provider)
            spoiled = resign(provider, hub.credentials[provider], sample, body) or SignedRequest(
                sample.method, sample.url, sample.headers, body
            )
            assert_client_answer(hub.send(spoiled), f"{provider}: body {name}")


def test_bodies_over_the_limit_are_a_413_json_error(hub):
    for provider in PROVIDERS:
        # API Gateway's HTTP API passes up to 10 MB; ingest refuses above its own 1 MB first.
        sample = hub.sample(provider)
        big = SignedRequest(sample.method, sample.url, sample.headers, b"{" + b" " * topology.MAX_BODY_BYTES + b"}")
        answer = hub.send(resign(provider, hub.credentials[provider], sample, big.body) or big)
        assert answer.status == 413
        assert json.loads(answer.body)["error"]["code"] == "payload_too_large"


def json_resignable(provider: str) -> bool:
    credentials = demo_credentials(provider)
    sample = build_sample(provider, None, credentials, f"https://{HOST}/webhooks/{provider}/c")
    try:
        json.loads(sample.body)
    except ValueError:
        return False  # XML and form bodies: in the catalogue and the adapters' property tests
    return resign(provider, credentials, sample, sample.body) is not None


def test_unicode_edge_cases_in_every_string_are_accepted_and_stored(hub):
    """NUL, BOM, RTL overrides, non-BMP and non-characters inside a signed JSON payload's strings
    are text like any other: accepted and its raw request stored (for the providers whose
    signature covers the body alone; the others' adapter property tests sign generated text)."""
    providers = [p for p in PROVIDERS if json_resignable(p)]
    assert len(providers) >= 14
    stored_before = hub.raw_objects()
    accepted = 0
    for number, provider in enumerate(providers):
        for edge in (UNICODE_EDGES * 2)[number % len(UNICODE_EDGES) :][:4]:  # every edge, four per provider
            sample = hub.sample(provider)
            spoiled = resign(provider, hub.credentials[provider], sample, json_with_unicode_edges(sample.body, edge))
            assert spoiled is not None
            answer = hub.send(spoiled)
            assert 200 <= answer.status < 300, (provider, repr(edge), answer)
            accepted += 1
    assert hub.raw_objects() - stored_before == accepted


def test_hostile_headers_and_duplicate_signature_headers(hub):
    for provider in PROVIDERS:
        signed_names = [name.lower() for name in hub.sample(provider).headers]
        targets = [*signed_names, "x-extra", "host", "x-forwarded-proto", "x-forwarded-port"]
        for number, (name, value) in enumerate(HOSTILE_HEADER_VALUES.items()):
            # Each hostile value in one header, the headers taken in turn (from a different
            # start for each provider, so every header meets every value across providers).
            header = targets[(number + PROVIDERS.index(provider)) % len(targets)]
            spoil(hub, provider, lambda r, h=header, v=value: hub.send(r, headers={h: v}), f"header {header}: {name}")
        for header in [h for h in signed_names if h not in ("content-type", "user-agent")]:
            # API Gateway joins a repeated header's values with commas: two signatures, or one
            # valid and one forged, are one header the adapter must parse or refuse.
            def doubled(r: SignedRequest, header: str = header) -> Answer:
                value = next(v for k, v in r.headers.items() if k.lower() == header)
                return hub.send(r, headers={header: f"{value},{value}"})

            def forged_first(r: SignedRequest, header: str = header) -> Answer:
                value = next(v for k, v in r.headers.items() if k.lower() == header)
                return hub.send(r, headers={header: f"forged,{value}"})

            spoil(hub, provider, doubled, f"header {header} twice")
            spoil(hub, provider, forged_first, f"header {header} after a forged value")


def test_hostile_query_strings_on_posts_and_handshakes(hub):
    for provider in PROVIDERS:
        for number, (name, query) in enumerate(HOSTILE_QUERIES.items()):
            spoil(hub, provider, lambda r, q=query: hub.send(r, method="GET", query=q), f"GET ?{name}")
            if (number + PROVIDERS.index(provider)) % 3 == 0:  # a POST is accepted (stored): a third of them
                spoil(hub, provider, lambda r, q=query: hub.send(r, query=q), f"POST ?{name}")


def test_odd_ids_in_the_path_are_a_404(hub):
    """Path traversal, control and format characters and 10 KB ids, percent-encoded (as they
    travel in a URL) or decoded: an unknown provider, connection or route, never a lookup of
    something else."""
    provider = "twilio"
    connection = hub.connections[provider]
    for name, odd in HOSTILE_IDS.items():
        encoded = quote(odd, safe="", errors="surrogatepass")
        for path in (
            f"/webhooks/{provider}/{encoded}",
            f"/webhooks/{provider}/{odd}",
            f"/webhooks/{encoded}/{connection}",
            f"/webhooks/{odd}/{connection}",
        ):
            answer = spoil(hub, provider, lambda r, p=path: hub.send(r, path=p), f"path {name}: {path[:80]!r}")
            assert answer.status == 404, (path[:80], answer)


def test_a_traversing_connection_id_is_a_404_for_every_provider(hub):
    for provider in PROVIDERS:
        for odd in ("..%2F..%2F" + hub.connections[provider], "../" + hub.connections[provider]):
            answer = hub.send(hub.sample(provider), path=f"/webhooks/{provider}/{odd}")
            assert answer.status == 404, (odd, answer)
            assert json.loads(answer.body)["error"]["code"] in ("unknown_connection", "unknown_route")


def test_an_unmatched_path_gets_the_hubs_404_not_powertools_default(hub):
    answer = hub.send(hub.sample("twilio"), path="/webhooks/twilio/con_\u202e")
    assert answer.status == 404
    assert json.loads(answer.body)["error"]["code"] == "unknown_route"


def test_a_lone_surrogate_in_a_text_body_is_a_400_naming_it(hub):
    sample = hub.sample("telegram")
    event_body = '{"update_id": 1, "message": {"text": "\ud800"}}'
    parts = urlsplit(sample.url)
    event = {
        "version": "2.0",
        "rawPath": parts.path,
        "rawQueryString": "",
        "headers": {"host": HOST, **{k.lower(): v for k, v in sample.headers.items()}},
        "requestContext": {"http": {"method": "POST", "path": parts.path}, "domainName": HOST, "stage": "$default"},
        "body": event_body,
        "isBase64Encoded": False,
    }
    result = hub.functions.invoke("ingest", event)
    assert result["statusCode"] == 400
    assert "surrogate" in json.loads(result["body"])["error"]["message"]


# --- the property test -------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40) | st.sampled_from(
    [*HOSTILE_HEADER_VALUES.values(), *UNICODE_EDGES]
)
BODIES = st.one_of(
    st.sampled_from(list(HOSTILE_BODIES.values())),
    st.binary(max_size=256),
    st.integers(1, 5_000).map(lambda n: b"[" * n + b"]" * n),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(
    max_examples=int(FUZZ_EXAMPLES or 100),
    deadline=None,
    derandomize=FUZZ_EXAMPLES is None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_property_no_spoiled_request_gets_a_5xx(hub, data):
    provider = data.draw(st.sampled_from(PROVIDERS), label="provider")
    sample = hub.sample(provider)
    body = data.draw(st.none() | BODIES, label="body")
    if body is not None:
        sample = resign(provider, hub.credentials[provider], sample, body) or SignedRequest(
            sample.method, sample.url, sample.headers, body
        )
    headers = data.draw(
        st.dictionaries(st.sampled_from([*(k.lower() for k in sample.headers), "x-extra", "host"]), TEXT, max_size=2),
        label="headers",
    )
    query = data.draw(st.none() | st.sampled_from(list(HOSTILE_QUERIES.values())) | TEXT, label="query")
    method = data.draw(st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD"]), label="method")
    answer = hub.send(sample, method=method, query=query, headers=headers)
    assert_client_answer(answer, f"{provider} {method}")
