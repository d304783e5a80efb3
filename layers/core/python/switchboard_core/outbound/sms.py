"""What the SMS/MMS senders (Twilio, Telnyx, Plivo, Bandwidth) share: the media an MMS
may carry, checked before sending.

Every one of these APIs takes media as public URLs that the provider fetches itself
(Twilio ``MediaUrl``, Telnyx ``media_urls``, Plivo ``media_urls``, Bandwidth ``media``),
and caps their number at 10 per message; WhatsApp through Twilio takes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from switchboard_core.outbound.base import OutboundMessage, PermanentFailure, Refused

MAX_MEDIA = 10


def refuse_unsendable_media(message: OutboundMessage, limit: int = MAX_MEDIA, channel: str = "an MMS") -> None:
    """Refused (the API answers 409) when the attachments cannot go in one message."""
    if len(message.attachments) > limit:
        raise Refused(
            "too_many_attachments",
            f"{channel} carries at most {limit} attachment{'s' if limit > 1 else ''}; "
            f"this answer has {len(message.attachments)}",
            max_attachments=limit,
        )
    for attachment in message.attachments:
        if not _public_url(attachment.url):
            raise Refused(
                "attachment_url_invalid",
                "attachments are sent as URLs the provider fetches: each must be an absolute http(s) URL",
                url=attachment.url[:200],
            )


def media_urls(message: OutboundMessage, limit: int = MAX_MEDIA) -> list[str]:
    """The attachments' URLs for the send request (a PermanentFailure where prepare would refuse)."""
    try:
        refuse_unsendable_media(message, limit)
    except Refused as refused:
        raise PermanentFailure(refused.code, refused.detail) from None
    return [attachment.url for attachment in message.attachments]


def _public_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def error_reason(provider: str, code: str | None, words: str | None, known: Mapping[str, str]) -> str | None:
    """`<provider>_<code>: <words>` for a failed delivery (the code as a failed send names it): the
    provider's words, else what its error table says."""
    code = (code or "").strip()
    text = (words or "").strip() or known.get(code, "")
    if code and text:
        return f"{provider}_{code}: {text}"
    return f"{provider}_{code}" if code else text or None
