"""Twilio adapter: published vectors, SDK interop, refusals, normalisation, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.twilio import EMPTY_TWIML, TwilioAdapter
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
HUB_URL = "https://hub.example.com/webhooks/twilio/conn_01HZX"

# providers.md §4 #3-#5 (twilio-python tests/unit/test_request_validator.py)
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_URL_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
VECTOR_JSON_BODY = b'{"property": "value", "boolean": true}'
VECTOR_BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


class MultiDict(dict):
    """What the twilio SDK expects for multi-valued parameters (Flask's getall)."""

    def getall(self, key):
        return self[key]


def make_request(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> WebhookRequest:
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def signed_form(body: bytes, url: str = HUB_URL, token: str = TOKEN, **headers: str) -> WebhookRequest:
    params = MultiDict(parse_qs(body.decode(), keep_blank_values=True))
    signature = RequestValidator(token).compute_signature(url, params)
    return make_request(url, body, {"Content-Type": FORM, "X-Twilio-Signature": signature, **headers})


def signed_json(body: bytes, url: str = HUB_URL, token: str = TOKEN) -> WebhookRequest:
    validator = RequestValidator(token)
    signed_url = f"{url}{'&' if '?' in url else '?'}bodySHA256={validator.compute_hash(body.decode())}"
    signature = validator.compute_signature(signed_url, {})
    return make_request(signed_url, body, {"Content-Type": "application/json", "X-Twilio-Signature": signature})


def recorded(name: str) -> bytes:
    return recorded_event("twilio", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "twilio", Channel.TELEPHONY, NOW)


@pytest.fixture
def adapter() -> TwilioAdapter:
    return get_adapter("twilio")


# --- published vectors ---------------------------------------------------------------


def test_vector_form_signature(adapter):
    request = make_request(
        VECTOR_URL,
        urlencode(VECTOR_PARAMS).encode(),
        {"Content-Type": FORM, "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
    )
    adapter.verify(request, {"auth_token": VECTOR_TOKEN}, NOW)


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (VECTOR_URL_443, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # signed and received with :443
        (VECTOR_URL_443, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),  # signed without the port, received with it
        (VECTOR_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # signed with :443, received without
    ],
)
def test_vector_default_port_variants(adapter, url, signature):
    request = make_request(
        url, urlencode(VECTOR_PARAMS).encode(), {"Content-Type": FORM, "X-Twilio-Signature": signature}
    )
    adapter.verify(request, {"auth_token": VECTOR_TOKEN}, NOW)


def test_vector_json_body(adapter):
    import hashlib

    assert hashlib.sha256(VECTOR_JSON_BODY).hexdigest() == VECTOR_BODY_HASH
    request = make_request(
        f"{VECTOR_URL}&bodySHA256={VECTOR_BODY_HASH}",
        VECTOR_JSON_BODY,
        {"Content-Type": "application/json", "X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="},
    )
    adapter.verify(request, {"auth_token": VECTOR_TOKEN}, NOW)


def test_vector_multi_valued_parameter(adapter):
    body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234"
    request = make_request(
        VECTOR_URL, body, {"Content-Type": FORM, "X-Twilio-Signature": "IK+Dwps556ElfBT0I3Rgjkr1wJU="}
    )
    adapter.verify(request, {"auth_token": VECTOR_TOKEN}, NOW)


# --- official SDK interop ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "sms-inbound.txt",
        "mms-inbound.txt",
        "whatsapp-inbound.txt",
        "message-status-delivered.txt",
        "voice-status-completed.txt",
    ],
)
def test_sdk_signed_form_is_accepted(adapter, name):
    adapter.verify(signed_form(recorded(name)), {"auth_token": TOKEN}, NOW)


def test_sdk_signed_form_with_query_in_url_is_accepted(adapter):
    url = HUB_URL + "?tenant=acme&x=%2Fa"
    adapter.verify(signed_form(recorded("sms-inbound.txt"), url=url), {"auth_token": TOKEN}, NOW)


def test_sdk_signed_json_is_accepted(adapter):
    adapter.verify(signed_json(recorded("event-streams.json")), {"auth_token": TOKEN}, NOW)


def test_sdk_validator_agrees_with_the_adapter_on_a_json_request(adapter):
    request = signed_json(recorded("event-streams.json"))
    assert RequestValidator(TOKEN).validate(request.url, request.body.decode(), request.header("x-twilio-signature"))


# --- refusals ------------------------------------------------------------------------------


def test_tampered_form_body_is_refused(adapter):
    request = signed_form(recorded("sms-inbound.txt"))
    tampered = make_request(request.url, request.body.replace(b"Body=Hi", b"Body=Yo"), dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, {"auth_token": TOKEN}, NOW)


def test_extra_form_parameter_is_refused(adapter):
    request = signed_form(recorded("sms-inbound.txt"))
    tampered = make_request(request.url, request.body + b"&Injected=1", dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, {"auth_token": TOKEN}, NOW)


def test_tampered_json_body_is_refused(adapter):
    request = signed_json(recorded("event-streams.json"))
    tampered = make_request(request.url, request.body.replace(b"delivery", b"billing!"), dict(request.headers))
    with pytest.raises(SignatureError, match="bodySHA256"):
        adapter.verify(tampered, {"auth_token": TOKEN}, NOW)


def test_wrong_key_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(signed_form(recorded("sms-inbound.txt")), {"auth_token": "another-token"}, NOW)


def test_other_url_is_refused(adapter):
    request = signed_form(recorded("sms-inbound.txt"))
    moved = make_request(HUB_URL.replace("conn_01HZX", "conn_other"), request.body, dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(moved, {"auth_token": TOKEN}, NOW)


def test_non_default_port_must_match_exactly(adapter):
    signed = signed_form(recorded("sms-inbound.txt"), url="https://hub.example.com/hook")
    received = make_request("https://hub.example.com:8443/hook", signed.body, dict(signed.headers))
    with pytest.raises(SignatureError):
        adapter.verify(received, {"auth_token": TOKEN}, NOW)


def test_missing_signature_header_is_refused_by_name(adapter):
    request = make_request(HUB_URL, recorded("sms-inbound.txt"), {"Content-Type": FORM})
    with pytest.raises(SignatureError, match="X-Twilio-Signature"):
        adapter.verify(request, {"auth_token": TOKEN}, NOW)


def test_json_without_body_hash_is_refused(adapter):
    body = recorded("event-streams.json")
    signature = RequestValidator(TOKEN).compute_signature(HUB_URL, {})
    request = make_request(HUB_URL, body, {"Content-Type": "application/json", "X-Twilio-Signature": signature})
    with pytest.raises(SignatureError, match="bodySHA256"):
        adapter.verify(request, {"auth_token": TOKEN}, NOW)


def test_body_that_is_not_form_encoding_cannot_verify(adapter):
    body = b"\xff\xfe not a form"
    request = make_request(HUB_URL, body, {"Content-Type": FORM, "X-Twilio-Signature": "AAAA"})
    with pytest.raises(SignatureError):
        adapter.verify(request, {"auth_token": TOKEN}, NOW)
    with pytest.raises(MalformedPayload):
        adapter.normalise(request)


def test_error_messages_never_echo_the_signature_or_token(adapter):
    request = make_request(HUB_URL, b"A=1", {"Content-Type": FORM, "X-Twilio-Signature": "c2VjcmV0LXNpZ25hdHVyZQ=="})
    with pytest.raises(SignatureError) as caught:
        adapter.verify(request, {"auth_token": TOKEN}, NOW)
    assert "c2VjcmV0" not in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"[]", "application/json"),
        (b'"a string"', "application/json"),
        (b"", FORM),
        (b"no-equals-sign", FORM),
        (b"a=1&&b=2", FORM),
        (b"Body=%FF%FE&MessageSid=SM1", FORM),  # percent-decoding uses replacement, still readable
    ],
)
def test_malformed_bodies(adapter, body, content_type):
    request = make_request(HUB_URL, body, {"Content-Type": content_type})
    if body == b"Body=%FF%FE&MessageSid=SM1":
        assert adapter.normalise(request)[0].provider_event_id == "SM1"
        return
    with pytest.raises(MalformedPayload):
        adapter.normalise(request)


