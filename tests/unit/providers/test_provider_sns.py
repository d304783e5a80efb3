"""Amazon SNS adapter: canonical string, RSA signatures (v1/v2) against a test CA, certificate URL
rules, topic and timestamp checks, subscription confirmation, normalisation, fuzzing.

No network: every certificate is served by an injected fetcher."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.sns import (
    DEV_CERT_DIR_ENV,
    CertificateUnavailable,
    ConfirmationFailed,
    SnsAdapter,
    canonical_string,
    check_sns_url,
    default_fetch,
)
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

TOPIC = "arn:aws:sns:us-east-2:123456789012:MyTopic"
CERT_URL = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
HUB_URL = "https://hub.example.com/webhooks/sns/conn_01J00"
NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
CREDENTIALS = {"topic_arn": TOPIC}


# --- a test CA and SNS-like signing certificate ------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject_key, issuer_key, subject: str, issuer: str, *, ca: bool, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


CA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
VALID_FROM, VALID_TO = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
CA_CERT = _issue(CA_KEY, CA_KEY, "Test Root CA", "Test Root CA", ca=True, not_before=VALID_FROM, not_after=VALID_TO)
SIGNING_CERT = _issue(
    SIGNING_KEY, CA_KEY, "sns.amazonaws.com", "Test Root CA", ca=False, not_before=VALID_FROM, not_after=VALID_TO
)


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


class FakeFetch:
    """Serves certificates (and confirmation answers) from a dict; records every URL asked for."""

    def __init__(self, served: dict[str, bytes] | None = None) -> None:
        self.served = {CERT_URL: pem(SIGNING_CERT)} if served is None else served
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if "Action=ConfirmSubscription" in url:
            return b"<ConfirmSubscriptionResponse/>"
        if url not in self.served:
            raise OSError(f"404 {url}")
        return self.served[url]


def sign(message: dict, key=SIGNING_KEY, version: str = "2", cert_url: str = CERT_URL) -> dict:
    signed = {**message, "SignatureVersion": version, "SigningCertURL": cert_url}
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    signed["Signature"] = base64.b64encode(key.sign(canonical_string(signed), padding.PKCS1v15(), algorithm)).decode()
    return signed


def make_request(message: dict | bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    body = message if isinstance(message, bytes) else json.dumps(message, indent=2).encode()
    base = {"content-type": "text/plain; charset=UTF-8"}
    if isinstance(message, dict) and isinstance(message.get("Type"), str):
        base["x-amz-sns-message-type"] = message["Type"]
    return webhook_request(HUB_URL, body, {**base, **(headers or {})}, received_at=NOW)


def recorded(name: str) -> dict:
    return json.loads(recorded_event("sns", name))


def signed_recorded(name: str, **changes) -> WebhookRequest:
    message = {**recorded(name), **changes}
    return make_request(sign(message, version=message.get("SignatureVersion", "2")))


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "sns", Channel.TELEPHONY, NOW)


@pytest.fixture
def fetch() -> FakeFetch:
    return FakeFetch()


@pytest.fixture
def adapter(fetch) -> SnsAdapter:
    return SnsAdapter(fetch=fetch)


@pytest.fixture
def production(monkeypatch):
    """No dev certificate directory: what every deployed stage runs with."""
    monkeypatch.delenv(DEV_CERT_DIR_ENV, raising=False)


# --- canonical string (AWS docs: Name\nValue\n pairs in the documented order) --------------------------


def test_canonical_string_of_a_notification():
    message = {
        "Type": "Notification",
        "MessageId": "m1",
        "TopicArn": TOPIC,
        "Subject": "Hi",
        "Message": "a\nb",
        "Timestamp": "2024-06-12T14:08:00.000Z",
        "UnsubscribeURL": "ignored",
        "SignatureVersion": "2",
    }
    assert (
        canonical_string(message)
        == (
            f"Message\na\nb\nMessageId\nm1\nSubject\nHi\nTimestamp\n2024-06-12T14:08:00.000Z\nTopicArn\n{TOPIC}\n"
            "Type\nNotification\n"
        ).encode()
    )
    del message["Subject"]
    assert b"Subject" not in canonical_string(message)


def test_canonical_string_of_a_confirmation():
    message = recorded("subscription-confirmation.json")
    expected = "".join(
        f"{k}\n{message[k]}\n"
        for k in ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    )
    assert canonical_string(message) == expected.encode()


def test_canonical_string_needs_every_confirmation_field():
    message = recorded("subscription-confirmation.json")
    del message["Token"]
    with pytest.raises(SignatureError, match="Token"):
        canonical_string(message)


# --- signatures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    "name",
    [
        "notification-plain.json",
        "notification-two-way-sms.json",
        "notification-connect-contact-event.json",
        "subscription-confirmation.json",
        "unsubscribe-confirmation.json",
    ],
)
def test_signed_messages_verify(adapter, name, version):
    adapter.verify(make_request(sign(recorded(name), version=version)), CREDENTIALS, NOW)


def test_signature_version_1_is_sha1_and_2_is_sha256(adapter):
    message = sign(recorded("notification-plain.json"), version="1")
    swapped = {**message, "SignatureVersion": "2"}
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(swapped), CREDENTIALS, NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", "Hello world?"),
        ("Subject", "Other"),
        ("MessageId", "22b80b92-0000-4c2c-8f9d-bdfb0c7bf324"),
        ("Timestamp", "2024-06-12T14:08:00.656Z"),
        ("Type", "UnsubscribeConfirmation"),
    ],
)
def test_tampered_signed_fields_are_refused(adapter, field, value):
    message = sign(recorded("notification-plain.json"))
    message[field] = value
    with pytest.raises(SignatureError):
        adapter.verify(make_request(message, {"x-amz-sns-message-type": message["Type"]}), CREDENTIALS, NOW)


def test_added_subject_is_refused(adapter):
    message = sign(recorded("notification-two-way-sms.json"))
    message["Subject"] = "injected"
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(message), CREDENTIALS, NOW)


def test_tampered_subscribe_url_is_refused(adapter):
    message = sign(recorded("subscription-confirmation.json"))
    message["SubscribeURL"] = message["SubscribeURL"].replace("us-east-2", "us-west-2")
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(message), CREDENTIALS, NOW)


def test_signature_by_another_key_is_refused(adapter):
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(sign(recorded("notification-plain.json"), key=OTHER_KEY)), CREDENTIALS, NOW)


@pytest.mark.parametrize("signature", ["", "not base64!", None, 5, "QUJD"])
def test_bad_signature_values_are_refused(adapter, signature):
    message = sign(recorded("notification-plain.json"))
    message["Signature"] = signature
    with pytest.raises(SignatureError):
        adapter.verify(make_request(message), CREDENTIALS, NOW)


@pytest.mark.parametrize("version", ["3", "", None, 2, "1 "])
def test_unknown_signature_versions_are_refused(adapter, version):
    message = sign(recorded("notification-plain.json"))
    message["SignatureVersion"] = version
    with pytest.raises(SignatureError, match="SignatureVersion"):
        adapter.verify(make_request(message), CREDENTIALS, NOW)


def test_message_for_another_topic_is_refused_with_401(adapter):
    request = make_request(sign(recorded("notification-plain.json")))
    with pytest.raises(SignatureError, match="TopicArn") as caught:
        adapter.verify(request, {"topic_arn": "arn:aws:sns:us-east-2:123456789012:OtherTopic"}, NOW)
    assert caught.value.status == 401


def test_topic_check_comes_before_any_fetch(adapter, fetch):
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(sign(recorded("notification-plain.json"))),
            {"topic_arn": "arn:aws:sns:us-east-2:123456789012:OtherTopic"},
            NOW,
        )
    assert fetch.calls == []


def test_type_header_must_match_the_body(adapter):
    request = make_request(
        sign(recorded("notification-plain.json")), {"x-amz-sns-message-type": "SubscriptionConfirmation"}
    )
    with pytest.raises(SignatureError, match="x-amz-sns-message-type"):
        adapter.verify(request, CREDENTIALS, NOW)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"Notification"', b"{}", b'{"Type": "Other"}'])
def test_bodies_that_are_not_sns_messages_are_refused(adapter, body):
    with pytest.raises(SignatureError):
        adapter.verify(make_request(body), CREDENTIALS, NOW)


# --- timestamp window --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(hours=1), True),
        (timedelta(minutes=-5), True),
        (timedelta(hours=1, seconds=1), False),
        (timedelta(minutes=-5, seconds=-1), False),
    ],
)
def test_timestamp_window(adapter, offset, accepted):
    """`offset` is how far the verifier's clock is ahead of the message Timestamp."""
    stamp = datetime(2024, 6, 12, 14, 8, 0, tzinfo=UTC)
    message = sign({**recorded("notification-plain.json"), "Timestamp": stamp.isoformat().replace("+00:00", "Z")})
    if accepted:
        adapter.verify(make_request(message), CREDENTIALS, stamp + offset)
    else:
        with pytest.raises(SignatureError, match=r"older|future"):
            adapter.verify(make_request(message), CREDENTIALS, stamp + offset)


