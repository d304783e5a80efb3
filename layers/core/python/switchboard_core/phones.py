"""Phone numbers to E.164, through Google's libphonenumber port (`phonenumbers`).

Providers send numbers in every shape: Twilio in E.164, WhatsApp as digits with a
country code, Vonage as digits without '+', CRMs as whatever a person typed. A
router can only match a person across channels if all of them become E.164.

Two kinds of number, two checks:

* `delivered_e164`: a number a carrier or platform delivered (an SMS's sender, an
  MSISDN, a WhatsApp id, a caller id). The network routed it, so it exists: it is kept
  whenever it is a *possible* number (right length for its country). libphonenumber's
  validity metadata lags ranges opened after its release and calls documented test
  ranges invalid (Ofcom's drama numbers 07700 900xxx, 555-01xx under an unassigned NANP
  area code such as 555); refusing those would drop the contact, thread and routing
  of a message that really arrived. Only a number that is international by form gets this
  benefit of the doubt: one with '+', or digits from a field the provider documents as
  international without '+' (`international_digits=True`: WhatsApp's `wa_id`, Vonage's
  `msisdn`, Plivo's `From`). Bare digits elsewhere may be a national number ("6505550100"
  would otherwise become a possible Singapore number, +65 0555 0100), so they must be valid.
* `typed_e164`: a number a person typed into a CRM (HubSpot, Salesforce, Pipedrive,
  Intercom, Zendesk, Freshdesk contact fields). Typos are common there, so it must be
  a *valid* number by the metadata.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_DIALABLE = re.compile(r"^[\d\s().+\-/]{5,32}$")


def _parse(raw: str, default_region: str | None) -> list[Any]:
    """The parsed candidates of `raw`: international digits first (WhatsApp `wa_id`,
    Vonage `msisdn` come without '+'), then `raw` in `default_region` when one is given."""
    text = raw.strip()
    if not _DIALABLE.match(text):
        return []
    import phonenumbers  # deferred: ~30 ms of import, only paid by adapters with phone numbers

    candidates = [text] if text.startswith("+") else ["+" + re.sub(r"\D", "", text), text]
    numbers: list[Any] = []
    for candidate in candidates:
        region = None if candidate.startswith("+") else default_region
        if region is None and not candidate.startswith("+"):
            continue
        try:
            numbers.append(phonenumbers.parse(candidate, region))
        except phonenumbers.NumberParseException:
            continue
    return numbers


def delivered_e164(raw: object, *, international_digits: bool = False) -> str | None:
    """E.164 form of a number a carrier or platform delivered, or None when it cannot be
    a phone number at all (wrong length for its country code, a short code, a SIP URI, a
    client identity, an all-zero placeholder, not a string). For a number with '+', or digits
    the provider documents as international (`international_digits`), validity metadata is
    deliberately not consulted; other bare digits must be valid (module docstring)."""
    if not isinstance(raw, str):
        return None
    if raw.strip().startswith("+") or international_digits:
        return _delivered(raw)
    return _typed(raw, None)


def typed_e164(raw: object, default_region: str | None = None) -> str | None:
    """E.164 form of a number a person typed (a CRM contact field), or None unless
    libphonenumber's metadata calls it a valid number. Without '+', the digits are read
    as international first, then in `default_region` when one is given."""
    return _typed(raw, default_region) if isinstance(raw, str) else None


@lru_cache(maxsize=4096)
def _delivered(raw: str) -> str | None:
    import phonenumbers

    for number in _parse(raw, None):
        if number.national_number == 0:
            continue  # all zeros: what some carriers send for a withheld caller id, shared by every such caller
        # IS_POSSIBLE only: IS_POSSIBLE_LOCAL_ONLY is a number missing its area code.
        if phonenumbers.is_possible_number_with_reason(number) == phonenumbers.ValidationResult.IS_POSSIBLE:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


@lru_cache(maxsize=4096)
def _typed(raw: str, default_region: str | None) -> str | None:
    import phonenumbers

    for number in _parse(raw, default_region):
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
