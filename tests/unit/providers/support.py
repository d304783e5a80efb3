"""Helpers the provider adapter tests share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from switchboard_core.providers.base import WebhookRequest


def webhook_request(url: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *, method: str = "POST",
                    received_at: datetime | None = None) -> WebhookRequest:
    """A `WebhookRequest` as the ingest function would build it from one HTTP request.

    Header names are lower-cased (a later name wins over an earlier one that differs
    only in case). The query is parsed from `url`, keeping blank values; a URL that
    `urlsplit` rejects (e.g. an unclosed IPv6 host) gets an empty query, so tests can
    hand adapters malformed URLs.
    """
    try:
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        query = {}
    return WebhookRequest(method=method, url=url, headers={k.lower(): v for k, v in (headers or {}).items()},
                          body=body, query=query, received_at=received_at)