# --- normalisation ------------------------------------------------------------------------


def normalise(adapter, name: str):
    content_type = "application/json" if name.endswith(".json") else FORM
    drafts = adapter.normalise(make_request(HUB_URL, recorded(name), {"Content-Type": content_type}))
    assert_publishable(drafts)
    return drafts


def test_inbound_sms(adapter):
    [event] = normalise(adapter, "sms-inbound.txt")
    assert event.type == "message.received"
    assert event.provider_event_id == "SM5c1f6a9d3b2e4f7a8c0d1e2f3a4b5c6d"
    assert event.contact.phone == "+14155550123"
    assert event.text == "Hi! Is my order #4417 on its way?"
    assert event.conversation_key == "twilio:AC0123456789abcdef0123456789abcdef:+14155550100|+14155550123"
    assert event.attachments == []
    assert event.attributes["FromCity"] == "SAN FRANCISCO"
    assert event.attributes["To"] == "+14155550100"
    assert "Body" not in event.attributes


def test_inbound_mms_attachments(adapter):
    [event] = normalise(adapter, "mms-inbound.txt")
    assert event.type == "message.received"
    assert [(a.content_type, a.url.rsplit("/", 1)[1]) for a in event.attachments] == [
        ("image/jpeg", "ME11111111111111111111111111111111"),
        ("application/pdf", "ME22222222222222222222222222222222"),
    ]
    assert event.attributes["NumMedia"] == "2"
    assert not any(key.startswith("MediaUrl") for key in event.attributes)


