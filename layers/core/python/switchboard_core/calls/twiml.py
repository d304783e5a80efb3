"""TwiML for a live call: hold the caller, dial a responder, take a voicemail.

Built with ElementTree rather than string formatting, so a caller-supplied value can never
break out of its element (the twilio SDK's VoiceResponse does the same, but would add the
SDK to the ingest path for three small documents).
Only verbs and attributes Twilio documents are used:
https://www.twilio.com/docs/voice/twiml (Say, Play loop, Dial action/
timeout/callerId, Number url/method, Record action/maxLength/playBeep).
"""

from __future__ import annotations

import os
from xml.etree import ElementTree as ET

# Twilio's own hold music (the default of the "Hold Music" twimlet, public since 2010).
DEFAULT_HOLD_MUSIC_URL = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
HOLD_MUSIC_ENV = "TWILIO_HOLD_MUSIC_URL"
HOLDING_MESSAGE = "Thank you for calling. Please hold for one moment, we are finding someone to help you."
STILL_HOLDING_MESSAGE = "Please keep holding, we are trying someone else."
VOICEMAIL_MESSAGE = (
    "Sorry, nobody could take your call right now. Please leave a message after the tone, and we will call you back."
)
# How many times the hold music plays before a caller nobody was found for is offered voicemail
# (the redirect interrupts it as soon as routing finds someone): a bound, so a call routing never
# assigns (no rule, a sticky conversation) cannot hold forever.
HOLD_PLAYS = 3
DIAL_TIMEOUT_SECONDS = 20  # Twilio's <Dial timeout>: how long a responder's phone rings
VOICEMAIL_MAX_SECONDS = 120


def hold_music_url() -> str:
    return os.environ.get(HOLD_MUSIC_ENV, "").strip() or DEFAULT_HOLD_MUSIC_URL


def _document(response: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")


def holding(message: str = HOLDING_MESSAGE, music_url: str | None = None, *, voicemail_action: str) -> str:
    """Says `message`, then plays hold music until the call is redirected; after HOLD_PLAYS
    plays with nobody found, the caller may leave a voicemail (posted to `voicemail_action`)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = message
    ET.SubElement(response, "Play", loop=str(HOLD_PLAYS)).text = music_url or hold_music_url()
    _append_voicemail(response, voicemail_action, VOICEMAIL_MESSAGE)
    return _document(response)


WHISPER_PARAM = "whisper"  # the query parameter of a <Number url> that carries the whisper's text
MAX_WHISPER_CHARS = 300


def whisper(text: str) -> str:
    """What the responder hears when they pick up, before the caller is connected."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = text[:MAX_WHISPER_CHARS]
    return _document(response)


def dial(phone: str, *, action_url: str, caller_id: str | None, whisper_url: str | None = None) -> str:
    """Puts the call through to `phone`; Twilio posts `action_url` when the dial ends
    (DialCallStatus says whether they answered) and, when the responder picks up, fetches
    `whisper_url` for what they hear first."""
    response = ET.Element("Response")
    attributes = {"action": action_url, "method": "POST", "timeout": str(DIAL_TIMEOUT_SECONDS)}
    if caller_id:
        attributes["callerId"] = caller_id
    element = ET.SubElement(response, "Dial", attributes)
    number = ET.SubElement(element, "Number", {"url": whisper_url, "method": "POST"} if whisper_url else {})
    number.text = phone
    return _document(response)


def voicemail(action_url: str, message: str = VOICEMAIL_MESSAGE) -> str:
    """Nobody answered: the caller leaves a message; Twilio posts the recording to `action_url`."""
    response = ET.Element("Response")
    _append_voicemail(response, action_url, message)
    return _document(response)


def _append_voicemail(response: ET.Element, action_url: str, message: str) -> None:
    ET.SubElement(response, "Say").text = message
    ET.SubElement(
        response,
        "Record",
        {"action": action_url, "method": "POST", "maxLength": str(VOICEMAIL_MAX_SECONDS), "playBeep": "true"},
    )


# ------------------------------------------------------------------ outbound (campaign) calls
# The query parameter marking the hub's own outbound calls' callbacks on the Twilio webhook: a
# <Gather> action posts `?outbound=gather`, answered with GOODBYE (never the inbound holding TwiML)
# and deduplicated as `{CallSid}:gather`, apart from the call's status callbacks.
OUTBOUND_PARAM = "outbound"
OUTBOUND_GATHER = "gather"
CONNECTING_MESSAGE = "Hello, please hold: we are connecting you with someone from our team."
GOODBYE_MESSAGE = "Thank you. Goodbye."


def outbound_action_url(webhook_url: str, kind: str) -> str:
    return f"{webhook_url}?{OUTBOUND_PARAM}={kind}"


def outbound_message(
    *, say: str | None, play_url: str | None, gather_digits: int | None, gather_timeout: int, gather_action: str
) -> str:
    """What a contact hears on a campaign's call: `say` (text to speech) or `play_url` (a
    recording). With `gather_digits`, it is read inside a <Gather> of that many keypad digits
    whose result (``Digits``, empty when none came in `gather_timeout` seconds:
    actionOnEmptyResult) is posted to `gather_action`."""
    response = ET.Element("Response")
    parent = response
    if gather_digits is not None:
        parent = ET.SubElement(
            response,
            "Gather",
            {
                "input": "dtmf",
                "numDigits": str(gather_digits),
                "timeout": str(gather_timeout),
                "action": gather_action,
                "method": "POST",
                "actionOnEmptyResult": "true",
            },
        )
    if play_url:
        ET.SubElement(parent, "Play").text = play_url
    else:
        ET.SubElement(parent, "Say").text = say or ""
    return _document(response)


def outbound_connect(responder_phone: str, *, caller_id: str | None, message: str = CONNECTING_MESSAGE) -> str:
    """Bridges the contact (the call's callee) and a responder: a short message, then a <Dial>
    of DIAL_TIMEOUT_SECONDS without an action, so the call simply ends when either hangs up or
    the responder does not answer (the contact's call status reports the outcome)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = message
    attributes = {"timeout": str(DIAL_TIMEOUT_SECONDS)}
    if caller_id:
        attributes["callerId"] = caller_id
    ET.SubElement(ET.SubElement(response, "Dial", attributes), "Number").text = responder_phone
    return _document(response)


def goodbye(message: str = GOODBYE_MESSAGE) -> str:
    """The answer to a campaign call's <Gather> result: thank the contact and hang up."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = message
    ET.SubElement(response, "Hangup")
    return _document(response)
