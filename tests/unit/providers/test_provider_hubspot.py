"""HubSpot adapter: signatures v3/v2/v1 (vectors, SDK interop, URI decoding, replay window), delivery id,
normalisation, fuzzing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hubspot.utils.signature import Signature
from hypothesis import given
from hypothesis import strategies as st

from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.hubspot import HubSpotAdapter, decode_uri
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

SECRET = "3f1c2a7e-2f55-4c7e-9b8e-5d1f0f3c7a10"
HUB_URL = "https://hub.example.com/webhooks/hubspot/conn_01HZZ"
NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
NOW_MS = str(int(NOW.timestamp() * 1000))

# providers.md §4 #10 (hubspot-api-python tests/spec/utils/test_signature.py)
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
VECTOR_BODY = b"{'example_field':'example_value'}"
VECTOR_URI = "https://www.example.com/webhook_uri"
VECTOR_TIMESTAMP = "1693657560000"
VECTOR_SIGNATURE = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
# providers.md §4 #8 and #9 (same test module): v1 and v2, plus the SDK's v2 GET case (empty body)
VECTOR_V1 = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
VECTOR_V2 = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
VECTOR_V2_GET = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"


def make_request(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> WebhookRequest:
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def sdk_signed(
    body: bytes, url: str = HUB_URL, timestamp: str = NOW_MS, secret: str = SECRET, method: str = "POST"
) -> WebhookRequest:
    signature = Signature.get_signature(
        secret, body.decode(), "v3", http_uri=url, http_method=method, timestamp=timestamp
    )
    return make_request(
        url,
        body,
        {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": timestamp,
        },
        method=method,
    )


def recorded(name: str) -> bytes:
    return recorded_event("hubspot", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "hubspot", Channel.CRM, NOW)


@pytest.fixture
def adapter() -> HubSpotAdapter:
    return get_adapter("hubspot")


# --- signature ---------------------------------------------------------------------------------


def test_vector_v3(adapter):
    request = make_request(
        VECTOR_URI,
        VECTOR_BODY,
        {"X-HubSpot-Signature-v3": VECTOR_SIGNATURE, "X-HubSpot-Request-Timestamp": VECTOR_TIMESTAMP},
    )
    adapter.verify(request, {"client_secret": VECTOR_SECRET}, datetime.fromtimestamp(1693657560 + 30, UTC))


def test_sdk_signature_is_accepted(adapter):
    adapter.verify(sdk_signed(recorded("batch-mixed.json")), {"client_secret": SECRET}, NOW)


def test_sdk_signature_with_query_string_is_accepted(adapter):
    adapter.verify(
        sdk_signed(recorded("contact-creation.json"), url=HUB_URL + "?portal=33&v=2"), {"client_secret": SECRET}, NOW
    )


def test_percent_encoded_uri_is_decoded_per_hubspot_table(adapter):
    """HubSpot hashes the URI with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B decoded."""
    received = HUB_URL + "?next=https%3A%2F%2Fexample.com%2Fa%3Fb%40c%21%24%27%28%29%2A%2C%3B&q=a%20b"
    decoded = HUB_URL + "?next=https://example.com/a?b@c!$'()*,;&q=a%20b"
    assert decode_uri(received) == decoded
    assert decode_uri(received.lower()) != received.lower()  # lower-case escapes are decoded too
    body = recorded("contact-creation.json")
    signature = Signature.get_signature(SECRET, body.decode(), "v3", http_uri=decoded, timestamp=NOW_MS)
    request = make_request(received, body, {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": NOW_MS})
    adapter.verify(request, {"client_secret": SECRET}, NOW)


def test_sdk_validator_accepts_a_signature_from_the_documented_algorithm():
    body = recorded("contact-creation.json")
    message = b"POST" + HUB_URL.encode() + body + NOW_MS.encode()
    ours = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
    assert Signature.get_signature(SECRET, body.decode(), "v3", http_uri=HUB_URL, timestamp=NOW_MS) == ours


def test_tampered_body_is_refused(adapter):
    request = sdk_signed(recorded("batch-mixed.json"))
    tampered = make_request(HUB_URL, request.body.replace(b"Ada.Lovelace", b"Eve.Attacker"), dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, {"client_secret": SECRET}, NOW)


def test_tampered_timestamp_is_refused(adapter):
    request = sdk_signed(recorded("batch-mixed.json"))
    headers = {**request.headers, "x-hubspot-request-timestamp": str(int(NOW_MS) + 1000)}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, request.body, headers), {"client_secret": SECRET}, NOW)


def test_other_method_or_url_is_refused(adapter):
    request = sdk_signed(recorded("batch-mixed.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(HUB_URL, request.body, dict(request.headers), method="PUT"), {"client_secret": SECRET}, NOW
        )
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL + "x", request.body, dict(request.headers)), {"client_secret": SECRET}, NOW)


def test_wrong_key_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(sdk_signed(recorded("batch-mixed.json")), {"client_secret": "another"}, NOW)


@pytest.mark.parametrize("missing", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_missing_header_is_refused_by_name(adapter, missing):
    request = sdk_signed(recorded("batch-mixed.json"))
    headers = {k: v for k, v in request.headers.items() if k != missing.lower()}
    with pytest.raises(SignatureError, match=missing):
        adapter.verify(make_request(HUB_URL, request.body, headers), {"client_secret": SECRET}, NOW)


def legacy_signed(
    body: bytes, version: str, url: str = HUB_URL, secret: str = SECRET, method: str = "POST"
) -> WebhookRequest:
    signature = Signature.get_signature(secret, body.decode(), version, http_uri=url, http_method=method)
    return make_request(
        url,
        body,
        {"Content-Type": "application/json", "X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version},
        method=method,
    )


@pytest.mark.parametrize(
    ("version", "expected", "method", "body"),
    [
        ("v1", VECTOR_V1, "POST", VECTOR_BODY),
        ("v2", VECTOR_V2, "POST", VECTOR_BODY),
        ("v2", VECTOR_V2_GET, "GET", b""),
    ],
)
def test_vectors_v1_v2(adapter, version, expected, method, body):
    request = make_request(
        VECTOR_URI, body, {"X-HubSpot-Signature": expected, "X-HubSpot-Signature-Version": version}, method=method
    )
    adapter.verify(request, {"client_secret": VECTOR_SECRET}, NOW)  # no timestamp: any clock
    upper = make_request(
        VECTOR_URI,
        body,
        {"X-HubSpot-Signature": expected.upper(), "X-HubSpot-Signature-Version": version.upper()},
        method=method,
    )
    adapter.verify(upper, {"client_secret": VECTOR_SECRET}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(request, {"client_secret": SECRET}, NOW)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_sdk_legacy_signatures_are_accepted(adapter, version):
    adapter.verify(legacy_signed(recorded("batch-mixed.json"), version), {"client_secret": SECRET}, NOW)
    adapter.verify(
        legacy_signed(recorded("contact-creation.json"), version, url=HUB_URL + "?a=1"),
        {"client_secret": SECRET},
        NOW + timedelta(days=30),
    )


def test_documented_legacy_algorithms_match_the_sdk():
    body = recorded("contact-creation.json")
    v1 = hashlib.sha256(SECRET.encode() + body).hexdigest()
    v2 = hashlib.sha256(SECRET.encode() + b"POST" + HUB_URL.encode() + body).hexdigest()
    assert Signature.get_signature(SECRET, body.decode(), "v1") == v1
    assert Signature.get_signature(SECRET, body.decode(), "v2", http_uri=HUB_URL) == v2


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_legacy_tampered_body_wrong_key_or_version_is_refused(adapter, version):
    request = legacy_signed(recorded("batch-mixed.json"), version)
    tampered = make_request(HUB_URL, request.body.replace(b"Ada.Lovelace", b"Eve.Attacker"), dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, {"client_secret": SECRET}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(request, {"client_secret": "another"}, NOW)
    other = {**request.headers, "x-hubspot-signature-version": "v2" if version == "v1" else "v1"}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, request.body, other), {"client_secret": SECRET}, NOW)


def test_v2_binds_method_and_url(adapter):
    request = legacy_signed(recorded("batch-mixed.json"), "v2")
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL + "x", request.body, dict(request.headers)), {"client_secret": SECRET}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(HUB_URL, request.body, dict(request.headers), method="PUT"), {"client_secret": SECRET}, NOW
        )


@pytest.mark.parametrize("version", [None, "", "v3", "v0", "sha256"])
def test_legacy_signature_needs_a_v1_or_v2_version_header(adapter, version):
    body = recorded("contact-creation.json")
    headers = {"X-HubSpot-Signature": Signature.get_signature(SECRET, body.decode(), "v1")}
    if version is not None:
        headers["X-HubSpot-Signature-Version"] = version
    with pytest.raises(SignatureError, match="X-HubSpot-Signature-Version"):
        adapter.verify(make_request(HUB_URL, body, headers), {"client_secret": SECRET}, NOW)


def test_a_bad_v3_signature_does_not_fall_back_to_a_valid_v1(adapter):
    """Whoever can replay an old v1-signed body must not get around v3's timestamp."""
    body = recorded("batch-mixed.json")
    request = legacy_signed(body, "v1")
    headers = {**request.headers, "x-hubspot-signature-v3": "AAAA", "x-hubspot-request-timestamp": NOW_MS}
    with pytest.raises(SignatureError, match="X-HubSpot-Signature-v3"):
        adapter.verify(make_request(HUB_URL, body, headers), {"client_secret": SECRET}, NOW)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=4, seconds=59), True),
        (timedelta(minutes=-4, seconds=-59), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(days=3), False),
    ],
)
def test_replay_window(adapter, offset, accepted):
    """`offset` is how far the verifier's clock is ahead of the signed timestamp."""
    request = sdk_signed(recorded("batch-mixed.json"))
    if accepted:
        adapter.verify(request, {"client_secret": SECRET}, NOW + offset)
    else:
        with pytest.raises(SignatureError, match=r"older|future"):
            adapter.verify(request, {"client_secret": SECRET}, NOW + offset)


