"""Phone numbers to E.164, through Google's libphonenumber port (`phonenumbers`).

Providers send numbers in every shape: Twilio in E.164, WhatsApp as digits with a
country code, Vonage as digits without '+', CRMs as whatever a person typed. A
router can only match a person across channels if all of them become E.164.
"""

from __future__ import annotations

import re
from functools import lru_cache

_DIALABLE = re.compile(r"^[\d\s().+\-/]{5,32}$")


@lru_cache(maxsize=4096)
def to_e164(raw: str | None, default_region: str | None = None) -> str | None:
    """E.164 form of `raw`, or None when it is not a valid phone number.

    Numbers without '+' are read as international digits first (WhatsApp `wa_id`,
    Vonage `msisdn`), then in `default_region` when one is given (a CRM's local
    format). Short codes, SIP URIs and client identities are not phone numbers.
    """
    if not raw or not isinstance(raw, str):
        return None
    text = raw.strip()
    if not _DIALABLE.match(text):
        return None
    import phonenumbers  # deferred: ~30 ms of import, only paid by adapters with phone numbers

    candidates = [text] if text.startswith("+") else ["+" + re.sub(r"\D", "", text), text]
    for candidate in candidates:
        region = None if candidate.startswith("+") else default_region
        if region is None and not candidate.startswith("+"):
            continue
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
