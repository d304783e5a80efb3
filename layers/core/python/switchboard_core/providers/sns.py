"""Amazon SNS HTTPS subscriptions: the path Amazon Connect contact events (via an
EventBridge rule) and Pinpoint / End User Messaging two-way SMS take to an HTTPS hub.

Contract (docs/providers/sns.md has the sources):

* POST, ``Content-Type: text/plain; charset=UTF-8``, a JSON body with ``Type``
  (``Notification``, ``SubscriptionConfirmation`` or ``UnsubscribeConfirmation``),
  ``MessageId``, ``TopicArn``, ``Message``, ``Timestamp``, ``SignatureVersion``,
  ``Signature`` (base64) and ``SigningCertURL``.
* ``SignatureVersion`` 1 = SHA1withRSA, 2 = SHA256withRSA (PKCS#1 v1.5) over the
  canonical string ``Name\\nValue\\n`` of, in this order: Notification -> Message,
  MessageId, Subject (only if present), Timestamp, TopicArn, Type; confirmations ->
  Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
* The public key is the X.509 certificate at ``SigningCertURL``, which must be HTTPS on
  an SNS host (``sns.<region>.amazonaws.com`` or ``sns.<region>.amazonaws.com.cn``: no
  user-info, no port, no look-alikes). Certificates are cached by URL.
* ``TopicArn`` must be the connection's ``topic_arn``; ``Timestamp`` (publish time,
  reused by retries) must be within 1 hour in the past / 5 minutes in the future.
* SubscriptionConfirmation: after it verifies, ``after_verified`` GETs ``SubscribeURL``
  (same host rules) so the subscription activates; it normalises to no events, so ingest
  answers 200 and stores nothing. UnsubscribeConfirmation is *not* acted on (visiting its
  SubscribeURL would re-subscribe) and becomes a ``subscription.ended`` event.
* ``MessageId`` is reused on retries: the delivery id.

I/O: the adapter takes a ``fetch(url) -> bytes`` (default: urllib, 3 s timeout, no
redirects, 64 KiB cap). Dev only: when ``SWITCHBOARD_SNS_DEV_CERT_DIR`` is set, URLs on
the reserved host ``sns.switchboard-dev.invalid`` are also accepted, certificates are read
from that directory and confirmations are no-ops; unset (every deployed stage) they are
refused like any other foreign host.

Normalisation of a Notification's ``Message`` (JSON when it parses):
* two-way SMS (``originationNumber``, ``destinationNumber``, ``messageBody``) ->
  ``message.received``; phones through ``phones.delivered_e164``;
* an EventBridge event with ``detail-type`` "Amazon Connect Contact Event" -> VOICE
  ``INITIATED``/``QUEUED``/``CONNECTED_TO_AGENT``/``DISCONNECTED`` -> ``call.initiated``/
  ``call.queued``/``call.in_progress``/``call.completed``; any other Connect contact event
  -> ``contact_center.event``; conversation_key = ``initialContactId`` or ``contactId``;
* anything else -> ``notification.received`` with the message (parsed when JSON).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from switchboard_core.errors import HubError
from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    clean_str,
    draft,
    from_iso,
    header,
    load_json,
    refuse_invalid_models,
    scalar_str,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
)

Fetch = Callable[[str], bytes]

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
MESSAGE_TYPES = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)
TYPE_HEADER = "x-amz-sns-message-type"

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

MAX_AGE = timedelta(hours=1)
MAX_SKEW = timedelta(minutes=5)
FETCH_TIMEOUT_SECONDS = 3.0
MAX_CERT_BYTES = 64 * 1024
CERT_CACHE_SIZE = 32

# sns.<region>.amazonaws.com (aws, aws-us-gov) and sns.<region>.amazonaws.com.cn (aws-cn).
SNS_HOST = re.compile(r"^sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com(?:\.cn)?$")
TOPIC_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:sns:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$")

DEV_CERT_DIR_ENV = "SWITCHBOARD_SNS_DEV_CERT_DIR"
DEV_HOST = "sns.switchboard-dev.invalid"
_DEV_CERT_NAME = re.compile(r"^/([A-Za-z0-9_-][A-Za-z0-9_.-]{0,120}\.pem)$")

CONNECT_DETAIL_TYPE = "Amazon Connect Contact Event"
CONNECT_VOICE_TYPES = {
    "INITIATED": "call.initiated",
    "QUEUED": "call.queued",
    "CONNECTED_TO_AGENT": "call.in_progress",
    "DISCONNECTED": "call.completed",
}


class CertificateUnavailable(HubError):
    """The signing certificate could not be fetched: our problem, so SNS should retry (503)."""

    status = 503
    code = "certificate_unavailable"


class ConfirmationFailed(HubError):
    status = 503
    code = "subscription_confirmation_failed"


def dev_cert_dir() -> Path | None:
    """The dev-only certificate directory, when SWITCHBOARD_SNS_DEV_CERT_DIR is set."""
    value = os.environ.get(DEV_CERT_DIR_ENV, "").strip()
    return Path(value) if value else None


def check_sns_url(url: Any, what: str, *, certificate: bool) -> str:
    """`url` when it is HTTPS on an SNS host (or the dev host, in dev mode only);
    SignatureError otherwise. Certificate URLs must name a .pem file; SubscribeURLs must
    be ConfirmSubscription calls."""
    if not isinstance(url, str) or not url or len(url) > 2048 or not url.isascii():
        raise SignatureError(f"{what} is missing or not an ASCII URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SignatureError(f"{what} is not a valid URL") from None
    host = parts.netloc
    if parts.scheme != "https" or "@" in host or port is not None or ":" in host or parts.fragment:
        raise SignatureError(f"{what} must be https://<SNS host>/... with no user-info, port or fragment")
    dev = host == DEV_HOST and dev_cert_dir() is not None
    if not dev and not SNS_HOST.match(host):
        raise SignatureError(f"{what} is not on an Amazon SNS host (sns.<region>.amazonaws.com[.cn])")
    if certificate:
        if parts.query or not parts.path.endswith(".pem") or (dev and not _DEV_CERT_NAME.match(parts.path)):
            raise SignatureError(f"{what} must name a .pem certificate")
    else:
        query = parse_qs(parts.query)
        if query.get("Action") != ["ConfirmSubscription"]:
            raise SignatureError(f"{what} is not a ConfirmSubscription URL")
    return url


def default_fetch(url: str) -> bytes:
    """GET `url` (already checked by check_sns_url): no redirects, short timeout, size cap.
    Dev host URLs read the dev certificate directory (only when it is configured)."""
    parts = urlsplit(url)
    if parts.netloc == DEV_HOST:
        directory = dev_cert_dir()
        if directory is None:
            raise OSError("the SNS dev host is only served when SWITCHBOARD_SNS_DEV_CERT_DIR is set")
        if not parts.path.endswith(".pem"):
            return b""  # a dev ConfirmSubscription: nothing to call
        match = _DEV_CERT_NAME.match(parts.path)
        if not match:
            raise OSError("bad dev certificate name")
        return (directory / match.group(1)).read_bytes()[: MAX_CERT_BYTES + 1]

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - check_sns_url allowed only https SNS hosts
    with opener.open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        return response.read(MAX_CERT_BYTES + 1)


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: `Name\\nValue\\n` for each documented field, in order."""
    kind = message.get("Type")
    fields = NOTIFICATION_FIELDS if kind == NOTIFICATION else CONFIRMATION_FIELDS
    parts: list[str] = []
    for name in fields:
        if name not in message:
            if name == "Subject" and kind == NOTIFICATION:
                continue
            raise SignatureError(f"the {kind} message has no {name}")
        value = message[name]
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            raise SignatureError(f"{name} must be a string")
        parts.append(f"{name}\n{value}\n")
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise SignatureError("the message has text that is not valid Unicode") from None


