"""Generic HMAC webhooks: any sender that signs its body with a shared secret, configured
per connection (docs/providers/hmac.md shows GitHub, Shopify, Slack- and Stripe-like setups).

Credentials (validated with clear 400s when the connection is created):

* ``secret`` (the HMAC key, UTF-8), ``header`` (where the signature arrives);
* ``algorithm`` ``sha1`` | ``sha256`` (default) | ``sha512``; ``encoding`` ``hex`` (default,
  case-insensitive) | ``base64``; ``prefix`` before the signature (``sha256=``, ``v0=``; default none);
* ``template``: the signed string, made of literal text and the placeholders ``{body}``
  (required, exactly once: the raw bytes), ``{timestamp}`` and ``{id}`` (the values of the
  timestamp and id headers); default ``{body}``;
* ``timestamp_header`` (optional): integer unix seconds (13+ digits: milliseconds), checked
  against ``tolerance_seconds`` (default 300) both ways. When it names the signature
  header itself, that header is read Stripe-style: comma-separated ``k=v`` items, the
  timestamp in ``t=`` and the signatures in the items that start with ``prefix``;
* ``id_header`` (optional): the sender's delivery id. It is the dedupe key only when the
  template signs it (``{id}``); otherwise the key is ``sha256:`` + the signed body's digest
  and the header value is kept as ``attributes.sender_delivery_id`` (an unsigned hint);
* ``tolerance_seconds`` (optional, 1..86400).

The signature header may carry several space-separated signatures (key rotation); any
match is enough. Comparison is constant-time on the decoded digests.

Normalisation: one ``webhook.received`` per delivery. JSON bodies: attributes ``type``
(the payload's ``type``/``event``/``topic``/``action`` when a string), ``payload`` (the body).
Form bodies: ``payload`` is the form (single values as strings).

The id header is part of the connection's configuration: `delivery_id` reads it through
`request.verified_with`, the credential set that verified the request (set by
`ProviderAdapter.verified`). A request not marked as verified falls back to the body digest,
and so does an id header the signature does not cover: a dedupe key must come from signed
material, or a replay with a fresh id header would be a new delivery each time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac as _hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from switchboard_core.errors import HubError
from switchboard_core.events import Channel, EventDraft
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    bounded_id,
    clean_str,
    draft,
    header,
    load_json,
    refuse_invalid_models,
    sanitize,
)
from switchboard_core.providers.base import (
    Credentials,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
)

ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("body", "timestamp", "id")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
DEFAULT_TOLERANCE = 300
MAX_SIGNATURES = 16
FORM = "application/x-www-form-urlencoded"


class HmacConfig(BaseModel):
    """One connection's configuration, as stored (every value a string)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    secret: str = Field(min_length=1, max_length=4096)
    header: str
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(default="", max_length=64)
    template: str = Field(default="{body}", max_length=512)
    timestamp_header: str | None = None
    id_header: str | None = None
    tolerance_seconds: int | None = Field(default=None, ge=1, le=86400)

    @field_validator("header", "timestamp_header", "id_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not HEADER_NAME.match(value):
            raise ValueError("must be an HTTP header name (letters, digits, '-', no spaces)")
        return value

    @field_validator("algorithm", "encoding", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("tolerance_seconds", mode="before")
    @classmethod
    def _int_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 6):
                raise ValueError("must be a whole number of seconds")
            return int(text)
        if isinstance(value, bool):
            raise ValueError("must be a whole number of seconds")
        return value

    @field_validator("prefix", "secret")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        names = PLACEHOLDER.findall(value)
        unknown = sorted(set(names) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                "use {body}, {timestamp}, {id}"
            )
        if names.count("body") != 1:
            raise ValueError("must contain {body} exactly once")
        if "{" in PLACEHOLDER.sub("", value) or "}" in PLACEHOLDER.sub("", value):
            raise ValueError("has an unbalanced '{' or '}'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HmacConfig:
        if "{timestamp}" in self.template and not self.timestamp_header:
            raise ValueError("template uses {timestamp}: set timestamp_header")
        if "{id}" in self.template and not self.id_header:
            raise ValueError("template uses {id}: set id_header")
        if self.tolerance_seconds is not None and not self.timestamp_header:
            raise ValueError("tolerance_seconds needs timestamp_header")
        if self.combined and not self.prefix:
            raise ValueError(
                "timestamp_header = header (Stripe-style) needs a prefix naming the signature item, e.g. 'v1='"
            )
        return self

    @property
    def combined(self) -> bool:
        """Stripe-style: timestamp and signatures share one header (`t=...,v1=...`)."""
        timestamp_header = self.timestamp_header
        return bool(timestamp_header and timestamp_header.lower() == self.header.lower())

    @property
    def tolerance(self) -> int:
        return self.tolerance_seconds or DEFAULT_TOLERANCE

    def to_credentials(self) -> dict[str, str]:
        values = self.model_dump(exclude_none=True)
        return {key: str(value) for key, value in values.items()}


def parse_config(credentials: Mapping[str, Any]) -> HmacConfig:
    """The configuration, or ValueError with every problem named (never the secret)."""
    if not isinstance(credentials, Mapping):
        raise ValueError("credentials must be an object")
    if all(isinstance(value, str) for value in credentials.values()):
        # Stored credentials (every webhook verifies with them, then reads the id header
        # through them): validated once per distinct set, not three times per webhook.
        return _stored_config(tuple(credentials.items()))
    return _parse_config(credentials)


@functools.lru_cache(maxsize=256)
def _stored_config(items: tuple[tuple[Any, str], ...]) -> HmacConfig:
    return _parse_config(dict(items))


def _parse_config(credentials: Mapping[str, Any]) -> HmacConfig:
    present = {k: v for k, v in credentials.items() if v not in (None, "")}
    try:
        return HmacConfig(**present)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:8]:
            where = ".".join(str(part) for part in error["loc"]) or "credentials"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise ValueError("; ".join(problems)) from None
    except TypeError:
        raise ValueError("credentials must map names to values") from None


def signed_content(config: HmacConfig, body: bytes, timestamp: str | None, delivery: str | None) -> bytes:
    values = {"timestamp": timestamp or "", "id": delivery or ""}
    out = bytearray()
    position = 0
    for match in PLACEHOLDER.finditer(config.template):
        out += config.template[position : match.start()].encode("utf-8")
        name = match.group(1)
        out += body if name == "body" else values[name].encode("utf-8")
        position = match.end()
    out += config.template[position:].encode("utf-8")
    return bytes(out)


def compute(config: HmacConfig, content: bytes) -> bytes:
    return _hmac.new(config.secret.encode("utf-8"), content, ALGORITHMS[config.algorithm]).digest()


def encode(config: HmacConfig, digest: bytes) -> str:
    """The header value a sender with this configuration sends."""
    text = digest.hex() if config.encoding == "hex" else base64.b64encode(digest).decode("ascii")
    return config.prefix + text


def _decode(config: HmacConfig, value: str) -> bytes | None:
    if not value.isascii():
        return None
    try:
        if config.encoding == "hex":
            return bytes.fromhex(value)
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None


class HmacAdapter(ProviderAdapter):
    name: ClassVar[str] = "hmac"
    channel: ClassVar[Channel] = Channel.GENERIC
    title: ClassVar[str] = "Generic HMAC webhooks (configurable header, algorithm, encoding, signed string)"
    credential_fields: ClassVar[tuple[str, ...]] = (
        "secret",
        "header",
        "algorithm",
        "encoding",
        "prefix",
        "template",
        "timestamp_header",
        "id_header",
        "tolerance_seconds",
    )
    content_types: ClassVar[tuple[str, ...]] = ("application/json", FORM)
    replay_window: ClassVar[timedelta | None] = timedelta(seconds=DEFAULT_TOLERANCE)

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        try:
            return parse_config(credentials).to_credentials()
        except ValueError as exc:
            raise HubError(f"hmac credentials: {exc}", status=400, code="invalid_credentials") from None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "required_credentials": ["secret", "header"]}

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        try:
            config = parse_config(credentials)
        except ValueError:
            raise SignatureError("the connection's hmac configuration is invalid") from None
        raw = header(request, config.header)
        if raw is None:
            raise SignatureError(f"missing {config.header} header")
        timestamp: str | None = None
        if config.combined:
            items = [item.strip() for item in raw.split(",")]
            timestamp = next((item[2:] for item in items if item.startswith("t=")), None)
            candidates = [item[len(config.prefix) :] for item in items if item.startswith(config.prefix)]
            if timestamp is None:
                raise SignatureError(f"{config.header} has no t= timestamp")
        else:
            candidates = [entry[len(config.prefix) :] for entry in raw.split() if entry.startswith(config.prefix)]
            if config.timestamp_header:
                timestamp = header(request, config.timestamp_header)
                if timestamp is None:
                    raise SignatureError(f"missing {config.timestamp_header} header")
        if not candidates:
            raise SignatureError(
                f"{config.header} has no signature starting with {config.prefix!r}"
                if config.prefix
                else f"{config.header} is empty"
            )
        if timestamp is not None:
            self._check_timestamp(config, timestamp, now)
        delivery = header(request, config.id_header) if config.id_header else None
        if "{id}" in config.template and delivery is None:
            raise SignatureError(f"missing {config.id_header} header")

        expected = compute(config, signed_content(config, request.body, timestamp, delivery))
        matched = False
        for candidate in candidates[:MAX_SIGNATURES]:
            given = _decode(config, candidate)
            if given is not None and _hmac.compare_digest(expected, given):
                matched = True
        if not matched:
            raise SignatureError(f"{config.header} does not match the request")

    @staticmethod
    def _check_timestamp(config: HmacConfig, timestamp: str, now: datetime) -> None:
        where = config.timestamp_header
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 16:
            raise SignatureError(f"{where} must be integer unix seconds (or milliseconds)")
        seconds = int(timestamp) / 1000 if len(timestamp) >= 13 else int(timestamp)
        age = aware(now).timestamp() - seconds
        if age > config.tolerance:
            raise SignatureError(f"{where} is older than {config.tolerance} s")
        if age < -config.tolerance:
            raise SignatureError(f"{where} is more than {config.tolerance} s in the future")

    @staticmethod
    def _config_for(request: WebhookRequest) -> HmacConfig | None:
        if request.verified_with is None:
            return None
        try:
            return parse_config(request.verified_with)
        except ValueError:
            return None

    def delivery_id(self, request: WebhookRequest) -> str:
        """The id header's value when the signed string covers it (`{id}` in the template);
        otherwise the digest of the signed body. An id header outside the signed string is
        only a hint (kept in attributes): anyone replaying a captured request could set it
        to a fresh value each time, and every value would be a new delivery."""
        config = self._config_for(request)
        if config is not None and config.id_header and "{id}" in config.template:
            value = header(request, config.id_header)
            if value is not None:
                return bounded_id(value)
        return body_digest_id(request.body)

    def _sender_id(self, request: WebhookRequest) -> str | None:
        config = self._config_for(request)
        value = header(request, config.id_header) if config is not None and config.id_header else None
        return value[:256] if value is not None else None

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        if request.content_type == FORM:
            form = request.form()
            payload: Any = sanitize({k: v[0] if len(v) == 1 else v for k, v in form.items()})
        else:
            payload = load_json(request)
        kind = None
        if isinstance(payload, dict):
            kind = next(
                (payload[k] for k in ("type", "event", "topic", "action") if isinstance(payload.get(k), str)), None
            )
        delivery = self.delivery_id(request)
        attributes: dict[str, Any] = {"type": kind, "payload": payload, "delivery_id": delivery}
        sender_id = self._sender_id(request)
        if sender_id is not None:
            attributes["sender_delivery_id"] = sender_id
        return [draft(type="webhook.received", provider_event_id=clean_str(delivery), attributes=attributes)]


__all__ = ["HmacAdapter", "HmacConfig", "compute", "encode", "parse_config", "signed_content"]
