"""Meta adapter: handshake, X-Hub-Signature-256, normalisation of Messenger/Instagram/WhatsApp, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import json
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
from switchboard_core.providers.meta import MetaAdapter
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
HUB_URL = "https://hub.example.com/webhooks/meta/conn_01HZY"
CREDENTIALS = {"app_secret": "6b1f0e2d9c8a7b6e5f4d3c2b1a0f9e8d", "verify_token": "meatyhamhock"}

# providers.md §4 #1: GitHub's X-Hub-Signature-256 example (same construction as Meta's).
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def make_request(
    url: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST"
) -> WebhookRequest:
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def signed(body: bytes, secret: str = CREDENTIALS["app_secret"]) -> WebhookRequest:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return make_request(HUB_URL, body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature})


def recorded(name: str) -> bytes:
    return recorded_event("meta", name)


def handshake_url(**params: str) -> str:
    return f"{HUB_URL}?{urlencode(params)}"


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "meta", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter() -> MetaAdapter:
    return get_adapter("meta")


# --- handshake -----------------------------------------------------------------------------


def test_handshake_echoes_the_challenge(adapter):
    request = make_request(
        handshake_url(**{"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "meatyhamhock"}),
        method="GET",
    )
    response = adapter.handshake(request, [CREDENTIALS])
    assert (response.status, response.body) == (200, "1158201444")
    assert response.content_type.startswith("text/plain")


def test_handshake_accepts_any_current_credential_set(adapter):
    request = make_request(
        handshake_url(**{"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "new-token"}), method="GET"
    )
    rotating = [CREDENTIALS, {"app_secret": "x", "verify_token": "new-token"}]
    assert adapter.handshake(request, rotating).body == "42"


def test_handshake_reads_the_url_when_query_is_not_parsed(adapter):
    url = handshake_url(**{"hub.mode": "subscribe", "hub.challenge": "7", "hub.verify_token": "meatyhamhock"})
    request = WebhookRequest(method="GET", url=url, headers={}, body=b"")
    assert adapter.handshake(request, [CREDENTIALS]).body == "7"


@pytest.mark.parametrize("token", ["wrong", "meatyhamhoc", "meatyhamhockk", "MEATYHAMHOCK"])
def test_handshake_wrong_token_is_refused(adapter, token):
    request = make_request(
        handshake_url(**{"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": token}), method="GET"
    )
    with pytest.raises(HandshakeRefused):
        adapter.handshake(request, [CREDENTIALS])


def test_handshake_with_no_credentials_is_refused(adapter):
    request = make_request(
        handshake_url(**{"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""}), method="GET"
    )
    with pytest.raises(MalformedPayload):  # an empty token counts as missing
        adapter.handshake(request, [])
    request = make_request(
        handshake_url(**{"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "x"}), method="GET"
    )
    with pytest.raises(HandshakeRefused):
        adapter.handshake(request, [{"app_secret": "s", "verify_token": ""}])


def test_handshake_other_mode_is_refused(adapter):
    request = make_request(
        handshake_url(**{"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": "meatyhamhock"}),
        method="GET",
    )
    with pytest.raises(HandshakeRefused):
        adapter.handshake(request, [CREDENTIALS])


@pytest.mark.parametrize("missing", ["hub.mode", "hub.challenge", "hub.verify_token"])
def test_handshake_missing_parameter_is_malformed(adapter, missing):
    params = {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "meatyhamhock"}
    del params[missing]
    with pytest.raises(MalformedPayload):
        adapter.handshake(make_request(handshake_url(**params), method="GET"), [CREDENTIALS])


# --- signature --------------------------------------------------------------------------------


def test_vector_github_format(adapter):
    request = make_request(HUB_URL, VECTOR_BODY, {"X-Hub-Signature-256": VECTOR_SIGNATURE})
    adapter.verify(request, {"app_secret": VECTOR_SECRET, "verify_token": "t"}, NOW)


def test_signed_recorded_payload_is_accepted(adapter):
    adapter.verify(signed(recorded("whatsapp-text.json")), CREDENTIALS, NOW)


def test_uppercase_hex_is_accepted(adapter):
    request = make_request(
        HUB_URL, VECTOR_BODY, {"X-Hub-Signature-256": VECTOR_SIGNATURE.upper().replace("SHA256=", "sha256=")}
    )
    adapter.verify(request, {"app_secret": VECTOR_SECRET, "verify_token": "t"}, NOW)


def test_tampered_body_is_refused(adapter):
    request = signed(recorded("messenger-text.json"))
    tampered = make_request(HUB_URL, request.body.replace(b"booking", b"bookinG"), dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, CREDENTIALS, NOW)


def test_reserialised_body_is_refused(adapter):
    """Verification is over the raw bytes: the same JSON re-serialised does not verify."""
    request = signed(recorded("instagram-text.json"))
    reserialised = json.dumps(json.loads(request.body), ensure_ascii=False).encode()
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, reserialised, dict(request.headers)), CREDENTIALS, NOW)


def test_wrong_key_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("messenger-text.json"), secret="other"), CREDENTIALS, NOW)


def test_missing_signature_header_is_refused_by_name(adapter):
    legacy_only = make_request(HUB_URL, VECTOR_BODY, {"X-Hub-Signature": "sha1=" + "0" * 40})
    with pytest.raises(SignatureError, match="X-Hub-Signature-256"):
        adapter.verify(legacy_only, {"app_secret": VECTOR_SECRET, "verify_token": "t"}, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=",
        "sha256=zz",
    ],
)
def test_badly_formed_signature_is_refused(adapter, header):
    request = make_request(HUB_URL, VECTOR_BODY, {"X-Hub-Signature-256": header})
    with pytest.raises(SignatureError) as caught:
        adapter.verify(request, {"app_secret": VECTOR_SECRET, "verify_token": "t"}, NOW)
    assert VECTOR_SECRET not in str(caught.value)


def test_delivery_id_is_a_body_digest(adapter):
    request = signed(recorded("whatsapp-text.json"))
    assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(request.body).hexdigest()


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"object": "page"}',
        b'{"object": "page", "entry": {}}',
        b'{"object": "page", "entry": []}',
        b'{"object": 5, "entry": [{}]}',
        b'{"object": "page", "entry": [1]}',
        b'{"object": "page", "entry": [{"messaging": {"a": 1}}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": []}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [3]}}]}]}',
        b'{"object": "page", "entry": [{"messaging": [{"message": {"text": "x"}}]}], "n": NaN}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


# --- normalisation ---------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(signed(recorded(name)))
    assert_publishable(drafts)
    return drafts


def test_whatsapp_text(adapter):
    [event] = normalise(adapter, "whatsapp-text.json")
    assert event.type == "message.received"
    assert event.provider_event_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert event.contact.phone == "+16505551234"
    assert event.contact.name == "Sheena Nelson"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [
        ("whatsapp", "16505551234", "Sheena Nelson")
    ]
    assert event.conversation_key == "meta:whatsapp:106540352242922:16505551234"
    assert event.text == "Does it come in another color?"
    assert event.occurred_at == datetime.fromtimestamp(1749416383, UTC)
    assert event.attributes["phone_number_id"] == "106540352242922"
    assert event.attributes["waba_id"] == "102290129340398"
    assert event.attributes["messaging_product"] == "whatsapp"


def test_whatsapp_image(adapter):
    [event] = normalise(adapter, "whatsapp-image.json")
    assert event.text == "The strap is torn \u2014 see photo"
    [attachment] = event.attachments
    assert (attachment.provider_id, attachment.content_type, attachment.url) == ("1003383421387256", "image/jpeg", None)
    assert event.attributes["context"]["from"] == "15550783881"
    assert event.attributes["image"]["sha256"].startswith("nUFM")


def test_whatsapp_interactive_and_button(adapter):
    reply, button = normalise(adapter, "whatsapp-interactive.json")
    assert (reply.text, reply.contact.name) == ("Track my order", "Kerry Fisher")
    assert reply.attributes["interactive"]["button_reply"]["id"] == "track-order"
    assert (button.text, button.attributes["button"]["payload"]) == ("Stop promotions", "STOP_PROMOS")


def test_whatsapp_location_kept_in_attributes(adapter):
    [event] = normalise(adapter, "whatsapp-location.json")
    assert event.text is None
    assert event.attributes["message_type"] == "location"
    assert event.attributes["location"]["latitude"] == 37.483307


def test_whatsapp_statuses(adapter):
    delivered, failed = normalise(adapter, "whatsapp-status.json")
    assert delivered.type == failed.type == "message.status_updated"
    assert delivered.provider_event_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA:delivered"
    assert delivered.contact.phone == "+16505551234"
    assert delivered.conversation_key == "meta:whatsapp:106540352242922:16505551234"
    assert delivered.attributes["status"] == "delivered"
    assert delivered.attributes["pricing"]["category"] == "service"
    assert failed.attributes["errors"][0]["code"] == 131047


def test_whatsapp_other_field_becomes_a_notification(adapter):
    [event] = normalise(adapter, "whatsapp-template-status.json")
    assert event.type == "provider.notification"
    assert event.attributes["kind"] == "whatsapp.message_template_status_update"
    assert event.attributes["value"]["event"] == "APPROVED"
    assert event.provider_event_id == normalise(adapter, "whatsapp-template-status.json")[0].provider_event_id


def test_messenger_text(adapter):
    [event] = normalise(adapter, "messenger-text.json")
    assert event.type == "message.received"
    assert event.provider_event_id.startswith("m_AG5Hz2Uq7tuwNEhX")
    assert [(h.platform, h.id) for h in event.contact.handles] == [("messenger", "6789012345678901")]
    assert event.contact.phone is None
    assert event.conversation_key == "meta:messenger:112233445566778:6789012345678901"
    assert event.text == "Hello, I need help with my booking"
    assert event.occurred_at == datetime.fromtimestamp(1718201284.981, UTC)
    assert event.attributes["quick_reply"] == {"payload": "HELP_BOOKING"}


def test_messenger_attachments(adapter):
    [event] = normalise(adapter, "messenger-attachment.json")
    assert event.text is None
    assert [(a.content_type, a.url.rsplit("/", 1)[1]) for a in event.attachments] == [
        ("image/*", "example-image.jpg"),
        ("application/octet-stream", "example-invoice.pdf"),
    ]


def test_messenger_delivery_and_read(adapter):
    [delivery] = normalise(adapter, "messenger-delivery.json")
    [read] = normalise(adapter, "messenger-read.json")
    assert delivery.type == read.type == "message.status_updated"
    assert delivery.attributes["status"] == "delivered"
    assert delivery.attributes["mids"] == ["mid.1458668856218:ed81099e15d3f4f233"]
    assert read.attributes["status"] == "read"
    assert read.provider_event_id == "messenger:read:6789012345678901:1458668856253"
    assert delivery.provider_event_id.startswith("messenger:delivery:6789012345678901:1458668856253:")
    assert delivery.provider_event_id == normalise(adapter, "messenger-delivery.json")[0].provider_event_id
    assert delivery.occurred_at == datetime.fromtimestamp(1718201400, UTC)  # no timestamp: the entry's time


def test_messenger_postback(adapter):
    [event] = normalise(adapter, "messenger-postback.json")
    assert (event.type, event.text) == ("message.received", "Talk to an agent")
    assert event.attributes["postback"]["payload"] == "AGENT_HANDOFF"


def test_messenger_echo_is_an_outbound_message_to_the_user(adapter):
    [event] = normalise(adapter, "messenger-echo.json")
    assert event.type == "message.sent"
    assert [h.id for h in event.contact.handles] == ["6789012345678901"]
    assert event.conversation_key == "meta:messenger:112233445566778:6789012345678901"
    assert event.attributes["metadata"] == "agent:42"
    assert "automated" not in event.attributes  # an agent's answer: it meets the SLA


def test_the_echo_of_the_hubs_own_auto_reply_is_marked_automated(adapter):
    payload = json.loads(recorded("messenger-echo.json"))
    payload["entry"][0]["messaging"][0]["message"]["metadata"] = "switchboard:auto-reply"
    [event] = adapter.normalise(signed(json.dumps(payload).encode()))
    assert event.type == "message.sent" and event.attributes["automated"] is True


def test_instagram_text(adapter):
    [event] = normalise(adapter, "instagram-text.json")
    assert [(h.platform, h.id) for h in event.contact.handles] == [("instagram", "1234567890123456")]
    assert event.conversation_key == "meta:instagram:17841400008460056:1234567890123456"
    assert event.text == "Do you ship to Canada? \U0001f1e8\U0001f1e6"


def test_page_feed_comment_is_a_comment(adapter):
    [event] = normalise(adapter, "page-feed.json")
    assert event.type == "comment.created"
    assert event.provider_event_id == "facebook:comment:987654321098765_111222333444555"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [
        ("facebook", "6789012345678901", "Alex Doe")
    ]
    assert event.contact.name == "Alex Doe"
    assert event.text == "Still waiting for my refund!"
    assert event.conversation_key == "meta:facebook:112233445566778_987654321098765"
    assert event.attributes["post"]["status_type"] == "added_photos"
    assert event.attributes["item"] == "comment" and event.attributes["field"] == "feed"
    assert event.occurred_at == datetime.fromtimestamp(1718201899, UTC)


def test_page_feed_visitor_post_is_a_mention_the_rest_stays_notifications(adapter):
    post, reaction, own_comment = normalise(adapter, "page-feed-mixed.json")
    assert (post.type, post.text) == ("mention.created", "Are you open on Sunday?")
    assert post.conversation_key == "meta:facebook:112233445566778_222333444555666"
    assert post.contact.handles[0].id == "6789012345678903"
    assert (reaction.type, reaction.attributes["kind"]) == ("provider.notification", "messenger.feed")
    assert reaction.attributes["value"]["reaction_type"] == "like"
    assert own_comment.type == "provider.notification"  # the Page answering itself is not a customer comment


def test_page_mention(adapter):
    [event] = normalise(adapter, "page-mention.json")
    assert event.type == "mention.created"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [
        ("facebook", "6789012345678902", "Jane Smith")
    ]
    assert event.text == "Great service from Example Store today!"
    assert event.conversation_key == "meta:facebook:44444444_123456789"


def test_instagram_comment(adapter):
    [event] = normalise(adapter, "instagram-comment.json")
    assert (event.type, event.provider_event_id) == ("comment.created", "instagram:comment:17919697626119712")
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [
        ("instagram", "1234567890123456", "maria.travels")
    ]
    assert event.text == "Is this available in blue? @switchboard"
    assert event.conversation_key == "meta:instagram:18172143295349192"
    assert event.attributes["media"]["media_product_type"] == "FEED"
    assert event.attributes["from"]["self_ig_scoped_id"] == "2105722729836161"


def test_instagram_mention_carries_the_ids(adapter):
    [event] = normalise(adapter, "instagram-mention.json")
    assert event.type == "mention.created"
    assert event.provider_event_id == "instagram:mention:17887498072083520:17894227972186120"
    assert event.conversation_key == "meta:instagram:17887498072083520"
    assert event.attributes["comment_id"] == "17894227972186120"
    assert event.text is None and event.contact.handles == []


def test_feed_edits_and_removals_stay_notifications(adapter):
    for verb in ("edited", "remove"):
        payload = json.loads(recorded("page-feed.json"))
        payload["entry"][0]["changes"][0]["value"]["verb"] = verb
        [event] = adapter.normalise(signed(json.dumps(payload).encode()))
        assert event.type == "provider.notification"


@pytest.mark.parametrize(
    ("wa_id", "phone"),
    [
        # Meta's own test numbers (+1 555 ...): possible, though libphonenumber calls area code 555 invalid.
        ("15550783881", "+15550783881"),
        ("447700900123", "+447700900123"),  # Ofcom's drama range: delivered, so kept
        ("4930123456", "+4930123456"),
        ("1555078", None),  # too short for NANP: cannot be a number at all
    ],
)
def test_whatsapp_ids_keep_every_possible_number(adapter, wa_id, phone):
    payload = json.loads(recorded("whatsapp-text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from"] = value["contacts"][0]["wa_id"] = wa_id
    [event] = adapter.normalise(signed(json.dumps(payload).encode()))
    assert event.contact.phone == phone
    assert event.contact.handles[0].id == wa_id


def test_unknown_messaging_kind_and_object_are_kept(adapter):
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "1",
                    "time": 1718201900000,
                    "messaging": [
                        {
                            "sender": {"id": "2"},
                            "recipient": {"id": "1"},
                            "timestamp": 1718201900000,
                            "optin": {"ref": "promo", "user_ref": "u1"},
                        }
                    ],
                }
            ],
        }
    ).encode()
    [event] = adapter.normalise(signed(body))
    assert (event.type, event.attributes["kind"]) == ("provider.notification", "messenger.optin")
    assert event.attributes["data"]["optin"]["ref"] == "promo"
    body = json.dumps(
        {
            "object": "permissions",
            "entry": [{"id": "9", "time": 1, "changes": [{"field": "ads_management", "value": {"verb": "granted"}}]}],
        }
    ).encode()
    [event] = adapter.normalise(signed(body))
    assert event.attributes["kind"] == "permissions.ads_management"


@pytest.mark.parametrize("stamp", ["\u00b2", "\u0663\u0663", "1" * 5000, 10**400, -1, 1.5, "12:00"])
def test_unreadable_timestamps_are_ignored(adapter, stamp):
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "1",
                    "time": stamp,
                    "messaging": [
                        {"sender": {"id": "2"}, "recipient": {"id": "1"}, "timestamp": stamp, "message": {"mid": "m_1"}}
                    ],
                }
            ],
        }
    ).encode()
    [event] = adapter.normalise(signed(body))
    assert event.occurred_at is None


def test_lone_surrogates_are_replaced_not_fatal(adapter):
    body = (
        b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},'
        b'"message":{"mid":"m_1","text":"bad \\ud800 pair"}}]}]}'
    )
    [event] = adapter.normalise(signed(body))
    assert event.text == "bad \ufffd pair"
    assert_publishable([event])


# --- property tests -------------------------------------------------------------------------------

VOCABULARY = [
    "object",
    "entry",
    "id",
    "time",
    "messaging",
    "standby",
    "changes",
    "field",
    "value",
    "messages",
    "statuses",
    "contacts",
    "sender",
    "recipient",
    "message",
    "mid",
    "text",
    "attachments",
    "payload",
    "url",
    "type",
    "delivery",
    "read",
    "watermark",
    "mids",
    "postback",
    "title",
    "reaction",
    "from",
    "timestamp",
    "profile",
    "name",
    "wa_id",
    "metadata",
    "phone_number_id",
    "status",
    "recipient_id",
    "is_echo",
    "interactive",
    "button_reply",
    "list_reply",
    "nfm_reply",
    "body",
    "button",
    "image",
    "document",
    "caption",
    "mime_type",
    "system",
    "created_time",
    "item",
    "verb",
    "post_id",
    "comment_id",
    "parent_id",
    "media",
    "media_id",
    "username",
    "sender_id",
    "sender_name",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "page",
            "instagram",
            "whatsapp_business_account",
            "messages",
            "text",
            "image",
            "interactive",
            "button_reply",
            "16505551234",
            "1718201284981",
            "1749416383",
            "\ud800",
            "image/jpeg",
            "\u00b2",
            "9" * 40,
        ]
    ),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=40,
)
ENVELOPES = st.fixed_dictionaries(
    {
        "object": st.sampled_from(["page", "instagram", "whatsapp_business_account", "user"]),
        "entry": st.lists(JSON_VALUES, min_size=1, max_size=3),
    }
)


def obj(required=None, **optional):
    """A dict shaped like Meta's: the keys are right, every value may be wrong."""
    return st.fixed_dictionaries(required or {}, optional=optional)