def validate_topic_arn(value: Any) -> str:
    if not isinstance(value, str) or not TOPIC_ARN.match(value):
        raise ValueError("topic_arn must look like arn:aws:sns:<region>:<12-digit account>:<topic name>")
    return value


class SnsAdapter(ProviderAdapter):
    name: ClassVar[str] = "sns"
    channel: ClassVar[Channel] = Channel.TELEPHONY
    title: ClassVar[str] = "Amazon SNS (HTTPS subscription: Amazon Connect, Pinpoint / End User Messaging SMS)"
    credential_fields: ClassVar[tuple[str, ...]] = ("topic_arn",)
    content_types: ClassVar[tuple[str, ...]] = ("text/plain", "application/json")
    replay_window: ClassVar[timedelta | None] = MAX_AGE

    def __init__(self, fetch: Fetch | None = None) -> None:
        self._fetch = fetch or default_fetch
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        checked = super().validate_credentials(credentials)
        try:
            validate_topic_arn(checked["topic_arn"])
        except ValueError as exc:
            raise HubError(f"sns credentials: {exc}", status=400, code="invalid_credentials") from None
        return checked

    # ------------------------------------------------------------------ parsing
    def _message(self, request: WebhookRequest) -> dict[str, Any]:
        try:
            message = load_json(request)
        except MalformedPayload:
            raise SignatureError("body is not an SNS message (JSON object expected)") from None
        if not isinstance(message, dict):
            raise SignatureError("body is not an SNS message (JSON object expected)")
        return message

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        message = self._message(request)
        kind = message.get("Type")
        if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
            raise SignatureError(f"Type must be one of {', '.join(MESSAGE_TYPES)}")
        declared = header(request, TYPE_HEADER)
        if declared is not None and declared != kind:
            raise SignatureError(f"{TYPE_HEADER} does not match the message Type")
        topic = credentials.get("topic_arn") if isinstance(credentials, Mapping) else None
        if not isinstance(topic, str) or not topic:
            raise SignatureError("the connection has no topic_arn")
        if message.get("TopicArn") != topic:
            raise SignatureError("TopicArn is not the connection's topic")
        version = message.get("SignatureVersion")
        if not isinstance(version, str) or version not in SIGNATURE_HASHES:
            raise SignatureError("SignatureVersion must be 1 (SHA1withRSA) or 2 (SHA256withRSA)")
        stamp = from_iso(message.get("Timestamp"))
        if stamp is None:
            raise SignatureError("Timestamp is missing or not ISO 8601")
        age = aware(now) - stamp
        if age > MAX_AGE:
            raise SignatureError(f"Timestamp is older than {MAX_AGE}")
        if age < -MAX_SKEW:
            raise SignatureError(f"Timestamp is more than {MAX_SKEW} in the future")
        signature = message.get("Signature")
        if not isinstance(signature, str) or not signature or not signature.isascii() or len(signature) > 4096:
            raise SignatureError("Signature is missing")
        try:
            signature_bytes = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("Signature is not base64") from None
        signed = canonical_string(message)
        if kind == SUBSCRIPTION_CONFIRMATION:
            check_sns_url(message.get("SubscribeURL"), "SubscribeURL", certificate=False)
        key = self._public_key(message.get("SigningCertURL"), now)
        try:
            key.verify(signature_bytes, signed, padding.PKCS1v15(), SIGNATURE_HASHES[version]())
        except InvalidSignature:
            raise SignatureError("Signature does not match the message") from None

    def _public_key(self, url: Any, now: datetime) -> rsa.RSAPublicKey:
        url = check_sns_url(url, "SigningCertURL", certificate=True)
        key = self._keys.get(url)
        if key is None:
            try:
                pem = self._fetch(url)
            except HubError:
                raise
            except Exception as exc:  # noqa: BLE001 - any fetch failure (network, HTTP, file): "try again later"
                raise CertificateUnavailable(
                    f"could not fetch the SNS signing certificate: {type(exc).__name__}"
                ) from None
            if len(pem) > MAX_CERT_BYTES:
                raise SignatureError("the signing certificate is too large")
            try:
                certificate = x509.load_pem_x509_certificate(pem)
            except ValueError:
                raise SignatureError("SigningCertURL did not serve a PEM X.509 certificate") from None
            now_aware = aware(now)
            if not certificate.not_valid_before_utc <= now_aware <= certificate.not_valid_after_utc:
                raise SignatureError("the signing certificate is not valid now")
            public_key = certificate.public_key()
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise SignatureError("the signing certificate does not hold an RSA key")
            key = public_key
            self._keys[url] = key
            while len(self._keys) > CERT_CACHE_SIZE:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(url)
        return key

    def after_verified(self, request: WebhookRequest) -> None:
        """Confirm a verified SubscriptionConfirmation by visiting its SubscribeURL."""
        message = self._message(request)
        if message.get("Type") != SUBSCRIPTION_CONFIRMATION:
            return
        url = check_sns_url(message.get("SubscribeURL"), "SubscribeURL", certificate=False)
        try:
            self._fetch(url)
        except HubError:
            raise
        except Exception as exc:  # noqa: BLE001 - any fetch failure (network, HTTP): a retryable 503
            raise ConfirmationFailed(f"could not confirm the SNS subscription: {type(exc).__name__}") from None

    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            message = load_json(request)
        except MalformedPayload:
            message = None
        msg_id = scalar_str(message.get("MessageId")) if isinstance(message, dict) else None
        return msg_id if msg_id is not None else body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        message = load_json(request)
        if not isinstance(message, dict):
            raise MalformedPayload("body is not an SNS message (JSON object expected)")
        kind = message.get("Type")
        if kind == SUBSCRIPTION_CONFIRMATION:
            return []
        msg_id = scalar_str(message.get("MessageId"))
        if msg_id is None:
            raise MalformedPayload("the SNS message has no MessageId")
        occurred = from_iso(message.get("Timestamp"))
        envelope = {"topic_arn": message.get("TopicArn"), "message_id": msg_id, "sns_type": kind}
        if message.get("Subject") is not None:
            envelope["subject"] = message.get("Subject")
        if kind == UNSUBSCRIBE_CONFIRMATION:
            return [
                draft(
                    type="subscription.ended",
                    provider_event_id=msg_id,
                    occurred_at=occurred,
                    text=text_or_none(message.get("Message")),
                    attributes=envelope,
                )
            ]
        if kind != NOTIFICATION:
            raise MalformedPayload("Type must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation")
        raw = message.get("Message")
        if not isinstance(raw, str):
            raise MalformedPayload("Message must be a string")
        inner = _parse_inner(raw)
        if isinstance(inner, dict) and _is_two_way_sms(inner):
            return [self._sms(inner, msg_id, occurred, envelope)]
        if (
            isinstance(inner, dict)
            and inner.get("detail-type") == CONNECT_DETAIL_TYPE
            and isinstance(inner.get("detail"), dict)
        ):
            return [self._connect(inner, msg_id, occurred, envelope)]
        attributes = {**envelope, "message": inner if inner is not None else raw}
        return [
            draft(
                type="notification.received",
                provider_event_id=msg_id,
                occurred_at=occurred,
                text=clean_str(raw) if inner is None else None,
                attributes=attributes,
            )
        ]

    @staticmethod
    def _sms(inner: dict[str, Any], msg_id: str, occurred: datetime | None, envelope: dict[str, Any]) -> EventDraft:
        sender = inner.get("originationNumber")
        business = inner.get("destinationNumber")
        phone = delivered_e164(sender)
        attributes = {
            **envelope,
            "origination_number": sender,
            "destination_number": business,
            "destination_e164": delivered_e164(business),
            "keyword": inner.get("messageKeyword"),
            "inbound_message_id": inner.get("inboundMessageId"),
            "previous_published_message_id": inner.get("previousPublishedMessageId"),
        }
        attributes.update(
            (k, v)
            for k, v in inner.items()
            if k
            not in (
                "originationNumber",
                "destinationNumber",
                "messageKeyword",
                "messageBody",
                "inboundMessageId",
                "previousPublishedMessageId",
            )
        )
        conversation = f"{phone}:{attributes['destination_e164']}" if phone and attributes["destination_e164"] else None
        return draft(
            type="message.received",
            provider_event_id=scalar_str(inner.get("inboundMessageId")) or msg_id,
            occurred_at=occurred,
            contact=Contact(phone=phone),
            conversation_key=conversation,
            text=text_or_none(inner.get("messageBody")),
            attributes=attributes,
        )

    @staticmethod
    def _connect(inner: dict[str, Any], msg_id: str, occurred: datetime | None, envelope: dict[str, Any]) -> EventDraft:
        detail = inner["detail"]
        event_type = scalar_str(detail.get("eventType"))
        channel = scalar_str(detail.get("channel"))
        kind = CONNECT_VOICE_TYPES.get(event_type or "") if channel == "VOICE" else None
        contact_id = scalar_str(detail.get("contactId"))
        endpoint = detail.get("customerEndpoint")
        address = endpoint.get("address") if isinstance(endpoint, dict) else None
        is_phone = isinstance(endpoint, dict) and endpoint.get("type") == "TELEPHONE_NUMBER"
        phone = delivered_e164(address) if is_phone else None
        attributes = {
            **envelope,
            "connect_event_type": event_type,
            "connect_channel": channel,
            "contact_id": contact_id,
            "event_id": inner.get("id"),
            "detail": detail,
            "region": inner.get("region"),
            "account": inner.get("account"),
        }
        return draft(
            type=kind or "contact_center.event",
            provider_event_id=msg_id,
            occurred_at=from_iso(inner.get("time")) or occurred,
            contact=Contact(phone=phone),
            conversation_key=scalar_str(detail.get("initialContactId")) or contact_id,
            attributes=attributes,
        )


def _parse_inner(raw: str) -> Any:
    """The Message parsed as JSON when it is a JSON object or array, else None."""
    text = raw.strip()
    if not text.startswith(("{", "[")) or len(text) > 256 * 1024:
        return None
    try:
        return load_json(WebhookRequest(method="POST", url="", headers={}, body=text.encode("utf-8")))
    except (MalformedPayload, UnicodeEncodeError):
        return None


def _is_two_way_sms(inner: dict[str, Any]) -> bool:
    return (
        all(isinstance(inner.get(k), str) for k in ("originationNumber", "destinationNumber"))
        and "messageBody" in inner
    )


__all__ = ["SnsAdapter", "canonical_string", "check_sns_url", "default_fetch"]
