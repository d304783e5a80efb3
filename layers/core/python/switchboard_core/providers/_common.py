"""Small helpers shared by the provider adapters (stdlib + pydantic only).

Everything here treats its input as untrusted: a body can be correctly signed and
still be garbage, so parsing never raises anything but `MalformedPayload`, and
strings that reach an event are made safe to serialise (no lone surrogates).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from switchboard_core.errors import HubError
from switchboard_core.events import EVENT_TYPES, EventDraft
from switchboard_core.phones import typed_e164
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

# Deeper JSON than this is refused: real provider payloads nest a handful of levels,
# and bounding it keeps every later walk (ours, pydantic's, json.dumps) far from
# Python's recursion limit.
MAX_JSON_DEPTH = 64

FALLBACK_TYPE = "provider.notification"
_SURROGATE = re.compile("[\ud800-\udfff]")

_F = TypeVar("_F", bound=Callable[..., Any])


def refuse_invalid_models(method: _F) -> _F:
    """Turn a pydantic ValidationError escaping `method` (a Contact, SocialHandle or
    Attachment built from payload values) into MalformedPayload."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ValidationError as exc:
            problems = ", ".join(".".join(str(part) for part in error["loc"]) for error in exc.errors()[:5])
            raise MalformedPayload(f"payload has values the event model refuses ({problems})") from None

    return wrapper  # type: ignore[return-value]


