"""The raw-request store: every accepted webhook exactly as received, for replay.

The key is derived from the delivery id, so a provider's retry of a delivery that
failed half-way overwrites the same object instead of adding a second one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from switchboard_core.events import RawRef
from switchboard_core.providers.base import WebhookRequest


def raw_key(tenant: str, connection: str, delivery_id: str, received_at: datetime) -> str:
    digest = hashlib.sha256(delivery_id.encode()).hexdigest()[:32]
    return f"raw/{tenant}/{connection}/{received_at:%Y/%m/%d}/{digest}.json"


class RawStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def put(self, request: WebhookRequest, *, provider: str, tenant: str, connection: str,
            delivery_id: str, received_at: datetime) -> RawRef:
        key = raw_key(tenant, connection, delivery_id, received_at)
        document = {
            "provider": provider,
            "connection": connection,
            "delivery_id": delivery_id,
            "received_at": received_at.isoformat(),
            "method": request.method,
            "url": request.url,
            "headers": dict(request.headers),
            "body_base64": base64.b64encode(request.body).decode(),
        }
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(document).encode(),
            ContentType="application/json",
        )
        return RawRef(bucket=self._bucket, key=key)

    def get(self, ref: RawRef) -> dict[str, Any]:
        body = self._s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        return json.loads(body)