def test_inbound_whatsapp_via_twilio(adapter):
    [event] = normalise(adapter, "whatsapp-inbound.txt")
    assert event.contact.phone == "+14155550142"
    assert event.contact.name == "Sheena Nelson"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [
        ("whatsapp", "14155550142", "Sheena Nelson")
    ]
    assert event.text == "Hola, ¿tenéis la talla M?"
    assert event.conversation_key.endswith(":whatsapp:+14155550100|whatsapp:+14155550142")


def test_message_status_callback(adapter):
    [event] = normalise(adapter, "message-status-delivered.txt")
    assert event.type == "message.status_updated"
    assert event.provider_event_id == "SM8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d:delivered"
    assert event.contact.phone == "+14155550123"  # the remote party of an outbound message is To
    # The same thread as the customer's inbound messages:
    assert event.conversation_key == "twilio:AC0123456789abcdef0123456789abcdef:+14155550100|+14155550123"
    assert event.attributes["MessageStatus"] == "delivered"


def test_inbound_call_status(adapter):
    [event] = normalise(adapter, "voice-status-completed.txt")
    assert event.type == "call.completed"
    assert event.provider_event_id == "CA1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a:completed:3"
    assert event.contact.phone == "+14155550123"
    assert event.conversation_key == "twilio:call:CA1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a"
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
    assert event.attributes["CallDuration"] == "74"


