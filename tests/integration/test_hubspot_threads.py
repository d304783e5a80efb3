"""A HubSpot inbox thread answered from the hub, end to end on the local runtime: HubSpot's signed
`conversation.newMessage` webhook (ids only) in, the hubspot_threads function fetches the message from
the provider sandbox, routing opens the conversation, staff answer through the admin API, exactly one
message goes to the thread, and the answer's own new-message webhook (fetched: OUTGOING) marks it
delivered."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.conftest import wait_for
from tests.integration.test_answers import answered_and_delivered, conversation_for, new_customer_event, post_signed

pytestmark = pytest.mark.integration


def test_a_hubspot_thread_message_is_answered_in_its_thread_and_delivered(hub):
    from infra.local.samples import build_sample
    from infra.local.samples.hubspot import thread_message

    credentials = hub.connection("hubspot")["credentials"]
    signed = build_sample("hubspot", "thread-message", credentials, hub.webhook_url("hubspot"))
    contact_id = str(1_000_000 + secrets.randbelow(10**8))
    words = f"My order arrived damaged ({secrets.token_hex(3)})"
    message = thread_message(signed, words, contact_id=contact_id, email=f"ada.{contact_id}@example.com")
    hub.runtime.provider_apis.add_hubspot_message(message)
    thread = message["conversationsThreadId"]

    event = new_customer_event(hub, "hubspot", lambda: post_signed(hub, signed))
    assert event["type"] == "message.received" and event["text"] == words
    assert event["conversation_key"].endswith(f":thread:{thread}")
    assert event["contact"]["crm_ids"] == {"hubspot": contact_id}
    assert event["attributes"]["messageId"] == message["id"] and event["attributes"]["direction"] == "INCOMING"
    conversation = conversation_for(hub, event["id"])

    text = f"A replacement ships today ({secrets.token_hex(3)})"
    queued, sent = answered_and_delivered(hub, "hubspot", conversation, text)
    assert queued["channel"] == "hubspot" and queued["to"] == thread
    assert sent.to == thread and sent.details["type"] == "MESSAGE"
    assert (sent.details["channel_id"], sent.details["channel_account_id"]) == (
        message["channelId"],
        message["channelAccountId"],
    )
    # The answer's echo, fetched after its webhook: the business's own message, never answered again.
    echoes = wait_for(
        lambda: [
            e
            for e in hub.logged_events(provider="hubspot", type="message.sent", limit="100")
            if e["attributes"].get("messageId") == sent.message_id
        ]
    )
    assert echoes and echoes[0]["attributes"]["direction"] == "OUTGOING" and echoes[0]["text"] == text


def test_switchboard_send_thread_message_puts_the_message_in_the_sandbox_and_it_is_received(hub, capsys):
    from infra.local.samples.hubspot import THREAD_MESSAGE_TEXT
    from tests.integration.test_cli import run

    before = {e["id"] for e in hub.logged_events(provider="hubspot", type="message.received", limit="100")}
    code, out = run(hub, capsys, "send", "hubspot", "thread-message")
    assert code == 0 and "-> 20" in out, out
    received = wait_for(
        lambda: [
            e
            for e in hub.logged_events(provider="hubspot", type="message.received", limit="100")
            if e["id"] not in before
        ],
        timeout=30,
    )
    assert received and received[0]["text"] == THREAD_MESSAGE_TEXT