@pytest.mark.parametrize("timestamp", ["", "abc", "1718201285.5", "-1", "١٧١٨٢٠١٢٨٥٠٠٠", "9" * 40])
def test_unreadable_timestamp_is_refused(adapter, timestamp):
    request = sdk_signed(recorded("batch-mixed.json"))
    headers = {**request.headers, "x-hubspot-request-timestamp": timestamp}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, request.body, headers), {"client_secret": SECRET}, NOW)


def test_delivery_id_is_stable_across_retries(adapter):
    """HubSpot bumps attemptNumber inside the body on a retry: the delivery id must not change."""
    events = json.loads(recorded("batch-mixed.json"))
    first = adapter.delivery_id(sdk_signed(json.dumps(events).encode()))
    retried = [{**event, "attemptNumber": 3} for event in reversed(events)]
    assert adapter.delivery_id(sdk_signed(json.dumps(retried, indent=2).encode())) == first
    assert first == "events:" + ",".join(sorted(f"33:{3816279340 + i}" for i in range(9)))
    other = [{**events[0], "eventId": 1}]
    assert adapter.delivery_id(sdk_signed(json.dumps(other).encode())) != first


def test_delivery_id_of_a_large_batch_is_a_digest_and_unreadable_bodies_fall_back(adapter):
    batch = [{"eventId": 10**9 + i, "portalId": 62515} for i in range(100)]
    delivery = adapter.delivery_id(sdk_signed(json.dumps(batch).encode()))
    assert delivery.startswith("events-sha256:") and len(delivery) < 100
    assert adapter.delivery_id(sdk_signed(json.dumps(batch[::-1]).encode())) == delivery
    for body in (b"not json", b"[]", b'[{"portalId": 1}]', b'{"eventId": 1}'):
        assert adapter.delivery_id(sdk_signed(body)) == "sha256:" + hashlib.sha256(body).hexdigest()