def test_outbound_call_contact_is_the_callee(adapter):
    [event] = normalise(adapter, "voice-outbound-no-answer.txt")
    assert event.type == "call.no_answer"
    assert event.contact.phone == "+14155550187"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", "call.queued"),
        ("initiated", "call.initiated"),
        ("ringing", "call.ringing"),
        ("in-progress", "call.in_progress"),
        ("completed", "call.completed"),
        ("busy", "call.busy"),
        ("no-answer", "call.no_answer"),
        ("canceled", "call.canceled"),
        ("failed", "call.failed"),
        ("something-new", "provider.notification"),
    ],
)
def test_call_status_mapping(adapter, status, expected):
    body = urlencode(
        {"CallSid": "CA1", "CallStatus": status, "From": "+14155550123", "To": "+14155550100", "Direction": "inbound"}
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == expected
    assert event.provider_event_id == f"CA1:{status}"


def test_event_streams_json(adapter):
    message, other = normalise(adapter, "event-streams.json")
    assert message.type == "message.received"
    assert message.provider_event_id == "SM0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert message.text == "Can I change my delivery address?"
    assert message.contact.phone == "+14155550123"
    assert message.occurred_at == datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
    assert message.attributes["cloudevent"]["type"] == "com.twilio.messaging.inbound-message.received"
    assert message.attributes["recipients"] == ["+14155550100"]
    assert other.type == "provider.notification"
    assert other.provider_event_id == "EZ99999999999999999999999999999999"
    assert other.attributes["payload"]["data"]["duration"] == 74


def test_non_ascii_digits_in_media_parameters_are_kept_as_attributes(adapter):
    body = urlencode({"MessageSid": "SM1", "MediaUrl\u0663": "https://x/1", "MediaUrl0": "https://x/0"}).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert [a.url for a in event.attachments] == ["https://x/0"]
    assert event.attributes["MediaUrl\u0663"] == "https://x/1"


def test_unrecognised_form_callback_keeps_everything(adapter):
    body = urlencode({"AccountSid": "AC1", "Foo": "bar", "Sid": "XX123"}).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == "provider.notification"
    assert event.provider_event_id == "XX123"
    assert event.attributes["Foo"] == "bar"


# --- delivery ids and the response --------------------------------------------------------


def test_the_unsigned_idempotency_token_never_makes_a_replay_a_new_delivery(adapter):
    # I-Twilio-Idempotency-Token is not covered by X-Twilio-Signature: a replay may carry any value.
    body = recorded("sms-inbound.txt")
    first = signed_form(body, **{"I-Twilio-Idempotency-Token": "tok-123"})
    replay = signed_form(body, **{"I-Twilio-Idempotency-Token": "tok-456"})
    bare = signed_form(body)
    for request in (first, replay, bare):
        adapter.verify(request, {"auth_token": TOKEN}, datetime.now(UTC))
    assert (
        adapter.delivery_id(first)
        == adapter.delivery_id(replay)
        == adapter.delivery_id(bare)
        == "SM5c1f6a9d3b2e4f7a8c0d1e2f3a4b5c6d:received"
    )


def test_derived_delivery_ids_are_stable_across_retries(adapter):
    for name, expected in [
        ("sms-inbound.txt", "SM5c1f6a9d3b2e4f7a8c0d1e2f3a4b5c6d:received"),
        ("message-status-delivered.txt", "SM8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d:delivered"),
        ("voice-status-completed.txt", "CA1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a:completed:3"),
    ]:
        first, retry = signed_form(recorded(name)), signed_form(recorded(name))
        assert adapter.delivery_id(first) == adapter.delivery_id(retry) == expected


def test_success_response_is_empty_twiml(adapter):
    response = adapter.success_response(signed_form(recorded("sms-inbound.txt")))
    assert (response.status, response.content_type, response.body) == (200, "text/xml", EMPTY_TWIML)
    assert response.body == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def test_no_handshake(adapter):
    with pytest.raises(HubError) as caught:
        adapter.handshake(make_request(HUB_URL, b"", {}, method="GET"), [{"auth_token": TOKEN}])
    assert caught.value.status == 405


# --- property tests --------------------------------------------------------------------------

PARAM_NAMES = st.sampled_from(
    [
        "MessageSid",
        "SmsSid",
        "SmsMessageSid",
        "AccountSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "MediaUrl12",
        "MessageStatus",
        "SmsStatus",
        "CallSid",
        "CallStatus",
        "Direction",
        "SequenceNumber",
        "Timestamp",
        "ProfileName",
        "WaId",
        "CallerName",
        "Sid",
        "RecordingSid",
        "RecordingStatus",
        "RecordingStartTime",
        "TranscriptionSid",
        "TranscriptionStatus",
        "TranscriptionText",
        "EventType",
        "ConversationSid",
        "Author",
        "DateCreated",
        "ParticipantSid",
        "DeliveryReceiptSid",
        "Status",
    ]
)
PARAM_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "+14155550100",
            "whatsapp:+14155550123",
            "client:alice",
            "sip:a@b",
            "sip:",
            "client:",
            "completed",
            "failed",
            "absent",
            "onMessageAdded",
            "onDeliveryUpdated",
            "2024-06-12T14:08:05Z",
            "received",
            "delivered",
            "in-progress",
            "outbound-api",
            "Wed, 12 Jun 2024 14:08:05 +0000",
            "Mon, 99 Foo",
            "0",
            "",
            "\u00b2",
            "9" * 40,
        ]
    ),
)
FORM_PARAMS = st.dictionaries(
    st.one_of(PARAM_NAMES, st.text(max_size=12)), st.lists(PARAM_VALUES, min_size=1, max_size=3), max_size=12
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    PARAM_VALUES,
    st.sampled_from(["\ud800", "a\udfffb"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(PARAM_NAMES, st.text(max_size=10)), children, max_size=6),
    ),
    max_leaves=25,
)
CAMEL_NAMES = st.sampled_from(
    [
        "messageSid",
        "callSid",
        "callStatus",
        "messageStatus",
        "from",
        "to",
        "body",
        "accountSid",
        "direction",
        "mediaUrl0",
        "mediaContentType0",
        "sequenceNumber",
    ]
)
TWILIO_OBJECTS = st.one_of(
    st.dictionaries(st.one_of(PARAM_NAMES, CAMEL_NAMES), JSON_SCALARS, max_size=10),
    st.fixed_dictionaries(
        {"specversion": st.just("1.0"), "data": st.dictionaries(CAMEL_NAMES, JSON_SCALARS, max_size=10)},
        optional={
            "id": JSON_SCALARS,
            "type": JSON_SCALARS,
            "time": st.one_of(JSON_SCALARS, st.just("2024-06-12T14:08:05.000Z")),
        },
    ),
)
TWILIO_JSON = st.one_of(TWILIO_OBJECTS, st.lists(TWILIO_OBJECTS, max_size=3), JSON_VALUES)
HEADER_NAMES = st.sampled_from(["content-type", "x-twilio-signature", "i-twilio-idempotency-token"])
HEADERS = st.dictionaries(
    st.one_of(HEADER_NAMES, st.text(max_size=10)),
    st.one_of(st.text(max_size=60), st.sampled_from([FORM, "application/json", "text/plain", "sig\udcff", "\ud800"])),
    max_size=4,
)
URLS = st.one_of(
    st.sampled_from(
        [
            HUB_URL,
            HUB_URL + "?bodySHA256=abc",
            "https://h:443/p",
            "http://[::1]/x",
            "https://h:99999/",
            "http://h:/",
            "https://user:pw@h/p",
            "",
            HUB_URL + "?q=\udcff",
            "HTTPS://H:443/p",
        ]
    ),
    st.text(max_size=40),
)
BODIES = st.one_of(
    st.binary(max_size=300),
    FORM_PARAMS.map(lambda p: urlencode(p, doseq=True).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)


@FUZZ
@given(url=URLS, headers=HEADERS, body=BODIES, token=st.text(max_size=20))
def test_property_any_request_raises_only_hub_errors(url, headers, body, token):
    adapter = get_adapter("twilio")
    request = WebhookRequest(method="POST", url=url, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"auth_token": token}, NOW, assert_publishable)