@pytest.mark.parametrize("stamp", ["", "yesterday", "2024-13-45T00:00:00Z", None, 1718201285])
def test_unreadable_timestamps_are_refused(adapter, stamp):
    message = sign(recorded("notification-plain.json"))
    message["Timestamp"] = stamp
    with pytest.raises(SignatureError):
        adapter.verify(make_request(message), CREDENTIALS, NOW)


# --- certificate URL and fetching ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.ap-southeast-5.amazonaws.com/SimpleNotificationService-abc.pem",
    ],
)
def test_sns_certificate_hosts_are_accepted(url, production):
    assert check_sns_url(url, "SigningCertURL", certificate=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://user:pw@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
        "https://evil-sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.co/SimpleNotificationService-abc.pem",
        "https://sns.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://s3.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.cn.evil/SimpleNotificationService-abc.pem",
        "https://SNS.US-EAST-1.AMAZONAWS.COM/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem#frag",
        "https://sns.us-east-1.amazonaws.com\\@evil.example/x.pem",
        "https://sns.switchboard-dev.invalid/SimpleNotificationService-switchboard-dev.pem",
        "https://[::1]/x.pem",
        "file:///etc/passwd",
        "",
        None,
        7,
        "https://snß.us-east-1.amazonaws.com/x.pem",
    ],
)
def test_other_certificate_urls_are_refused(adapter, fetch, url, production):
    with pytest.raises(SignatureError):
        check_sns_url(url, "SigningCertURL", certificate=True)
    message = sign(recorded("notification-plain.json"), cert_url=url)
    with pytest.raises(SignatureError):
        adapter.verify(make_request(message), CREDENTIALS, NOW)
    assert fetch.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        "https://sns.us-east-2.amazonaws.com.evil.example/?Action=ConfirmSubscription&Token=x",
        "http://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        "https://evil.example/?Action=ConfirmSubscription",
    ],
)
def test_bad_subscribe_urls_are_refused_before_anything_is_fetched(adapter, fetch, url, production):
    message = sign({**recorded("subscription-confirmation.json"), "SubscribeURL": url})
    with pytest.raises(SignatureError, match="SubscribeURL"):
        adapter.verify(make_request(message), CREDENTIALS, NOW)
    assert fetch.calls == []


