"""WebSub adapter: intent verification, X-Hub-Signature (sha1/256/384/512, optional without a
secret), Atom parsing with defusedxml, normalisation of YouTube and generic feeds, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    HandshakeRefused,
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
HUB_URL = "https://hub.example.com/webhooks/websub/conn_01HZY"
CREDENTIALS = {"secret": "hub-secret-0f9e8d7c"}
TOPIC = "https://www.youtube.com/xml/feeds/videos.xml?channel_id=UC_x5XG1OV2P6uZZ5FSM9Ttw"


def make_request(url: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST"):
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def hub_signature(body: bytes, method: str = "sha1", secret: str = CREDENTIALS["secret"]) -> str:
    return f"{method}=" + hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()


def signed(body: bytes, method: str = "sha1", secret: str = CREDENTIALS["secret"]) -> WebhookRequest:
    return make_request(
        HUB_URL, body, {"Content-Type": "application/atom+xml", "X-Hub-Signature": hub_signature(body, method, secret)}
    )


def recorded(name: str) -> bytes:
    return recorded_event("websub", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "websub", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter():
    return get_adapter("websub")


# --- intent verification ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["subscribe", "unsubscribe"])
def test_intent_verification_echoes_the_challenge(adapter, mode):
    params = {
        "hub.mode": mode,
        "hub.topic": TOPIC,
        "hub.challenge": "1430842751851497637",
        "hub.lease_seconds": "432000",
    }
    response = adapter.handshake(make_request(f"{HUB_URL}?{urlencode(params)}", method="GET"), [CREDENTIALS])
    assert (response.status, response.body) == (200, "1430842751851497637")
    assert response.content_type.startswith("text/plain")


def test_intent_verification_problems(adapter):
    def check(params):
        return adapter.handshake(make_request(f"{HUB_URL}?{urlencode(params)}", method="GET"), [CREDENTIALS])

    with pytest.raises(HandshakeRefused):
        check({"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "nope"})
    for missing in ("hub.mode", "hub.topic", "hub.challenge"):
        params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "1"}
        del params[missing]
        with pytest.raises(MalformedPayload):
            check(params)
    with pytest.raises(MalformedPayload):
        check({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "1", "hub.lease_seconds": "soon"})


# --- signature -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_every_spec_algorithm_is_accepted(adapter, method):
    adapter.verify(signed(recorded("youtube-video.xml"), method), CREDENTIALS, NOW)


def test_uppercase_method_and_hex_are_accepted(adapter):
    body = recorded("youtube-video.xml")
    header = hub_signature(body, "sha256").upper()
    adapter.verify(make_request(HUB_URL, body, {"X-Hub-Signature": header}), CREDENTIALS, NOW)


@pytest.mark.parametrize("header", ["", "sha1", "sha1=", "md5=" + "0" * 32, "sha256=" + "0" * 64, "deadbeef"])
def test_bad_signatures_are_refused(adapter, header):
    with pytest.raises(SignatureError) as caught:
        adapter.verify(
            make_request(HUB_URL, recorded("youtube-video.xml"), {"X-Hub-Signature": header}), CREDENTIALS, NOW
        )
    assert CREDENTIALS["secret"] not in str(caught.value)


def test_signature_required_when_the_connection_has_a_secret(adapter):
    with pytest.raises(SignatureError, match="X-Hub-Signature"):
        adapter.verify(make_request(HUB_URL, recorded("youtube-video.xml"), {}), CREDENTIALS, NOW)


def test_tampered_body_and_wrong_secret_are_refused(adapter):
    request = signed(recorded("youtube-video.xml"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(HUB_URL, request.body.replace(b"Video title", b"Video titlf"), dict(request.headers)),
            CREDENTIALS,
            NOW,
        )
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("youtube-video.xml"), secret="other"), CREDENTIALS, NOW)


def test_empty_secret_accepts_unsigned_notifications(adapter):
    assert adapter.validate_credentials({"secret": ""}) == {"secret": ""}
    adapter.verify(make_request(HUB_URL, recorded("youtube-video.xml"), {}), {"secret": ""}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, recorded("youtube-video.xml"), {}), {}, NOW)


# --- parsing and normalisation -----------------------------------------------------------------------


def test_youtube_video(adapter):
    [event] = adapter.normalise(signed(recorded("youtube-video.xml")))
    assert_publishable([event])
    assert event.type == "content.published"
    assert event.provider_event_id == "yt:video:dQw4w9WgXcQ@2015-03-09T19:05:24.552394234+00:00"
    assert event.text == "Video title"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [
        ("youtube", "UC_x5XG1OV2P6uZZ5FSM9Ttw", "Channel title")
    ]
    assert event.conversation_key == "websub:UC_x5XG1OV2P6uZZ5FSM9Ttw"
    assert (event.attributes["video_id"], event.attributes["channel_id"]) == ("dQw4w9WgXcQ", "UC_x5XG1OV2P6uZZ5FSM9Ttw")
    assert event.attributes["topic"] == TOPIC and event.attributes["hub"] == "https://pubsubhubbub.appspot.com"
    assert event.attributes["link"] == "http://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert event.occurred_at == datetime(2015, 3, 9, 19, 5, 24, 552394, tzinfo=UTC)


def test_an_updated_entry_is_a_new_event(adapter):
    first = adapter.normalise(signed(recorded("youtube-video.xml")))[0].provider_event_id
    body = recorded("youtube-video.xml").replace(b"2015-03-09T19:05:24.552394234", b"2015-03-10T08:00:00")
    assert adapter.normalise(signed(body))[0].provider_event_id != first


def test_generic_feed_gives_one_event_per_entry(adapter):
    drafts = adapter.normalise(signed(recorded("blog-two-entries.xml")))
    assert_publishable(drafts)
    assert [d.text for d in drafts] == ["Atom-Powered Robots Run Amok", "Second post & follow-up"]
    assert drafts[0].contact.handles[0].platform == "websub"
    assert drafts[0].conversation_key == "websub:urn:uuid:60a76c80-d399-11d9-b91C-0003939e0af6"
    assert drafts[0].attributes["entry"]["summary"] == "Some text."


def test_deleted_entry_is_a_notification(adapter):
    [event] = adapter.normalise(signed(recorded("youtube-deleted.xml")))
    assert (event.type, event.attributes["kind"]) == ("provider.notification", "websub.deleted_entry")
    assert event.attributes["deleted_refs"] == ["yt:video:dQw4w9WgXcQ"]
    assert event.attributes["feed"]["deleted-entry"]["ref"] == "yt:video:dQw4w9WgXcQ"


def test_text_xml_is_accepted(adapter):
    assert "text/xml" in adapter.content_types and "application/atom+xml" in adapter.content_types


XXE = b"""<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>&xxe;</id></entry></feed>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol2;</title></feed>"""


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"not xml",
        b"<feed>",
        b'{"json": true}',
        XXE,
        BILLION_LAUGHS,
        b"<rss><channel/></rss>",
        b'<?xml version="1.0" encoding="klingon"?><feed/>',
        b"\xff\xfe<\x00f\x00",
        b"<a>" * 3000 + b"</a>" * 3000,
    ],
)
def test_malformed_or_dangerous_xml_is_refused(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


# --- property tests ------------------------------------------------------------------------------------

ATOM_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
ENTRY = st.builds(
    lambda id_, updated, title, video: (
        f"<entry><id>{id_}</id><updated>{updated}</updated><title>{title}</title>"
        f"<yt:videoId>{video}</yt:videoId></entry>"
    ),
    ATOM_TEXT.map(lambda s: s.replace("<", "").replace("&", "")),
    st.one_of(st.just("2015-03-09T19:05:24+00:00"), ATOM_TEXT.map(lambda s: s.replace("<", "").replace("&", ""))),
    ATOM_TEXT.map(lambda s: s.replace("<", "").replace("&", "")),
    ATOM_TEXT.map(lambda s: s.replace("<", "").replace("&", "")),
)
FEEDS = st.lists(ENTRY, max_size=3).map(
    lambda entries: (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:yt="http://www.youtube.com/xml/schemas/2015">'
        + "".join(entries)
        + "</feed>"
    ).encode("utf-8")
)


@FUZZ
@given(
    url=st.one_of(st.just(HUB_URL + "?hub.mode=subscribe&hub.topic=t&hub.challenge=c"), st.text(max_size=40)),
    headers=st.dictionaries(
        st.sampled_from(["x-hub-signature", "content-type"]),
        st.one_of(st.text(max_size=70), st.sampled_from(["sha1=", "sha256=\ud800"])),
        max_size=2,
    ),
    body=st.one_of(st.binary(max_size=300), FEEDS, st.text(max_size=200).map(lambda s: s.encode("utf-8", "replace"))),
    secret=st.one_of(st.just(""), st.text(max_size=12)),
)
def test_property_any_request_raises_only_hub_errors(url, headers, body, secret):
    adapter = get_adapter("websub")
    request = WebhookRequest(method="POST", url=url, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"secret": secret}, NOW, assert_publishable)


@FUZZ
@given(body=st.one_of(FEEDS, st.binary(max_size=200)), method=st.sampled_from(["sha1", "sha256", "sha384", "sha512"]))
def test_property_signed_bodies_verify_and_normalise_or_are_malformed(body, method):
    adapter = get_adapter("websub")
    request = signed(body, method)
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