@FUZZ
@given(params=FORM_PARAMS, idempotency=st.one_of(st.none(), st.text(max_size=300)))
def test_property_signed_form_verifies_and_normalises_or_is_malformed(params, idempotency):
    adapter = get_adapter("twilio")
    body = urlencode(params, doseq=True).encode()
    headers = {"I-Twilio-Idempotency-Token": idempotency} if idempotency is not None else {}
    request = signed_form(body, **headers)
    adapter.verify(request, {"auth_token": TOKEN}, NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass


@FUZZ
@given(payload=TWILIO_JSON)
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("twilio")
    request = signed_json(json.dumps(payload).encode())
    adapter.verify(request, {"auth_token": TOKEN}, NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass


# --- voice inbound, recordings, transcriptions, Conversations ------------------------------


def test_inbound_voice_call_is_ringing_with_caller_location(adapter):
    [event] = normalise(adapter, "voice-inbound-ringing.txt")
    assert event.type == "call.ringing"
    assert event.provider_event_id == "CA7e6d5c4b3a29180f7e6d5c4b3a291801:ringing"
    assert event.contact.phone == "+14155550123"
    assert event.conversation_key == "twilio:call:CA7e6d5c4b3a29180f7e6d5c4b3a291801"
    assert {k: event.attributes[k] for k in ("FromCity", "FromState", "FromZip", "FromCountry")} == {
        "FromCity": "OAKLAND",
        "FromState": "CA",
        "FromZip": "94107",
        "FromCountry": "US",
    }
    assert event.attributes["StirVerstat"] == "TN-Validation-Passed-A"


def test_client_identity_is_a_handle_not_a_phone(adapter):
    [event] = normalise(adapter, "voice-inbound-client.txt")
    assert event.type == "call.ringing"
    assert event.contact.phone is None
    assert [(h.platform, h.id) for h in event.contact.handles] == [("twilio_client", "alice")]
    assert event.attributes["From"] == "client:alice"


@pytest.mark.parametrize(
    ("address", "platform", "ident"),
    [("sip:alice@example.com", "sip", "alice@example.com"), ("client:bob", "twilio_client", "bob")],
)
def test_sip_and_client_addresses(adapter, address, platform, ident):
    body = urlencode(
        {"CallSid": "CA9", "CallStatus": "ringing", "From": address, "To": "+14155550100", "Direction": "inbound"}
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.contact.phone is None
    assert [(h.platform, h.id) for h in event.contact.handles] == [(platform, ident)]


def test_phone_numbers_go_through_delivered_e164(adapter):
    body = urlencode({"MessageSid": "SM1", "From": "+1 (415) 555-0123", "To": "+14155550100", "Body": "x"}).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.contact.phone == "+14155550123"


@pytest.mark.parametrize(
    ("sender", "phone"),
    [
        ("+447700900123", "+447700900123"),  # Ofcom's drama range: invalid to the metadata, but it texted us
        ("+15555550123", "+15555550123"),  # 555-01xx under area code 555
        ("whatsapp:+447700900123", "+447700900123"),
        ("+4412345", None),  # a possible number only locally (no area code): not a full number
        ("+12345", None),  # a short code
    ],
)
def test_every_possible_number_twilio_delivers_is_kept(adapter, sender, phone):
    body = urlencode(
        {
            "MessageSid": "SM1",
            "SmsStatus": "received",
            "From": sender,
            "To": "+14155550100",
            "Body": "hi",
            "AccountSid": "AC1",
        }
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.contact.phone == phone
    call = urlencode(
        {"CallSid": "CA1", "CallStatus": "ringing", "Direction": "inbound", "From": sender, "To": "+14155550100"}
    ).encode()
    [ringing] = adapter.normalise(make_request(HUB_URL, call, {"Content-Type": FORM}))
    assert ringing.contact.phone == phone  # the caller id


def test_recording_completed(adapter):
    [event] = normalise(adapter, "recording-completed.txt")
    assert event.type == "call.recording_completed"
    assert event.provider_event_id == "RE5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d:completed"
    assert event.conversation_key == "twilio:call:CA1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a"
    assert event.attributes["RecordingDuration"] == "68"
    assert event.attributes["RecordingUrl"].endswith("/Recordings/RE5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d")
    assert event.occurred_at == datetime(2024, 6, 12, 14, 6, 57, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", "call.recording_completed"),
        ("failed", "call.recording_failed"),
        ("absent", "call.recording_failed"),
        ("in-progress", "provider.notification"),
    ],
)
def test_recording_status_mapping(adapter, status, expected):
    body = urlencode({"CallSid": "CA1", "RecordingSid": "RE1", "RecordingStatus": status}).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == expected
    assert event.provider_event_id == f"RE1:{status}"


def test_transcription_completed(adapter):
    [event] = normalise(adapter, "transcription-completed.txt")
    assert event.type == "call.transcribed"
    assert event.text == "Hi, this is Sam calling about order 4417, please call me back."
    assert event.provider_event_id == "TR9f8e7d6c5b4a39281706f5e4d3c2b1a0:completed"
    assert event.contact.phone == "+14155550123"
    assert event.conversation_key == "twilio:call:CA1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a"
    assert "TranscriptionText" not in event.attributes
    assert event.attributes["RecordingSid"] == "RE5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"


def test_failed_transcription_is_a_notification(adapter):
    body = urlencode(
        {"CallSid": "CA1", "RecordingSid": "RE1", "TranscriptionSid": "TR1", "TranscriptionStatus": "failed"}
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == "provider.notification" and event.text is None
    assert event.attributes["kind"] == "twilio.transcription"


def test_conversations_message_added(adapter):
    [event] = normalise(adapter, "conversations-message-added.txt")
    assert event.type == "message.received"
    assert event.text == "Can someone call me back about the refund?"
    assert event.contact.phone == "+14155550123"
    assert event.conversation_key == "twilio:conversation:CH0123456789abcdef0123456789abcdef"
    assert (
        event.provider_event_id
        == "CH0123456789abcdef0123456789abcdef:onMessageAdded:IM0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    )
    assert event.attributes["Index"] == "3" and event.attributes["Source"] == "SMS"
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)


def test_conversations_chat_author_is_a_handle(adapter):
    body = urlencode(
        {
            "EventType": "onMessageAdded",
            "ConversationSid": "CH1",
            "MessageSid": "IM1",
            "Author": "alice@example.com",
            "Body": "hi",
            "Source": "SDK",
        }
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.contact.phone is None
    assert [(h.platform, h.id) for h in event.contact.handles] == [("twilio_conversations", "alice@example.com")]


def test_other_conversations_events(adapter):
    body = urlencode({"EventType": "onParticipantAdded", "ConversationSid": "CH1", "ParticipantSid": "MB1"}).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == "provider.notification"
    assert event.attributes["kind"] == "twilio.conversations.onParticipantAdded"
    assert event.provider_event_id == "CH1:onParticipantAdded:MB1"
    body = urlencode(
        {
            "EventType": "onDeliveryUpdated",
            "ConversationSid": "CH1",
            "MessageSid": "IM1",
            "DeliveryReceiptSid": "DY1",
            "Status": "delivered",
        }
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == "message.status_updated"
    assert event.provider_event_id == "CH1:onDeliveryUpdated:IM1:DY1:delivered"


@pytest.mark.parametrize(
    "name",
    [
        "voice-inbound-ringing.txt",
        "voice-inbound-client.txt",
        "recording-completed.txt",
        "transcription-completed.txt",
        "conversations-message-added.txt",
    ],
)
def test_sdk_signed_new_callbacks_verify_and_have_stable_ids(adapter, name):
    first, retry = signed_form(recorded(name)), signed_form(recorded(name))
    adapter.verify(first, {"auth_token": TOKEN}, NOW)
    [event] = adapter.normalise(first)
    assert adapter.delivery_id(first) == adapter.delivery_id(retry) == event.provider_event_id


def test_event_streams_conversations_message_added(adapter):
    [event] = normalise(adapter, "event-streams-conversations.json")
    assert event.type == "message.received"
    assert event.text == "Ahoy!"
    assert event.contact.phone == "+14155550142"
    assert event.conversation_key == "twilio:conversation:CH0123456789abcdef0123456789abcdef"
    # the same id as the Conversations webhook for the same message: one event either way
    assert (
        event.provider_event_id
        == "CH0123456789abcdef0123456789abcdef:onMessageAdded:IM1f1e2d3c4b5a69788796a5b4c3d2e1f0"
    )
    assert event.attributes["Media"][0]["ContentType"] == "image/png"
    assert event.attributes["cloudevent"]["type"] == "com.twilio.conversations.message.added"