def test_certificates_are_cached_by_url(adapter, fetch):
    for name in ("notification-plain.json", "notification-two-way-sms.json", "subscription-confirmation.json"):
        adapter.verify(make_request(sign(recorded(name))), CREDENTIALS, NOW)
    assert fetch.calls == [CERT_URL]
    other_url = CERT_URL.replace("f3ecfb", "000000")
    fetch.served[other_url] = pem(SIGNING_CERT)
    adapter.verify(make_request(sign(recorded("notification-plain.json"), cert_url=other_url)), CREDENTIALS, NOW)
    assert fetch.calls == [CERT_URL, other_url]


def test_unreachable_certificate_is_503_so_sns_retries(fetch):
    adapter = SnsAdapter(fetch=FakeFetch(served={}))
    with pytest.raises(CertificateUnavailable) as caught:
        adapter.verify(make_request(sign(recorded("notification-plain.json"))), CREDENTIALS, NOW)
    assert caught.value.status == 503


@pytest.mark.parametrize(
    "served",
    [b"", b"<html>404</html>", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"x" * (70 * 1024)],
)
def test_certificate_urls_serving_garbage_are_refused(served):
    adapter = SnsAdapter(fetch=FakeFetch(served={CERT_URL: served}))
    with pytest.raises(SignatureError):
        adapter.verify(make_request(sign(recorded("notification-plain.json"))), CREDENTIALS, NOW)


