"""The raw-request store: every accepted webhook as received, for replay.

The key is derived from the delivery id, so a provider's retry of a delivery that
failed half-way overwrites the same object instead of adding a second one.

The body, URL and method are kept exactly; headers too, except those carrying a
credential (the adapter names them: Authorization, Telegram's secret token, a Freshdesk
connection's header...), whose values are replaced by REDACTED before anything is
written: the bucket keeps objects for 90 days, and a credential there could forge
webhooks. docs/security.md lists what is redacted per provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from switchboard_core.events import RawRef
from switchboard_core.providers.base import WebhookRequest

REDACTED = "[redacted]"


def redact_headers(headers: Mapping[str, str], credential_headers: Collection[str]) -> dict[str, str]:
    """`headers` with the value of every header named in `credential_headers` (any case)
    replaced by REDACTED."""
    names = {name.lower() for name in credential_headers}
    return {name: REDACTED if name.lower() in names else value for name, value in headers.items()}


def redacted_names(headers: Mapping[str, str], credential_headers: Collection[str]) -> list[str]:
    """The names in `headers` that `redact_headers` redacts, sorted."""
    names = {name.lower() for name in credential_headers}
    return sorted(name for name in headers if name.lower() in names)


def raw_key(tenant: str, connection: str, delivery_id: str, received_at: datetime) -> str:
    digest = hashlib.sha256(delivery_id.encode()).hexdigest()[:32]
    if received_at.year >= 1000:  # what %Y/%m/%d writes, without strftime's cost on every webhook
        day = f"{received_at.year}/{received_at.month:02d}/{received_at.day:02d}"
    else:
        day = f"{received_at:%Y/%m/%d}"
    return f"raw/{tenant}/{connection}/{day}/{digest}.json"


def raw_document(
    request: WebhookRequest,
    *,
    provider: str,
    connection: str,
    delivery_id: str,
    received_at: datetime,
    credential_headers: Collection[str],
) -> bytes:
    """The stored document: `json.dumps` of the request's fields, its body in base64 last.

    The base64 text is joined in as bytes rather than given to `json.dumps`: it needs no
    escaping, and encoding, escaping and re-encoding a 256 KB body's 350 KB of base64 was
    the largest per-byte cost of a webhook (docs/benchmarks.md). The bytes are the same.
    """
    names = {name.lower() for name in credential_headers}
    document = {
        "provider": provider,
        "connection": connection,
        "delivery_id": delivery_id,
        "received_at": received_at.isoformat(),
        "method": request.method,
        "url": request.url,
        "headers": {name: REDACTED if name.lower() in names else value for name, value in request.headers.items()},
        "redacted_headers": sorted(name for name in request.headers if name.lower() in names),
    }
    head = json.dumps(document)
    return b"".join((head[:-1].encode(), b', "body_base64": "', base64.b64encode(request.body), b'"}'))


class RawStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def put(
        self,
        request: WebhookRequest,
        *,
        provider: str,
        tenant: str,
        connection: str,
        delivery_id: str,
        received_at: datetime,
        credential_headers: Collection[str],
    ) -> RawRef:
        """Store `request` with the values of `credential_headers` redacted (required, so
        no caller can forget it: pass the adapter's `credential_headers`)."""
        key = raw_key(tenant, connection, delivery_id, received_at)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=raw_document(
                request,
                provider=provider,
                connection=connection,
                delivery_id=delivery_id,
                received_at=received_at,
                credential_headers=credential_headers,
            ),
            ContentType="application/json",
        )
        return RawRef(bucket=self._bucket, key=key)

    def get(self, ref: RawRef) -> dict[str, Any]:
        body = self._s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        return json.loads(body)
