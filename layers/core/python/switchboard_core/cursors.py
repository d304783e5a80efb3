"""Pagination cursors: opaque and tamper-evident, bound to the query they continue.

A store pages with a DynamoDB key (`ExclusiveStartKey`); handing that key to clients as
base64 let them forge keys that lack attributes or name another tenant's partition (a
500, or a peek into someone else's listing). A cursor is instead the key sealed with
Fernet (AES-CBC + HMAC-SHA256, from `cryptography`) under a key derived from a secret
only the admin function reads, together with a digest of the query it was issued for
(the listing, its partition and its filters). Opening it checks the MAC, that the query
is the same one, and that the key has exactly the attributes that listing pages with;
anything else is a 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from switchboard_core.errors import HubError

MAX_CURSOR_CHARS = 2048  # sealed keys are a few hundred characters; anything longer is not ours
# A cursor continues a listing someone is paging through now; an old one is refused rather than
# kept valid forever (a leaked cursor then expires too).
CURSOR_LIFETIME_SECONDS = 24 * 3600
_KEY_INFO = b"switchboard admin api pagination cursors v1"


class InvalidCursor(HubError):
    status = 400
    code = "invalid_cursor"

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"cursor {problem}; start again from the first page (no cursor)",
            details={"problems": [{"field": "cursor", "in": "query", "problem": problem}]},
        )


def scope_digest(scope: dict[str, Any]) -> str:
    """A short, canonical digest of the query a cursor belongs to."""
    canonical = json.dumps(scope, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class CursorCodec:
    def __init__(self, secret: str) -> None:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives.hashes import SHA256
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        if len(secret) < 32:
            raise ValueError("the cursor secret must be at least 32 characters")
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_KEY_INFO).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, scope: dict[str, Any], position: dict[str, Any]) -> str:
        payload = json.dumps({"q": scope_digest(scope), "k": position}, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode()).decode()

    def open(self, cursor: str, scope: dict[str, Any], position: type[BaseModel]) -> dict[str, Any]:
        """The position sealed in `cursor`, if it was issued for `scope`; InvalidCursor otherwise."""
        from cryptography.fernet import InvalidToken

        if len(cursor) > MAX_CURSOR_CHARS:
            raise InvalidCursor("is longer than any cursor this API issues")
        try:
            payload = json.loads(self._fernet.decrypt(cursor.encode(), ttl=CURSOR_LIFETIME_SECONDS))
        except (InvalidToken, ValueError, TypeError):
            raise InvalidCursor(
                "is not one this API issued, is older than a day, or the cursor key was rotated"
            ) from None
        if not isinstance(payload, dict) or payload.get("q") != scope_digest(scope):
            raise InvalidCursor("was issued for another listing or other filters")
        try:
            return position.model_validate(payload.get("k")).model_dump()
        except ValidationError:
            raise InvalidCursor("does not hold a position this listing can continue from") from None