IDS = st.one_of(SCALARS, st.sampled_from(["16505551234", "106540352242922", "6789012345678901", "+1"]))
MEDIA = obj(caption=SCALARS, mime_type=SCALARS, id=IDS, url=SCALARS, sha256=SCALARS)
WA_MESSAGE = obj(
    **{
        "from": IDS,
        "id": IDS,
        "timestamp": SCALARS,
        "context": JSON_VALUES,
        "location": JSON_VALUES,
        "type": st.one_of(
            st.sampled_from(
                [
                    "text",
                    "image",
                    "video",
                    "audio",
                    "document",
                    "sticker",
                    "button",
                    "interactive",
                    "system",
                    "location",
                    "reaction",
                    "unknown",
                ]
            ),
            SCALARS,
        ),
        "text": obj(body=SCALARS),
        "image": MEDIA,
        "document": MEDIA,
        "sticker": MEDIA,
        "button": obj(text=SCALARS),
        "interactive": obj(
            type=st.one_of(st.sampled_from(["button_reply", "list_reply", "nfm_reply"]), SCALARS),
            button_reply=obj(id=SCALARS, title=SCALARS),
            list_reply=obj(title=SCALARS),
            nfm_reply=obj(body=SCALARS),
        ),
        "system": obj(body=SCALARS),
    }
)
WA_STATUS = obj(
    id=IDS,
    timestamp=SCALARS,
    recipient_id=IDS,
    errors=JSON_VALUES,
    pricing=JSON_VALUES,
    status=st.one_of(st.sampled_from(["sent", "delivered", "read", "failed"]), SCALARS),
)
WA_VALUE = obj(
    messaging_product=SCALARS,
    metadata=obj(phone_number_id=IDS, display_phone_number=IDS),
    contacts=st.lists(obj(wa_id=IDS, profile=obj(name=SCALARS)), max_size=2),
    messages=st.lists(WA_MESSAGE, max_size=2),
    statuses=st.lists(WA_STATUS, max_size=2),
    event=SCALARS,
)
WHATSAPP = obj(
    {
        "object": st.just("whatsapp_business_account"),
        "entry": st.lists(
            obj(
                id=IDS, changes=st.lists(obj(field=st.one_of(st.just("messages"), SCALARS), value=WA_VALUE), max_size=2)
            ),
            min_size=1,
            max_size=2,
        ),
    }
)
MS_ITEM = obj(
    sender=obj(id=IDS),
    recipient=obj(id=IDS),
    timestamp=SCALARS,
    optin=JSON_VALUES,
    message=obj(
        mid=IDS,
        text=SCALARS,
        is_echo=st.one_of(st.booleans(), SCALARS),
        quick_reply=JSON_VALUES,
        attachments=st.lists(
            obj(
                type=st.one_of(st.sampled_from(["image", "file", "video", "fallback"]), SCALARS),
                payload=obj(url=SCALARS),
            ),
            max_size=2,
        ),
    ),
    delivery=obj(mids=st.lists(SCALARS, max_size=2), watermark=SCALARS),
    read=obj(watermark=SCALARS),
    postback=obj(mid=IDS, title=SCALARS, payload=SCALARS),
    reaction=obj(mid=IDS, action=SCALARS, emoji=SCALARS),
)
FEED_FIELDS = ["feed", "mention", "comments", "live_comments", "mentions"]
FEED_VALUE = obj(
    item=st.one_of(st.sampled_from(["comment", "post", "status", "photo", "reaction"]), SCALARS),
    verb=st.one_of(st.sampled_from(["add", "edited", "remove"]), SCALARS),
    post_id=IDS,
    comment_id=IDS,
    message=SCALARS,
    created_time=SCALARS,
    sender_id=IDS,
    sender_name=SCALARS,
    text=SCALARS,
    id=IDS,
    media_id=IDS,
    media=obj(id=IDS, media_product_type=SCALARS),
    **{"from": obj(id=IDS, name=SCALARS, username=SCALARS)},
)
MESSAGING = obj(
    {
        "object": st.sampled_from(["page", "instagram"]),
        "entry": st.lists(
            obj(
                id=IDS,
                time=SCALARS,
                messaging=st.lists(MS_ITEM, max_size=2),
                standby=st.lists(MS_ITEM, max_size=1),
                changes=st.lists(
                    obj(
                        field=st.one_of(st.sampled_from(FEED_FIELDS), SCALARS), value=st.one_of(FEED_VALUE, JSON_VALUES)
                    ),
                    max_size=2,
                ),
            ),
            min_size=1,
            max_size=2,
        ),
    }
)
QUERY = st.dictionaries(
    st.sampled_from(["hub.mode", "hub.challenge", "hub.verify_token", "x"]),
    st.lists(st.one_of(st.text(max_size=20), st.sampled_from(["subscribe", "meatyhamhock", "\udcff"])), max_size=2),
    max_size=4,
)
HEADERS = st.dictionaries(
    st.one_of(st.sampled_from(["x-hub-signature-256", "content-type"]), st.text(max_size=10)),
    st.one_of(st.text(max_size=80), st.sampled_from(["sha256=" + "0" * 64, "sha256=\ud800"])),
    max_size=3,
)


@FUZZ
@given(
    url=st.one_of(st.sampled_from([HUB_URL, HUB_URL + "?hub.challenge=\udcff"]), st.text(max_size=40)),
    headers=HEADERS,
    query=QUERY,
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    credentials=st.lists(
        st.dictionaries(st.sampled_from(["app_secret", "verify_token"]), st.text(max_size=12)), max_size=2
    ),
)
def test_property_any_request_raises_only_hub_errors(url, headers, query, body, credentials):
    adapter = get_adapter("meta")
    request = WebhookRequest(method="POST", url=url, headers=headers, body=body, query=query)
    assert_raises_only_hub_errors(
        adapter,
        request,
        credentials[0] if credentials else {},
        NOW,
        assert_publishable,
        handshake_credentials=credentials,
    )


@FUZZ
@given(payload=st.one_of(WHATSAPP, MESSAGING, ENVELOPES, JSON_VALUES))
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("meta")
    request = signed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
