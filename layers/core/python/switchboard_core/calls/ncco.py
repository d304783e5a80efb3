"""NCCOs (Vonage Call Control Objects) for a live Vonage call: hold the caller, connect a
responder, take a voicemail.

An NCCO is a JSON array of actions run in order. Ingest answers the answer webhook with
`holding` and a connect leg that was not answered with `still_holding`; the calls function
transfers the call (``PUT /v1/calls/{uuid}``) to `connect` or `voicemail`. Only actions and
options Vonage documents are used (https://developer.vonage.com/en/voice/voice-api/ncco-reference):
``talk`` (text, language), ``stream`` (streamUrl as an array, loop), ``connect`` (endpoint
phone/number, from or randomFromNumber, timeout, eventType, eventUrl as an array, eventMethod)
and ``record``
(eventUrl, eventMethod, beepStart, endOnSilence, endOnKey, timeOut). Values are JSON strings,
so a caller-supplied value cannot change the document's shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from switchboard_core.calls.twiml import (
    DIAL_TIMEOUT_SECONDS,
    HOLD_PLAYS,
    HOLDING_MESSAGE,
    STILL_HOLDING_MESSAGE,
    VOICEMAIL_MAX_SECONDS,
    VOICEMAIL_MESSAGE,
    hold_music_url,
)

Ncco = list[dict[str, Any]]

LANGUAGE = "en-US"
# The query parameter on a connect action's eventUrl naming the caller's call (uuid): the
# connect leg's own events carry only its uuid, and come back to ingest on that URL.
LEG_OF_PARAM = "leg_of"
VOICEMAIL_END_ON_SILENCE_SECONDS = 5
# Connect-leg statuses that mean "did not answer": Vonage runs the NCCO the eventUrl returns for
# them (eventType synchronous), so the caller keeps holding while the next responder is tried.
UNANSWERED_LEG_STATUSES = frozenset({"timeout", "unanswered", "busy", "failed", "rejected"})


def vonage_number(phone: str) -> str:
    """E.164 as Vonage writes it in NCCOs and webhooks: digits, no leading '+'."""
    return phone.strip().removeprefix("+")


def talk(text: str) -> dict[str, Any]:
    return {"action": "talk", "text": text, "language": LANGUAGE}


def stream(url: str, loop: int) -> dict[str, Any]:
    return {"action": "stream", "streamUrl": [url], "loop": loop}


def record(event_url: str) -> dict[str, Any]:
    """A voicemail after a beep, until silence, '#' or the time limit; the recording's callback
    (recording_url) is posted to `event_url`."""
    return {
        "action": "record",
        "eventUrl": [event_url],
        "eventMethod": "POST",
        "beepStart": True,
        "endOnSilence": VOICEMAIL_END_ON_SILENCE_SECONDS,
        "endOnKey": "#",
        "timeOut": VOICEMAIL_MAX_SECONDS,
    }


def holding(voicemail_url: str, message: str = HOLDING_MESSAGE, music_url: str | None = None) -> Ncco:
    """Says `message`, then plays hold music until the calls function transfers the call; after
    HOLD_PLAYS plays with nobody found, the caller may leave a voicemail (posted to `voicemail_url`)."""
    return [talk(message), stream(music_url or hold_music_url(), HOLD_PLAYS), *voicemail(voicemail_url)]


def still_holding(voicemail_url: str) -> Ncco:
    """A responder did not answer: the caller keeps holding while the next one is tried."""
    return holding(voicemail_url, STILL_HOLDING_MESSAGE)


def leg_event_url(webhook_url: str, caller_uuid: str) -> str:
    return f"{webhook_url}?{urlencode({LEG_OF_PARAM: caller_uuid})}"


def connect(phone: str, *, webhook_url: str, caller_uuid: str, caller_id: str | None) -> Ncco:
    """Puts the call through to `phone`, ringing for DIAL_TIMEOUT_SECONDS. The leg's status
    events go to the hub's webhook, naming the caller's call; `synchronous` lets ingest answer
    an unanswered leg with `still_holding`, and nothing follows the connect, so the call ends
    when the responder and caller are done."""
    action: dict[str, Any] = {
        "action": "connect",
        "endpoint": [{"type": "phone", "number": vonage_number(phone)}],
        "timeout": DIAL_TIMEOUT_SECONDS,
        "eventType": "synchronous",
        "eventUrl": [leg_event_url(webhook_url, caller_uuid)],
        "eventMethod": "POST",
    }
    if caller_id:
        action["from"] = vonage_number(caller_id)
    else:  # a connect needs a caller id: one of the application's numbers, chosen by Vonage
        action["randomFromNumber"] = True
    return [action]


def voicemail(event_url: str, message: str = VOICEMAIL_MESSAGE) -> Ncco:
    """Nobody answered: the caller leaves a message; Vonage posts the recording to `event_url`."""
    return [talk(message), record(event_url)]