# --- malformed bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"eventId": 1}',
        b"[]",
        b"[1]",
        b'[{"subscriptionType": "contact.creation"}]',
        b'[{"eventId": null}]',
        b'[{"eventId": true}]',
        b'[{"eventId": ""}]',
        b'[{"eventId": {"a": 1}}]',
        b"\xef\xbb\xbf[]",
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(sdk_signed(body) if body.isascii() else make_request(HUB_URL, body, {}))


# --- normalisation --------------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(sdk_signed(recorded(name)))
    assert_publishable(drafts)
    return drafts


def test_documented_contact_creation(adapter):
    [event] = normalise(adapter, "contact-creation.json")
    assert event.type == "contact.created"
    assert event.provider_event_id == "1"
    assert event.contact.crm_ids == {"hubspot": "123"}
    assert event.conversation_key == "hubspot:62515:contact:123"
    assert event.occurred_at == datetime(2019, 7, 26, 4, 0, tzinfo=UTC)
    assert event.attributes["subscriptionType"] == "contact.creation"
    assert event.attributes["changeFlag"] == "NEW"
    assert "eventId" not in event.attributes


def test_batch_yields_one_event_per_item(adapter):
    events = normalise(adapter, "batch-mixed.json")
    assert [e.type for e in events] == [
        "contact.updated",
        "contact.updated",
        "contact.deleted",
        "deal.created",
        "ticket.updated",
        "crm.object_changed",
        "crm.object_changed",
        "deal.created",
        "crm.object_changed",
    ]
    assert [e.provider_event_id for e in events] == [str(3816279340 + i) for i in range(9)]
    email, phone, deleted, deal, ticket, merge, association, generic, conversation = events
    assert email.contact.email == "ada.lovelace@example.com"
    assert email.attributes["propertyName"] == "email"
    assert email.attributes["propertyValue"] == "Ada.Lovelace@Example.com"
    assert phone.contact.phone == "+14155550123"
    assert deleted.contact.crm_ids == {"hubspot": "1246966"}
    assert deal.contact.crm_ids == {"hubspot_deal": "9012345"}
    assert deal.conversation_key == "hubspot:33:deal:9012345"
    assert ticket.attributes["propertyName"] == "hs_pipeline_stage"
    assert merge.attributes["subscriptionType"] == "contact.merge"
    assert merge.attributes["mergedObjectIds"] == [1246968]
    assert association.attributes["associationType"] == "CONTACT_TO_COMPANY"
    assert association.conversation_key is None  # no objectId
    assert generic.contact.crm_ids == {"hubspot_deal": "9012346"}
    assert conversation.attributes["messageId"] == "a1b2c3d4e5"


