"""Cursors: sealed (opaque, tamper-evident), bound to the listing they were issued for."""

from __future__ import annotations

import base64

import pytest
from pydantic import BaseModel, ConfigDict

from switchboard_core.cursors import CursorCodec, InvalidCursor

SECRET = "s" * 48
SCOPE = {"listing": "events", "tenant": "acme", "type": None}


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    sort_key: str


def test_a_cursor_opens_to_its_position_for_its_listing_only():
    codec = CursorCodec(SECRET)
    cursor = codec.seal(SCOPE, {"id": "e1", "sort_key": "2026#e1"})
    # Opaque, not base64 of the key: neither the text nor its decoded bytes show the position or the
    # scope. (Long markers: a two-letter one turns up in random ciphertext about one run in twenty.)
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for marker in ("2026#e1", "sort_key", "events"):
        assert marker not in cursor and marker.encode() not in decoded
    assert codec.open(cursor, dict(SCOPE), Position) == {"id": "e1", "sort_key": "2026#e1"}
    for other in ({**SCOPE, "tenant": "globex"}, {**SCOPE, "type": "x"}, {**SCOPE, "listing": "conversations"}):
        with pytest.raises(InvalidCursor, match="another listing"):
            codec.open(cursor, other, Position)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"),
        lambda c: c[:40],
        lambda c: "x" + c,
        lambda c: c + "=" * 3000,
        lambda c: "not a cursor",
    ],
)
def test_a_tampered_cursor_is_refused(mangle):
    codec = CursorCodec(SECRET)
    with pytest.raises(InvalidCursor) as refused:
        codec.open(mangle(codec.seal(SCOPE, {"id": "e1", "sort_key": "k"})), SCOPE, Position)
    assert refused.value.status == 400 and refused.value.body()["error"]["details"]["problems"][0]["field"] == "cursor"


def test_a_cursor_of_another_key_or_without_a_usable_position_is_refused():
    cursor = CursorCodec("t" * 48).seal(SCOPE, {"id": "e1", "sort_key": "k"})
    with pytest.raises(InvalidCursor, match="not one this API issued"):
        CursorCodec(SECRET).open(cursor, SCOPE, Position)
    for position in ({"id": "e1"}, {"id": "e1", "sort_key": "k", "tenant": "globex"}, {"id": 1, "sort_key": []}):
        with pytest.raises(InvalidCursor, match="position"):
            CursorCodec(SECRET).open(CursorCodec(SECRET).seal(SCOPE, position), SCOPE, Position)


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="32"):
        CursorCodec("short")