def test_expired_or_future_certificates_are_refused():
    for not_before, not_after in (
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)),
        (datetime(2024, 7, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
    ):
        certificate = _issue(
            SIGNING_KEY, CA_KEY, "sns", "Test Root CA", ca=False, not_before=not_before, not_after=not_after
        )
        adapter = SnsAdapter(fetch=FakeFetch(served={CERT_URL: pem(certificate)}))
        with pytest.raises(SignatureError, match="not valid now"):
            adapter.verify(make_request(sign(recorded("notification-plain.json"))), CREDENTIALS, NOW)


def test_non_rsa_certificate_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _issue(key, CA_KEY, "sns", "Test Root CA", ca=False, not_before=VALID_FROM, not_after=VALID_TO)
    adapter = SnsAdapter(fetch=FakeFetch(served={CERT_URL: pem(certificate)}))
    with pytest.raises(SignatureError, match="RSA"):
        adapter.verify(make_request(sign(recorded("notification-plain.json"))), CREDENTIALS, NOW)


def test_default_adapter_uses_the_urllib_fetcher():
    assert get_adapter("sns")._fetch is default_fetch


def test_default_fetch_serves_the_dev_host_only_when_configured(tmp_path, monkeypatch, production):
    url = "https://sns.switchboard-dev.invalid/SimpleNotificationService-switchboard-dev.pem"
    with pytest.raises(OSError):
        default_fetch(url)
    monkeypatch.setenv(DEV_CERT_DIR_ENV, str(tmp_path))
    (tmp_path / "SimpleNotificationService-switchboard-dev.pem").write_bytes(pem(SIGNING_CERT))
    assert default_fetch(url) == pem(SIGNING_CERT)
    assert default_fetch("https://sns.switchboard-dev.invalid/?Action=ConfirmSubscription&Token=t") == b""


def test_dev_host_is_trusted_only_while_the_dev_directory_is_set(tmp_path, monkeypatch, production):
    url = "https://sns.switchboard-dev.invalid/SimpleNotificationService-switchboard-dev.pem"
    (tmp_path / "SimpleNotificationService-switchboard-dev.pem").write_bytes(pem(SIGNING_CERT))
    request = make_request(sign(recorded("notification-plain.json"), cert_url=url))
    with pytest.raises(SignatureError, match="Amazon SNS host"):
        SnsAdapter().verify(request, CREDENTIALS, NOW)
    monkeypatch.setenv(DEV_CERT_DIR_ENV, str(tmp_path))
    SnsAdapter().verify(request, CREDENTIALS, NOW)
    for bad in (
        "https://sns.switchboard-dev.invalid/../secret.pem",
        "https://sns.switchboard-dev.invalid/a/b.pem",
        "https://sns.switchboard-dev.invalid/.hidden.pem",
    ):
        with pytest.raises(SignatureError):
            check_sns_url(bad, "SigningCertURL", certificate=True)


# --- subscription confirmation (after_verified) -----------------------------------------------------------


def test_subscription_confirmation_visits_subscribe_url_and_yields_no_events(adapter, fetch):
    message = sign(recorded("subscription-confirmation.json"))
    request = make_request(message)
    adapter.verify(request, CREDENTIALS, NOW)
    adapter.after_verified(request)
    assert fetch.calls == [CERT_URL, message["SubscribeURL"]]
    assert adapter.normalise(request) == []


def test_confirmation_failure_is_503(fetch):
    def failing(url: str) -> bytes:
        if "ConfirmSubscription" in url:
            raise TimeoutError("slow")
        return pem(SIGNING_CERT)

    adapter = SnsAdapter(fetch=failing)
    request = make_request(sign(recorded("subscription-confirmation.json")))
    adapter.verify(request, CREDENTIALS, NOW)
    with pytest.raises(ConfirmationFailed) as caught:
        adapter.after_verified(request)
    assert caught.value.status == 503


@pytest.mark.parametrize("name", ["notification-plain.json", "unsubscribe-confirmation.json"])
def test_after_verified_fetches_nothing_for_other_types(adapter, fetch, name):
    adapter.after_verified(make_request(sign(recorded(name))))
    assert fetch.calls == []


# --- credentials ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn",
    [
        TOPIC,
        "arn:aws:sns:eu-west-1:000000000000:orders.fifo",
        "arn:aws-cn:sns:cn-north-1:123456789012:t",
        "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t",
    ],
)
def test_valid_topic_arns(arn):
    assert SnsAdapter().validate_credentials({"topic_arn": arn}) == {"topic_arn": arn}


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "MyTopic",
        "arn:aws:sqs:us-east-1:123456789012:q",
        "arn:aws:sns:us-east-1:1234:t",
        "arn:aws:sns:us-east-1:123456789012:",
        "arn:aws:sns:us-east-1:123456789012:a b",
    ],
)
def test_invalid_topic_arns(arn):
    with pytest.raises(HubError) as caught:
        SnsAdapter().validate_credentials({"topic_arn": arn})
    assert (caught.value.status, caught.value.code) == (400, "invalid_credentials")