def test_property_change_with_unusable_values_leaves_contact_fields_empty(adapter):
    body = json.dumps(
        [
            {
                "eventId": 1,
                "portalId": 1,
                "objectId": 2,
                "subscriptionType": "contact.propertyChange",
                "propertyName": "phone",
                "propertyValue": "call me maybe",
                "occurredAt": 1718201285000,
            },
            {
                "eventId": 2,
                "portalId": 1,
                "objectId": 2,
                "subscriptionType": "contact.propertyChange",
                "propertyName": "email",
                "propertyValue": "not-an-address",
                "occurredAt": "garbage",
            },
        ]
    ).encode()
    first, second = adapter.normalise(sdk_signed(body))
    assert first.contact.phone is None and second.contact.email is None
    assert second.occurred_at is None
    assert first.attributes["propertyValue"] == "call me maybe"


# --- property tests --------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "contact.creation",
            "contact.propertyChange",
            "deal.deletion",
            "object.creation",
            "0-1",
            "0-3",
            "email",
            "phone",
            "+1 415 555 0100",
            "a@b.c",
            "\ud800",
            "1718201285000",
            "\u00b2",
            "9" * 40,
        ]
    ),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "eventId",
            "subscriptionType",
            "objectId",
            "portalId",
            "occurredAt",
            "propertyName",
            "propertyValue",
            "objectTypeId",
            "attemptNumber",
        ]
    ),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=8)),
    max_leaves=30,
)
SUBSCRIPTIONS = st.sampled_from(
    [
        f"{subject}.{action}"
        for subject in ("contact", "company", "deal", "ticket", "object", "product", "conversation")
        for action in (
            "creation",
            "propertyChange",
            "deletion",
            "privacyDeletion",
            "merge",
            "restore",
            "associationChange",
        )
    ]
)
EVENT = st.fixed_dictionaries(
    {"eventId": st.one_of(st.integers(min_value=0), st.integers(min_value=0).map(str), SCALARS)},
    optional={
        "subscriptionType": st.one_of(SUBSCRIPTIONS, SCALARS),
        "objectId": st.one_of(st.integers(), SCALARS),
        "portalId": st.one_of(st.integers(), SCALARS),
        "occurredAt": st.one_of(st.integers(0, 2**45), SCALARS),
        "objectTypeId": st.one_of(st.sampled_from(["0-1", "0-2", "0-3", "0-5", "2-123"]), SCALARS),
        "propertyName": st.one_of(st.sampled_from(["email", "phone", "mobilephone", "firstname"]), SCALARS),
        "propertyValue": st.one_of(st.emails(), st.sampled_from(["+1 (415) 555-0100", "0044 20 7946 0000"]), SCALARS),
        "attemptNumber": SCALARS,
        "changeSource": SCALARS,
        "mergedObjectIds": JSON_VALUES,
    },
)
HEADERS = st.dictionaries(
    st.one_of(
        st.sampled_from(
            [
                "x-hubspot-signature-v3",
                "x-hubspot-request-timestamp",
                "x-hubspot-signature",
                "x-hubspot-signature-version",
            ]
        ),
        st.text(max_size=10),
    ),
    st.one_of(
        st.text(max_size=50),
        st.just(NOW_MS),
        st.integers().map(str),
        st.just("\udcff"),
        st.sampled_from(["v1", "v2", "V2", "v3"]),
    ),
    max_size=4,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+1 (415) 555-0123", "+14155550123"),
        ("0044 20 7946 0000", "+442079460000"),
        ("+44 20 7946 0000", "+442079460000"),
        ("415 555 0123", None),
        ("+1 555", None),
        ("call me maybe", None),
        # Typed into a CRM: possible numbers the metadata calls invalid are typos as far as we can tell.
        ("+44 7700 900123", None),
        ("+1 555 555 0123", None),
    ],
)
def test_phone_properties_must_be_valid_numbers(adapter, value, expected):
    body = json.dumps(
        [
            {
                "eventId": 1,
                "portalId": 1,
                "objectId": 2,
                "subscriptionType": "contact.propertyChange",
                "propertyName": "mobilephone",
                "propertyValue": value,
            }
        ]
    ).encode()
    [event] = adapter.normalise(sdk_signed(body))
    assert event.contact.phone == expected
    assert event.attributes["propertyValue"] == value


@FUZZ
@given(
    url=st.one_of(st.text(max_size=40), st.just(HUB_URL + "?x=\udcff")),
    method=st.text(max_size=6),
    headers=HEADERS,
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    secret=st.text(max_size=12),
    now=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
)
def test_property_any_request_raises_only_hub_errors(url, method, headers, body, secret, now):
    adapter = get_adapter("hubspot")
    request = WebhookRequest(method=method, url=url, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"client_secret": secret}, now, assert_publishable)


@FUZZ
@given(
    payload=st.one_of(
        st.lists(EVENT, min_size=1, max_size=4),
        st.lists(st.dictionaries(KEYS, JSON_VALUES, max_size=8), max_size=4),
        JSON_VALUES,
    ),
    version=st.sampled_from(["v3", "v2", "v1"]),
)
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload, version):
    adapter = get_adapter("hubspot")
    body = json.dumps(payload).encode()
    request = sdk_signed(body) if version == "v3" else legacy_signed(body, version)
    adapter.verify(request, {"client_secret": SECRET}, NOW)
    assert adapter.delivery_id(request)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
