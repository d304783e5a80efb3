"""Turning API Gateway (HTTP API, payload 2.0) events into webhook requests.

The body is kept as the exact bytes the provider sent: signatures are computed
over them, so nothing here re-serialises or re-decodes it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from switchboard_core.errors import HubError
from switchboard_core.providers.base import WebhookRequest


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise HubError("request body is not valid base64", status=400, code="malformed_request") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        # A lone UTF-16 surrogate: no byte sequence a sender could have signed or sent as text.
        raise HubError(
            "request body is not valid UTF-8 text (it holds a lone UTF-16 surrogate)",
            status=400,
            code="malformed_request",
        ) from None


def public_base_url(event: dict[str, Any], override: str | None = None) -> str:
    """scheme://host[:port] the client called. Behind a custom domain or a proxy that
    rewrites the host, set PUBLIC_BASE_URL so URL-signing providers (Twilio, HubSpot) verify."""
    if override:
        return override.rstrip("/")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    host = headers.get("host") or context.get("domainName") or "localhost"
    proto = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    port = (headers.get("x-forwarded-port") or "").split(",")[0].strip()
    if port and port != {"https": "443", "http": "80"}.get(proto) and ":" not in host:
        host = f"{host}:{port}"
    return f"{proto}://{host}"


def public_url(event: dict[str, Any], override: str | None = None) -> str:
    """The full URL the provider called: what Twilio and HubSpot v3 sign."""
    query = event.get("rawQueryString") or ""
    return public_base_url(event, override) + (event.get("rawPath") or "/") + (f"?{query}" if query else "")


def webhook_request(
    event: dict[str, Any], received_at: datetime, base_url_override: str | None = None
) -> WebhookRequest:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET").upper()
    return WebhookRequest(
        method=method,
        url=public_url(event, base_url_override),
        headers=headers,
        body=raw_body(event),
        query=parse_qs(event.get("rawQueryString") or "", keep_blank_values=True),
        received_at=received_at,
    )