def clean_str(value: str) -> str:
    """`value` with lone surrogates (from `\\ud800`-style JSON escapes) replaced, so
    it can be encoded as UTF-8 later."""
    if value.isascii():  # a flag CPython keeps: no surrogate, and no copy to find out
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise MalformedPayload(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def sanitize(value: Any) -> Any:
    """A copy of a parsed JSON value whose strings (keys included) are UTF-8 safe.
    Call only on depth-checked values."""
    if isinstance(value, str):
        return clean_str(value)
    if isinstance(value, dict):
        return {clean_str(str(key)): sanitize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [sanitize(item) for item in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(request: WebhookRequest) -> Any:
    """The body as JSON (UTF-8, no NaN/Infinity, bounded depth), or MalformedPayload; parsed
    once per request (verify, the delivery id and normalise all ask). Do not change it."""
    if "_loaded_json" not in request.__dict__:
        object.__setattr__(request, "_loaded_json", _load_json(request))  # frozen: a cache, not a field
    return request.__dict__["_loaded_json"]


_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# Only a \\u escape of a surrogate (\\ud800-\\udfff) can put a lone surrogate in text decoded
# from valid UTF-8; a body without one needs no `sanitize` copy.
_COUNT_BRACKETS_UP_TO = 4096
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _load_json(request: WebhookRequest) -> Any:
    body = request.body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("body is not UTF-8 encoded JSON") from None
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _JSON_DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nesting too deep"
        raise MalformedPayload(f"body is not valid JSON: {reason[:200]}") from None
    # Each level of nesting takes a [ or { of its own: a small body with no more of them than
    # the limit cannot nest deeper, and counting its bytes costs less than walking its value
    # (a large one is walked: its nodes are far fewer than its bytes).
    if len(body) > _COUNT_BRACKETS_UP_TO or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        _check_depth(value)
    # A single-byte search (memchr) first: most bodies have no backslash at all.
    return sanitize(value) if b"\\" in body and _SURROGATE_ESCAPE.search(body) else value


def parsed_body(request: WebhookRequest) -> dict[str, Any]:
    """The body as a JSON object for choosing a response ({} when it is none): the value
    `load_json` parsed for normalise, or, for a body it refuses, what `json.loads` reads."""
    try:
        payload = load_json(request)
    except MalformedPayload:
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            payload = None
    return payload if isinstance(payload, dict) else {}


_XML_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


def _markup_in_plain_bytes(body: bytes) -> bool:
    """Whether every `<!` the document could hold would be the bytes `<!`: UTF-8 or ASCII,
    by expat's rules (no UTF-16 byte order mark or NUL byte; no declared encoding but those)."""
    if b"\x00" in body or body.startswith((b"\xfe\xff", b"\xff\xfe")):
        return False
    head = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    if head.startswith(b"<?xml"):
        end = head.find(b"?>")
        declared = _XML_ENCODING.search(head[: end if end >= 0 else 200])
        if declared and declared.group(1).lower() not in _UTF8_NAMES:
            return False
    return True


def safe_xml(body: bytes) -> Any:
    """`defusedxml.ElementTree.fromstring(body, forbid_dtd=True, forbid_entities=True,
    forbid_external=True)`: the same tree, or the same exception.

    A UTF-8 document without `<!` has no DTD, so it declares no entity, internal or
    external, and there is nothing for defusedxml to forbid: it is parsed by ElementTree's
    C parser (defusedxml drives expat through the pure-Python XMLParser, twice the cost for
    a 1 KB document). Any other body (another encoding could spell `<!` in other bytes), and
    any the C parser refuses, goes to defusedxml, whose answer (tree or exception) is returned.
    """
    if b"<!" not in body and _markup_in_plain_bytes(body):
        from xml.etree import ElementTree

        try:
            return ElementTree.fromstring(body)  # noqa: S314 - no DTD, so no entity (above)
        except Exception:  # noqa: BLE001 - defusedxml below gives the answer, and its exception
            pass
    from defusedxml.ElementTree import fromstring

    return fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def draft(**fields: Any) -> EventDraft:
    """Build an EventDraft; a payload value the model refuses becomes MalformedPayload."""
    if fields.get("type") not in EVENT_TYPES:
        fields["type"] = FALLBACK_TYPE
    try:
        return EventDraft(**fields)
    except ValidationError as exc:
        problems = ", ".join(".".join(str(part) for part in error["loc"]) for error in exc.errors()[:5])
        raise MalformedPayload(f"payload has values the event model refuses ({problems})") from None


def scalar_str(value: Any) -> str | None:
    """A JSON scalar as a non-empty string (ids arrive as numbers or strings); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = clean_str(value).strip()
        return value or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def text_or_none(value: Any) -> str | None:
    """A string field kept verbatim (message text), or None when it is not a string."""
    if isinstance(value, str):
        return clean_str(value)
    return None


def ascii_int(value: Any, max_digits: int = 18) -> int | None:
    """A non-negative integer from an int or a string of ASCII digits ('²' and '٣' are
    digits to str.isdigit, not here), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= max_digits and text.isascii() and text.isdigit():
            return int(text)
    return None


def _from_epoch(value: Any, divisor: int) -> datetime | None:
    if isinstance(value, str):
        value = ascii_int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    try:
        return datetime.fromtimestamp(value / divisor, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def from_millis(value: Any) -> datetime | None:
    """An epoch-milliseconds number or digit string as an aware datetime, else None."""
    return _from_epoch(value, 1000)


def from_seconds(value: Any) -> datetime | None:
    """An epoch-seconds number or digit string as an aware datetime, else None."""
    return _from_epoch(value, 1)


def from_epoch(value: Any) -> datetime | None:
    """Epoch milliseconds or seconds, told apart by magnitude (Meta and LinkedIn send both)."""
    number = ascii_int(value)
    if number is None:
        return None
    return from_millis(number) if number > 100_000_000_000 else from_seconds(number)


def from_iso(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware datetime (naive values are taken as UTC), else None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body_digest_id(body: bytes) -> str:
    """The delivery id of providers that send none: a digest of the exact body.

    Normalise asks again for the id it puts in the event: the last body's digest is kept
    (with the body itself, so the identity check cannot match a new object at a reused
    address) rather than hashing 256 KB twice."""
    global _last_digest
    last = _last_digest
    if last is not None and last[0] is body:
        return last[1]
    digest = "sha256:" + sha256_hex(body)
    if type(body) is bytes:  # immutable: the same object is the same content
        _last_digest = (body, digest)
    return digest


_last_digest: tuple[bytes, str] | None = None


def stable_hash(value: Any) -> str:
    """A short deterministic digest of a (sanitised) JSON value, for ids of items the
    provider gives no id: a redelivery of the same item hashes the same."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def header(request: WebhookRequest, name: str) -> str | None:
    """A header value as a stripped string ('' counts as missing)."""
    value = request.header(name)
    if not isinstance(value, str):
        return None
    value = clean_str(value).strip()
    return value or None


def secret_bytes(credentials: Any, name: str) -> bytes | None:
    """A non-empty credential as UTF-8 bytes, or None."""
    value = credentials.get(name) if isinstance(credentials, Mapping) else None
    if not isinstance(value, str) or not value:
        return None
    return clean_str(value).encode("utf-8")


def request_url(request: WebhookRequest) -> str:
    """The request URL, UTF-8 safe ('' when absent)."""
    return clean_str(request.url) if isinstance(request.url, str) else ""


def dig(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., or None where any step is not a dict."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def query_value(request: WebhookRequest, name: str) -> str | None:
    """A query parameter from the parsed query, or from the URL when it was not parsed."""
    values: Any = request.query.get(name) if isinstance(request.query, Mapping) else None
    if values is None and isinstance(request.url, str):
        try:
            values = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(name)
        except ValueError:
            values = None
    if isinstance(values, (list, tuple)):
        values = values[0] if values else None
    if isinstance(values, str):
        return clean_str(values) or None
    return None


def first_value(params: Mapping[str, list[str]], *names: str) -> str | None:
    """The first non-blank value of the first of `names` present in parsed form parameters."""
    for name in names:
        values = params.get(name)
        if values and values[0].strip():
            return values[0].strip()
    return None


def xml_local_name(tag: Any) -> str:
    """An XML element or attribute name without its `{namespace}`."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def invalid_credentials(message: str) -> HubError:
    """A 400 for credentials that do not fit the provider (raised when a connection is saved)."""
    return HubError(message, status=400, code="invalid_credentials")


def email_or_none(value: Any) -> str | None:
    """A plausible e-mail address, lower-cased, or None."""
    if isinstance(value, str) and len(value) <= 320:
        text = value.strip().lower()
        if "@" in text and " " not in text:
            return text
    return None


def typed_phone(value: Any) -> str | None:
    """A phone number a person typed into a CRM ('+1 415 555 0100', '0049 40 ...') as E.164,
    or None unless libphonenumber calls it valid (`phones.typed_e164`). Numbers a carrier
    or platform delivered use `phones.delivered_e164` instead, which keeps every possible one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    return typed_e164(text)


def bounded_id(value: str) -> str:
    """A delivery id short enough for the dedupe store's key: long ones become a digest."""
    if len(value) <= 200:
        return value
    return "sha256-id:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def basic_credentials(request: WebhookRequest) -> tuple[bytes, bytes] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None."""
    value = header(request, "Authorization")
    if value is None:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def check_basic_auth(request: WebhookRequest, username: bytes | None, password: bytes | None) -> None:
    """Raise SignatureError unless the request carries exactly these Basic credentials."""
    if username is None or password is None:
        raise SignatureError("the connection has no username/password to check Basic auth with")
    given = basic_credentials(request)
    if given is None:
        raise SignatureError("missing or unreadable Authorization: Basic header")
    # Both halves are compared, always, so the time taken says nothing about which differed.
    user_ok = constant_time_equal(username, given[0])
    password_ok = constant_time_equal(password, given[1])
    if not (user_ok and password_ok):
        raise SignatureError("Basic auth credentials do not match the connection")