# --- normalisation --------------------------------------------------------------------------------------------


def test_two_way_sms_is_a_received_message(adapter):
    request = signed_recorded("notification-two-way-sms.json")
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.type == "message.received"
    assert event.contact.phone == "+14255550182"
    assert event.text == "EXAMPLE"
    assert event.provider_event_id == "cae173d2-66b9-564c-8309-21f858e9fb84"
    assert event.conversation_key == "+14255550182:+12125550101"
    assert event.attributes["keyword"] == "JOIN"
    assert event.attributes["destination_e164"] == "+12125550101"
    assert event.attributes["topic_arn"] == TOPIC
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 1, 120000, tzinfo=UTC)
    assert adapter.delivery_id(request) == "8e2c3f1a-5b7d-5e0f-9a1b-2c3d4e5f6a7b"


@pytest.mark.parametrize(
    ("channel", "event_type", "expected"),
    [
        ("VOICE", "CONNECTED_TO_AGENT", "call.in_progress"),
        ("VOICE", "INITIATED", "call.initiated"),
        ("VOICE", "QUEUED", "call.queued"),
        ("VOICE", "DISCONNECTED", "call.completed"),
        ("VOICE", "COMPLETED", "contact_center.event"),
        ("VOICE", "CONTACT_DATA_UPDATED", "contact_center.event"),
        ("CHAT", "INITIATED", "contact_center.event"),
        ("TASK", "DISCONNECTED", "contact_center.event"),
    ],
)
def test_connect_contact_events(adapter, channel, event_type, expected):
    message = recorded("notification-connect-contact-event.json")
    inner = json.loads(message["Message"])
    inner["detail"].update(channel=channel, eventType=event_type)
    request = make_request(sign({**message, "Message": json.dumps(inner)}))
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.type == expected
    assert event.conversation_key == "5ca32fbd-8f92-46af-92a5-6b0f970f0efe"
    assert event.attributes["contact_id"] == "6ca32fbd-8f92-46af-92a5-6b0f970f0efe"
    assert event.attributes["connect_event_type"] == event_type
    assert event.attributes["detail"]["agentInfo"]["agentArn"].endswith("444444444444")
    assert event.occurred_at == datetime(2024, 6, 12, 14, 7, 58, tzinfo=UTC)
    assert event.provider_event_id == "0d9f4a3e-1c2b-5a6d-8e7f-9a0b1c2d3e4f"


def test_plain_notification(adapter):
    [event] = adapter.normalise(signed_recorded("notification-plain.json"))
    assert_publishable([event])
    assert (event.type, event.text) == ("notification.received", "Hello world!")
    assert event.attributes["subject"] == "My First Message"
    assert event.attributes["message"] == "Hello world!"


def test_other_json_notification_keeps_the_parsed_message(adapter):
    message = {**recorded("notification-plain.json"), "Message": json.dumps({"eventType": "_email.send", "n": 1})}
    [event] = adapter.normalise(make_request(sign(message)))
    assert event.type == "notification.received"
    assert event.attributes["message"] == {"eventType": "_email.send", "n": 1}
    assert event.text is None


