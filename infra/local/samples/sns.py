"""Sample webhooks for `sns`: SNS HTTPS notifications shaped like AWS's documented examples,
signed with SignatureVersion 2 (SHA256withRSA) over the documented canonical string.

Real SNS messages are signed by AWS and name a certificate on an SNS host; the local hub
cannot fetch those, and these samples cannot sign with AWS's key. So they sign with a
local demo key whose self-signed certificate lives in the dev certificate directory
(`SWITCHBOARD_SNS_DEV_CERT_DIR`, default `build/dev/sns/`, created on first use; the
private key sits in a `private/` subdirectory that no certificate URL can name) and name
it as `https://sns.switchboard-dev.invalid/<file>.pem`. The SNS adapter accepts that host
only while `SWITCHBOARD_SNS_DEV_CERT_DIR` is set, which `switchboard dev` (infra/local/lambdas.py)
and the test suite do and no deployed stage does: on AWS such a message is refused like
any other foreign certificate host.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from infra.local.samples.base import SignedRequest, phone, random_hex
from infra.local.sns_dev import DEV_CERT_DIR_ENV, dev_certificate_dir

PROVIDER = "sns"
SAMPLES: tuple[str, ...] = ("sms", "connect-call", "notification")

DEV_HOST = "sns.switchboard-dev.invalid"
CERT_NAME = "SimpleNotificationService-switchboard-dev.pem"
KEY_PATH = Path("private") / "switchboard-dev-key.pem"
BUSINESS_NUMBER = "+14155550100"

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def dev_certificate_url() -> str:
    return f"https://{DEV_HOST}/{CERT_NAME}"


def _generate(directory: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Switchboard SNS dev demo (not AWS)")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Wide validity: the tests sign with fixed dates in the past.
        .not_valid_before(datetime(2015, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2099, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    staging = directory.with_name(f"{directory.name}.tmp-{secrets.token_hex(4)}")
    (staging / KEY_PATH.parent).mkdir(parents=True, mode=0o700)
    key_file = staging / KEY_PATH
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (staging / CERT_NAME).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    try:
        staging.rename(directory)  # atomic: a concurrent generator's pair wins whole, never mixed
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


@cache
def _signing_key(directory: Path) -> rsa.RSAPrivateKey:
    if not (directory / KEY_PATH).exists() or not (directory / CERT_NAME).exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        if directory.exists():  # half a pair (deleted by hand): start again
            shutil.rmtree(directory)
        _generate(directory)
    key = serialization.load_pem_private_key((directory / KEY_PATH).read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def signing_key() -> rsa.RSAPrivateKey:
    """The demo private key (generated with its certificate on first use)."""
    return _signing_key(dev_certificate_dir().resolve())


def canonical_string(message: dict[str, str]) -> bytes:
    fields = NOTIFICATION_FIELDS if message["Type"] == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode("utf-8")


def sign_message(message: dict[str, str], key: rsa.RSAPrivateKey, version: str = "2") -> dict[str, str]:
    """`message` with SignatureVersion and Signature set (1 = SHA1withRSA, 2 = SHA256withRSA)."""
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    signed = {**message, "SignatureVersion": version}
    signature = key.sign(canonical_string(signed), padding.PKCS1v15(), algorithm)
    signed["Signature"] = base64.b64encode(signature).decode("ascii")
    return signed


def demo_credentials() -> dict[str, str]:
    return {"topic_arn": f"arn:aws:sns:us-east-1:123456789012:switchboard-demo-{random_hex(4)}"}


def _timestamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _inner_message(sample: str, now: datetime) -> tuple[str, str | None]:
    if sample == "sms":
        # AWS End User Messaging SMS (Pinpoint) two-way SMS payload, as documented.
        return json.dumps(
            {
                "originationNumber": phone(),
                "destinationNumber": BUSINESS_NUMBER,
                "messageKeyword": "JOIN",
                "messageBody": "Hi, is my order on its way?",
                "inboundMessageId": str(uuid.uuid4()),
                "previousPublishedMessageId": random_hex(16),
            }
        ), None
    if sample == "connect-call":
        # An EventBridge "Amazon Connect Contact Event" forwarded to the topic by a rule.
        contact = str(uuid.uuid4())
        instance = "arn:aws:connect:us-east-1:123456789012:instance/" + str(uuid.uuid4())
        return json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Amazon Connect Contact Event",
                "source": "aws.connect",
                "account": "123456789012",
                "time": _timestamp(now).replace(".000", ""),
                "region": "us-east-1",
                "resources": [instance, f"{instance}/contact/{contact}"],
                "detail": {
                    "eventType": "INITIATED",
                    "contactId": contact,
                    "initialContactId": contact,
                    "channel": "VOICE",
                    "instanceArn": instance,
                    "initiationMethod": "INBOUND",
                    "initiationTimestamp": _timestamp(now),
                },
            }
        ), None
    return "Order 4711 shipped", "Shipping update"


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    topic = credentials["topic_arn"]
    inner, subject = _inner_message(sample, now)
    message_id = str(uuid.uuid4())
    region = topic.split(":")[3]
    message = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": inner,
        "Timestamp": _timestamp(now),
    }
    if subject is not None:
        message["Subject"] = subject
    signed = sign_message(message, signing_key())
    signed["SigningCertURL"] = dev_certificate_url()
    signed["UnsubscribeURL"] = (
        f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:{uuid.uuid4()}"
    )
    return _request(url, signed)


def build_subscription_confirmation(credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    """A SubscriptionConfirmation whose SubscribeURL is on the dev host (a no-op locally)."""
    topic = credentials["topic_arn"]
    token = random_hex(64)
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Timestamp": _timestamp(now),
        "Message": f"You have chosen to subscribe to the topic {topic}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": f"https://{DEV_HOST}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
    }
    signed = sign_message(message, signing_key())
    signed["SigningCertURL"] = dev_certificate_url()
    return _request(url, signed)


def _request(url: str, message: dict[str, str]) -> SignedRequest:
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": message["Type"],
        "x-amz-sns-message-id": message["MessageId"],
        "x-amz-sns-topic-arn": message["TopicArn"],
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    if message["Type"] == "Notification":
        headers["x-amz-sns-subscription-arn"] = f"{message['TopicArn']}:{uuid.uuid4()}"
    return SignedRequest("POST", url, headers, json.dumps(message, indent=2).encode("utf-8"))


__all__ = [
    "DEV_CERT_DIR_ENV",
    "PROVIDER",
    "SAMPLES",
    "build",
    "build_subscription_confirmation",
    "demo_credentials",
    "dev_certificate_dir",
]
