"""A partner endpoint's answer is outside input: whatever its Retry-After holds (headers arrive
Latin-1 decoded, so "²" and "¹" are digits to str.isdigit), the delivery function reads it as
seconds, a date or nothing, and schedules the retry; never an exception that would send the
delivery's queue message to the DLQ for one odd header.

Derandomised; `SWITCHBOARD_FUZZ_EXAMPLES` sets the count (`make fuzz`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.delivery.logic import deliver, retry_after_seconds
from tests.unit.delivery.support import Answer, canonical, message

FUZZ_EXAMPLES = os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HTTP_DATES = st.from_regex(
    r"[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} -?\d{1,6} \d{1,2}:\d{1,2}:\d{1,2} ([+-]\d{4}|GMT)", fullmatch=True
)


def test_non_ascii_digits_are_not_seconds():
    assert retry_after_seconds("\xb2", NOW) is None
    assert retry_after_seconds("1\xb9", NOW) is None
    assert retry_after_seconds("\u0663", NOW) is None  # an Arabic-Indic 3: not RFC 9110's DIGIT


@settings(max_examples=int(FUZZ_EXAMPLES or 500), deadline=None, derandomize=FUZZ_EXAMPLES is None, database=None)
@given(value=st.text(st.characters(max_codepoint=255)) | HTTP_DATES | st.integers(0, 10**400).map(str))
def test_property_any_retry_after_is_seconds_or_none(value):
    seconds = retry_after_seconds(value, NOW)
    assert seconds is None or seconds >= 0


def test_an_odd_retry_after_still_schedules_the_retry(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(503, headers={"Retry-After": "\xb2"}))
    verdict = deliver(message(canonical(1)), world.deps)
    assert (verdict.outcome, verdict.status_code) == ("retry", 503)
