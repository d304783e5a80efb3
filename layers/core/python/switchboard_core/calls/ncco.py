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


# ------------------------------------------------------------------ outbound (campaign) calls
MAX_INPUT_TIMEOUT_SECONDS = 10  # the input action's dtmf.timeOut is 0-10 s


def input_dtmf(max_digits: int, timeout_seconds: int, event_url: str) -> dict[str, Any]:
    """Keypad input: up to `max_digits` (submitted early on '#'); the result (``dtmf.digits``,
    ``dtmf.timed_out``) is posted to `event_url`, whose answer is the NCCO that follows."""
    return {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {
            "maxDigits": max_digits,
            "timeOut": max(1, min(timeout_seconds, MAX_INPUT_TIMEOUT_SECONDS)),
            "submitOnHash": True,
        },
        "eventUrl": [event_url],
        "eventMethod": "POST",
    }


def outbound_message(
    *, say: str | None, stream_url: str | None, gather_digits: int | None, gather_timeout: int, input_url: str
) -> Ncco:
    """What a contact hears on a campaign's call (`say` as speech, else the recording at
    `stream_url`), then, with `gather_digits`, keypad input posted to `input_url`."""
    first: dict[str, Any] = stream(stream_url, 1) if stream_url else talk(say or "")
    if gather_digits is not None:
        first["bargeIn"] = True  # a key pressed during the message counts
        return [first, input_dtmf(gather_digits, gather_timeout, input_url)]
    return [first]


def outbound_connect(responder_phone: str, *, caller_id: str | None, message: str) -> Ncco:
    """Bridges the contact and a responder (ringing DIAL_TIMEOUT_SECONDS); the leg's events go to
    the call's own event_url, and the call ends when the bridged call does."""
    action: dict[str, Any] = {
        "action": "connect",
        "endpoint": [{"type": "phone", "number": vonage_number(responder_phone)}],
        "timeout": DIAL_TIMEOUT_SECONDS,
    }
    if caller_id:
        action["from"] = vonage_number(caller_id)
    else:
        action["randomFromNumber"] = True
    return [talk(message), action]


def goodbye(message: str) -> Ncco:
    """The answer to a campaign call's input result: thank the contact; the call then ends."""
    return [talk(message)]