def test_unsubscribe_confirmation_is_an_event_and_is_not_acted_on(adapter, fetch):
    request = signed_recorded("unsubscribe-confirmation.json")
    adapter.verify(request, CREDENTIALS, NOW)
    adapter.after_verified(request)
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.type == "subscription.ended"
    assert fetch.calls == [CERT_URL]  # the certificate only: its SubscribeURL would re-subscribe


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{",
        b"\xff",
        b'{"a": NaN}',
        b"[]",
        b'{"Type": "Notification", "MessageId": "m", "Message": 5}',
        b'{"Type": "Notification", "Message": "x"}',
        b'{"Type": "Weird", "MessageId": "m"}',
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(make_request(body))


def test_delivery_id_falls_back_to_a_body_digest(adapter):
    assert adapter.delivery_id(make_request(b"junk")).startswith("sha256:")


# --- property tests -----------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(
            ["+14255550182", "VOICE", "INITIATED", "\ud800", "2024-06-12T14:08:00Z", "Amazon Connect Contact Event"]
        ),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "originationNumber",
                        "destinationNumber",
                        "messageBody",
                        "inboundMessageId",
                        "detail-type",
                        "detail",
                        "eventType",
                        "channel",
                        "contactId",
                        "customerEndpoint",
                        "address",
                        "type",
                        "time",
                    ]
                ),
                st.text(max_size=8),
            ),
            children,
            max_size=6,
        ),
    ),
    max_leaves=30,
)
ENVELOPE_KEYS = st.sampled_from(
    [
        "Type",
        "MessageId",
        "TopicArn",
        "Message",
        "Timestamp",
        "Subject",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "SubscribeURL",
        "Token",
    ]
)
ENVELOPES = st.dictionaries(
    ENVELOPE_KEYS,
    st.one_of(
        JSON_VALUES,
        st.sampled_from(
            [
                "Notification",
                "SubscriptionConfirmation",
                "UnsubscribeConfirmation",
                TOPIC,
                CERT_URL,
                "1",
                "2",
                "2024-06-12T14:08:00Z",
            ]
        ),
    ),
    max_size=11,
)


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=300), ENVELOPES.map(lambda v: json.dumps(v).encode())),
    headers=st.dictionaries(st.sampled_from(["x-amz-sns-message-type", "content-type"]), st.text(max_size=30)),
    topic=st.one_of(st.just(TOPIC), st.text(max_size=20)),
)
def test_property_any_request_raises_only_hub_errors(body, headers, topic):
    adapter = SnsAdapter(fetch=FakeFetch())
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(
        adapter,
        request,
        {"topic_arn": topic},
        NOW,
        assert_publishable,
        also=[lambda: adapter.after_verified(request), lambda: adapter.validate_credentials({"topic_arn": topic})],
    )


@FUZZ
@given(
    inner=JSON_VALUES,
    subject=st.one_of(st.none(), st.text(max_size=20)),
    version=st.sampled_from(["1", "2"]),
    raw_text=st.booleans(),
)
def test_property_signed_notifications_verify_and_normalise_or_are_malformed(inner, subject, version, raw_text):
    adapter = SnsAdapter(fetch=FakeFetch())
    text = json.dumps(inner)
    message = {
        "Type": "Notification",
        "MessageId": "3d1f5e0a-0000-4000-8000-000000000001",
        "TopicArn": TOPIC,
        "Message": text if not raw_text else str(inner),
        "Timestamp": "2024-06-12T14:08:00.000Z",
    }
    if subject is not None:
        message["Subject"] = subject
    try:
        request = make_request(sign(message, version=version))
    except SignatureError:  # a lone surrogate cannot be signed as UTF-8: SNS never sends one
        return
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        drafts = adapter.normalise(request)
    except MalformedPayload:
        return
    assert len(drafts) == 1
    assert_publishable(drafts)


def test_regression_non_string_signature_version_is_a_401():
    """Found by the 10,000-example run: a list SignatureVersion once raised TypeError."""
    body = b'{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-2:123456789012:MyTopic","SignatureVersion":[]}'
    adapter = get_adapter("sns")
    request = WebhookRequest(
        method="POST",
        url="https://hooks.example.com/webhooks/sns/con_1",
        headers={"content-type": "text/plain"},
        body=body,
    )
    with pytest.raises(SignatureError):
        adapter.verify(request, {"topic_arn": "arn:aws:sns:us-east-2:123456789012:MyTopic"}, datetime.now(UTC))
