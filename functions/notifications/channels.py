"""Sending one notification on one channel.

- sms: the outbound sender of an SMS provider (Twilio) with the connection's outbound
  credentials: the contact point's connection, or the tenant's first Twilio connection with
  outbound credentials. The sender number is the credentials' Messaging Service when they
  have one, else NOTIFICATION_SMS_FROM.
- slack: chat.postMessage with the named Slack connection's bot token.
- email: SES (sesv2 SendEmail) from NOTIFICATION_EMAIL_FROM, the identity the stage verified.
- webhook: the partner subscriptions' machinery: SSRF check at send (switchboard_core.endpoints),
  Standard Webhooks signature with the tenant's notification signing secret, the
  wall-clock-deadline sender.

Each returns the provider's message id, or raises a SendFailure (transient: the queue
retries; permanent: reported as notification.failed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.endpoints import EndpointRefused, Resolver, check_endpoint, resolve_host
from switchboard_core.errors import NotFound
from switchboard_core.outbound import PermanentFailure, ReplyAddress, TransientFailure, Transport, send
from switchboard_core.routing.contact_points import ContactPoint

if TYPE_CHECKING:
    from switchboard_core.subscriptions.sender import Sender

SMS_PROVIDERS = ("twilio",)
WEBHOOK_TIMEOUT_SECONDS = 10


@dataclass
class Outgoing:
    """One rendered notification for one contact point."""

    tenant: str
    contact_point: ContactPoint
    subject: str
    text: str
    message_id: str  # the webhook-id of a webhook; unique per (trigger, recipient, channel)
    payload: dict[str, Any] = field(default_factory=dict)  # the webhook's JSON body


@dataclass
class ChannelDeps:
    connections: ConnectionStore
    credentials: CredentialStore  # outbound prefix
    transport: Transport
    ses: Any  # a boto3 sesv2 client
    email_from: str | None
    sms_from: str | None
    webhook_keys: Callable[[str], list[bytes]]  # tenant -> signing keys
    post: Sender
    local_endpoints: bool = False
    resolve: Resolver = resolve_host


def deliver(outgoing: Outgoing, deps: ChannelDeps) -> str:
    channel = outgoing.contact_point.channel
    if channel == "sms":
        return _sms(outgoing, deps)
    if channel == "slack":
        return _slack(outgoing, deps)
    if channel == "email":
        return _email(outgoing, deps)
    return _webhook(outgoing, deps)


def _connection(deps: ChannelDeps, tenant: str, connection_id: str) -> Connection:
    try:
        connection = deps.connections.get(connection_id)
    except NotFound:
        connection = None
    if connection is None or connection.tenant != tenant:
        raise PermanentFailure("connection_gone", f"connection {connection_id} does not exist in tenant {tenant}")
    if connection.outbound_configured_at is None:
        raise PermanentFailure("not_configured", f"connection {connection_id} has no outbound credentials")
    return connection


def _sms(outgoing: Outgoing, deps: ChannelDeps) -> str:
    point = outgoing.contact_point
    if point.connection:
        connection = _connection(deps, outgoing.tenant, point.connection)
        if connection.provider not in SMS_PROVIDERS:
            raise PermanentFailure("wrong_connection", f"connection {connection.id} is not an SMS provider's")
    else:
        candidates = [
            c
            for c in deps.connections.list(outgoing.tenant)
            if c.provider in SMS_PROVIDERS and c.outbound_configured_at is not None
        ]
        if not candidates:
            raise PermanentFailure("not_configured", "the tenant has no SMS connection with outbound credentials")
        connection = sorted(candidates, key=lambda c: (c.created_at, c.id))[0]
    credentials = deps.credentials.get(connection.id).current
    fields = {"to": point.to}
    if not credentials.get("messaging_service_sid"):
        if not deps.sms_from:
            raise PermanentFailure("not_configured", "no sender number (NOTIFICATION_SMS_FROM) nor Messaging Service")
        fields["from"] = deps.sms_from
    address = ReplyAddress(provider=connection.provider, connection=connection.id, fields=fields)
    return send(address, outgoing.text, credentials, deps.transport)


def _slack(outgoing: Outgoing, deps: ChannelDeps) -> str:
    point = outgoing.contact_point
    assert point.connection is not None  # the model requires one for slack
    connection = _connection(deps, outgoing.tenant, point.connection)
    if connection.provider != "slack":
        raise PermanentFailure("wrong_connection", f"connection {connection.id} is not a Slack connection")
    credentials = deps.credentials.get(connection.id).current
    address = ReplyAddress(provider="slack", connection=connection.id, fields={"channel": point.to})
    return send(address, outgoing.text, credentials, deps.transport)


def _email(outgoing: Outgoing, deps: ChannelDeps) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    if not deps.email_from:
        raise PermanentFailure("not_configured", "no sender address (NOTIFICATION_EMAIL_FROM) for e-mail")
    try:
        answer = deps.ses.send_email(
            FromEmailAddress=deps.email_from,
            Destination={"ToAddresses": [outgoing.contact_point.to]},
            Content={
                "Simple": {
                    "Subject": {"Data": outgoing.subject[:200], "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": outgoing.text, "Charset": "UTF-8"}},
                }
            },
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
        if code in ("TooManyRequestsException", "Throttling", "ThrottlingException") or status >= 500:
            raise TransientFailure(f"ses_{code}", str(exc)) from None
        raise PermanentFailure(f"ses_{code}", str(exc)) from None
    except BotoCoreError as exc:
        raise TransientFailure("ses_unreachable", str(exc)) from None
    return str(answer.get("MessageId", ""))


def _webhook(outgoing: Outgoing, deps: ChannelDeps) -> str:
    # Standard Webhooks signing and the sender's connection classes serve this channel only.
    from switchboard_core.subscriptions.sender import USER_AGENT
    from switchboard_core.subscriptions.signing import webhook_headers

    url = outgoing.contact_point.to
    try:
        checked = check_endpoint(url, local=deps.local_endpoints, resolve=deps.resolve)
    except EndpointRefused as refused:
        problems = refused.details.get("problems") or [{"problem": refused.message}]
        raise PermanentFailure("endpoint_refused", str(problems[0]["problem"])) from None
    body = json.dumps(outgoing.payload, separators=(",", ":"), default=str).encode()
    headers = {
        **webhook_headers(deps.webhook_keys(outgoing.tenant), outgoing.message_id, int(time.time()), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    result = deps.post(checked, body, headers, WEBHOOK_TIMEOUT_SECONDS)
    if result.delivered:
        return outgoing.message_id
    problem = result.error or f"HTTP {result.status_code}"
    if result.status_code is None or result.status_code == 429 or result.status_code >= 500:
        raise TransientFailure("webhook_unavailable", problem)
    raise PermanentFailure("webhook_refused", problem)
