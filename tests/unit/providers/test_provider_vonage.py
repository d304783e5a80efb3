"""Vonage adapter: published vectors, SDK interop (vonage-http-client, vonage-jwt, PyJWT), refusals,
normalisation, fuzzing."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from vonage_http_client.auth import Auth
from vonage_jwt.verify_jwt import verify_signature

from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.vonage import VonageAdapter, sms_signature
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
SECRET = "Xq3vR9wLm2Tz8Kp4Yc7Bn1Hd6Fg0Js5A"
HUB_URL = "https://hub.example.com/webhooks/vonage/conn_01HZX"
METHODS = ["md5hash", "md5", "sha1", "sha256", "sha512"]

# providers.md §4 #12-#16 (vonage-python-sdk http_client/tests/test_auth.py, jwt/tests/test_verify_jwt.py)
VECTOR_SECRET = "signature_secret"
VECTOR_PARAMS = {"param1": "value1", "param2": "value2", "timestamp": "1234567890"}
VECTOR_JWT_SECRET = "qwertyuiopasdfghjklzxcvbnm123456"
VECTOR_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJPbmxpbmUgSldUIEJ1aWxkZXIiLCJpYXQiOjE2OTc2MzQ2ODAsImV4cCI6"
    "MzMyNTQ1NDA4MjgsImF1ZCI6IiIsInN1YiI6IiJ9.88vJc3I2HhuqEDixHXVhc9R30tA6U_HQHZTC29y6CGM"
)


def creds(method: str = "sha256", secret: str = SECRET) -> dict[str, str]:
    return {"signature_secret": secret, "signature_method": method}


def make_request(body: bytes, headers: dict[str, str], method: str = "POST") -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, method=method, received_at=NOW)


def sdk_sign(params: dict[str, str], method: str = "sha256", secret: str = SECRET) -> str:
    """The `sig` the vonage SDK computes (md5hash is not in the SDK: computed from the docs)."""
    if method == "md5hash":
        signed = "".join(f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in sorted(params.items()))
        return hashlib.md5((signed + secret).encode()).hexdigest()
    return Auth(api_key="abcd1234", signature_secret=secret, signature_method=method).sign_params(dict(params))


def signed_sms(
    params: dict[str, str],
    method: str = "sha256",
    secret: str = SECRET,
    as_json: bool = False,
    timestamp: datetime = NOW,
) -> WebhookRequest:
    params = {**params, "timestamp": str(int(timestamp.timestamp())), "nonce": str(uuid.uuid4())}
    params["sig"] = sdk_sign(params, method, secret)
    if as_json:
        return make_request(json.dumps(params).encode(), {"Content-Type": "application/json"})
    return make_request(urlencode(params).encode(), {"Content-Type": FORM})


def signed_jwt(body: bytes, secret: str = SECRET, iat: datetime = NOW, **claims) -> WebhookRequest:
    payload = {
        "iat": int(iat.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    token = jwt.encode(payload, secret, algorithm="HS256")
    return make_request(body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


def recorded(name: str) -> bytes:
    return recorded_event("vonage", name)


def recorded_params(name: str) -> dict[str, str]:
    body = recorded(name)
    return json.loads(body) if name.endswith(".json") else dict(parse_qsl(body.decode()))


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "vonage", Channel.TELEPHONY, NOW)


@pytest.fixture
def adapter() -> VonageAdapter:
    return get_adapter("vonage")


# --- published vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "method", "expected"),
    [
        (VECTOR_PARAMS, "sha256", "280c4320703dbc98bfa22db676655ed2acfbfe8792b062ff7622e67f1183c287"),  # #12
        (VECTOR_PARAMS, "md5", "724c2bf6ca423c36e20631b11d1c5753"),  # #13
        (
            {"param1": "value&1", "param2": "value=2", "timestamp": "1234567890"},
            "md5",
            "2bbf0abafb2c55e5af6231513896a2ac",
        ),
        ({"param": "value", "timestamp": "1234567890"}, "md5", "655a4d0b7f064dff438defc52b012cf5"),  # #15
    ],
)
def test_sms_signature_vectors(params, method, expected):
    assert sms_signature(params, VECTOR_SECRET, method) == expected


def test_sms_vector_verifies_at_its_own_time(adapter):
    params = {**VECTOR_PARAMS, "sig": "724c2bf6ca423c36e20631b11d1c5753".upper()}  # hex case does not matter
    request = make_request(urlencode(params).encode(), {"Content-Type": FORM})
    adapter.verify(request, creds("md5", VECTOR_SECRET), datetime.fromtimestamp(1234567890 + 60, tz=UTC))
    with pytest.raises(SignatureError, match="stale"):
        adapter.verify(request, creds("md5", VECTOR_SECRET), NOW)


def test_jwt_vector_signature_is_accepted_then_needs_payload_hash(adapter):
    assert verify_signature(VECTOR_JWT, VECTOR_JWT_SECRET)  # the SDK's own check (#16)
    request = make_request(b"{}", {"Content-Type": "application/json", "Authorization": f"Bearer {VECTOR_JWT}"})
    # The HS256 signature passes; the vector has no payload_hash, which the hub requires.
    with pytest.raises(SignatureError, match="payload_hash"):
        adapter.verify(request, creds("sha256", VECTOR_JWT_SECRET), NOW)
    with pytest.raises(SignatureError, match="not signed"):
        adapter.verify(request, creds("sha256", "another-secret-another-secret-xx"), NOW)


# --- SDK interop ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["sms-inbound.txt", "sms-delivery-receipt.txt", "sms-inbound-concat.json"])
def test_sdk_signed_sms_is_accepted(adapter, method, name):
    params = {k: v for k, v in recorded_params(name).items() if k not in ("timestamp", "nonce")}
    for as_json in (False, True):
        request = signed_sms(params, method, as_json=as_json)
        adapter.verify(request, creds(method), NOW + timedelta(seconds=3))


def test_sdk_check_signature_agrees(adapter):
    request = signed_sms({"msisdn": "14155550123", "to": "14155550100", "text": "a&b=c"}, "sha512")
    params = dict(parse_qsl(request.body.decode()))
    assert Auth(api_key="k", signature_secret=SECRET, signature_method="sha512").check_signature(params)


@pytest.mark.parametrize(
    "name", ["messages-inbound-whatsapp.json", "messages-status-delivered.json", "voice-event-answered.json"]
)
def test_pyjwt_signed_json_is_accepted_and_the_sdk_agrees(adapter, name):
    request = signed_jwt(recorded(name))
    adapter.verify(request, creds(), NOW + timedelta(seconds=2))
    token = request.header("authorization").split(" ", 1)[1]
    assert verify_signature(token, SECRET)


# --- refusals --------------------------------------------------------------------------------


def test_tampered_sms_is_refused(adapter):
    request = signed_sms({"msisdn": "14155550123", "to": "14155550100", "messageId": "A1", "text": "Hi"})
    tampered = make_request(request.body.replace(b"text=Hi", b"text=Yo"), dict(request.headers))
    with pytest.raises(SignatureError, match="sig"):
        adapter.verify(tampered, creds(), NOW)


def test_extra_sms_parameter_is_refused(adapter):
    request = signed_sms({"msisdn": "14155550123", "messageId": "A1", "text": "Hi"})
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body + b"&x=1", dict(request.headers)), creds(), NOW)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_secret_or_method_is_refused(adapter, method):
    request = signed_sms({"msisdn": "14155550123", "messageId": "A1", "text": "Hi"}, method)
    with pytest.raises(SignatureError):
        adapter.verify(request, creds(method, "another-secret"), NOW)
    other = METHODS[(METHODS.index(method) + 1) % len(METHODS)]
    with pytest.raises(SignatureError):
        adapter.verify(request, creds(other), NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_stale_and_future_sms_timestamps_are_refused(adapter, offset):
    request = signed_sms({"msisdn": "14155550123", "messageId": "A1", "text": "Hi"}, timestamp=NOW + offset)
    with pytest.raises(SignatureError, match="stale or from the future"):
        adapter.verify(request, creds(), NOW)


def test_sms_without_timestamp_is_refused(adapter):
    params = {"msisdn": "14155550123", "messageId": "A1", "text": "Hi"}
    params["sig"] = sdk_sign({**params, "timestamp": "x"})
    signed = {**params}
    signed["sig"] = sms_signature({k: v for k, v in params.items() if k != "sig"}, SECRET, "sha256")
    with pytest.raises(SignatureError, match="timestamp"):
        adapter.verify(make_request(urlencode(signed).encode(), {"Content-Type": FORM}), creds(), NOW)


def test_missing_signature_is_refused_by_name(adapter):
    request = make_request(recorded("sms-inbound.txt"), {"Content-Type": FORM})
    with pytest.raises(SignatureError, match="Authorization header or sig"):
        adapter.verify(request, creds(), NOW)
    request = make_request(recorded("voice-event-answered.json"), {"Content-Type": "application/json"})
    with pytest.raises(SignatureError, match="Authorization header or sig"):
        adapter.verify(request, creds(), NOW)


def test_tampered_jwt_body_is_refused(adapter):
    request = signed_jwt(recorded("messages-inbound-whatsapp.json"))
    tampered = make_request(request.body.replace(b"talla M", b"talla L"), dict(request.headers))
    with pytest.raises(SignatureError, match="payload_hash"):
        adapter.verify(tampered, creds(), NOW)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_jwt_with_wrong_secret_or_algorithm_is_refused(adapter):
    body = recorded("voice-event-answered.json")
    with pytest.raises(SignatureError):
        adapter.verify(signed_jwt(body, secret="another-secret-another-secret-xx"), creds(), NOW)
    unsigned = jwt.encode(
        {"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(body).hexdigest()}, None, algorithm="none"
    )
    request = make_request(body, {"Content-Type": "application/json", "Authorization": f"Bearer {unsigned}"})
    with pytest.raises(SignatureError):
        adapter.verify(request, creds(), NOW)
    hs512 = jwt.encode(
        {"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(body).hexdigest()}, SECRET, algorithm="HS512"
    )
    request = make_request(body, {"Content-Type": "application/json", "Authorization": f"Bearer {hs512}"})
    with pytest.raises(SignatureError):
        adapter.verify(request, creds(), NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_stale_and_future_jwt_iat_is_refused(adapter, offset):
    request = signed_jwt(recorded("voice-event-answered.json"), iat=NOW + offset)
    with pytest.raises(SignatureError, match="iat"):
        adapter.verify(request, creds(), NOW)


def test_jwt_without_iat_or_expired_is_refused(adapter):
    body = recorded("voice-event-answered.json")
    with pytest.raises(SignatureError, match="iat"):
        token = jwt.encode({"payload_hash": hashlib.sha256(body).hexdigest()}, SECRET, algorithm="HS256")
        request = make_request(body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        adapter.verify(request, creds(), NOW)
    with pytest.raises(SignatureError, match="expired"):
        adapter.verify(signed_jwt(body, exp=int(NOW.timestamp()) - 120), creds(), NOW)


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt", "Bearer \udcff"])
def test_bad_authorization_headers(adapter, value):
    request = make_request(b"{}", {"Content-Type": "application/json", "Authorization": value})
    with pytest.raises(SignatureError):
        adapter.verify(request, creds(), NOW)


def test_error_messages_never_echo_the_signature_or_secret(adapter):
    request = signed_sms({"msisdn": "14155550123", "messageId": "A1", "text": "Hi"})
    sig = dict(parse_qsl(request.body.decode()))["sig"]
    with pytest.raises(SignatureError) as caught:
        adapter.verify(request, creds("sha256", "another"), NOW)
    assert sig not in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"{}", "application/json"),
        (b'"x"', "application/json"),
        (b"", FORM),
        (b"a=1&&b", FORM),
        (b"\xff\xfe", FORM),
    ],
)
def test_malformed_bodies(adapter, body, content_type):
    with pytest.raises(MalformedPayload):
        adapter.normalise(make_request(body, {"Content-Type": content_type}))


def test_credentials_are_validated(adapter):
    assert adapter.validate_credentials(creds("md5hash")) == creds("md5hash")
    for bad in (
        {"signature_secret": "s", "signature_method": "sha384"},
        {"signature_secret": "s"},
        {"signature_secret": "s", "signature_method": "SHA256"},
    ):
        with pytest.raises(HubError) as caught:
            adapter.validate_credentials(bad)
        assert caught.value.status == 400


def test_no_handshake_get_is_405(adapter):
    request = make_request(b"", {}, method="GET")
    with pytest.raises(HubError) as caught:
        adapter.handshake(request, [creds()])
    assert caught.value.status == 405


# --- normalisation -----------------------------------------------------------------------------


def normalise(adapter, name: str):
    content_type = "application/json" if name.endswith(".json") else FORM
    drafts = adapter.normalise(make_request(recorded(name), {"Content-Type": content_type}))
    assert_publishable(drafts)
    return drafts


def test_inbound_sms(adapter):
    [event] = normalise(adapter, "sms-inbound.txt")
    assert event.type == "message.received"
    assert event.provider_event_id == "1600000012AB34CD"
    assert event.contact.phone == "+14155550123"
    assert event.text == "Hi, is my order #4417 on its way?"
    assert event.conversation_key == "vonage:sms:14155550100|14155550123"
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
    assert event.attributes["keyword"] == "HI," and "text" not in event.attributes


def test_concatenated_part_keeps_concat_fields(adapter):
    [event] = normalise(adapter, "sms-inbound-concat.json")
    assert event.provider_event_id == "1600000012AB34CE"
    assert event.text.startswith("...second half")
    assert (event.attributes["concat-ref"], event.attributes["concat-part"], event.attributes["concat-total"]) == (
        "201",
        "2",
        "2",
    )


def test_signature_is_not_kept_in_attributes(adapter):
    request = signed_sms({"msisdn": "14155550123", "to": "14155550100", "messageId": "A1", "text": "Hi"})
    [event] = adapter.normalise(request)
    assert "sig" not in event.attributes and "nonce" in event.attributes


def test_sms_delivery_receipt(adapter):
    [event] = normalise(adapter, "sms-delivery-receipt.txt")
    assert event.type == "message.status_updated"
    assert event.provider_event_id == "1600000012AB35AA:delivered"
    assert event.contact.phone == "+14155550123"
    assert event.attributes["err-code"] == "0"


def test_messages_whatsapp_inbound(adapter):
    [event] = normalise(adapter, "messages-inbound-whatsapp.json")
    assert event.type == "message.received"
    assert event.provider_event_id == "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
    assert event.contact.phone == "+14155550142"
    assert event.contact.name == "Sheena Nelson"
    assert [(h.platform, h.id) for h in event.contact.handles] == [("whatsapp", "14155550142")]
    assert event.text == "Hola, ¿tenéis la talla M?"
    assert event.conversation_key == "vonage:whatsapp:14155550100|14155550142"


def test_messages_messenger_inbound_has_no_phone(adapter):
    [event] = normalise(adapter, "messages-inbound-messenger.json")
    assert event.contact.phone is None
    assert [(h.platform, h.id) for h in event.contact.handles] == [("messenger", "3932497656828001")]


def test_messages_status(adapter):
    [event] = normalise(adapter, "messages-status-delivered.json")
    assert event.type == "message.status_updated"
    assert event.provider_event_id == "cccccccc-dddd-4eee-8fff-0123456789ab:delivered"
    assert event.contact.phone == "+14155550123"
    assert event.attributes["usage"] == {"currency": "EUR", "price": "0.0333"}
    assert event.attributes["client_ref"] == "order-4417"


def test_voice_events(adapter):
    [answered] = normalise(adapter, "voice-event-answered.json")
    [completed] = normalise(adapter, "voice-event-completed.json")
    assert (answered.type, completed.type) == ("call.in_progress", "call.completed")
    assert answered.provider_event_id == "63f61863-4a51-4f6b-86e1-46edebcf9356:answered"
    assert (
        answered.conversation_key
        == completed.conversation_key
        == "vonage:call:CON-f972836a-550f-45fa-956c-12a2ab5b7d22"
    )
    assert completed.contact.phone == "+14155550123"
    assert completed.attributes["duration"] == "74"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("started", "call.initiated"),
        ("ringing", "call.ringing"),
        ("answered", "call.in_progress"),
        ("completed", "call.completed"),
        ("busy", "call.busy"),
        ("cancelled", "call.canceled"),
        ("failed", "call.failed"),
        ("rejected", "call.failed"),
        ("timeout", "call.no_answer"),
        ("unanswered", "call.no_answer"),
        ("machine", "provider.notification"),
    ],
)
def test_voice_status_mapping(adapter, status, expected):
    body = json.dumps(
        {
            "uuid": "u1",
            "conversation_uuid": "CON-1",
            "status": status,
            "direction": "outbound",
            "from": "14155550100",
            "to": {"type": "phone", "number": "14155550123"},
        }
    ).encode()
    [event] = adapter.normalise(make_request(body, {"Content-Type": "application/json"}))
    assert event.type == expected
    assert event.contact.phone == "+14155550123"  # outbound: the callee


def test_unknown_payload_is_a_notification(adapter):
    [event] = adapter.normalise(make_request(b'{"foo": 1}', {"Content-Type": "application/json"}))
    assert event.type == "provider.notification" and event.attributes["foo"] == 1


def test_delivery_ids_are_stable(adapter):
    for name, expected in [
        ("sms-inbound.txt", "1600000012AB34CD"),
        ("messages-status-delivered.json", "cccccccc-dddd-4eee-8fff-0123456789ab:delivered"),
        ("voice-event-completed.json", "63f61863-4a51-4f6b-86e1-46edebcf9356:completed"),
    ]:
        content_type = "application/json" if name.endswith(".json") else FORM
        request = make_request(recorded(name), {"Content-Type": content_type})
        assert adapter.delivery_id(request) == expected == adapter.normalise(request)[0].provider_event_id


def test_success_response_is_200(adapter):
    assert adapter.success_response(make_request(b"", {})).status == 200


# --- property tests ----------------------------------------------------------------------------

NAMES = st.sampled_from(
    [
        "msisdn",
        "to",
        "from",
        "messageId",
        "text",
        "status",
        "message_uuid",
        "uuid",
        "conversation_uuid",
        "channel",
        "direction",
        "timestamp",
        "nonce",
        "sig",
        "concat-ref",
        "message-timestamp",
        "profile",
        "type",
    ]
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "14155550123",
            "+1 415 555 0100",
            "whatsapp",
            "messenger",
            "answered",
            "delivered",
            "outbound",
            "2024-06-12 14:08:05",
            "2024-06-12T14:08:05Z",
            "1718201285",
            "\ud800",
            "",
        ]
    ),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), VALUES)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.one_of(NAMES, st.text(max_size=8)), c, max_size=5)),
    max_leaves=20,
)
OBJECTS = st.dictionaries(st.one_of(NAMES, st.text(max_size=8)), JSON_VALUES, max_size=10)
NO_SURROGATES = st.characters(blacklist_categories=("Cs",))
FORM_VALUES = VALUES.filter(lambda v: not any(0xD800 <= ord(c) <= 0xDFFF for c in v))
FORM_PARAMS = st.dictionaries(
    st.one_of(NAMES, st.text(NO_SURROGATES, max_size=8)), st.lists(FORM_VALUES, min_size=1, max_size=2), max_size=10
)
BODIES = st.one_of(
    st.binary(max_size=200),
    OBJECTS.map(lambda o: json.dumps(o).encode()),
    FORM_PARAMS.map(lambda p: urlencode(p, doseq=True).encode()),
)
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "authorization", "x"]),
    st.one_of(st.text(max_size=60), st.sampled_from([FORM, "application/json", "Bearer a.b.c", "Bearer \ud800"])),
    max_size=3,
)
CREDS = st.fixed_dictionaries(
    {
        "signature_secret": st.text(max_size=10),
        "signature_method": st.one_of(st.sampled_from(METHODS), st.text(max_size=5)),
    }
)


@FUZZ
@given(body=BODIES, headers=HEADERS, credentials=CREDS)
def test_property_any_request_raises_only_hub_errors(body, headers, credentials):
    adapter = get_adapter("vonage")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, credentials, NOW, assert_publishable)


@FUZZ
@given(payload=OBJECTS)
def test_property_jwt_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("vonage")
    request = signed_jwt(json.dumps(payload).encode())
    adapter.verify(request, creds(), NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass


@FUZZ
@given(
    params=st.dictionaries(
        st.one_of(NAMES, st.text(min_size=1, max_size=8)).filter(lambda k: k not in ("sig", "timestamp", "nonce")),
        st.text(max_size=20),
        max_size=8,
    ),
    method=st.sampled_from(METHODS),
    as_json=st.booleans(),
)
def test_property_sms_signed_params_verify_and_normalise_or_are_malformed(params, method, as_json):
    adapter = get_adapter("vonage")
    params = {
        k: v.encode("utf-8", "replace").decode()
        for k, v in params.items()
        if not any(0xD800 <= ord(c) <= 0xDFFF for c in k + v)
    }
    request = signed_sms(params, method, as_json=as_json)
    adapter.verify(request, creds(method), NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass


def test_sms_with_an_unrelated_basic_authorization_is_checked_by_sig(adapter):
    request = signed_sms({"msisdn": "14155550123", "messageId": "A1", "text": "Hi"})
    headers = {**request.headers, "authorization": "Basic dXNlcjpwYXNz"}
    adapter.verify(make_request(request.body, headers), creds(), NOW)


def test_samples_pass_the_sdk_validators():
    from infra.local.samples import build_sample, demo_credentials

    credentials = demo_credentials("vonage")
    now = datetime.now(UTC)
    for sample in ("sms", "sms-json", "sms-receipt", "whatsapp", "message-status", "voice-event"):
        request = build_sample("vonage", sample, credentials, HUB_URL, now=now)
        if "Authorization" in request.headers:
            token = request.headers["Authorization"].split(" ", 1)[1]
            assert verify_signature(token, credentials["signature_secret"])
            claims = jwt.decode(token, credentials["signature_secret"], algorithms=["HS256"])
            assert claims["payload_hash"] == hashlib.sha256(request.body).hexdigest()
        else:
            params = json.loads(request.body) if sample == "sms-json" else dict(parse_qsl(request.body.decode()))
            auth = Auth(
                api_key="k",
                signature_secret=credentials["signature_secret"],
                signature_method=credentials["signature_method"],
            )
            assert auth.check_signature(params)


def test_voice_recording_callback(adapter):
    [event] = normalise(adapter, "voice-recording.json")
    assert event.type == "call.recording_completed"
    assert event.provider_event_id == "recording:2b8a1b0c-9d3e-4f5a-8b7c-6d5e4f3a2b1c"
    assert event.conversation_key == "vonage:call:CON-f972836a-550f-45fa-956c-12a2ab5b7d22"
    assert event.attributes["recording_url"].startswith("https://api.nexmo.com/v1/files/")


@FUZZ
@given(
    credentials=st.dictionaries(
        st.sampled_from(["signature_secret", "signature_method", "x"]),
        st.one_of(st.text(max_size=8), st.sampled_from(METHODS), st.integers(), st.none()),
        max_size=3,
    )
)
def test_property_credential_validation_raises_only_hub_errors(credentials):
    try:
        get_adapter("vonage").validate_credentials(credentials)
    except HubError as exc:
        assert exc.status == 400
