"""The provider adapter interface.

An adapter knows one provider's contract: how it signs (on the raw bytes), how it
handshakes, which id identifies a delivery, how its payloads map onto the canonical
model, and what it expects as a success response. Adapters do no I/O of their own:
the ingest function passes them the request and the connection's credentials. Two
explicit exceptions serve protocols that need the network: an adapter that must fetch
a key to verify (SNS's signing certificate) takes its fetcher as a constructor argument
(tests inject a fake), and `after_verified` (default: nothing) runs once a request has
verified, for a protocol step that calls back (SNS confirming its subscription).
`normalise` stays pure.
"""

from __future__ import annotations

import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs

from switchboard_core.errors import HubError
from switchboard_core.events import Channel, EventDraft


class SignatureError(HubError):
    """The request is not signed by the connection's credentials, or the signature is stale (401)."""

    status = 401
    code = "invalid_signature"


class MalformedPayload(HubError):
    """The request is signed but its body or parameters cannot be understood (400)."""

    status = 400
    code = "malformed_payload"


class UnsupportedMediaType(HubError):
    status = 415
    code = "unsupported_media_type"


class HandshakeRefused(HubError):
    """A handshake (e.g. Meta's hub.verify_token) did not match the connection (403)."""

    status = 403
    code = "handshake_refused"


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request exactly as received.

    `url` is the public URL the provider called (scheme, host, port, path and query):
    URL-signing providers (Twilio, HubSpot v3) sign it. Header names are lower-cased.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, list[str]] = field(default_factory=dict)
    received_at: datetime | None = None
    # The credential set that verified this request (set by `ProviderAdapter.verified`),
    # for adapters whose delivery id or mapping is configured per connection (hmac).
    verified_with: Mapping[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ('' when absent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    # The body is parsed once per request: verify, the delivery id and normalise all read it
    # (docs/benchmarks.md, warm CPU per webhook). Callers must not change what they get back.
    def form(self) -> dict[str, list[str]]:
        """The body parsed as application/x-www-form-urlencoded, strictly."""
        parsed = self.__dict__.get("_form")
        if parsed is None:
            try:
                text = self.body.decode("utf-8")
                parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
            except (UnicodeDecodeError, ValueError) as exc:
                raise MalformedPayload(f"body is not valid form encoding: {exc}") from None
            object.__setattr__(self, "_form", parsed)  # frozen: a cache, not a field
        return parsed

    def json(self) -> Any:
        if "_json" not in self.__dict__:
            try:
                object.__setattr__(self, "_json", json.loads(self.body))
            except (UnicodeDecodeError, ValueError) as exc:
                raise MalformedPayload(f"body is not valid JSON: {exc}") from None
        return self.__dict__["_json"]


@dataclass(frozen=True)
class HttpResponse:
    """What to answer the provider with (success responses and handshakes)."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> HttpResponse:
        return cls(status=status, body=json.dumps(payload), content_type="application/json")

    @classmethod
    def ok(cls) -> HttpResponse:
        """200 `{"ok": true}`, the usual acknowledgement (its JSON written once, not per webhook)."""
        return cls(status=200, body=_OK_JSON, content_type="application/json")

    @classmethod
    def text(cls, body: str, status: int = 200) -> HttpResponse:
        return cls(status=status, body=body, content_type="text/plain; charset=utf-8")


_OK_JSON = json.dumps({"ok": True})

Credentials = Mapping[str, str]

# Headers that carry credentials whatever the provider: Basic or Bearer credentials can sit
# on any webhook URL (`https://user:pass@host/...` reaches the hub as Authorization), and a
# cookie is a session. Adapters add their own (`ProviderAdapter.credential_headers`).
GENERIC_CREDENTIAL_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie"})


class ProviderAdapter(ABC):
    """Base class of every provider. Subclasses set the class attributes and implement
    `verify`, `delivery_id` and `normalise`; `handshake` and `success_response` have
    defaults that suit providers with no handshake and a plain JSON acknowledgement."""

    name: ClassVar[str]
    channel: ClassVar[Channel]
    title: ClassVar[str]
    credential_fields: ClassVar[tuple[str, ...]]
    # Media types accepted on POST; anything else is refused with 415 before verifying.
    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    supports_handshake: ClassVar[bool] = False
    # How far a signed timestamp may be from now, where the provider signs one.
    replay_window: ClassVar[timedelta | None] = None
    # Headers in which this provider sends a credential itself (a shared secret, not a
    # signature): redacted before the raw request is stored (docs/security.md).
    secret_headers: ClassVar[tuple[str, ...]] = ()

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        """Check a credentials object for this provider (used when connections are created)."""
        missing = [name for name in self.credential_fields if not credentials.get(name)]
        unknown = sorted(set(credentials) - set(self.credential_fields))
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown {', '.join(unknown)}")
            raise HubError(
                f"credentials for {self.name} need exactly {list(self.credential_fields)}: {'; '.join(parts)}",
                status=400,
                code="invalid_credentials",
            )
        if not all(isinstance(credentials[name], str) for name in self.credential_fields):
            raise HubError("credential values must be strings", status=400, code="invalid_credentials")
        return {name: credentials[name] for name in self.credential_fields}

    def handshake(self, request: WebhookRequest, credentials: Sequence[Credentials]) -> HttpResponse:
        """Answer a GET handshake. `credentials` holds every currently valid set
        (several during a rotation). Providers without a handshake answer 405."""
        raise HubError(f"{self.name} has no GET handshake", status=405, code="method_not_allowed")

    @abstractmethod
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        """Raise SignatureError unless `request` is signed with `credentials` and fresh."""

    @abstractmethod
    def delivery_id(self, request: WebhookRequest) -> str:
        """The provider's id for this delivery: stable across its retries (dedupe key)."""

    @abstractmethod
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        """Map a verified request onto canonical event drafts (one per item in a batch).
        Raise MalformedPayload for anything that cannot be read."""

    def verified(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> WebhookRequest:
        """`verify`, then the request marked with the credential set that verified it."""
        self.verify(request, credentials, now)
        # A copy of every field and of the body parsed while verifying (the `_` caches), as
        # `dataclasses.replace` plus copying those would make, without its per-field work.
        marked = object.__new__(type(request))
        marked.__dict__.update(request.__dict__)
        marked.__dict__["verified_with"] = credentials
        return marked

    def credential_headers(self, credentials: Credentials) -> frozenset[str]:
        """Lower-cased names of the headers that carry a credential of a connection with
        `credentials`: the generic ones, the provider's `secret_headers`, and any a
        connection configures (override). Ingest replaces their values before storing the
        raw request. A signature is not a credential (it covers one request, and the
        stored body shows what it signed), so signature headers are kept."""
        return GENERIC_CREDENTIAL_HEADERS | {name.lower() for name in self.secret_headers}

    def after_verified(self, request: WebhookRequest) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Called by ingest right after `request` verified and before `normalise`, for a
        protocol step that needs I/O (SNS: visit SubscribeURL to confirm a subscription).
        Raise a HubError to refuse (a 5xx makes the provider retry). Default: nothing."""

    def success_response(self, request: WebhookRequest) -> HttpResponse:
        return HttpResponse.ok()

    def describe(self) -> dict[str, Any]:
        """What `GET /admin/providers` shows about this provider."""
        return {
            "name": self.name,
            "title": self.title,
            "channel": self.channel.value,
            "credential_fields": list(self.credential_fields),
            "handshake": self.supports_handshake,
            "content_types": list(self.content_types),
            "replay_window_seconds": int(self.replay_window.total_seconds()) if self.replay_window else None,
        }


def constant_time_equal(expected: str | bytes, given: str | bytes | None) -> bool:
    """hmac.compare_digest over bytes; False for a missing value."""
    if given is None:
        return False
    if isinstance(expected, str):
        expected = expected.encode()
    if isinstance(given, str):
        given = given.encode()
    return hmac.compare_digest(expected, given)
